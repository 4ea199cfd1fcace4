/**
 * Untagged server data — RFC 9051 §7.2 (CAPABILITY, ENABLED, LIST, NAMESPACE, STATUS, ESEARCH,
 * FLAGS), §7.3 (EXISTS; RECENT from RFC 3501 §7.3.2), §7.4 (EXPUNGE); RFC 3501 §7.2.3 LSUB and
 * §7.2.5 SEARCH; LIST-EXTENDED data (RFC 5258 §4: CHILDINFO, OLDNAME per RFC 9051 §7.3.1);
 * ESEARCH (RFC 4731 §3.1); ID (RFC 2971 §3.2); VANISHED (RFC 7162 §3.2.10).
 */
import { encodeMailboxName } from '../mutf7.js';
import { formatNumberSet, formatRanges, type ResolvedRange } from '../sequence-set.js';
import type { StatusItem } from '../commands/types.js';
import { ResponseBuilder, type StringOptions } from './builder.js';
import { checkFlag } from './status.js';

const DEFAULT_OPTIONS: StringOptions = { utf8: false };

function untagged(options: StringOptions): ResponseBuilder {
  return new ResponseBuilder(options).text('* ');
}

function atomList(b: ResponseBuilder, atoms: readonly string[]): void {
  b.text('(');
  atoms.forEach((a, i) => {
    if (i > 0) b.sp();
    b.atom(a);
  });
  b.text(')');
}

/** `* CAPABILITY IMAP4rev2 ...` (RFC 9051 §7.2.2). */
export function serializeCapability(capabilities: readonly string[]): Buffer {
  const b = untagged(DEFAULT_OPTIONS).atom('CAPABILITY');
  for (const cap of capabilities) b.sp().atom(checkFlag(cap));
  return b.crlf().bytes();
}

/** `* ENABLED CONDSTORE` (RFC 5161 §3.2). */
export function serializeEnabled(capabilities: readonly string[]): Buffer {
  const b = untagged(DEFAULT_OPTIONS).atom('ENABLED');
  for (const cap of capabilities) b.sp().atom(checkFlag(cap));
  return b.crlf().bytes();
}

/** `* FLAGS (\Answered \Flagged ...)` (RFC 9051 §7.3.5). */
export function serializeFlags(flags: readonly string[]): Buffer {
  const b = untagged(DEFAULT_OPTIONS).atom('FLAGS ');
  atomList(b, flags.map(checkFlag));
  return b.crlf().bytes();
}

/** `* <n> EXISTS` (RFC 9051 §7.4.1). */
export function serializeExists(count: number): Buffer {
  return Buffer.from(`* ${count} EXISTS\r\n`, 'latin1');
}

/** `* <n> RECENT` (RFC 3501 §7.3.2; IMAP4rev1 clients only). */
export function serializeRecent(count: number): Buffer {
  return Buffer.from(`* ${count} RECENT\r\n`, 'latin1');
}

/** `* <seq> EXPUNGE` (RFC 9051 §7.5.1). */
export function serializeExpunge(sequenceNumber: number): Buffer {
  if (sequenceNumber < 1) throw new RangeError('EXPUNGE needs a sequence number >= 1');
  return Buffer.from(`* ${sequenceNumber} EXPUNGE\r\n`, 'latin1');
}

/** `* VANISHED [(EARLIER)] <uid-set>` (RFC 7162 §3.2.10). */
export function serializeVanished(uids: readonly ResolvedRange[], earlier: boolean): Buffer {
  return Buffer.from(`* VANISHED ${earlier ? '(EARLIER) ' : ''}${formatRanges(uids)}\r\n`, 'latin1');
}

/** Extended data items after a LIST response (RFC 5258 §3.5, RFC 9051 §7.3.1). */
export type ListExtendedItem =
  | { readonly item: 'CHILDINFO'; readonly options: readonly string[] }
  | { readonly item: 'OLDNAME'; readonly name: string };

export interface ListResponse {
  readonly kind: 'LIST' | 'LSUB';
  /** Name attributes: `\HasChildren`, `\Noselect`, `\Subscribed`, `\Sent`, ... */
  readonly attributes: readonly string[];
  /** Hierarchy delimiter, or null for a flat namespace (NIL). */
  readonly delimiter: string | null;
  /** The mailbox name, decoded (it is encoded here per the string options). */
  readonly name: string;
  readonly extended?: readonly ListExtendedItem[];
}

/** `* LIST (\HasNoChildren) "/" INBOX` (RFC 9051 §7.3.1). */
export function serializeList(response: ListResponse, options: StringOptions = DEFAULT_OPTIONS): Buffer {
  const b = untagged(options).atom(response.kind).sp();
  atomList(b, response.attributes.map(checkFlag));
  b.sp();
  if (response.delimiter === null) b.nil();
  else b.string(response.delimiter);
  b.sp();
  writeMailbox(b, response.name);
  const extended = response.extended ?? [];
  if (extended.length > 0) {
    b.text(' (');
    extended.forEach((item, i) => {
      if (i > 0) b.sp();
      switch (item.item) {
        case 'CHILDINFO':
          b.text('"CHILDINFO" (');
          item.options.forEach((o, k) => {
            if (k > 0) b.sp();
            b.string(o);
          });
          b.text(')');
          break;
        case 'OLDNAME':
          b.text('"OLDNAME" (');
          writeMailbox(b, item.name);
          b.text(')');
          break;
      }
    });
    b.text(')');
  }
  return b.crlf().bytes();
}

/** A mailbox name as `mailbox` (RFC 9051 §9): modified UTF-7 unless UTF-8 is enabled. */
export function writeMailbox(b: ResponseBuilder, name: string): void {
  b.astring(encodeMailboxName(name, b.options.utf8));
}

export type StatusValues = Partial<Record<Exclude<StatusItem, 'MAILBOXID'>, number | bigint>> & {
  /** RFC 8474 §4.2: `MAILBOXID (<objectid>)`. */
  readonly MAILBOXID?: string;
};

/** `* STATUS "name" (MESSAGES 2 UIDNEXT 5)` (RFC 9051 §7.2.4), items in the given order. */
export function serializeStatusData(
  mailbox: string,
  values: StatusValues,
  options: StringOptions = DEFAULT_OPTIONS,
): Buffer {
  const b = untagged(options).atom('STATUS').sp();
  writeMailbox(b, mailbox);
  b.text(' (');
  let first = true;
  for (const [item, value] of Object.entries(values)) {
    if (value === undefined) continue;
    if (!first) b.sp();
    first = false;
    if (typeof value === 'string') b.atom(item).text(' (').atom(value).text(')');
    else b.atom(item).sp().number(value);
  }
  return b.text(')').crlf().bytes();
}

/** `* SEARCH 2 3 6` (RFC 3501 §7.2.5), with `(MODSEQ n)` when CONDSTORE asks (RFC 7162 §3.1.5). */
export function serializeSearch(numbers: readonly number[], highestModseq: bigint | null = null): Buffer {
  let line = '* SEARCH';
  for (const n of numbers) line += ` ${n}`;
  if (highestModseq !== null && numbers.length > 0) line += ` (MODSEQ ${highestModseq})`;
  return Buffer.from(line + '\r\n', 'latin1');
}

export interface EsearchResult {
  /** The tag of the SEARCH command this answers (RFC 4731 §3.1 search-correlator). */
  readonly tag: string;
  readonly uid: boolean;
  readonly min?: number;
  readonly max?: number;
  readonly count?: number;
  /** The matching numbers, written as a compact set. */
  readonly all?: readonly number[];
  /** RFC 7162 §3.1.5 */
  readonly modseq?: bigint;
  /**
   * ESORT (RFC 5267 §3.2): ALL lists the numbers in the given (sort) order, with ranges only
   * for ascending consecutive runs.
   */
  readonly ordered?: boolean;
}

/** `* ESEARCH (TAG "A1") UID MIN 2 COUNT 3 ALL 2,10:11` (RFC 9051 §7.3.4, RFC 4731 §3.1). */
export function serializeEsearch(result: EsearchResult): Buffer {
  const b = untagged(DEFAULT_OPTIONS).atom('ESEARCH (TAG ').string(result.tag).text(')');
  if (result.uid) b.text(' UID');
  if (result.min !== undefined) b.text(` MIN ${result.min}`);
  if (result.max !== undefined) b.text(` MAX ${result.max}`);
  if (result.count !== undefined) b.text(` COUNT ${result.count}`);
  // RFC 4731 §3.1: ALL is omitted when nothing matched.
  if (result.all !== undefined && result.all.length > 0) {
    b.text(
      ` ALL ${result.ordered === true ? formatRanges(orderedRuns(result.all)) : formatNumberSet(result.all)}`,
    );
  }
  if (result.modseq !== undefined) b.text(` MODSEQ ${result.modseq}`);
  return b.crlf().bytes();
}

/** `* ID ("name" "Postmesh")` or `* ID NIL` (RFC 2971 §3.2). */
export function serializeId(params: readonly (readonly [string, string | null])[] | null): Buffer {
  const b = untagged(DEFAULT_OPTIONS).atom('ID ');
  if (params === null || params.length === 0) return b.nil().crlf().bytes();
  b.text('(');
  params.forEach(([field, value], i) => {
    if (i > 0) b.sp();
    b.string(field).sp().nstring(value);
  });
  return b.text(')').crlf().bytes();
}

export interface NamespaceDescriptor {
  readonly prefix: string;
  readonly delimiter: string | null;
}

/** `* NAMESPACE (("" "/")) NIL NIL` (RFC 9051 §7.3.3, RFC 2342 §5). */
export function serializeNamespace(
  personal: readonly NamespaceDescriptor[],
  otherUsers: readonly NamespaceDescriptor[],
  shared: readonly NamespaceDescriptor[],
  options: StringOptions = DEFAULT_OPTIONS,
): Buffer {
  const b = untagged(options).atom('NAMESPACE');
  for (const group of [personal, otherUsers, shared]) {
    b.sp();
    if (group.length === 0) {
      b.nil();
      continue;
    }
    b.text('(');
    for (const ns of group) {
      b.text('(').string(encodeMailboxName(ns.prefix, options.utf8)).sp();
      if (ns.delimiter === null) b.nil();
      else b.string(ns.delimiter);
      b.text(')');
    }
    b.text(')');
  }
  return b.crlf().bytes();
}

/** Consecutive ascending runs of a list kept in its order (`3 4 5 1` → `3:5,1`). */
function orderedRuns(numbers: readonly number[]): ResolvedRange[] {
  const out: [number, number][] = [];
  for (const n of numbers) {
    const last = out[out.length - 1];
    if (last !== undefined && last[1] + 1 === n) last[1] = n;
    else out.push([n, n]);
  }
  return out;
}

/** `* SORT 2 3 1` (RFC 5256 §4). */
export function serializeSort(numbers: readonly number[], highestModseq: bigint | null = null): Buffer {
  // RFC 7162 §7 sort-data: `(MODSEQ n)` ends a non-empty result when the search used MODSEQ.
  const modseq = highestModseq !== null && numbers.length > 0 ? ` (MODSEQ ${highestModseq})` : '';
  return Buffer.from(`* SORT${numbers.map((n) => ` ${n}`).join('')}${modseq}\r\n`, 'latin1');
}

/** A thread: a message (0 for a dummy parent the client does not see) and its children. */
export interface ThreadNode {
  readonly id: number;
  readonly children: readonly ThreadNode[];
}

/**
 * `* THREAD (2)(3 6 (4 23)(44 7 96))` (RFC 5256 §4): a chain of single children is written as a
 * list of numbers; siblings are parenthesized threads; a dummy parent is left out, its
 * children written as siblings.
 */
export function serializeThread(threads: readonly ThreadNode[]): Buffer {
  let text = '* THREAD';
  for (const root of threads) text += `(${threadBody(root)})`;
  if (threads.length > 0) text = text.replace('* THREAD(', '* THREAD (');
  return Buffer.from(text + '\r\n', 'latin1');
}

function threadBody(node: ThreadNode): string {
  const parts: string[] = [];
  let current: ThreadNode | undefined = node;
  while (current !== undefined) {
    if (current.id !== 0) parts.push(String(current.id));
    const children: readonly ThreadNode[] = current.children;
    if (children.length === 1 && current.id !== 0) {
      current = children[0];
      continue;
    }
    if (children.length > 0) parts.push(children.map((child) => `(${threadBody(child)})`).join(''));
    current = undefined;
  }
  return parts.join(' ');
}

/** One resource of a QUOTA response (RFC 9208 §5: STORAGE in units of 1024 octets). */
export interface QuotaResource {
  readonly name: string;
  readonly usage: number;
  readonly limit: number;
}

/** `* QUOTA "" (STORAGE 10 512)` (RFC 9208 §7.1). */
export function serializeQuota(root: string, resources: readonly QuotaResource[]): Buffer {
  const b = untagged(DEFAULT_OPTIONS).atom('QUOTA ').string(root).text(' (');
  b.text(resources.map((r) => `${r.name} ${r.usage} ${r.limit}`).join(' '));
  return b.text(')').crlf().bytes();
}

/** `* QUOTAROOT INBOX ""` (RFC 9208 §7.2). */
export function serializeQuotaRoot(
  mailbox: string,
  roots: readonly string[],
  options: StringOptions = DEFAULT_OPTIONS,
): Buffer {
  const b = untagged(options).atom('QUOTAROOT ');
  writeMailbox(b, mailbox);
  for (const root of roots) b.sp().string(root);
  return b.crlf().bytes();
}
