/**
 * Runs a validated program against one message (RFC 5228 §2.10 action semantics, §4 actions,
 * §5 tests; RFC 5232 imap4flags; RFC 5230 vacation; RFC 5429 reject/ereject; RFC 3894 :copy;
 * RFC 5173 body). Pure: the message comes in through a small interface, actions come out as
 * values, and the delivery agent carries them out. A run is bounded by a step budget and limits
 * on actions and redirects; exceeding one is a runtime error, after which RFC 5228 §2.10.6
 * asks for the implicit keep.
 */
import { decodeEncodedWords, parseAddressList } from '@postmesh/mime';
import { matchAny, SieveRuntimeError, StepBudget } from './match.js';
import type {
  AddressPart,
  BodyTransform,
  Command,
  Match,
  Program,
  Test,
  VacationCommand,
} from './program.js';

export interface SieveHeaderField {
  readonly name: string;
  /** Unfolded value as it appears in the message (RFC 2047 encoded words are decoded here). */
  readonly value: string;
}

export interface SieveBodyPart {
  /** Lower-case `type/subtype` of a leaf MIME part. */
  readonly contentType: string;
  /** The part decoded to text (transfer encoding and charset); empty for non-text parts. */
  readonly text: string;
}

/** What a script may look at. Body access is lazy: most scripts never read the body. */
export interface SieveMessage {
  readonly headers: readonly SieveHeaderField[];
  readonly size: number;
  /** RFC 5321 reverse-path without angle brackets ("" for the null sender) and the recipient. */
  readonly envelope: { readonly from: string; readonly to: string };
  /** The body after the header section, undecoded (RFC 5173 :raw). */
  rawBody(): string;
  /** Leaf parts decoded (RFC 5173 :content and :text). */
  bodyParts(): readonly SieveBodyPart[];
}

export interface SieveLimits {
  /** Steps of work (tests, actions, character comparisons) one run may spend. */
  readonly maxSteps: number;
  /** Actions one run may produce (keep, fileinto, redirect, reject, vacation, discard). */
  readonly maxActions: number;
  /** Redirects one run may produce (each one sends a message out). */
  readonly maxRedirects: number;
}

export const DEFAULT_LIMITS: SieveLimits = { maxSteps: 100_000, maxActions: 32, maxRedirects: 4 };

/** The vacation action, resolved: RFC 5230 defaults applied, the handle derived when absent. */
export interface VacationAction {
  readonly kind: 'vacation';
  readonly days: number;
  readonly subject: string | null;
  readonly from: string | null;
  readonly addresses: readonly string[];
  readonly mime: boolean;
  /** RFC 5230 §4.2: explicit `:handle`, else derived from the reason and the other arguments. */
  readonly handle: string;
  readonly reason: string;
}

export type SieveAction =
  /** Deliver to INBOX; `implicit` when no action cancelled the implicit keep (RFC 5228 §2.10.2). */
  | { readonly kind: 'keep'; readonly flags: readonly string[]; readonly implicit: boolean }
  | { readonly kind: 'fileinto'; readonly mailbox: string; readonly flags: readonly string[] }
  | { readonly kind: 'redirect'; readonly address: string }
  | { readonly kind: 'discard' }
  | { readonly kind: 'reject' | 'ereject'; readonly reason: string }
  | VacationAction;

export type SieveRunResult =
  | { readonly ok: true; readonly actions: readonly SieveAction[]; readonly steps: number }
  | { readonly ok: false; readonly error: string; readonly steps: number };

/** RFC 5230 §4.1: days defaults to 7; sites bound it (we allow 1 to 365). */
export const VACATION_DEFAULT_DAYS = 7;
export const VACATION_MAX_DAYS = 365;

/** Unwinds the run on `stop` (RFC 5228 §3.3); not an error, caught by {@link runScript}. */
class StopSignal extends Error {
  override readonly name = 'StopSignal';
}

/** RFC 5232 §2: flags are separated by spaces; duplicates collapse case-insensitively. */
export function splitFlags(list: readonly string[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const item of list)
    for (const flag of item.split(' ')) {
      if (flag === '' || seen.has(flag.toLowerCase())) continue;
      seen.add(flag.toLowerCase());
      out.push(flag);
    }
  return out;
}

/**
 * RFC 5232 §2 (and RFC 9051 §2.3.2): a flag must be a system flag other than \Recent or a
 * keyword atom; anything else MUST be ignored when the message is stored.
 */
const SYSTEM_FLAGS = new Set(['\\seen', '\\answered', '\\flagged', '\\deleted', '\\draft']);
export function isStorableFlag(flag: string): boolean {
  if (flag.startsWith('\\')) return SYSTEM_FLAGS.has(flag.toLowerCase());
  return /^[\x21\x23-\x24\x26-\x27\x2b-\x5a\x5e-\x7a\x7c\x7e]+$/.test(flag) && flag.length <= 128;
}

export function runScript(
  program: Program,
  message: SieveMessage,
  limits: SieveLimits = DEFAULT_LIMITS,
): SieveRunResult {
  const budget = new StepBudget(limits.maxSteps);
  const run = new Run(message, limits, budget);
  try {
    try {
      run.block(program.commands);
    } catch (e) {
      if (!(e instanceof StopSignal)) throw e;
    }
    return { ok: true, actions: run.finish(), steps: budget.used };
  } catch (e) {
    if (e instanceof SieveRuntimeError) return { ok: false, error: e.message, steps: budget.used };
    throw e;
  }
}

class Run {
  private flags: string[] = [];
  private implicitKeep = true;
  private readonly actions: SieveAction[] = [];
  private redirects = 0;
  private decodedHeaders: Map<string, string[]> | null = null;
  private bodyCache: { raw?: string; parts?: readonly SieveBodyPart[] } = {};

  constructor(
    private readonly message: SieveMessage,
    private readonly limits: SieveLimits,
    private readonly budget: StepBudget,
  ) {}

  block(commands: readonly Command[]): void {
    for (const command of commands) this.command(command);
  }

  finish(): SieveAction[] {
    // RFC 5228 §2.10.2: with no cancelling action the message is kept; RFC 5232 §3 gives it
    // the flags of the internal variable as it stands at the end of the script.
    if (this.implicitKeep) this.add({ kind: 'keep', flags: this.storable(this.flags), implicit: true });
    return this.actions;
  }

  private storable(flags: readonly string[]): string[] {
    return flags.filter(isStorableFlag);
  }

  private command(c: Command): void {
    this.budget.spend(1);
    switch (c.kind) {
      case 'if':
        for (const branch of c.branches)
          if (branch.test === null || this.test(branch.test)) {
            this.block(branch.block);
            return;
          }
        return;
      case 'stop':
        throw new StopSignal();
      case 'keep':
        this.add({
          kind: 'keep',
          flags: this.storable(c.flags === null ? this.flags : splitFlags(c.flags)),
          implicit: false,
        });
        this.implicitKeep = false;
        return;
      case 'discard':
        this.implicitKeep = false;
        if (!this.actions.some((a) => a.kind === 'discard')) this.add({ kind: 'discard' });
        return;
      case 'fileinto':
        this.add({
          kind: 'fileinto',
          mailbox: c.mailbox,
          flags: this.storable(c.flags === null ? this.flags : splitFlags(c.flags)),
        });
        // RFC 3894 §3: with :copy the implicit keep is not cancelled.
        if (!c.copy) this.implicitKeep = false;
        return;
      case 'redirect':
        if (++this.redirects > this.limits.maxRedirects)
          throw new SieveRuntimeError(`too many redirects (the limit is ${this.limits.maxRedirects})`);
        this.add({ kind: 'redirect', address: c.address });
        if (!c.copy) this.implicitKeep = false;
        return;
      case 'setflag':
        this.flags = splitFlags(c.flags);
        return;
      case 'addflag':
        this.flags = splitFlags([...this.flags, ...c.flags]);
        return;
      case 'removeflag': {
        const drop = new Set(splitFlags(c.flags).map((f) => f.toLowerCase()));
        this.flags = this.flags.filter((f) => !drop.has(f.toLowerCase()));
        return;
      }
      case 'reject':
      case 'ereject':
        this.add({ kind: c.kind, reason: c.reason });
        this.implicitKeep = false;
        return;
      case 'vacation':
        // RFC 5230 §4.7: a script that runs vacation twice MUST fail.
        if (this.actions.some((a) => a.kind === 'vacation'))
          throw new SieveRuntimeError('vacation may run only once per message');
        this.add(resolveVacation(c));
        return;
    }
  }

  private add(action: SieveAction): void {
    this.budget.spend(1);
    // Repeated keeps and fileintos to one mailbox deliver once (RFC 5228 §2.10.3), with the
    // union of their flags.
    const same = this.actions.findIndex(
      (a) =>
        (a.kind === 'keep' && action.kind === 'keep') ||
        (a.kind === 'fileinto' && action.kind === 'fileinto' && a.mailbox === action.mailbox) ||
        (a.kind === 'redirect' &&
          action.kind === 'redirect' &&
          a.address.toLowerCase() === action.address.toLowerCase()),
    );
    if (same >= 0) {
      const prior = this.actions[same] as SieveAction;
      if (
        (prior.kind === 'keep' || prior.kind === 'fileinto') &&
        (action.kind === 'keep' || action.kind === 'fileinto')
      )
        this.actions[same] = {
          ...prior,
          flags: splitFlags([...prior.flags, ...action.flags]),
        };
      if (prior.kind === 'keep' && action.kind === 'keep' && !action.implicit)
        this.actions[same] = { ...(this.actions[same] as SieveAction & { kind: 'keep' }), implicit: false };
      return;
    }
    // RFC 5429 §2.1/§2.2: reject and ereject refuse the message, so they cannot be combined
    // with actions that deliver or answer it (and vacation MUST NOT be combined with them).
    const refusing = (a: SieveAction): boolean => a.kind === 'reject' || a.kind === 'ereject';
    const delivering = (a: SieveAction): boolean =>
      (a.kind === 'keep' && !a.implicit) ||
      a.kind === 'fileinto' ||
      a.kind === 'redirect' ||
      a.kind === 'vacation';
    if (
      (refusing(action) && this.actions.some((a) => refusing(a) || delivering(a))) ||
      (delivering(action) && this.actions.some(refusing))
    )
      throw new SieveRuntimeError(
        `"${action.kind}" cannot be combined with the actions already taken (RFC 5429)`,
      );
    if (this.actions.length >= this.limits.maxActions)
      throw new SieveRuntimeError(`too many actions (the limit is ${this.limits.maxActions})`);
    this.actions.push(action);
  }

  private test(t: Test): boolean {
    this.budget.spend(1);
    switch (t.kind) {
      case 'true':
        return true;
      case 'false':
        return false;
      case 'not':
        return !this.test(t.test);
      case 'allof':
        return t.tests.every((s) => this.test(s));
      case 'anyof':
        return t.tests.some((s) => this.test(s));
      case 'size':
        // RFC 5228 §5.9: :over and :under are strict comparisons.
        return t.over ? this.message.size > t.limit : this.message.size < t.limit;
      case 'exists':
        return t.headers.every((h) => (this.header(h)?.length ?? 0) > 0);
      case 'header':
        return this.match(
          t.headers.flatMap((h) => this.header(h) ?? []),
          t.match,
        );
      case 'address':
        return this.match(
          t.headers.flatMap((h) => (this.header(h) ?? []).flatMap((v) => addressParts(v, t.part))),
          t.match,
        );
      case 'envelope':
        return this.match(
          t.parts.map((p) =>
            partOf(p === 'from' ? this.message.envelope.from : this.message.envelope.to, t.part),
          ),
          t.match,
        );
      case 'hasflag':
        // RFC 5232 §4: true when any flag of the internal variable matches any key; the keys
        // are flag lists themselves.
        return this.match(this.flags, { ...t.match, keys: splitFlags(t.match.keys) });
      case 'body':
        return this.match(this.body(t.transform), t.match);
    }
  }

  private match(values: readonly string[], match: Match): boolean {
    return matchAny(values, match, this.budget);
  }

  /** Decoded values of one header field (RFC 5228 §2.7.2: RFC 2047 words are decoded). */
  private header(name: string): string[] | undefined {
    if (this.decodedHeaders === null) {
      this.decodedHeaders = new Map();
      this.budget.spend(this.message.headers.length);
      for (const h of this.message.headers) {
        const key = h.name.toLowerCase();
        const list = this.decodedHeaders.get(key) ?? [];
        list.push(decodeEncodedWords(h.value));
        this.decodedHeaders.set(key, list);
      }
    }
    return this.decodedHeaders.get(name);
  }

  private body(transform: BodyTransform): string[] {
    switch (transform.kind) {
      case 'raw':
        this.bodyCache.raw ??= this.message.rawBody();
        return [this.bodyCache.raw];
      case 'text':
        // RFC 5173 §5.2: text parts, with markup of text/html removed.
        return this.parts()
          .filter((p) => p.contentType.startsWith('text/'))
          .map((p) => (p.contentType === 'text/html' ? stripMarkup(p.text) : p.text));
      case 'content':
        // RFC 5173 §5.3: "text" selects every text/* part, "text/plain" one subtype, "" all.
        return this.parts()
          .filter((p) =>
            transform.types.some(
              (ty) =>
                ty === '' || (ty.includes('/') ? p.contentType === ty : p.contentType.split('/')[0] === ty),
            ),
          )
          .map((p) => p.text);
    }
  }

  private parts(): readonly SieveBodyPart[] {
    if (this.bodyCache.parts === undefined) {
      this.bodyCache.parts = this.message.bodyParts();
      this.budget.spend(this.bodyCache.parts.length);
    }
    return this.bodyCache.parts;
  }
}

function stripMarkup(html: string): string {
  return html
    .replace(/<(script|style)\b[\s\S]*?<\/\1\s*>/gi, ' ')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&nbsp;/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, '&')
    .replace(/[ \t]{2,}/g, ' ');
}

/** RFC 5228 §2.7.4: the part of an address a test compares. */
function partOf(address: string, part: AddressPart): string {
  const at = address.lastIndexOf('@');
  switch (part) {
    case 'all':
      return address;
    case 'localpart':
      return at < 0 ? address : address.slice(0, at);
    case 'domain':
      return at < 0 ? '' : address.slice(at + 1);
  }
}

function addressParts(value: string, part: AddressPart): string[] {
  const out: string[] = [];
  for (const a of parseAddressList(value)) {
    // Group markers (RFC 5322 §3.4) carry no address.
    if (a.host === null || a.mailbox === null) continue;
    out.push(partOf(a.host === '' ? a.mailbox : `${a.mailbox}@${a.host}`, part));
  }
  return out;
}

function resolveVacation(c: VacationCommand): VacationAction {
  const days = Math.min(Math.max(c.days ?? VACATION_DEFAULT_DAYS, 1), VACATION_MAX_DAYS);
  // RFC 5230 §4.2: without :handle, replies with the same text count as the same vacation.
  const handle = c.handle ?? JSON.stringify([c.reason, c.subject ?? '', c.from ?? '', c.mime]);
  return {
    kind: 'vacation',
    days,
    subject: c.subject,
    from: c.from,
    addresses: c.addresses,
    mime: c.mime,
    handle,
    reason: c.reason,
  };
}
