/**
 * SEARCH (RFC 9051 §6.4.4; RFC 7162 §3.1.5 MODSEQ; RFC 5032 OLDER/YOUNGER) over encrypted
 * messages, in two steps:
 *   1. `prefilterFor` turns the query into a MongoDB filter that keeps every match (flags,
 *      dates, sizes, UIDs and modseq exactly; string keys through the blind trigram index).
 *   2. `matches` decides each candidate exactly, decrypting metadata or search text only when a
 *      string key needs it.
 */
import { ErrorReason, MAX_UID, resolveUidSet, type UidSet } from '@postmesh/contracts';
import type { mailstore } from '@postmesh/contracts';
import {
  decodeEncodedWords,
  parseHeaderBlock,
  type HeaderField,
  type SearchAddress,
  type SearchableHeaders,
} from '@postmesh/mime';
import { ObjectId, type Filter } from 'mongodb';
import { unseal } from './blob-store.js';
import { MailstoreError } from './errors.js';
import { systemFlagName } from './flags.js';
import { sharedMailboxIndex as index, type IndexedMessage, type MessageSummary } from './mailbox-index.js';
import { sharedMessageCache as messageCache } from './message-cache.js';
import { emailIdOf, threadIdOf } from './object-ids.js';
import { TermField, foldForSearch, requiredTrigrams, type TermHasher } from './search-terms.js';
import { BATCH, TEXT_LABEL, searchIdOf } from './store-common.js';
import { StorePart } from './store-part.js';
import type { MessageRecord, SealedMeta, SearchIndexDoc } from './types.js';

type SearchKey = mailstore.SearchKey;
type CalendarDate = mailstore.CalendarDate;
/** Either collection a pre-filter may apply to. */
type Narrowed = MessageRecord | SearchIndexDoc;

const DAY_MS = 86_400_000;

function dayStart(date: CalendarDate, field: string): number {
  const { year, month, day } = date;
  const ms = Date.UTC(year, month - 1, day);
  const check = new Date(ms);
  if (
    !Number.isInteger(year) ||
    check.getUTCFullYear() !== year ||
    check.getUTCMonth() !== month - 1 ||
    check.getUTCDate() !== day
  ) {
    throw new MailstoreError(ErrorReason.INVALID_ARGUMENT, 'not a calendar date', field);
  }
  return ms;
}

function dayNumber(date: CalendarDate): number {
  return date.year * 10_000 + date.month * 100 + date.day;
}

/** The fields of a message the non-string keys test. */
export type SearchDoc = Pick<MessageRecord, 'uid' | 'modseq' | 'flags' | 'size' | 'internalDate' | 'sentDay'>;

/** Everything a string key may need, decrypted on first use. */
export interface SearchSubject {
  readonly doc: SearchDoc;
  /** The message's summary from the mailbox index: its header keys then decrypt nothing. */
  readonly summary?: MessageSummary | undefined;
  meta(): Promise<SealedMeta>;
  headerFields(): Promise<readonly HeaderField[]>;
  bodyText(): Promise<string>;
  /** RFC 8474 EMAILID and THREADID (object-ids.ts). */
  objectIds(): Promise<{ readonly emailId: string; readonly threadId: string }>;
}

export interface SearchContext {
  readonly hasher: TermHasher;
  /**
   * `message`: a filter over `messages` (string keys do not narrow). `index`: a filter over the
   * search index collection (only string keys narrow).
   */
  readonly target: 'message' | 'index';
  /** Highest UID in the mailbox, for `*` (RFC 9051 §9). */
  readonly highestUid: number;
  readonly now: number;
}

function uidFilter(set: UidSet, highestUid: number): Filter<MessageRecord> {
  const intervals = resolveUidSet(set, highestUid);
  if (intervals.length === 0) return { uid: -1 };
  if (intervals.length > 64) {
    return { uid: { $gte: intervals[0]?.[0] ?? 1, $lte: intervals.at(-1)?.[1] ?? 0 } };
  }
  return { $or: intervals.map(([a, b]) => (a === b ? { uid: a } : { uid: { $gte: a, $lte: b } })) };
}

function stringPrefilter(
  ctx: SearchContext,
  fields: readonly TermField[],
  query: string,
): Filter<Narrowed> | null {
  if (ctx.target !== 'index') return null;
  const trigrams = [...requiredTrigrams(query)];
  if (trigrams.length === 0) return null;
  const [only] = fields;
  if (fields.length === 1 && only !== undefined) {
    return {
      $or: [{ terms: { $all: trigrams.map((t) => ctx.hasher.hash(only, t)) } }, { termsComplete: false }],
    };
  }
  return null;
}

/**
 * A filter every match satisfies, or null for "no narrowing". Only conjunctions and
 * disjunctions of narrowable keys narrow; NOT narrows only for flags.
 */
export function prefilterFor(key: SearchKey, ctx: SearchContext, path = 'query'): Filter<Narrowed> | null {
  const message = (filter: Filter<MessageRecord>): Filter<Narrowed> | null =>
    ctx.target === 'message' ? (filter as Filter<Narrowed>) : null;
  const k = key.key;
  if (k === undefined) throw new MailstoreError(ErrorReason.INVALID_ARGUMENT, 'empty search key', path);
  switch (k.$case) {
    case 'all':
      return null;
    case 'uid':
      return message(uidFilter(k.value, ctx.highestUid));
    case 'flag':
      return message({ flags: systemFlagName(k.value, path) });
    case 'keyword':
      return message({ flags: k.value });
    case 'before':
      return message({ internalDate: { $lt: new Date(dayStart(k.value, path)) } });
    case 'on': {
      const start = dayStart(k.value, path);
      return message({ internalDate: { $gte: new Date(start), $lt: new Date(start + DAY_MS) } });
    }
    case 'since':
      return message({ internalDate: { $gte: new Date(dayStart(k.value, path)) } });
    case 'sentBefore':
      dayStart(k.value, path);
      return message({ sentDay: { $lt: dayNumber(k.value) } });
    case 'sentOn':
      dayStart(k.value, path);
      return message({ sentDay: dayNumber(k.value) });
    case 'sentSince':
      dayStart(k.value, path);
      return message({ sentDay: { $gte: dayNumber(k.value) } });
    case 'larger':
      return message({ size: { $gt: k.value } });
    case 'smaller':
      return message({ size: { $lt: k.value } });
    case 'modseq':
      return message({ modseq: { $gte: k.value } });
    case 'olderThanSeconds':
      return message({ internalDate: { $lt: new Date(ctx.now - k.value * 1000) } });
    case 'youngerThanSeconds':
      return message({ internalDate: { $gte: new Date(ctx.now - k.value * 1000) } });
    case 'subject':
      return stringPrefilter(ctx, [TermField.subject], k.value);
    case 'from':
      return stringPrefilter(ctx, [TermField.from], k.value);
    case 'to':
      return stringPrefilter(ctx, [TermField.to], k.value);
    case 'cc':
      return stringPrefilter(ctx, [TermField.cc], k.value);
    case 'bcc':
      return stringPrefilter(ctx, [TermField.bcc], k.value);
    case 'body':
      return stringPrefilter(ctx, [TermField.body], k.value);
    case 'text':
    case 'header':
      // TEXT and HEADER cover header fields the index does not hold: confirmed by scanning.
      return null;
    case 'emailId': {
      // EMAILID is `M` + the body's blob id (object-ids.ts); anything else names no message.
      const hex = /^M([0-9a-f]{24})$/.exec(k.value)?.[1];
      return message(hex === undefined ? { uid: -1 } : { blobId: ObjectId.createFromHexString(hex) });
    }
    case 'threadId':
      return null;
    case 'not': {
      const inner = k.value.key;
      if (inner?.$case === 'flag')
        return message({ flags: { $ne: systemFlagName(inner.value, `${path}.not`) } });
      if (inner?.$case === 'keyword') return message({ flags: { $ne: inner.value } });
      return null;
    }
    case 'and': {
      const parts = k.value.keys
        .map((child, i) => prefilterFor(child, ctx, `${path}.and.keys[${i}]`))
        .filter((f): f is Filter<Narrowed> => f !== null);
      if (parts.length === 0) return null;
      return parts.length === 1 ? (parts[0] ?? null) : { $and: parts };
    }
    case 'or': {
      if (k.value.keys.length === 0) return { uid: -1 };
      const parts = k.value.keys.map((child, i) => prefilterFor(child, ctx, `${path}.or.keys[${i}]`));
      if (parts.some((p) => p === null)) return null;
      return { $or: parts as Filter<Narrowed>[] };
    }
  }
}

function addressText(list: readonly SearchAddress[]): string {
  return list.map((a) => (a.name === null ? `<${a.address}>` : `${a.name} <${a.address}>`)).join(', ');
}

function contains(haystack: string, needle: string): boolean {
  // RFC 9051 §6.4.4: case-insensitive substring match.
  return foldForSearch(haystack).includes(foldedNeedle(needle));
}

let lastNeedle = '';
let lastFolded = '';
/** The folded search string: one query tests the same string against every message. */
function foldedNeedle(needle: string): string {
  if (needle !== lastNeedle) {
    lastFolded = foldForSearch(needle);
    lastNeedle = needle;
  }
  return lastFolded;
}

/** What SUBJECT, FROM, TO, CC and BCC match in a message's headers, folded once. */
export function searchTextsOf(
  headers: SearchableHeaders,
): Pick<MessageSummary, 'subject' | 'from' | 'to' | 'cc' | 'bcc'> {
  return {
    subject: foldForSearch(headers.subject ?? ''),
    from: foldForSearch(addressText(headers.from)),
    to: foldForSearch(addressText(headers.to)),
    cc: foldForSearch(addressText(headers.cc)),
    bcc: foldForSearch(addressText(headers.bcc)),
  };
}

type SummaryField = 'subject' | 'from' | 'to' | 'cc' | 'bcc';

/** Whether a message matches a string key on one of the summary's fields. */
async function fieldContains(m: SearchSubject, field: SummaryField, needle: string): Promise<boolean> {
  const known = m.summary?.[field];
  if (known !== undefined) return known.includes(foldedNeedle(needle));
  const headers = (await m.meta()).headers;
  return contains(field === 'subject' ? (headers.subject ?? '') : addressText(headers[field]), needle);
}

function headerText(fields: readonly HeaderField[]): string {
  return fields.map((f) => `${f.name}: ${decodeEncodedWords(f.value)}`).join('\n');
}

/**
 * Whether the key tests only what the mailbox index holds (UID, flags, INTERNALDATE, size,
 * MODSEQ): no string keys, no sent dates (the Date: header's day is not in the index).
 */
export function indexAnswers(key: SearchKey): boolean {
  const k = key.key;
  if (k === undefined) return false; // refused with INVALID_ARGUMENT by the document path
  switch (k.$case) {
    case 'all':
    case 'uid':
    case 'flag':
    case 'keyword':
    case 'before':
    case 'on':
    case 'since':
    case 'larger':
    case 'smaller':
    case 'modseq':
    case 'olderThanSeconds':
    case 'youngerThanSeconds':
      return true;
    case 'sentBefore':
    case 'sentOn':
    case 'sentSince':
    case 'subject':
    case 'from':
    case 'to':
    case 'cc':
    case 'bcc':
    case 'body':
    case 'text':
    case 'header':
    case 'emailId':
    case 'threadId':
      return false;
    case 'not':
      return indexAnswers(k.value);
    case 'and':
    case 'or':
      return k.value.keys.every(indexAnswers);
  }
}

/**
 * Whether the key tests only what the mailbox index holds once it has the messages' summaries:
 * the keys `indexAnswers` takes, the sent dates and SUBJECT/FROM/TO/CC/BCC.
 */
export function summaryAnswers(key: SearchKey): boolean {
  const k = key.key;
  if (k === undefined) return false;
  switch (k.$case) {
    case 'sentBefore':
    case 'sentOn':
    case 'sentSince':
    case 'subject':
    case 'from':
    case 'to':
    case 'cc':
    case 'bcc':
      return true;
    case 'not':
      return summaryAnswers(k.value);
    case 'and':
    case 'or':
      return k.value.keys.every(summaryAnswers);
    default:
      return indexAnswers(key);
  }
}

/** Whether the key needs a message's decrypted body text (BODY, TEXT), kept outside the message. */
export function needsBodyText(key: SearchKey): boolean {
  const k = key.key;
  if (k === undefined) return false;
  switch (k.$case) {
    case 'body':
    case 'text':
      return true;
    case 'not':
      return needsBodyText(k.value);
    case 'and':
    case 'or':
      return k.value.keys.some(needsBodyText);
    default:
      return false;
  }
}

/** Whether the message matches the key exactly. */
export async function matches(key: SearchKey, m: SearchSubject, ctx: SearchContext): Promise<boolean> {
  const k = key.key;
  if (k === undefined) return false;
  const doc = m.doc;
  const internal = doc.internalDate.getTime();
  switch (k.$case) {
    case 'all':
      return true;
    case 'uid':
      return resolveUidSet(k.value, ctx.highestUid).some(([a, b]) => doc.uid >= a && doc.uid <= b);
    case 'flag':
      return doc.flags.includes(systemFlagName(k.value, 'query'));
    case 'keyword':
      return doc.flags.includes(k.value);
    case 'before':
      return internal < dayStart(k.value, 'query');
    case 'on': {
      const start = dayStart(k.value, 'query');
      return internal >= start && internal < start + DAY_MS;
    }
    case 'since':
      return internal >= dayStart(k.value, 'query');
    case 'sentBefore':
      return doc.sentDay < dayNumber(k.value);
    case 'sentOn':
      return doc.sentDay === dayNumber(k.value);
    case 'sentSince':
      return doc.sentDay >= dayNumber(k.value);
    case 'larger':
      return doc.size > k.value;
    case 'smaller':
      return doc.size < k.value;
    case 'modseq':
      return doc.modseq >= k.value;
    case 'olderThanSeconds':
      return internal < ctx.now - k.value * 1000;
    case 'youngerThanSeconds':
      return internal >= ctx.now - k.value * 1000;
    case 'subject':
    case 'from':
    case 'to':
    case 'cc':
    case 'bcc':
      return fieldContains(m, k.$case, k.value);
    case 'body':
      return contains(await m.bodyText(), k.value);
    case 'text':
      return contains(headerText(await m.headerFields()), k.value) || contains(await m.bodyText(), k.value);
    case 'header': {
      const name = k.value.field.toLowerCase();
      const fields = (await m.headerFields()).filter((f) => f.name === name);
      // RFC 9051 §6.4.4 HEADER: an empty string matches every message that has the field.
      if (k.value.value === '') return fields.length > 0;
      return fields.some((f) => contains(decodeEncodedWords(f.value), k.value.value));
    }
    case 'emailId':
      // RFC 8474 §6: exact match of the objectid (case-significant, §3).
      return (await m.objectIds()).emailId === k.value;
    case 'threadId':
      return (await m.objectIds()).threadId === k.value;
    case 'not':
      return !(await matches(k.value, m, ctx));
    case 'and':
      for (const child of k.value.keys) if (!(await matches(child, m, ctx))) return false;
      return true;
    case 'or':
      for (const child of k.value.keys) if (await matches(child, m, ctx)) return true;
      return false;
  }
}

/** What the mailbox index holds of a message (mailbox-index.ts `IndexedMessage`). */
export type IndexedFields = Pick<MessageRecord, 'uid' | 'modseq' | 'size' | 'internalDate'> & {
  readonly flags: readonly string[];
};

/** A synchronous `matches` for the keys the mailbox index answers (`summaryAnswers`). */
export type IndexMatcher = (m: IndexedFields, summary: MessageSummary | undefined) => boolean;

/**
 * `key` as a test of a message in the mailbox index, for a key `summaryAnswers` takes: decides
 * exactly what `matches` decides, but its dates, UID sets, flag names and search strings are
 * resolved once for the whole mailbox, and testing a message allocates nothing and awaits
 * nothing (a SEARCH over the index tests every message of the mailbox). Throws for a string or
 * sent-date key of a message without a summary (the index knows nothing of its content).
 */
export function indexMatcher(key: SearchKey, ctx: SearchContext): IndexMatcher {
  const k = key.key;
  if (k === undefined) return () => false;
  switch (k.$case) {
    case 'all':
      return () => true;
    case 'uid': {
      const intervals = resolveUidSet(k.value, ctx.highestUid);
      return (m) => {
        for (const [a, b] of intervals) if (m.uid >= a && m.uid <= b) return true;
        return false;
      };
    }
    case 'flag': {
      const name = systemFlagName(k.value, 'query');
      return (m) => m.flags.includes(name);
    }
    case 'keyword': {
      const name = k.value;
      return (m) => m.flags.includes(name);
    }
    case 'before': {
      const start = dayStart(k.value, 'query');
      return (m) => m.internalDate.getTime() < start;
    }
    case 'on': {
      const start = dayStart(k.value, 'query');
      return (m) => {
        const internal = m.internalDate.getTime();
        return internal >= start && internal < start + DAY_MS;
      };
    }
    case 'since': {
      const start = dayStart(k.value, 'query');
      return (m) => m.internalDate.getTime() >= start;
    }
    case 'sentBefore': {
      const day = dayNumber(k.value);
      return (_, s) => sentDayOf(s) < day;
    }
    case 'sentOn': {
      const day = dayNumber(k.value);
      return (_, s) => sentDayOf(s) === day;
    }
    case 'sentSince': {
      const day = dayNumber(k.value);
      return (_, s) => sentDayOf(s) >= day;
    }
    case 'larger': {
      const size = k.value;
      return (m) => m.size > size;
    }
    case 'smaller': {
      const size = k.value;
      return (m) => m.size < size;
    }
    case 'modseq': {
      const modseq = k.value;
      return (m) => m.modseq >= modseq;
    }
    case 'olderThanSeconds': {
      const before = ctx.now - k.value * 1000;
      return (m) => m.internalDate.getTime() < before;
    }
    case 'youngerThanSeconds': {
      const since = ctx.now - k.value * 1000;
      return (m) => m.internalDate.getTime() >= since;
    }
    case 'subject':
    case 'from':
    case 'to':
    case 'cc':
    case 'bcc': {
      const field = k.$case;
      const needle = foldForSearch(k.value);
      return (_, s) => summaryOf(s)[field].includes(needle);
    }
    case 'not': {
      const inner = indexMatcher(k.value, ctx);
      return (m, s) => !inner(m, s);
    }
    case 'and': {
      const children = k.value.keys.map((child) => indexMatcher(child, ctx));
      return (m, s) => {
        for (const child of children) if (!child(m, s)) return false;
        return true;
      };
    }
    case 'or': {
      const children = k.value.keys.map((child) => indexMatcher(child, ctx));
      return (m, s) => {
        for (const child of children) if (child(m, s)) return true;
        return false;
      };
    }
    case 'body':
    case 'text':
    case 'header':
    case 'emailId':
    case 'threadId':
      throw new Error(`the mailbox index cannot answer SEARCH ${k.$case}`);
  }
}

function summaryOf(summary: MessageSummary | undefined): MessageSummary {
  if (summary === undefined) throw new Error('the mailbox index has no message content');
  return summary;
}

/** Without summaries sentDay is never read: `indexAnswers` refuses the sent-date keys. */
function sentDayOf(summary: MessageSummary | undefined): number {
  return summary?.sentDay ?? 0;
}

/** SEARCH of the mailstore (`Mailstore.search`): the steps above over a mailbox's messages. */
export class MessageSearch extends StorePart {
  /** What SEARCH's string keys may need of a message, decrypted on first use. */
  private searchSubject(doc: MessageRecord): SearchSubject {
    let key: Uint8Array | null = null;
    let meta: SealedMeta | null = null;
    let fields: HeaderField[] | null = null;
    const contentKey = async () => (key ??= (await this.s.reader.opened(doc)).key);
    const subject: SearchSubject = {
      doc,
      meta: async () => (meta ??= (await this.s.reader.opened(doc)).meta),
      headerFields: async () =>
        (fields ??= parseHeaderBlock(
          await this.s.reader.rawHeader(doc, await subject.meta(), await contentKey()),
        )),
      bodyText: async () => {
        const entry = await this.searchIndex().findOne(
          { _id: searchIdOf(doc) },
          { projection: { searchText: 1 } },
        );
        const sealed = entry?.searchText ?? null;
        return sealed === null
          ? ''
          : unseal(await contentKey(), TEXT_LABEL, doc.blobId, sealed).toString('utf8');
      },
      objectIds: async () => ({
        emailId: emailIdOf(doc.blobId),
        threadId: threadIdOf((await subject.meta()).headers, doc.blobId),
      }),
    };
    return subject;
  }

  /** RFC 9051 §6.4.4 SEARCH (with RFC 7162 §3.1.5 MODSEQ) over encrypted messages. */
  async search(
    userId: string,
    mailboxId: string,
    query: mailstore.SearchKey,
  ): Promise<mailstore.SearchResponse> {
    const mailbox = await this.s.boxes.mailboxById(userId, mailboxId);
    // `*` from the index entry when there is one (a read of the messages otherwise).
    const current = index.enabled ? await this.s.upkeep.indexOf(mailbox, true) : undefined;
    const base = {
      hasher: await this.s.writer.termHasher(userId),
      highestUid: current?.highestUid ?? (await this.s.upkeep.highestUid(mailbox)),
      now: Date.now(),
    };
    const ctx: SearchContext = { ...base, target: 'message' };
    const parts: Filter<MessageRecord>[] = [{ userId, mailboxId }];
    const onMessages = prefilterFor(query, ctx);
    // Flags, UIDs, dates, sizes only (`SEARCH UNSEEN`, `SEARCH DELETED`; prefilterFor has checked
    // the query): the mailbox index answers without reading a message document (ADR 0006).
    // Matches the index's messages (with their summaries when given) without any content.
    const fromIndex = (
      selection: readonly IndexedMessage[],
      summaryAt?: (i: number) => MessageSummary | undefined,
    ): mailstore.SearchResponse => {
      // Resolved once for the mailbox; each message is then tested without an allocation.
      const test = indexMatcher(query, ctx);
      const found: number[] = [];
      let top = 0;
      for (let i = 0; i < selection.length; i++) {
        const m = selection[i] as IndexedMessage;
        if (test(m, summaryAt?.(i))) {
          found.push(m.uid);
          if (m.modseq > top) top = m.modseq;
        }
      }
      return { uids: found, highestModseq: top };
    };
    const entry = indexAnswers(query) ? current : undefined;
    if (entry !== undefined) return fromIndex(entry.select([[1, MAX_UID]]));
    // Header and sent-date keys (`SEARCH FROM`, `SUBJECT`, `SENTSINCE`): the index's summaries
    // answer them, made once per message (mailbox-index.ts `MessageSummary`).
    if (current !== undefined && summaryAnswers(query)) {
      const selection = current.select([[1, MAX_UID]]);
      const summaries = await this.s.reader.summariesOf(mailbox, current, selection);
      if (summaries !== undefined) return fromIndex(selection, (i) => summaries[i]);
    }
    // Header and sent-date keys (`SEARCH FROM`, `SUBJECT`, `SENTSINCE`) over a mailbox whose
    // messages are all cached: decided from the cached (sealed) metadata, no read of the messages
    // or of the blind index. BODY/TEXT need the stored search text: the path below.
    const cached =
      !needsBodyText(query) && messageCache.enabled
        ? await this.s.reader.cachedMessages(mailbox, [[1, MAX_UID]], undefined)
        : undefined;
    if (cached !== undefined) {
      const found: number[] = [];
      let top = 0;
      for (const doc of cached) {
        if (await matches(query, this.searchSubject(doc), ctx)) {
          found.push(doc.uid);
          top = Math.max(top, doc.modseq);
        }
      }
      return { uids: found, highestModseq: top };
    }
    // Flags and MODSEQs of messages with pending records differ from their documents: the
    // documents are then filtered here (`matches`), not by the database.
    const pending = await this.s.upkeep.pending();
    if (onMessages !== null && !pending.has(mailboxId)) parts.push(onMessages);
    // The blind index narrows string keys: its candidates (by message id) join the filter.
    const onIndex = prefilterFor(query, { ...base, target: 'index' });
    if (onIndex !== null) {
      const hits = await this.searchIndex()
        .find(
          { $and: [{ userId, mailboxId }, onIndex as Filter<SearchIndexDoc>] },
          { projection: { _id: 1 } },
        )
        .toArray();
      const ids = hits.map((h) => h._id);
      // Entries are joined by the message's `searchId`, or by its `_id` for older messages.
      parts.push({ $or: [{ searchId: { $in: ids } }, { _id: { $in: ids } }] });
    }
    const filter: Filter<MessageRecord> = parts.length === 1 ? { userId, mailboxId } : { $and: parts };
    const uids: number[] = [];
    let highestModseq = 0;
    const cursor = this.messages()
      .find(filter, { projection: { terms: 0 } })
      .sort({ uid: 1 })
      .batchSize(BATCH);
    for await (const found of cursor) {
      const doc = pending.fold(mailboxId, found);
      if (doc === null) continue;
      if (await matches(query, this.searchSubject(doc), ctx)) {
        uids.push(doc.uid);
        highestModseq = Math.max(highestModseq, doc.modseq);
      }
    }
    return { uids, highestModseq };
  }
}
