/**
 * The mailstore's content reader: FETCH metadata, message content by section and partial, the
 * message cache and summaries behind them, and QRESYNC changes (RFC 9051 §6.4.5, RFC 7162).
 */
import { MAX_UID, resolveUidSet, uidSetFromUids, type UidSet, type mailstore } from '@postmesh/contracts';
import {
  decodePartBody,
  findSectionPart,
  parseSectionSpec,
  resolveSection,
  applyPartial,
  selectHeaderFields,
} from '@postmesh/mime';
import type { Filter } from 'mongodb';
import {
  legacyBodyInfo,
  readBlobBytes,
  readBlobRange,
  storedBodyInfo,
  unseal,
  type BlobInfo,
} from './blob-store.js';
import { ErrorReason, FetchFields, type FetchFieldValue } from './contract.js';
import { BlobIntegrityError, MailstoreError } from './errors.js';
import { emailIdOf, threadIdOf } from './object-ids.js';
import { splitFlags } from './flags.js';
import type { MailboxIndexEntry } from './mailbox-index.js';
import { sharedMailboxIndex as index, type IndexedMessage, type MessageSummary } from './mailbox-index.js';
import { sharedMessageCache as messageCache, type OpenedMessage } from './message-cache.js';
import { searchTextsOf } from './search.js';
import type { MailboxRecord, MessageRecord, SealedMeta } from './types.js';
import { StorePart } from './store-part.js';
import {
  BATCH,
  META_LABEL,
  type ContentResult,
  contentContext,
  messageKey,
  idText,
  POINT_LOOKUPS,
  LOOKUP_CONCURRENCY,
  WHOLE_READ_BATCH,
  mapLimited,
  type Intervals,
  notFound,
} from './store-common.js';

/** The empty `header` of a message FETCH did not ask the header of (never written to). */
const NO_BYTES: Buffer = Buffer.alloc(0);
/** Messages read from their documents that fetchMessageBatches hands over at a time. */
const DOC_BATCH = 64;

/** Section bytes read and authenticated before the first byte is answered. */
const VERIFY_BEFORE_ANSWER = 1024 * 1024;

/** Octets per streamed content chunk. */
const CHUNK = 64 * 1024;

/** A generous estimate of one message's bytes in the message cache (sealed metadata and the rest). */
const CACHED_MESSAGE_BYTES = 8 * 1024;

/** What the mailbox index keeps of an opened message (mailbox-index.ts `MessageSummary`). */
export function summaryOf(doc: MessageRecord, opened: OpenedMessage): MessageSummary {
  return {
    envelopeJson: (opened.envelopeJson ??= JSON.stringify(opened.meta.envelope)),
    sentDay: doc.sentDay,
    ...searchTextsOf(opened.meta.headers),
  };
}

function inIntervals(intervals: Intervals, uid: number): boolean {
  return intervals.some(([a, b]) => uid >= a && uid <= b);
}

function intervalSize(intervals: Intervals): number {
  return intervals.reduce((n, [a, b]) => n + b - a + 1, 0);
}

export class ContentReader extends StorePart {
  /**
   * The messages of `mailbox` with UIDs in `intervals`, in UID order: by `_id` lookups when the
   * set is small and the mailbox keyed, else by one cursor over the mailbox (batched, never one
   * round trip per message).
   */
  async *messagesIn(
    mailbox: MailboxRecord,
    intervals: Intervals,
    options: { projection?: Record<string, 0 | 1>; changedSince?: number } = {},
  ): AsyncGenerator<MessageRecord> {
    const mailboxId = mailbox._id.toHexString();
    const projection = options.projection ?? { terms: 0 };
    const since = options.changedSince;
    // Documents as the pending flag and expunge records make them (pending-changes.ts).
    const pending = await this.s.upkeep.pending();
    if (mailbox.keyedMessages === true && intervalSize(intervals) <= POINT_LOOKUPS) {
      const uids = intervals
        .flatMap(([a, b]) => Array.from({ length: b - a + 1 }, (_, i) => a + i))
        .filter((uid) => !pending.isExpunged(mailboxId, uid));
      const docs = await mapLimited(uids, LOOKUP_CONCURRENCY, (uid) =>
        this.messages().findOne({ _id: messageKey(mailboxId, uid) }, { projection }),
      );
      for (const found of docs) {
        const doc = found === null ? null : pending.fold(mailboxId, found);
        if (doc !== null && (since === undefined || doc.modseq > since)) yield doc;
      }
      return;
    }
    const filter: Filter<MessageRecord> = { mailboxId, ...this.s.upkeep.uidFilter(intervals) };
    // A pending record may have raised a MODSEQ the document does not show yet: filtered here.
    if (since !== undefined && !pending.has(mailboxId)) filter.modseq = { $gt: since };
    const cursor = this.messages().find(filter, { projection }).sort({ uid: 1 }).batchSize(BATCH);
    for await (const found of cursor) {
      if (!inIntervals(intervals, found.uid)) continue;
      const doc = pending.fold(mailboxId, found);
      if (doc !== null && (since === undefined || doc.modseq > since)) yield doc;
    }
  }

  /** One message by UID, or null. */
  private async messageByUid(mailbox: MailboxRecord, uid: number): Promise<MessageRecord | null> {
    const mailboxId = mailbox._id.toHexString();
    const pending = await this.s.upkeep.pending();
    if (pending.isExpunged(mailboxId, uid)) return null;
    let doc = await this.messages().findOne(
      { _id: messageKey(mailboxId, uid) },
      { projection: { terms: 0 } },
    );
    if (doc === null && mailbox.keyedMessages !== true) {
      doc = await this.messages().findOne({ mailboxId, uid }, { projection: { terms: 0 } });
    }
    return doc === null ? null : pending.fold(mailboxId, doc);
  }

  private async unwrapKey(doc: MessageRecord): Promise<Uint8Array> {
    return this.keyring.unwrapForUser(doc.userId, doc.contentKey, contentContext(doc.blobId));
  }

  /** The content key and metadata of `doc`, from the message cache when it opened them before. */
  async opened(doc: MessageRecord): Promise<OpenedMessage> {
    const id = typeof doc._id === 'string' ? doc._id : undefined;
    const known = id === undefined ? undefined : messageCache.opened(id);
    if (known !== undefined) return known;
    const key = await this.unwrapKey(doc);
    const opened: OpenedMessage = { key, meta: await this.openMeta(doc, key) };
    if (id !== undefined) messageCache.setOpened(id, opened);
    return opened;
  }

  private async openMeta(doc: MessageRecord, key?: Uint8Array): Promise<SealedMeta> {
    const contentKey = key ?? (await this.unwrapKey(doc));
    return JSON.parse(unseal(contentKey, META_LABEL, doc.blobId, doc.meta).toString('utf8')) as SealedMeta;
  }

  private async blobInfo(doc: MessageRecord): Promise<BlobInfo> {
    if (doc.blob !== undefined) return storedBodyInfo(doc.blobId, doc.blob);
    const info = await legacyBodyInfo(this.blobs, doc.blobId);
    if (info === undefined) throw new BlobIntegrityError(`blob ${doc.blobId.toHexString()} is missing`);
    return info;
  }

  async rawHeader(
    doc: MessageRecord,
    meta: SealedMeta,
    key: Uint8Array,
    opened?: OpenedMessage,
  ): Promise<Buffer> {
    if (meta.rawHeader !== null) {
      if (opened === undefined) return Buffer.from(meta.rawHeader, 'base64');
      // Decoded once and kept with the opened message, in a buffer of its own (a small one from
      // Node's pool would keep the whole 8 KiB slab alive while cached).
      if (opened.rawHeaderBytes === undefined) {
        const bytes = Buffer.allocUnsafeSlow(Buffer.byteLength(meta.rawHeader, 'base64'));
        opened.rawHeaderBytes = bytes.subarray(0, bytes.write(meta.rawHeader, 'base64'));
        if (typeof doc._id === 'string') messageCache.grew(doc._id, opened, bytes.length);
      }
      return opened.rawHeaderBytes;
    }
    const root = meta.bodystructure.offsets;
    return readBlobBytes(this.blobs, await this.blobInfo(doc), key, root.headerStart, root.bodyStart);
  }

  /**
   * RFC 9051 §6.4.5 FETCH of metadata, RFC 7162 §3.1.4.1 CHANGEDSINCE. Reads in batches of
   * documents (one cursor), never one round trip per message.
   */
  async *fetchMessages(
    userId: string,
    mailboxId: string,
    uids: UidSet | undefined,
    changedSince: number | undefined,
    fields: readonly FetchFieldValue[],
  ): AsyncGenerator<mailstore.MessageMetadata> {
    for await (const batch of this.fetchMessageBatches(userId, mailboxId, uids, changedSince, fields)) {
      yield* batch;
    }
  }

  /**
   * `fetchMessages` in batches (never empty): all at once where the index answers, else up to
   * DOC_BATCH messages read from their documents at a time. The gRPC adapter sends batches, so a
   * FETCH of many messages costs the event loop one step per batch rather than per message.
   */
  async *fetchMessageBatches(
    userId: string,
    mailboxId: string,
    uids: UidSet | undefined,
    changedSince: number | undefined,
    fields: readonly FetchFieldValue[],
  ): AsyncGenerator<mailstore.MessageMetadata[]> {
    const mailbox = await this.s.boxes.mailboxById(userId, mailboxId);
    const intervals = await this.s.upkeep.intervalsOf(
      mailbox,
      uids ?? { ranges: [{ first: 1, last: 0 }] },
      'uids',
    );
    const wantEnvelope = fields.includes(FetchFields.ENVELOPE);
    const wantStructure = fields.includes(FetchFields.BODYSTRUCTURE);
    const wantHeader = fields.includes(FetchFields.HEADER);
    const wantObjectIds = fields.includes(FetchFields.OBJECT_IDS);
    const needMeta = wantEnvelope || wantStructure || wantHeader || wantObjectIds;
    if (!needMeta) {
      // UIDs, flags, sizes and dates only (SELECT, `FETCH 1:* (FLAGS)`): the index answers
      // (ADR 0006), built on first use if the index is on.
      const entry = await this.s.upkeep.indexOf(mailbox, true);
      if (entry !== undefined) {
        const batch: mailstore.MessageMetadata[] = [];
        for (const m of entry.select(intervals, changedSince)) {
          const { flags, keywords } = splitFlags(m.flags);
          batch.push({
            uid: m.uid,
            modseq: m.modseq,
            flags,
            keywords,
            internalDate: m.internalDate,
            size: m.size,
            envelopeJson: '',
            bodystructureJson: '',
            header: NO_BYTES,
            emailId: '',
            threadId: '',
          });
        }
        if (batch.length > 0) yield batch;
        return;
      }
    }
    if (wantEnvelope && !wantStructure && !wantHeader && !wantObjectIds) {
      // `FETCH (FLAGS ENVELOPE)`, a client's sync: flags from the index, ENVELOPEs from the
      // summaries it keeps, so a mailbox larger than the message cache is not read back on
      // every sync.
      const entry = await this.s.upkeep.indexOf(mailbox, true);
      const selection = entry?.select(intervals, changedSince);
      const summaries =
        entry === undefined || selection === undefined
          ? undefined
          : await this.summariesOf(mailbox, entry, selection);
      if (selection !== undefined && summaries !== undefined) {
        const batch: mailstore.MessageMetadata[] = [];
        for (const [i, m] of selection.entries()) {
          const { flags, keywords } = splitFlags(m.flags);
          batch.push({
            uid: m.uid,
            modseq: m.modseq,
            flags,
            keywords,
            internalDate: m.internalDate,
            size: m.size,
            envelopeJson: summaries[i]?.envelopeJson ?? '',
            bodystructureJson: '',
            header: NO_BYTES,
            emailId: '',
            threadId: '',
          });
        }
        if (batch.length > 0) yield batch;
        return;
      }
    }
    const cached = needMeta ? await this.cachedMessages(mailbox, intervals, changedSince) : undefined;
    const docs =
      cached ??
      this.messagesIn(mailbox, intervals, {
        projection: needMeta ? { terms: 0 } : { terms: 0, meta: 0, contentKey: 0 },
        ...(changedSince === undefined ? {} : { changedSince }),
      });
    let batch: mailstore.MessageMetadata[] = [];
    for await (const doc of docs) {
      if (needMeta && cached === undefined && typeof doc._id === 'string') messageCache.put(doc._id, doc);
      const { flags, keywords } = splitFlags(doc.flags);
      const out: mailstore.MessageMetadata = {
        uid: doc.uid,
        modseq: doc.modseq,
        flags,
        keywords,
        internalDate: doc.internalDate,
        size: doc.size,
        envelopeJson: '',
        bodystructureJson: '',
        header: NO_BYTES,
        emailId: '',
        threadId: '',
      };
      if (needMeta) {
        // Opened before (a hot mailbox): no await, so a batch of cached messages costs no turns.
        const opened =
          (typeof doc._id === 'string' ? messageCache.opened(doc._id) : undefined) ??
          (await this.opened(doc));
        if (wantEnvelope) out.envelopeJson = opened.envelopeJson ??= JSON.stringify(opened.meta.envelope);
        if (wantStructure) {
          out.bodystructureJson = opened.bodystructureJson ??= JSON.stringify(opened.meta.bodystructure);
        }
        if (wantHeader) {
          out.header = opened.rawHeaderBytes ?? (await this.rawHeader(doc, opened.meta, opened.key, opened));
        }
        if (wantObjectIds) {
          out.emailId = emailIdOf(doc.blobId);
          out.threadId = threadIdOf(opened.meta.headers, doc.blobId);
        }
      }
      batch.push(out);
      if (batch.length >= DOC_BATCH) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
  }

  /**
   * The messages of a set, in UID order, from the mailbox index entry (which ones, their flags and
   * MODSEQ) and the message cache (the rest), loading by `_id` the few the cache lacks; undefined
   * without a current entry or with too many missing (one read of the mailbox then fills the
   * cache).
   */
  async cachedMessages(
    mailbox: MailboxRecord,
    intervals: Intervals,
    changedSince: number | undefined,
    fill = true,
  ): Promise<MessageRecord[] | undefined> {
    if (!messageCache.enabled || mailbox.keyedMessages !== true) return undefined;
    const mailboxId = mailbox._id.toHexString();
    // Built if missing: one read of the mailbox, after which its commands read nothing.
    const entry = await this.s.upkeep.indexOf(mailbox, true);
    if (entry === undefined) return undefined;
    const selection = entry.select(intervals, changedSince);
    const hits = selection.map((m) => messageCache.get(messageKey(mailboxId, m.uid)));
    const missing = selection.filter((_, i) => hits[i] === undefined);
    if (missing.length > POINT_LOOKUPS) {
      if (!fill || !(await this.fillMessageCache(mailbox, missing.length))) return undefined;
      // The entry may have moved on during the read: look again, from the mailbox as it is now.
      const now = await this.s.boxes.resolveMailbox(mailbox.userId, { id: mailboxId });
      return this.cachedMessages(now, intervals, changedSince, false);
    }
    const loaded = await mapLimited(missing, LOOKUP_CONCURRENCY, (m) =>
      this.messages().findOne({ _id: messageKey(mailboxId, m.uid) }, { projection: { terms: 0 } }),
    );
    for (const doc of loaded) if (doc !== null) messageCache.put(idText(doc._id), doc);
    const out: MessageRecord[] = [];
    for (const [i, m] of selection.entries()) {
      const hit = hits[i] ?? messageCache.get(messageKey(mailboxId, m.uid));
      if (hit !== undefined) out.push({ ...hit.doc, flags: [...m.flags], modseq: m.modseq });
    }
    return out;
  }

  /**
   * The summaries of `selection` (messages of the current index `entry` of `mailbox`), aligned
   * with it: those the index keeps, the rest made from the message cache, by `_id` lookups when
   * few, else by one read of the mailbox shared by concurrent readers; kept in the index within
   * its bound. Undefined when a message could not be found (it went meanwhile): the caller takes
   * the documents' path.
   */
  async summariesOf(
    mailbox: MailboxRecord,
    entry: MailboxIndexEntry,
    selection: readonly IndexedMessage[],
  ): Promise<MessageSummary[] | undefined> {
    if (mailbox.keyedMessages !== true) return undefined;
    const mailboxId = mailbox._id.toHexString();
    const made = new Map<number, MessageSummary>();
    const unread: number[] = [];
    for (const m of selection) {
      if (m.summary !== undefined) continue;
      const hit = messageCache.get(messageKey(mailboxId, m.uid));
      if (hit !== undefined) made.set(m.uid, summaryOf(hit.doc, await this.opened(hit.doc)));
      else unread.push(m.uid);
    }
    if (unread.length > POINT_LOOKUPS) {
      let fill = this.rt.summaryFills.get(mailboxId);
      if (fill === undefined) {
        fill = this.readSummaries(mailbox, entry).finally(() => this.rt.summaryFills.delete(mailboxId));
        this.rt.summaryFills.set(mailboxId, fill);
      }
      const read = await fill;
      for (const uid of unread) {
        const summary = read.get(uid);
        if (summary !== undefined) made.set(uid, summary);
      }
    } else if (unread.length > 0) {
      const docs = await mapLimited(unread, LOOKUP_CONCURRENCY, (uid) =>
        this.messages().findOne({ _id: messageKey(mailboxId, uid) }, { projection: { terms: 0 } }),
      );
      for (const doc of docs) if (doc !== null) made.set(doc.uid, summaryOf(doc, await this.opened(doc)));
    }
    if (made.size > 0) {
      index.keepSummaries(
        mailboxId,
        entry,
        [...made].map(([uid, summary]) => ({ uid, summary })),
      );
    }
    const out: MessageSummary[] = [];
    for (const m of selection) {
      const summary = m.summary ?? made.get(m.uid);
      if (summary === undefined) return undefined;
      out.push(summary);
    }
    return out;
  }

  /**
   * One read of the messages of `mailbox` that `entry` has no summary of, in `_id` order (the
   * key names the mailbox and UID), opening each; not through the message cache, which a mailbox
   * larger than it would only churn. Kept in the index as it goes, within its bound.
   */
  private async readSummaries(
    mailbox: MailboxRecord,
    entry: MailboxIndexEntry,
  ): Promise<Map<number, MessageSummary>> {
    const mailboxId = mailbox._id.toHexString();
    const started = Date.now();
    const read = new Map<number, MessageSummary>();
    let batch: { uid: number; summary: MessageSummary }[] = [];
    const cursor = this.messages()
      .find(
        { _id: { $gte: messageKey(mailboxId, 0), $lte: messageKey(mailboxId, MAX_UID) } },
        { projection: { terms: 0 } },
      )
      .sort({ _id: 1 })
      .batchSize(WHOLE_READ_BATCH);
    for await (const doc of cursor) {
      const summary = summaryOf(doc, await this.opened(doc));
      read.set(doc.uid, summary);
      batch.push({ uid: doc.uid, summary });
      if (batch.length >= 1024) {
        index.keepSummaries(mailboxId, entry, batch);
        batch = [];
      }
    }
    index.keepSummaries(mailboxId, entry, batch);
    this.logger.info(
      { mailboxId, messages: read.size, ms: Date.now() - started, summaryBytes: entry.summaryBytes },
      'mailbox index summaries read',
    );
    return read;
  }

  /**
   * Fills the message cache with the messages of `mailbox` by one read of the mailbox, shared by
   * every reader that finds `missing` messages uncached meanwhile (several clients opening a cold
   * mailbox at once cost one read, not one each). False, without reading, when that many would
   * not fit well in the cache: the caller streams from the database instead.
   */
  private async fillMessageCache(mailbox: MailboxRecord, missing: number): Promise<boolean> {
    if (missing * CACHED_MESSAGE_BYTES > messageCache.maxBytes / 2) return false;
    const mailboxId = mailbox._id.toHexString();
    let fill = this.rt.cacheFills.get(mailboxId);
    if (fill === undefined) {
      fill = (async () => {
        const all: Intervals = [[1, MAX_UID]];
        for await (const doc of this.messagesIn(mailbox, all, { projection: { terms: 0 } })) {
          if (typeof doc._id === 'string') messageCache.put(doc._id, doc);
        }
      })().finally(() => this.rt.cacheFills.delete(mailboxId));
      this.rt.cacheFills.set(mailboxId, fill);
    }
    await fill;
    return true;
  }

  /**
   * RFC 9051 §6.4.5 BODY[section]<partial> and RFC 3516 BINARY[section]: resolves the section to
   * a byte range with the part offsets and decrypts only the records it covers.
   */
  async getMessageContent(
    userId: string,
    mailboxId: string,
    uid: number,
    section: string,
    partial: { offset: number; length: number } | undefined,
    decode: boolean,
  ): Promise<ContentResult> {
    const mailbox = await this.s.boxes.mailboxById(userId, mailboxId);
    // A message in the current index entry may come from the message cache (its flags and
    // MODSEQ from the entry); otherwise it is read, and cached for the next time.
    const id = messageKey(mailboxId, uid);
    const current =
      messageCache.enabled && mailbox.keyedMessages === true
        ? (await this.s.upkeep.indexOf(mailbox, true))?.select([[uid, uid]])[0]
        : undefined;
    const hit = current === undefined ? undefined : messageCache.get(id);
    let doc: MessageRecord | null =
      hit === undefined || current === undefined
        ? null
        : { ...hit.doc, flags: [...current.flags], modseq: current.modseq };
    if (doc === null) {
      doc = await this.messageByUid(mailbox, uid);
      if (doc !== null && doc._id === id) messageCache.put(id, doc);
    }
    if (doc === null) throw notFound('message', 'uid');
    const { key, meta } = await this.opened(doc);
    const spec = parseSectionSpec(section);
    if (spec === null)
      throw new MailstoreError(ErrorReason.INVALID_ARGUMENT, 'not a section-spec', 'section');
    const resolved = resolveSection(meta.bodystructure, spec);
    if (!resolved.ok) {
      if (resolved.error === 'syntax')
        throw new MailstoreError(ErrorReason.INVALID_ARGUMENT, 'not a section-spec', 'section');
      throw notFound('section', 'section');
    }
    const info = hit?.blob ?? (await this.blobInfo(doc));
    if (hit?.blob === undefined && doc._id === id) messageCache.setBlob(id, info);
    const slice = (bytes: Buffer): Buffer => {
      if (partial === undefined) return bytes;
      const start = Math.min(partial.offset, bytes.length);
      return bytes.subarray(start, Math.min(bytes.length, start + partial.length));
    };
    const inMemory = (out: Buffer, sectionSize: number, containsNul: boolean): ContentResult => {
      return {
        info: { size: out.length, sectionSize, modseq: doc.modseq, containsNul },
        chunks: Array.from({ length: Math.ceil(out.length / CHUNK) }, (_, i) =>
          out.subarray(i * CHUNK, (i + 1) * CHUNK),
        ),
      };
    };
    if (resolved.fields !== null) {
      const header = await readBlobBytes(this.blobs, info, key, resolved.range.start, resolved.range.end);
      const selected = Buffer.from(selectHeaderFields(header, resolved.fields.names, resolved.fields.not));
      return inMemory(slice(selected), selected.length, false);
    }
    if (decode && spec.part.length > 0 && spec.text === null) {
      const part = findSectionPart(meta.bodystructure, spec.part);
      if (part === null) throw notFound('section', 'section');
      const raw = await readBlobBytes(this.blobs, info, key, resolved.range.start, resolved.range.end);
      const decoded = decodePartBody(part, raw);
      if (!decoded.ok) {
        // RFC 3516 §4.3: UNKNOWN-CTE; BINARY of a multipart is not a single body.
        throw new MailstoreError(
          ErrorReason.INVALID_ARGUMENT,
          `cannot decode: ${decoded.error}`,
          'decode_transfer_encoding',
        );
      }
      const bytes = Buffer.from(decoded.bytes);
      const out = slice(bytes);
      return inMemory(out, bytes.length, out.includes(0));
    }
    const sectionSize = resolved.range.end - resolved.range.start;
    const range =
      partial === undefined ? resolved.range : applyPartial(resolved.range, partial.offset, partial.length);
    const size = range.end - range.start;
    if (size <= VERIFY_BEFORE_ANSWER) {
      // Authenticated before anything is answered: tampering fails the call, not mid-literal.
      const bytes = await readBlobBytes(this.blobs, info, key, range.start, range.end);
      return inMemory(bytes, sectionSize, false);
    }
    return {
      info: { size, sectionSize, modseq: doc.modseq, containsNul: false },
      chunks: readBlobRange(this.blobs, info, key, range.start, range.end),
    };
  }

  /** RFC 7162 §3.2.5 QRESYNC catch-up: changed messages and vanished UIDs since a mod-sequence. */
  async getChanges(
    userId: string,
    mailboxId: string,
    sinceModseq: number,
    uidValidity: number,
    knownUids: UidSet | undefined,
  ): Promise<mailstore.GetChangesResponse> {
    const mailbox = await this.s.upkeep.settled(await this.s.boxes.mailboxById(userId, mailboxId));
    const base = {
      highestModseq: mailbox.highestModseq,
      uidValidity: mailbox.uidValidity,
      uidNext: mailbox.uidNext,
    };
    if (uidValidity !== 0 && uidValidity !== mailbox.uidValidity) {
      // RFC 7162 §3.2.5.2: the client's cache is void.
      return { ...base, changed: [], vanished: { ranges: [] }, uidValidityChanged: true };
    }
    // Every UID in use is below UIDNEXT, so it bounds `*` for the membership test.
    const highest = mailbox.uidNext - 1;
    const known = knownUids === undefined ? null : resolveUidSet(knownUids, highest);
    const inKnown = (uid: number) => known === null || known.some(([a, b]) => uid >= a && uid <= b);
    // The mailbox index knows what changed, and whether anything left since (ADR 0006): the usual
    // IDLE wake-up (new mail) then reads neither messages nor tombstones.
    const entry = await this.s.upkeep.indexOf(mailbox, true);
    if (entry !== undefined) {
      const changed = entry.select([[1, MAX_UID]], sinceModseq).map((m) => {
        const split = splitFlags(m.flags);
        return { uid: m.uid, modseq: m.modseq, flags: split.flags, keywords: split.keywords };
      });
      // Removals since the entry was built are in it; older ones only in the tombstones.
      const vanished =
        entry.removedSince(sinceModseq) ??
        (
          await this.tombstones()
            .find({ mailboxId, modseq: { $gt: sinceModseq } }, { projection: { uid: 1 } })
            .toArray()
        ).map((t) => t.uid);
      return {
        ...base,
        changed,
        vanished: uidSetFromUids(vanished.filter(inKnown)),
        uidValidityChanged: false,
      };
    }
    const changed: mailstore.MessageFlags[] = [];
    for await (const doc of this.messagesIn(mailbox, [[1, MAX_UID]], {
      projection: { uid: 1, modseq: 1, flags: 1 },
      changedSince: sinceModseq,
    })) {
      const split = splitFlags(doc.flags);
      changed.push({ uid: doc.uid, modseq: doc.modseq, flags: split.flags, keywords: split.keywords });
    }
    const vanished = await this.tombstones()
      .find({ mailboxId, modseq: { $gt: sinceModseq } }, { projection: { uid: 1 } })
      .toArray();
    return {
      ...base,
      changed,
      vanished: uidSetFromUids(vanished.map((t) => t.uid).filter(inKnown)),
      uidValidityChanged: false,
    };
  }
}
