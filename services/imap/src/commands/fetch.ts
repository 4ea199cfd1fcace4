/**
 * FETCH and UID FETCH — RFC 9051 §6.4.5, §6.4.9, §7.5.2 (FLAGS, INTERNALDATE, RFC822.SIZE,
 * ENVELOPE, BODY, BODYSTRUCTURE, BODY[section]<partial>, BODY.PEEK, UID, MODSEQ), BINARY[],
 * BINARY.PEEK[] and BINARY.SIZE[] (RFC 3516 §4.2), RFC822 / RFC822.HEADER / RFC822.TEXT
 * (RFC 3501 §6.4.5). A non-PEEK body fetch sets \Seen (§6.4.5) unless the mailbox is read-only.
 *
 * Fast path (issue item 5): metadata for the whole set comes from one streamed FetchMessages
 * call, processed in batches; \Seen for a batch is one StoreFlags call; header-only sections are
 * cut from the batched raw header. Only real body sections need one GetMessageContent stream
 * per message, and those bytes are piped to the socket without being buffered.
 */
import { mailstore } from '@postmesh/contracts';
import { selectHeaderFields, type BodyPart } from '@postmesh/mime';
import {
  ResponseBuilder,
  formatSection,
  serializeFetch,
  writeFetch,
  serializeVanished,
  type FetchAttribute,
  type FetchItem,
  type LiteralData,
  type OutputChunk,
  type Section,
  type StatusResponse,
} from '@postmesh/imap-protocol';
import { isNotFound, isPermissionDenied } from '../errors.js';
import { PREVIEW_OCTETS, previewSource, previewText } from '../preview.js';
import { announceKeywords, imapFlags } from '../flags.js';
import { StorageError, ErrorReason } from '../storage.js';
import type { SelectedMailbox } from '../state.js';
import type { CommandContext, CommandOf, Handler } from './context.js';
import {
  msnOutOfRange,
  resolveUids,
  selectedOf,
  toRanges,
  toUidSet,
  uidSetOf,
  vanishedUids,
} from './selection.js';
import { enableCondstore } from '../condstore.js';
import { envelopeCache } from '../envelope-cache.js';

const BATCH = 256;
/** Messages whose body sections are requested ahead of the one being written. */
const LOOKAHEAD = 4;

type FetchCommand = CommandOf<'FETCH'>;

interface Plan {
  readonly attributes: readonly FetchAttribute[];
  readonly fields: mailstore.FetchField[];
  /** Some attribute sets \Seen. */
  readonly setsSeen: boolean;
}

function plan(command: FetchCommand, readOnly: boolean): Plan {
  const attributes: FetchAttribute[] = [...command.attributes];
  // RFC 9051 §6.4.9: UID FETCH always returns UID.
  if (command.uid && !attributes.some((a) => a.kind === 'UID')) attributes.unshift({ kind: 'UID' });
  const fields = new Set<mailstore.FetchField>();
  let setsSeen = false;
  for (const a of attributes) {
    switch (a.kind) {
      case 'ENVELOPE':
        fields.add(mailstore.FetchField.ENVELOPE);
        break;
      case 'BODY':
      case 'BODYSTRUCTURE':
      case 'PREVIEW':
        fields.add(mailstore.FetchField.BODYSTRUCTURE);
        break;
      case 'RFC822.HEADER':
        fields.add(mailstore.FetchField.HEADER);
        break;
      case 'EMAILID':
      case 'THREADID':
        fields.add(mailstore.FetchField.OBJECT_IDS);
        break;
      case 'RFC822':
      case 'RFC822.TEXT':
        setsSeen = true;
        break;
      case 'BODY[]':
        if (headerOnly(a.section)) fields.add(mailstore.FetchField.HEADER);
        if (!a.peek) setsSeen = true;
        break;
      case 'BINARY[]':
        if (!a.peek) setsSeen = true;
        break;
      default:
        break;
    }
  }
  return { attributes, fields: [...fields], setsSeen: setsSeen && !readOnly };
}

/**
 * Whether the answer needs nothing of the messages but their bodies: no flags, dates, sizes,
 * envelope or structure, and no implicit \Seen (whose FLAGS response needs the flags). Then the
 * metadata call is skipped and each body read is the only storage call per message (the common
 * "fetch this message" command). A message expunged meanwhile is omitted either way: its body
 * read answers NOT_FOUND (RFC 9051 §6.4.5 lets the server leave it out).
 */
function bodiesOnly(p: Plan, changedSince: bigint | number | null): boolean {
  if (p.fields.length > 0 || p.setsSeen || changedSince !== null) return false;
  // `FETCH n (UID)` alone still asks storage, which leaves out what another session expunged.
  if (p.attributes.every((a) => a.kind === 'UID')) return false;
  return p.attributes.every(
    (a) =>
      a.kind === 'UID' ||
      a.kind === 'RFC822' ||
      a.kind === 'RFC822.TEXT' ||
      a.kind === 'BINARY[]' ||
      a.kind === 'BINARY.SIZE' ||
      (a.kind === 'BODY[]' && !headerOnly(a.section)),
  );
}

/** The set's UIDs as metadata with only the UID, in order (for `bodiesOnly` fetches). */
function* uidsOnly(uids: readonly number[]): Generator<readonly mailstore.MessageMetadata[]> {
  yield uids.map((uid) => mailstore.MessageMetadata.fromPartial({ uid }));
}

function headerOnly(section: Section): boolean {
  return (
    section.part.length === 0 &&
    (section.text.kind === 'HEADER' ||
      section.text.kind === 'HEADER.FIELDS' ||
      section.text.kind === 'HEADER.FIELDS.NOT')
  );
}

/**
 * RFC 9051 §6.4.5 HEADER.FIELDS / HEADER.FIELDS.NOT: the matching (or non-matching) fields of a
 * header block, as they appear, followed by the blank line. One implementation with the MIME
 * library's section resolver (it takes bare-LF line ends as well as CRLF).
 */
export function filterHeader(header: Buffer, names: readonly string[], exclude: boolean): Buffer {
  const selected = selectHeaderFields(header, names, exclude);
  return Buffer.from(selected.buffer, selected.byteOffset, selected.byteLength);
}

function slice(data: Buffer, partial: { origin: number; length: number } | null): Buffer {
  if (partial === null) return data;
  return data.subarray(
    Math.min(partial.origin, data.length),
    Math.min(partial.origin + partial.length, data.length),
  );
}

/** Open content streams, closed if the message turns out to be gone. */
type Opened = { chunks: AsyncGenerator<Buffer, void> };

async function content(
  ctx: CommandContext,
  userId: string,
  mailbox: SelectedMailbox,
  uid: number,
  section: string,
  partial: { origin: number; length: number } | null,
  decode: boolean,
  opened: Opened[],
): Promise<{
  info: mailstore.ContentInfo;
  data: { kind: 'stream'; size: number; source: AsyncIterable<Uint8Array> };
}> {
  const { info, chunks } = await ctx.services.mailstore.getMessageContent({
    userId,
    mailboxId: mailbox.id,
    uid,
    section,
    partial: partial === null ? undefined : { offset: partial.origin, length: partial.length },
    decodeTransferEncoding: decode,
  });
  opened.push({ chunks });
  return { info, data: { kind: 'stream', size: info.size, source: chunks } };
}

/**
 * RFC 9051 §7.5.2: `BODY[section]` is an nstring; a part the message does not have is NIL (not a
 * missing FETCH response, which a client would take for an expunged message).
 */
async function sectionOrNil(read: ReturnType<typeof content>): Promise<LiteralData | null> {
  try {
    return (await read).data;
  } catch (error) {
    if (
      error instanceof StorageError &&
      error.reason === ErrorReason.NOT_FOUND &&
      error.field === 'section'
    ) {
      return null;
    }
    throw error;
  }
}

/**
 * The item of an attribute answered from the message's metadata alone (no content read), or
 * undefined when the attribute needs the message's content.
 */
function metadataItem(
  ctx: CommandContext,
  a: FetchAttribute,
  message: mailstore.MessageMetadata,
  recent: boolean,
): FetchItem | undefined {
  switch (a.kind) {
    case 'UID':
      return { item: 'UID', uid: message.uid };
    case 'FLAGS':
      return { item: 'FLAGS', flags: imapFlags(message.flags, message.keywords, recent) };
    case 'INTERNALDATE':
      return { item: 'INTERNALDATE', date: message.internalDate ?? new Date(0) };
    case 'RFC822.SIZE':
      return { item: 'RFC822.SIZE', size: message.size };
    case 'MODSEQ':
      return { item: 'MODSEQ', modseq: message.modseq };
    case 'EMAILID':
      return { item: 'EMAILID', id: message.emailId };
    case 'THREADID':
      // RFC 8474 §5.2: every message has a thread here (possibly of its own), so never NIL.
      return { item: 'THREADID', id: message.threadId };
    case 'ENVELOPE':
      return { item: 'ENVELOPE', serialized: envelopeCache.serialized(message.envelopeJson, ctx.utf8) };
    case 'BODYSTRUCTURE':
    case 'BODY':
      return { item: a.kind, body: JSON.parse(message.bodystructureJson) as BodyPart };
    case 'RFC822.HEADER':
      return { item: 'RFC822.HEADER', data: message.header };
    case 'BODY[]': {
      if (!headerOnly(a.section)) return undefined;
      const text = a.section.text;
      const whole =
        text.kind === 'HEADER.FIELDS' || text.kind === 'HEADER.FIELDS.NOT'
          ? filterHeader(message.header, text.fields, text.kind === 'HEADER.FIELDS.NOT')
          : message.header;
      return {
        item: 'BODY[]',
        section: a.section,
        origin: a.partial?.origin ?? null,
        data: slice(whole, a.partial),
      };
    }
    default:
      return undefined;
  }
}

/** Whether every attribute is answered from metadata (then a message needs no content read). */
function metadataOnly(attributes: readonly FetchAttribute[]): boolean {
  return attributes.every((a) => {
    switch (a.kind) {
      case 'RFC822':
      case 'RFC822.TEXT':
      case 'BINARY[]':
      case 'BINARY.SIZE':
      case 'PREVIEW':
        return false;
      case 'BODY[]':
        return headerOnly(a.section);
      default:
        return true;
    }
  });
}

async function itemsFor(
  ctx: CommandContext,
  userId: string,
  mailbox: SelectedMailbox,
  attributes: readonly FetchAttribute[],
  message: mailstore.MessageMetadata,
  opened: Opened[],
): Promise<FetchItem[]> {
  const items: FetchItem[] = [];
  const uid = message.uid;
  const recent = !ctx.rev2 && mailbox.recent.has(uid);
  for (const a of attributes) {
    const known = metadataItem(ctx, a, message, recent);
    if (known !== undefined) {
      items.push(known);
      continue;
    }
    switch (a.kind) {
      case 'RFC822':
      case 'RFC822.TEXT': {
        const { data } = await content(
          ctx,
          userId,
          mailbox,
          uid,
          a.kind === 'RFC822' ? '' : 'TEXT',
          null,
          false,
          opened,
        );
        items.push({ item: a.kind, data });
        break;
      }
      case 'BODY[]': {
        const origin = a.partial?.origin ?? null;
        const data = await sectionOrNil(
          content(ctx, userId, mailbox, uid, formatSection(a.section), a.partial, false, opened),
        );
        items.push({ item: 'BODY[]', section: a.section, origin, data });
        break;
      }
      case 'BINARY[]': {
        const { info, data } = await content(
          ctx,
          userId,
          mailbox,
          uid,
          a.part.join('.'),
          a.partial,
          true,
          opened,
        );
        items.push({
          item: 'BINARY[]',
          part: a.part,
          origin: a.partial?.origin ?? null,
          data,
          hasNul: info.containsNul,
        });
        break;
      }
      case 'PREVIEW':
        items.push({
          item: 'PREVIEW',
          text: await preview(ctx, userId, mailbox, uid, JSON.parse(message.bodystructureJson) as BodyPart),
        });
        break;
      case 'BINARY.SIZE': {
        const { info } = await content(ctx, userId, mailbox, uid, a.part.join('.'), null, true, opened);
        const last = opened.pop();
        await last?.chunks.return();
        items.push({ item: 'BINARY.SIZE', part: a.part, size: info.sectionSize });
        break;
      }
      default:
        break; // answered from metadata above
    }
  }
  return items;
}

export const fetch: Handler<FetchCommand> = async (ctx, command) => {
  const { user, mailbox } = selectedOf(ctx);
  if (msnOutOfRange(mailbox, command.set, command.uid)) {
    return { tag: command.tag, condition: 'BAD', text: 'Invalid message sequence number' };
  }
  // RFC 7162 §3.2.6: the VANISHED modifier needs QRESYNC enabled first.
  if (command.vanished && !ctx.qresync) {
    return { tag: command.tag, condition: 'BAD', text: 'VANISHED requires ENABLE QRESYNC' };
  }
  // RFC 7162 §3.1: FETCH naming MODSEQ (CHANGEDSINCE implies it) is a CONDSTORE enabling command.
  if (command.attributes.some((a) => a.kind === 'MODSEQ')) await enableCondstore(ctx);
  const uids = resolveUids(mailbox, command.set, command.uid);
  const p = plan(command, mailbox.readOnly);
  if (command.vanished && command.changedSince !== null) {
    await sendVanishedEarlier(ctx, user.id, mailbox, command.set, Number(command.changedSince));
  }
  if (uids.length === 0) return done(command);
  const stream = bodiesOnly(p, command.changedSince)
    ? uidsOnly(uids)
    : ctx.services.mailstore.fetchMessageBatches({
        userId: user.id,
        mailboxId: mailbox.id,
        uids: toUidSet(uids),
        changedSince: command.changedSince === null ? undefined : Number(command.changedSince),
        fields: p.fields,
      });
  let batch: mailstore.MessageMetadata[] = [];
  // The session holds a command's output and writes it in large pieces (session.ts).
  const respond = (chunks: readonly OutputChunk[]): Promise<void> => ctx.send(chunks);
  const fromMetadata = metadataOnly(p.attributes);
  const flush = async (): Promise<void> => {
    const nowSeen = p.setsSeen ? await markSeen(ctx, user.id, mailbox, batch) : new Set<number>();
    /** What setting \Seen adds to one message's items. */
    const addSeen = (message: mailstore.MessageMetadata, items: FetchItem[]): void => {
      if (!nowSeen.has(message.uid)) return;
      if (!items.some((i) => i.item === 'FLAGS')) {
        // RFC 9051 §6.4.5: the changed flags are reported with the data that set \Seen.
        const recent = !ctx.rev2 && mailbox.recent.has(message.uid);
        items.push({ item: 'FLAGS', flags: imapFlags(message.flags, message.keywords, recent) });
      }
      if (ctx.condstore) addUidAndModseq(items, message);
    };
    /** RFC 9051 §7.3.5: a keyword shown for the first time is announced in `* FLAGS` first. */
    const announcements = (message: mailstore.MessageMetadata, items: FetchItem[]): Uint8Array[] =>
      items.some((i) => i.item === 'FLAGS') ? announceKeywords(mailbox, message.keywords) : [];
    /** One message's responses, with what setting \Seen and new keywords add. */
    const answer = (message: mailstore.MessageMetadata, items: FetchItem[]): OutputChunk[] => {
      addSeen(message, items);
      const fetched = serializeFetch(mailbox.map.msnOf(message.uid), items, { utf8: ctx.utf8 });
      const announce = announcements(message, items);
      return announce.length === 0 ? fetched : [...announce, ...fetched];
    };
    if (fromMetadata) {
      // Nothing to read per message: the batch's answers are built at once, into one builder,
      // and sent together.
      const out = new ResponseBuilder({ utf8: ctx.utf8 });
      for (const message of batch) {
        const msn = mailbox.map.msnOf(message.uid);
        if (msn === 0) continue;
        const recent = !ctx.rev2 && mailbox.recent.has(message.uid);
        const items: FetchItem[] = [];
        for (const a of p.attributes) items.push(metadataItem(ctx, a, message, recent)!);
        addSeen(message, items);
        for (const announced of announcements(message, items)) out.raw(announced);
        writeFetch(out, msn, items);
      }
      batch = [];
      await respond(out.chunks());
      return;
    }
    // Body streams of the next few messages are opened while the current one is written, so
    // storage latency overlaps with output (bounded: LOOKAHEAD open streams at most).
    type Prepared = { message: mailstore.MessageMetadata; opened: Opened[]; result: Promise<FetchItem[]> };
    const pending: Prepared[] = [];
    let next = 0;
    const prepare = (): void => {
      while (pending.length < LOOKAHEAD && next < batch.length) {
        const message = batch[next++]!;
        if (mailbox.map.msnOf(message.uid) === 0) continue;
        const opened: Opened[] = [];
        const result = itemsFor(ctx, user.id, mailbox, p.attributes, message, opened);
        result.catch(() => undefined); // handled when its turn comes
        pending.push({ message, opened, result });
      }
    };
    const abandon = async (): Promise<void> => {
      for (const item of pending.splice(0)) {
        await item.result.catch(() => undefined);
        for (const o of item.opened) await o.chunks.return();
      }
    };
    try {
      for (prepare(); pending.length > 0; prepare()) {
        const { message, opened, result } = pending.shift()!;
        let items: FetchItem[];
        try {
          items = await result;
        } catch (error) {
          for (const o of opened) await o.chunks.return();
          // Expunged by another session meanwhile: RFC 9051 §6.4.5 lets the server omit it.
          if (isNotFound(error)) continue;
          if (error instanceof StorageError && error.reason === ErrorReason.INVALID_ARGUMENT) {
            throw new UnknownCte(error.message, { cause: error });
          }
          throw error;
        }
        await respond(answer(message, items));
      }
    } finally {
      await abandon();
    }
    batch = [];
  };
  try {
    // Storage's batches (one loop step each, not one per message), cut to BATCH for the answer.
    for await (const messages of stream) {
      for (const message of messages) {
        batch.push(message);
        if (batch.length >= BATCH) await flush();
      }
    }
    await flush();
  } catch (error) {
    if (error instanceof UnknownCte) {
      return {
        tag: command.tag,
        condition: 'NO',
        code: { code: 'UNKNOWN-CTE' },
        text: 'Cannot decode this part',
      };
    }
    throw error;
  }
  return done(command);
};

/**
 * RFC 7162 §3.2.6: `UID FETCH <set> (...) (CHANGEDSINCE n VANISHED)` first reports, as
 * `* VANISHED (EARLIER)`, the UIDs of the set expunged since mod-sequence n. UIDs the session
 * still has are left out: their expunge is announced by the next mailbox update.
 */
async function sendVanishedEarlier(
  ctx: CommandContext,
  userId: string,
  mailbox: SelectedMailbox,
  set: FetchCommand['set'],
  sinceModseq: number,
): Promise<void> {
  const changes = await ctx.services.mailstore.getChanges({
    userId,
    mailboxId: mailbox.id,
    sinceModseq,
    uidValidity: mailbox.uidValidity,
    knownUids: uidSetOf(set, mailbox),
  });
  const gone = vanishedUids(changes.vanished, mailbox);
  if (gone.length > 0) await ctx.send(serializeVanished(toRanges(gone), true));
}

/**
 * RFC 8970: the preview of one message, from the first octets of its text part decoded from
 * the transfer encoding (PREVIEW never sets \Seen). Computed when asked, so LAZY changes nothing.
 */
async function preview(
  ctx: CommandContext,
  userId: string,
  mailbox: SelectedMailbox,
  uid: number,
  body: BodyPart,
): Promise<string> {
  const source = previewSource(body);
  if (source === null) return '';
  const { chunks } = await ctx.services.mailstore.getMessageContent({
    userId,
    mailboxId: mailbox.id,
    uid,
    section: source.section,
    partial: { offset: 0, length: PREVIEW_OCTETS },
    decodeTransferEncoding: true,
  });
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return previewText(Buffer.concat(parts), source);
}

class UnknownCte extends Error {
  override readonly name = 'UnknownCte';
}

function done(command: FetchCommand): StatusResponse {
  return { tag: command.tag, condition: 'OK', text: `${command.uid ? 'UID ' : ''}FETCH completed` };
}

/**
 * RFC 7162 §3.1: once CONDSTORE is enabled, a FETCH response that reports flags the command
 * changed (an implicit \Seen) carries UID and MODSEQ.
 */
function addUidAndModseq(items: FetchItem[], message: mailstore.MessageMetadata): void {
  if (!items.some((i) => i.item === 'UID')) items.unshift({ item: 'UID', uid: message.uid });
  if (!items.some((i) => i.item === 'MODSEQ')) items.push({ item: 'MODSEQ', modseq: message.modseq });
}

/** Sets \Seen on the batch's unseen messages in one call and updates the metadata to match. */
async function markSeen(
  ctx: CommandContext,
  userId: string,
  mailbox: SelectedMailbox,
  batch: mailstore.MessageMetadata[],
): Promise<Set<number>> {
  const unseen = batch.filter((m) => !m.flags.includes(mailstore.Flag.SEEN)).map((m) => m.uid);
  if (unseen.length === 0) return new Set();
  let result: mailstore.StoreFlagsResponse;
  try {
    result = await ctx.services.mailstore.storeFlags({
      userId,
      mailboxId: mailbox.id,
      uids: toUidSet(unseen),
      mode: mailstore.StoreMode.ADD,
      flags: [mailstore.Flag.SEEN],
      keywords: [],
      unchangedSince: undefined,
    });
  } catch (error) {
    // RFC 4314 §4: without "s" on a shared mailbox, FETCH MUST NOT set \Seen (and still succeeds).
    if (isPermissionDenied(error)) return new Set();
    throw error;
  }
  const changed = new Map(result.changed.map((c) => [c.uid, c]));
  for (let i = 0; i < batch.length; i++) {
    const message = batch[i]!;
    const after = changed.get(message.uid);
    if (after === undefined) continue;
    batch[i] = { ...message, flags: after.flags, keywords: after.keywords, modseq: after.modseq };
    mailbox.map.setModseq(message.uid, after.modseq);
  }
  return new Set(changed.keys());
}
