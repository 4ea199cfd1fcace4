/**
 * The mailstore's message writer: a body parsed, encrypted and written once (`ingest`), its
 * message documents committed into their mailboxes in groups (APPEND, single deliveries).
 */
import { randomBytes } from 'node:crypto';
import { MAX_UID } from '@postmesh/contracts';
import { MimeIndexer, type IndexResult } from '@postmesh/mime';
import { MongoBulkWriteError, ObjectId, type OneOrMore, type WriteError } from 'mongodb';
import { groupInsert } from '../db/group-insert.js';
import { insertBlobRefs, newBlobRef, type BlobRefDoc } from '../blob/index.js';
import { Collections } from '../db/schema.js';
import {
  bodyRefId,
  isDuplicateKey,
  seal,
  sealBody,
  writeBody,
  type SealedBody,
  type StoredBody,
} from './blob-store.js';
import { ErrorReason } from './contract.js';
import { MailstoreError } from './errors.js';
import { DELETED, SEEN } from './flags.js';
import type { MailboxIndexEntry } from './mailbox-index.js';
import { sharedMailboxIndex as index } from './mailbox-index.js';
import type { PendingInsert } from './runtime.js';
import { mailboxRecords, mailboxes } from './mailboxes.js';
import { TermHasher, termsFor, trigramsFor } from './search-terms.js';
import {
  MailstoreCollections,
  type MailboxRecord,
  type MessageRecord,
  type SealedMeta,
  type SearchIndexDoc,
  type WriteTag,
} from './types.js';
import { StorePart, type AtomicWrite } from './store-part.js';
import { guardFailed, taggedWith } from './write-fence.js';
import {
  META_LABEL,
  TEXT_LABEL,
  type AppendInput,
  type AppendResult,
  type DeliveryRecipient,
  type DeliveryOutcome,
  type IngestedBody,
  type PreparedBody,
  indexEntryOf,
  contentContext,
  messageKey,
  cacheWritten,
  sentDayOf,
  notFound,
} from './store-common.js';

/** Raw header blocks up to this size are kept in the sealed metadata (FETCH BODY[HEADER] of many). */
const RAW_HEADER_LIMIT = 64 * 1024;

/**
 * Bodies up to this size wait in memory for their batch's pack (one blob per batch); larger
 * ones (and bodies that stream from the spool) are written on their own as they arrive.
 */
const PACKED_BODY_LIMIT = 1024 * 1024;

/** Users whose term hashers are kept, at most (then forgotten all at once). */
const MAX_TERM_HASHERS = 16;

function utcDay(date: Date): number {
  return date.getUTCFullYear() * 10_000 + (date.getUTCMonth() + 1) * 100 + date.getUTCDate();
}

export class MessageWriter extends StorePart {
  /** Term hashers of the users written to lately (their memos save most HMACs). */
  private readonly termHashers = new Map<string, TermHasher>();

  /**
   * Reads a message once: parses it with libs/mime and encrypts it into the blob store as it
   * streams (neither the body nor its ciphertext is held in memory whole). With `refs`, the
   * body's reference document is inserted once the body is durable, holding that many references.
   */
  private async ingest(
    source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    declaredSize?: number,
    refs?: number,
  ): Promise<IngestedBody> {
    const body = await this.parseAndSeal(source, 'own', declaredSize, refs);
    if (body.blob === undefined) throw new Error('body not written');
    return { ...body, blob: body.blob };
  }

  /**
   * `ingest`, or with `pack` the body sealed in memory only, to be written with the other bodies
   * of its delivery batch (`storePacked`).
   */
  private async parseAndSeal(
    source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    into: 'own' | 'pack',
    declaredSize?: number,
    refs?: number,
  ): Promise<PreparedBody> {
    const blobId = new ObjectId();
    const contentKey = randomBytes(32);
    const indexer = new MimeIndexer({ searchTextBytes: this.limits.searchTextBytes });
    const head: Buffer[] = [];
    let headBytes = 0;
    let size = 0;
    let result: IndexResult | undefined;
    const limits = this.limits;
    // The message as it streams in: checked, kept for the header, indexed, then sealed and put.
    async function* checked(): AsyncGenerator<Uint8Array> {
      for await (const chunk of source) {
        size += chunk.length;
        if (size > limits.maxMessageBytes) {
          throw new MailstoreError(ErrorReason.TOO_BIG, 'message larger than the limit');
        }
        if (declaredSize !== undefined && size > declaredSize) {
          throw new MailstoreError(
            ErrorReason.INVALID_ARGUMENT,
            'message longer than its declared size',
            'header.size',
          );
        }
        if (headBytes < RAW_HEADER_LIMIT) {
          head.push(Buffer.from(chunk.subarray(0, RAW_HEADER_LIMIT - headBytes)));
          headBytes += Math.min(chunk.length, RAW_HEADER_LIMIT - headBytes);
        }
        indexer.write(chunk);
        yield chunk;
      }
      if (declaredSize !== undefined && size !== declaredSize) {
        throw new MailstoreError(
          ErrorReason.INVALID_ARGUMENT,
          'message shorter than its declared size',
          'header.size',
        );
      }
      result = indexer.end();
    }
    let blob: StoredBody | undefined;
    let sealed: SealedBody | undefined;
    // A failed put leaves nothing behind (BlobStore.put).
    if (into === 'pack') sealed = await sealBody(blobId, contentKey, checked());
    else blob = await writeBody(this.blobs, blobId, contentKey, checked());
    if (result === undefined) throw new Error('message stream ended without being indexed');
    if (refs !== undefined && blob !== undefined) {
      try {
        await insertBlobRefs(this.db, [newBlobRef(blobId, refs, blob.store)]);
      } catch (error) {
        await this.blobs.primary.delete(blobId.toHexString()).catch((cause: unknown) => {
          // Swept later: a body without a reference document.
          this.logger.warn(
            { err: cause, blobId: blobId.toHexString() },
            'could not remove an unreferenced blob',
          );
        });
        throw error;
      }
    }
    const headerEnd = result.bodystructure.offsets.bodyStart;
    const rawHeader = headerEnd <= headBytes ? Buffer.concat(head).subarray(0, headerEnd) : null;
    const meta: SealedMeta = {
      envelope: result.envelope,
      bodystructure: result.bodystructure,
      headers: result.headers,
      rawHeader: rawHeader === null ? null : rawHeader.toString('base64'),
    };
    const addresses = (list: readonly { name: string | null; address: string }[]) =>
      list.map((a) => `${a.name ?? ''} ${a.address}`);
    const body = result.textForSearch ?? '';
    const sentDay = sentDayOf(result.envelope.date);
    return {
      blobId,
      blob,
      sealed,
      contentKey,
      size,
      meta: seal(contentKey, META_LABEL, blobId, Buffer.from(JSON.stringify(meta), 'utf8')),
      searchText: body === '' ? null : seal(contentKey, TEXT_LABEL, blobId, Buffer.from(body, 'utf8')),
      trigrams: trigramsFor({
        subject: result.headers.subject,
        from: addresses(result.headers.from),
        to: addresses(result.headers.to),
        cc: addresses(result.headers.cc),
        bcc: addresses(result.headers.bcc),
        body,
      }),
      sentDate: result.headers.date === null ? null : new Date(result.headers.date),
      sentDay,
    };
  }

  /** The user's term hasher, kept (with its memo) while the user's search key stays the same. */
  async termHasher(userId: string): Promise<TermHasher> {
    const key = await this.keyring.searchKey(userId);
    const known = this.termHashers.get(userId);
    if (known !== undefined && Buffer.from(known.searchKey).equals(key)) return known;
    const hasher = new TermHasher(key);
    if (this.termHashers.size >= MAX_TERM_HASHERS) this.termHashers.clear();
    this.termHashers.set(userId, hasher);
    return hasher;
  }

  /**
   * The search entry and message document of a new copy of `body` in `mailbox`, its UID, MODSEQ
   * and `_id` still to be allocated.
   */
  async newMessage(
    mailbox: MailboxRecord,
    body: IngestedBody,
    flags: readonly string[],
    internalDate: Date,
    delivery: { spoolId: string; recipient?: string; traceId?: string } | undefined,
  ): Promise<{ entry: SearchIndexDoc; doc: MessageRecord }> {
    const userId = mailbox.userId;
    const { terms, complete } = termsFor(await this.termHasher(userId), body.trigrams);
    const contentKey = await this.keyring.wrapForUser(userId, body.contentKey, contentContext(body.blobId));
    const mailboxId = mailbox._id.toHexString();
    const searchId = new ObjectId();
    return {
      entry: {
        _id: searchId,
        userId,
        mailboxId,
        terms,
        termsComplete: complete,
        searchText: body.searchText,
      },
      doc: {
        _id: '',
        searchId,
        userId,
        mailboxId,
        uid: 0,
        modseq: 0,
        flags: [...flags],
        internalDate,
        size: body.size,
        blobId: body.blobId,
        blob: body.blob,
        contentKey,
        meta: body.meta,
        terms: [],
        sentDate: body.sentDate ?? internalDate,
        sentDay: body.sentDay ?? utcDay(internalDate),
        ...(delivery === undefined ? {} : delivery),
      },
    };
  }

  /**
   * Writes one mailbox's message document for an ingested body (the blob ref is already held).
   *
   * Appends to one mailbox are committed in groups: whoever arrives while the mailbox's lock is
   * busy joins the next group, and a group costs one insert of search entries, one allocation of
   * its UIDs and MODSEQs (`$inc` by the group's size), one insert of messages and one usage
   * update per user, instead of four writes per message. On FerretDB (SQLite) every write is a
   * transaction with its own fsync and writes are serialised, so writes per message bound the
   * append rate (docs/benchmarks.md). Each message still gets its own UID and MODSEQ, in arrival
   * order.
   */
  async insertMessage(
    mailbox: MailboxRecord,
    body: IngestedBody,
    flags: readonly string[],
    internalDate: Date,
    delivery: { spoolId: string; recipient?: string; own?: WriteTag } | undefined,
    own: WriteTag | undefined = delivery?.own,
    atomic?: AtomicWrite & { blobRef: BlobRefDoc },
  ): Promise<{ uid: number; modseq: number }> {
    const { entry, doc } = await this.newMessage(mailbox, body, flags, internalDate, delivery);
    if (own !== undefined) {
      doc.own = own;
      entry.own = own;
    }
    const mailboxId = mailbox._id.toHexString();
    return new Promise((resolve, reject) => {
      const item: PendingInsert = {
        entry,
        doc,
        resolve,
        reject,
        stored: false,
        ...(atomic === undefined
          ? {}
          : { atomic: { write: atomic.write, guard: atomic.guard }, blobRef: atomic.blobRef }),
      };
      const key = this.lockKey(mailboxId);
      const queue = this.rt.pendingInserts.get(key);
      if (queue !== undefined) {
        queue.push(item);
        return;
      }
      this.rt.pendingInserts.set(key, [item]);
      let group: PendingInsert[] = [];
      const settle = (error: unknown): void => {
        // A message that got written is reported stored even if others of its group failed:
        // its caller must keep the blob reference it holds.
        // (Quota usage is the mailbox counters the group moved: nothing to write for it.)
        for (const it of group) {
          if (it.stored) it.resolve({ uid: it.doc.uid, modseq: it.doc.modseq });
          else it.reject(error ?? new Error('message not stored'));
        }
      };
      this.rt
        .withCounterLock(key, async () => {
          group = this.rt.pendingInserts.get(key) ?? [];
          this.rt.pendingInserts.delete(key);
          // Those of one way of writing (and one guard) at a time; in practice all of them.
          const ways = new Map<string, PendingInsert[]>();
          for (const it of group) {
            const way = it.atomic === undefined ? '' : JSON.stringify(it.atomic.guard?.filter ?? null);
            ways.set(way, [...(ways.get(way) ?? []), it]);
          }
          for (const part of ways.values()) await this.commitGroup(mailbox, part);
        })
        .then(
          () => settle(null),
          (error: unknown) => settle(error),
        );
    });
  }

  /**
   * Stores a group of new messages of one mailbox (the caller holds its lock): search entries
   * first (a message is never visible without its entry; an entry without a message, left by a
   * crash, matches nothing because search joins on the message), then UIDs and MODSEQs, then the
   * messages. Sets `uid`, `modseq` and `_id` of each document.
   */
  private async commitGroup(mailbox: MailboxRecord, group: readonly PendingInsert[]): Promise<void> {
    if (group.length === 0) return;
    const mailboxId = mailbox._id.toHexString();
    const atomic = group[0]?.atomic;
    // Shared with the other groups of this process committing now (group commit, ADR 0007).
    // Written atomically, the entries go in the messages' transaction (ADR 0014).
    if (atomic === undefined) {
      await groupInsert(
        this.db,
        this.searchIndex(),
        group.map((it) => it.entry),
      );
    }
    let todo = [...group];
    let allocated: PendingInsert[] = [];
    try {
      for (let attempt = 0; todo.length > 0; attempt++) {
        const counters = {
          messages: todo.length,
          size: todo.reduce((n, it) => n + it.doc.size, 0),
          unseen: todo.filter((it) => !it.doc.flags.includes(SEEN)).length,
          deleted: todo.filter((it) => it.doc.flags.includes(DELETED)).length,
        };
        // RFC 9051 §2.3.1.1 / RFC 7162 §3.1: UIDs and MODSEQs allocated before the write. The
        // owner with a current index entry allocates in memory (`advanceCounters`); otherwise the
        // document `after` (the values before follow from the increments) keeps the owner's copy
        // of the mailbox, so the next SELECT or FETCH does not read it back.
        const current = (): MailboxIndexEntry | undefined => {
          const known = mailboxRecords.byId(this.db, mailboxId);
          return known === undefined || known.uidNext > MAX_UID - todo.length + 1
            ? undefined
            : index.get(mailboxId, known.highestModseq);
        };
        let entry = current();
        if (entry !== undefined && !(await this.s.flags.holdCounters(mailbox))) entry = undefined;
        const moved =
          entry !== undefined && current() === entry
            ? mailboxRecords.advance(this.db, mailboxId, {
                uidNext: todo.length,
                highestModseq: todo.length,
                ...counters,
              })
            : undefined;
        if (moved !== undefined) this.s.flags.countersAhead();
        const after =
          moved !== undefined
            ? moved.after
            : await mailboxes(this.db).findOneAndUpdate(
                { _id: mailbox._id, uidNext: { $lte: MAX_UID - todo.length + 1 } },
                { $inc: { uidNext: todo.length, highestModseq: todo.length, ...counters } },
                { returnDocument: 'after' },
              );
        const before =
          after === null
            ? null
            : { uidNext: after.uidNext - todo.length, highestModseq: after.highestModseq - todo.length };
        if (before === null) {
          const exists = await mailboxes(this.db).countDocuments({ _id: mailbox._id }, { limit: 1 });
          if (exists === 0) throw notFound('mailbox', 'mailbox');
          throw new MailstoreError(ErrorReason.LIMIT_EXCEEDED, 'mailbox ran out of UIDs');
        }
        todo.forEach((it, i) => {
          it.doc.uid = before.uidNext + i;
          it.doc.modseq = before.highestModseq + 1 + i;
          it.doc._id = messageKey(mailboxId, it.doc.uid);
        });
        allocated = todo;
        const refused =
          atomic === undefined
            ? await this.insertNew(todo.map((it) => it.doc))
            : await this.insertAtomically(mailbox.userId, atomic, todo);
        allocated = [];
        todo.forEach((it, i) => {
          if (!refused.has(i)) it.stored = true;
        });
        const written = todo.filter((_, i) => !refused.has(i)).map((it) => it.doc);
        cacheWritten(written);
        index.patch(mailboxId, before.highestModseq, before.highestModseq + todo.length, (entry) =>
          entry.add(written.map(indexEntryOf)),
        );
        if (refused.size === 0) return;
        const lost = todo.filter((_, i) => refused.has(i));
        await this.s.flags.takeBackCounters(
          mailbox,
          this.s.transfer.counterDecrementsOf(lost.map((it) => it.doc)),
        );
        // The unique `_id` (and `(mailboxId, uid)`) refused UIDs another process also got
        // (possible only where updates are not atomic, see `withCounterLock`): allocate again, leaving gaps.
        if (attempt >= 10) throw new Error('could not allocate a free UID in 10 attempts');
        todo = lost;
      }
    } catch (error) {
      // Messages whose insert failed leave the counters they were given (UIDs and MODSEQs stay
      // used: gaps).
      if (allocated.length > 0) {
        await this.s.flags.takeBackCounters(
          mailbox,
          this.s.transfer.counterDecrementsOf(allocated.map((it) => it.doc)),
        );
      }
      // Written atomically, nothing of them was.
      if (atomic === undefined) {
        await this.searchIndex()
          .deleteMany({ _id: { $in: todo.map((it) => it.entry._id) } })
          .catch(() => undefined);
      }
      throw error;
    }
  }

  /**
   * Writes the bodies' references, search entries and messages of `todo` in one transaction,
   * checked against the partition's guard (ADR 0014). Answers every index as refused when a
   * message's `_id` or `(mailboxId, uid)` was taken (the transaction wrote nothing); a failed guard
   * is NOT_OWNER, and what the caches hold of the user's partition is read again.
   */
  private async insertAtomically(
    userId: string,
    atomic: NonNullable<PendingInsert['atomic']>,
    todo: readonly PendingInsert[],
  ): Promise<Set<number>> {
    const refs = todo.flatMap((it) => (it.blobRef === undefined ? [] : [it.blobRef]));
    try {
      await atomic.write(atomic.guard, [
        ...(refs.length === 0 ? [] : [{ collection: Collections.blobRefs, docs: refs }]),
        { collection: MailstoreCollections.searchIndex, docs: todo.map((it) => it.entry) },
        { collection: Collections.messages, docs: todo.map((it) => it.doc) },
      ]);
      return new Set();
    } catch (error) {
      if (guardFailed(error)) throw this.refusedByGuard(error, userId, atomic.guard);
      // One message's key taken (its bulk's first error, E11000): none of them was written.
      if (isDuplicateKey(error)) {
        return new Set(todo.map((_, i) => i));
      }
      throw error;
    }
  }

  /**
   * Inserts new message documents; returns the indexes refused as duplicates. Any other failure
   * takes the counters of every document back out and throws.
   */
  private async insertNew(docs: readonly MessageRecord[]): Promise<Set<number>> {
    try {
      // Shared with the other inserts of messages of this process now (group commit, ADR 0007).
      return await groupInsert(this.db, this.messages(), docs);
    } catch (error) {
      const reported: OneOrMore<WriteError> | null =
        error instanceof MongoBulkWriteError ? error.writeErrors : null;
      const writeErrors: readonly WriteError[] | null =
        reported === null
          ? null
          : Array.isArray(reported)
            ? (reported as readonly WriteError[])
            : [reported as WriteError];
      if (writeErrors !== null && writeErrors.length > 0 && writeErrors.every((e) => e.code === 11000)) {
        return new Set(writeErrors.map((e) => e.index));
      }
      if (isDuplicateKey(error) && docs.length === 1) return new Set([0]);
      throw error;
    }
  }

  /** RFC 9051 §6.3.12 APPEND with RFC 4315 §3 APPENDUID. */
  async appendMessage(input: AppendInput, body: AsyncIterable<Uint8Array>): Promise<AppendResult> {
    const declared = input.declaredSize;
    if (declared !== undefined && declared > this.limits.maxMessageBytes) {
      throw new MailstoreError(ErrorReason.TOO_BIG, 'message larger than the limit', 'header.size');
    }
    // Both reads at once; a missing mailbox is reported before an exceeded quota, as one by one.
    const [found, quota] = await Promise.allSettled([
      this.s.boxes.resolveMailbox(input.userId, input.mailbox, 'header.mailbox'),
      declared === undefined ? null : this.s.quota.checkQuota(input.userId, declared),
    ]);
    if (found.status === 'rejected') throw found.reason;
    if (quota.status === 'rejected') throw quota.reason;
    const mailbox = found.value;
    // One transaction with the body's reference and the partition's guard, or a confirm after
    // (ADR 0014). Asked first: a replica that does not own the user reads no body.
    const atomic = await this.atomicWrite(input.userId);
    // With a declared size, `ingest` accepts exactly that many octets, already checked against the
    // quota; without one, the quota is checked once the size is known. Written atomically, the
    // body's reference goes with its message.
    const ingested = await this.ingest(body, declared, atomic === undefined ? 1 : undefined);
    const refs = new Map([
      [ingested.blobId.toHexString(), { id: ingested.blobId, n: 1, store: ingested.blob.store }],
    ]);
    try {
      if (declared === undefined) await this.s.quota.checkQuota(input.userId, ingested.size);
    } catch (error) {
      await this.releaseBlobRefs(refs);
      throw error;
    }
    const mailboxId = mailbox._id.toHexString();
    const insert = (own: WriteTag | undefined, atomicWrite?: Parameters<MessageWriter['insertMessage']>[6]) =>
      this.insertMessage(
        mailbox,
        ingested,
        input.flags,
        input.internalDate ?? new Date(),
        input.spoolId === undefined ? undefined : { spoolId: input.spoolId },
        own,
        atomicWrite,
      );
    if (atomic !== undefined) {
      let stored: { uid: number; modseq: number };
      try {
        stored = await insert(undefined, {
          ...atomic,
          blobRef: newBlobRef(ingested.blobId, 1, ingested.blob.store),
        });
      } catch (error) {
        // Its reference was not written: the release finds none and deletes the body.
        await this.releaseBlobRefs(refs);
        throw error;
      }
      this.onChanged(input.userId, { mailboxId, highestModseq: stored.modseq });
      return { mailboxId, uidValidity: mailbox.uidValidity, ...stored };
    }
    let stored: { uid: number; modseq: number };
    let write: Awaited<ReturnType<MessageWriter['beginWrite']>>;
    try {
      // Tagged with its partition's (epoch, seq) and confirmed before the OK (ADR 0007).
      write = await this.beginWrite(input.userId);
      stored = await insert(write?.tag).catch((error: unknown) => {
        write?.abandon();
        throw error;
      });
    } catch (error) {
      await this.releaseBlobRefs(refs);
      throw error;
    }
    await this.confirmWrite(write, input.userId, async (tag) => {
      // Never counted: its message, search entry and body reference go (no tombstone: no client
      // was told of its UID, and no owner counted it).
      const id = messageKey(mailboxId, stored.uid);
      const removed = await this.messages().deleteOne({ _id: id, ...taggedWith(tag) });
      await this.searchIndex().deleteMany({ mailboxId, ...taggedWith(tag) });
      if (removed.deletedCount > 0) await this.releaseBlobRefs(refs);
    });
    this.onChanged(input.userId, { mailboxId, highestModseq: stored.modseq });
    return { mailboxId, uidValidity: mailbox.uidValidity, ...stored };
  }

  /**
   * Inbound delivery of one job (DESIGN §2 steps 5–6): the body is encrypted and written once,
   * and a message is stored in each recipient's mailbox, as a batch of one (`commitDeliveries`).
   * `(spoolId, recipient)` is the idempotency key: a redelivered job stores nothing twice.
   */
  async deliverToMailboxes(
    spoolId: string,
    body: Uint8Array | AsyncIterable<Uint8Array>,
    recipients: readonly DeliveryRecipient[],
    receivedAt: Date = new Date(),
  ): Promise<DeliveryOutcome[]> {
    const prepared = await this.prepareDelivery(body);
    const [result] = await this.s.batches.commitDeliveries([
      { spoolId, body: prepared, recipients, receivedAt },
    ]);
    if (result === undefined) throw new Error('delivery not committed');
    if (!result.ok) throw result.error;
    return [...result.outcomes];
  }

  /**
   * Parses and encrypts a delivery's body once, ahead of its batch's commit: a body in memory of
   * up to PACKED_BODY_LIMIT octets waits there for its batch's pack (written by
   * `commitDeliveries`); any other is written on its own now.
   */
  prepareDelivery(body: Uint8Array | AsyncIterable<Uint8Array>): Promise<PreparedBody> {
    if (body instanceof Uint8Array && body.length <= PACKED_BODY_LIMIT) {
      return this.parseAndSeal([body], 'pack');
    }
    return this.parseAndSeal(body instanceof Uint8Array ? [body] : body, 'own');
  }

  /** Removes a prepared body that no commit will reference (its job failed before). */
  async discardPrepared(body: PreparedBody): Promise<void> {
    // Never written (or its pack failed): nothing to remove.
    if (body.blob === undefined) return;
    // A body of a pack: its own copies were released by its commit; the pack goes with the
    // last reference of any of its bodies, which this release (of none) deletes if it is gone.
    const id = bodyRefId(body.blobId, body.blob);
    await this.releaseBlobRefs(new Map([[id.toHexString(), { id, n: 0, store: body.blob.store }]]));
  }
}
