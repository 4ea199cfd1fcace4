/**
 * The delivery side of the message writer: a batch of deliveries committed at once
 * (`commitDeliveries`, ADR 0007 commit-then-confirm), idempotent by `deliveries` record, and the
 * clean-up of a partition batch whose confirm never came (`discardWrites`).
 */
import { MAX_UID } from '@postmesh/contracts';
import {
  MongoBulkWriteError,
  ObjectId,
  type Collection,
  type Document,
  type Filter,
  type OptionalUnlessRequiredId,
  type OneOrMore,
  type WriteError,
} from 'mongodb';
import { Collections } from '../db/schema.js';
import { insertBlobRefs, newBlobRef, type BlobRefDoc } from '../blob/index.js';
import { bodyRefId, isDuplicateKey, writePack, type SealedBody } from './blob-store.js';
import { ErrorReason } from './contract.js';
import { MailstoreError } from './errors.js';
import { sharedMailboxIndex as index } from './mailbox-index.js';
import { createDefaultMailboxes, mailboxes } from './mailboxes.js';
import type { DeliveryRecord, MailboxRecord, MessageRecord, SearchIndexDoc, WriteTag } from './types.js';
import { StorePart } from './store-part.js';
import { flagChanges, type FlagChangeDoc, type PendingTombstoneDoc } from './pending-changes.js';
import {
  type DeliveryRecipient,
  type DeliveryOutcome,
  type IngestedBody,
  isDatabaseBusy,
  type BatchDelivery,
  type BatchDeliveryResult,
  counters,
  indexEntryOf,
  messageKey,
  cacheWritten,
  deliveryKey,
  searchIdOf,
  notFound,
  refsOf,
} from './store-common.js';

/** A pack takes bodies up to about this many octets; a batch with more writes several. */
const PACK_BYTES = 16 * 1024 * 1024;

/** Whole-batch retries of a delivery commit the database refused as busy, and the first pause. */
const BUSY_RETRIES = 4;

const BUSY_BACKOFF_MS = 100;

/** One copy of a batch on its way into a mailbox. */
interface DeliveryRow {
  readonly item: number;
  readonly recipient: DeliveryRecipient;
  readonly mailbox: MailboxRecord;
  readonly entry: SearchIndexDoc;
  readonly doc: MessageRecord;
  record: DeliveryRecord | undefined;
  state: 'accepted' | 'allocated' | 'recorded' | 'stored' | 'redelivered' | 'failed';
}

/** MongoDB's duplicate-key error code (also FerretDB's). */
const DUPLICATE_KEY = 11000;

/** A document refused by a bulk insert. */
interface WriteProblem {
  readonly code: number;
  readonly message: string;
}

/** A delivery's recipients, each once (by address): one copy each at most. */
function distinctRecipients(delivery: BatchDelivery): DeliveryRecipient[] {
  return [...new Map(delivery.recipients.map((r) => [r.recipient, r])).values()];
}

/** The copies a delivery's commit tries to store, which its pack's reference counts (storePacked). */
function plannedCopies(delivery: BatchDelivery): number {
  return distinctRecipients(delivery).length;
}

function writeFailure(what: string, problem: WriteProblem): Error {
  return new Error(`${what} not written: ${problem.message} (code ${problem.code})`);
}

/**
 * Inserts `docs` with one unordered bulk write; answers the problem of each refused document by
 * its index in `docs`. What is not a per-document refusal (the connection, the write concern) is
 * thrown.
 */
async function insertUnordered<T extends Document>(
  collection: Collection<T>,
  docs: readonly OptionalUnlessRequiredId<T>[],
): Promise<Map<number, WriteProblem>> {
  if (docs.length === 0) return new Map();
  try {
    await collection.insertMany([...docs], { ordered: false });
    return new Map();
  } catch (error) {
    if (error instanceof MongoBulkWriteError && error.writeConcernError === undefined) {
      const reported: OneOrMore<WriteError> = error.writeErrors;
      const list = Array.isArray(reported) ? (reported as readonly WriteError[]) : [reported as WriteError];
      if (list.length > 0) {
        return new Map(list.map((e) => [e.index, { code: e.code, message: e.errmsg ?? 'refused' }]));
      }
    }
    if (docs.length === 1 && isDuplicateKey(error)) {
      return new Map([[0, { code: DUPLICATE_KEY, message: 'duplicate key' }]]);
    }
    throw error;
  }
}

/** Documents written in exactly this delivery batch. */
function ownFilter(tag: WriteTag): { 'own.p': number; 'own.e': number; 'own.s': number } {
  return { 'own.p': tag.p, 'own.e': tag.e, 'own.s': tag.s };
}

/** Mailboxes remembered for delivery, at most (then forgotten all at once). */
const MAX_DELIVERY_TARGETS = 100_000;

function targetKey(userId: string, path: string): string {
  return `${userId}\u0000${path}`;
}

export class DeliveryCommit extends StorePart {
  /** Delivery targets by user and path: a mailbox's `_id` never changes, its path is checked on use. */
  private readonly deliveryTargets = new Map<string, MailboxRecord>();

  /** The clean-up of unconfirmed writes running now, and the one collecting callers for after it. */
  private discarding: Promise<unknown> = Promise.resolve();

  private queuedDiscard:
    | {
        readonly messages: Filter<MessageRecord>[];
        readonly records: Filter<DeliveryRecord>[];
        readonly run: Promise<number>;
      }
    | undefined;

  /**
   * Writes the bodies of `batch` still sealed in memory, as packs (`writePack`: one blob and one
   * fsync for many bodies), each with its reference document counting every copy its bodies'
   * deliveries are about to store (so the commit writes no reference of its own for them, and
   * releases what it does not store). Answers, per delivery, why it cannot be committed (its
   * pack was not written), or undefined.
   */
  private async storePacked(batch: readonly BatchDelivery[]): Promise<unknown[]> {
    const errors: unknown[] = batch.map(() => undefined);
    const waiting = [...batch.entries()].filter(
      ([, d]) => d.body.blob === undefined && d.body.sealed !== undefined,
    );
    const groups: [number, BatchDelivery][][] = [];
    let bytes = Infinity;
    for (const entry of waiting) {
      const size = entry[1].body.sealed?.length ?? 0;
      if (bytes + size > PACK_BYTES) {
        groups.push([]);
        bytes = 0;
      }
      groups[groups.length - 1]?.push(entry);
      bytes += size;
    }
    for (const group of groups) {
      const store = this.blobs.primary;
      let packId: ObjectId | undefined;
      try {
        const written = await writePack(
          this.blobs,
          group.map(([, d]) => d.body.sealed as SealedBody),
        );
        packId = written.packId;
        const copies = group.reduce((n, [, d]) => n + plannedCopies(d), 0);
        await insertBlobRefs(this.db, [newBlobRef(written.packId, copies, store.kind)]);
        group.forEach(([, d], k) => {
          d.body.blob = written.stored[k];
          d.body.sealed = undefined;
        });
      } catch (error) {
        for (const [item] of group) errors[item] = error;
        if (packId !== undefined) {
          const id = packId.toHexString();
          await store.delete(id).catch((cause: unknown) => {
            // Swept later: a pack without a reference document.
            this.logger.warn({ err: cause, blobId: id }, 'could not remove an unreferenced pack');
          });
        }
      }
    }
    return errors;
  }

  /**
   * Commits the deliveries of a batch of jobs with one unordered bulk write per collection (blob
   * references, search entries, idempotency records, messages), one counter update per mailbox
   * and one usage update per user, instead of about twenty writes and reads per message: on
   * FerretDB every write is a transaction of its own and every read a scan of its collection
   * (docs/adr/0007-storage-ownership-and-write-path.md). Answers one result per delivery, in order.
   *
   * - No read on the way: mailboxes come from memory after their first use, quotas from one read
   *   of the batch's users, and "already delivered?" from the insert of the `(spoolId, recipient)`
   *   record itself, which a redelivered job's copy fails with a duplicate key. Only those copies
   *   (jobs that came back after a crash) take the slow path that reads (`settleRedelivery`).
   * - The record goes in before its message, both under the mailbox's lock after the UIDs were
   *   allocated, so a message is never stored without its record; a record without its message
   *   (a crash in between) is found and completed by the slow path.
   * - A document refused for any other reason fails only its own delivery; a failure of the batch
   *   as a whole is retried delivery by delivery, so one poisoned job never fails the others.
   */
  async commitDeliveries(
    batch: readonly BatchDelivery[],
    tag?: WriteTag,
    busyAttempt = 0,
  ): Promise<BatchDeliveryResult[]> {
    const unwritten = await this.storePacked(batch);
    if (unwritten.some((e) => e !== undefined)) {
      const ready = batch.flatMap((d, item) => (unwritten[item] === undefined ? [d] : []));
      const results = ready.length === 0 ? [] : await this.commitDeliveries(ready, tag);
      let next = 0;
      return batch.map((_, item) => {
        const error = unwritten[item];
        if (error !== undefined) return { ok: false, error };
        return results[next++] ?? { ok: false, error: new Error('not committed') };
      });
    }
    try {
      return await this.commitBatch(batch, tag);
    } catch (error) {
      // The database's writer was busy (FerretDB on SQLite): the batch is fine, so it is tried
      // again whole after a pause, rather than as one commit per delivery, which busies it more.
      if (busyAttempt < BUSY_RETRIES && isDatabaseBusy(error)) {
        this.logger.warn(
          { err: error, deliveries: batch.length, attempt: busyAttempt + 1 },
          'database busy; committing the batch again',
        );
        await new Promise((r) => setTimeout(r, BUSY_BACKOFF_MS * 2 ** busyAttempt * (0.5 + Math.random())));
        return this.commitDeliveries(batch, tag, busyAttempt + 1);
      }
      if (batch.length <= 1) return batch.map(() => ({ ok: false, error }));
      this.logger.warn(
        { err: error, deliveries: batch.length },
        'batch commit failed as a whole; committing its deliveries one by one',
      );
      const results: BatchDeliveryResult[] = [];
      for (const delivery of batch) results.push(...(await this.commitDeliveries([delivery], tag)));
      return results;
    }
  }

  private async commitBatch(batch: readonly BatchDelivery[], tag?: WriteTag): Promise<BatchDeliveryResult[]> {
    const outcomes: DeliveryOutcome[][] = batch.map(() => []);
    const errors: unknown[] = batch.map(() => undefined);
    const fail = (row: DeliveryRow, error: unknown): void => {
      row.state = 'failed';
      errors[row.item] ??= error;
    };
    const deliveryOf = (row: DeliveryRow): BatchDelivery => batch[row.item] as BatchDelivery;
    // Every body is written by now (storePacked, or prepareDelivery for a body on its own).
    const bodies = batch.map((d): IngestedBody | undefined =>
      d.body.blob === undefined ? undefined : { ...d.body, blob: d.body.blob },
    );
    const bodyOf = (item: number): IngestedBody => {
      const body = bodies[item];
      if (body === undefined) throw new Error('delivery body not written');
      return body;
    };

    const targets: { item: number; recipient: DeliveryRecipient; mailbox: MailboxRecord }[] = [];
    for (const [item, delivery] of batch.entries()) {
      if (bodies[item] === undefined) {
        errors[item] = new Error('delivery body not written');
        continue;
      }
      for (const recipient of distinctRecipients(delivery)) {
        try {
          const mailbox = await this.deliveryMailbox(recipient);
          if (mailbox === null)
            outcomes[item]?.push({ status: 'no-mailbox', recipient: recipient.recipient });
          else targets.push({ item, recipient, mailbox });
        } catch (error) {
          errors[item] ??= error;
        }
      }
    }
    // RFC 9208 §5: what each user may still store, from one read, less this batch's own copies.
    const room = await this.s.quota.quotaRoom(targets.map((t) => t.recipient.userId));
    const rows: DeliveryRow[] = [];
    for (const target of targets) {
      if (errors[target.item] !== undefined) continue;
      const size = bodyOf(target.item).size;
      const left = room.bytes.get(target.recipient.userId);
      const leftMessages = room.messages.get(target.recipient.userId);
      if ((left !== undefined && left < size) || (leftMessages !== undefined && leftMessages < 1)) {
        outcomes[target.item]?.push({ status: 'over-quota', recipient: target.recipient.recipient });
        continue;
      }
      if (left !== undefined) room.bytes.set(target.recipient.userId, left - size);
      if (leftMessages !== undefined) room.messages.set(target.recipient.userId, leftMessages - 1);
      const delivery = batch[target.item] as BatchDelivery;
      const built = await this.s.writer.newMessage(
        target.mailbox,
        bodyOf(target.item),
        target.recipient.flags ?? [],
        delivery.receivedAt,
        {
          spoolId: delivery.spoolId,
          recipient: target.recipient.recipient,
          ...(delivery.traceId === undefined ? {} : { traceId: delivery.traceId }),
        },
      );
      const own = delivery.tag ?? tag;
      if (own !== undefined) built.doc.own = own;
      rows.push({ ...target, ...built, record: undefined, state: 'accepted' });
    }

    // Blob references before the copies that hold them (a crash in between leaks, never loses).
    const refCounts = new Map<number, number>();
    for (const row of rows) refCounts.set(row.item, (refCounts.get(row.item) ?? 0) + 1);
    // A packed body's copies are counted already, in its pack's reference (storePacked).
    const refItems = [...refCounts.keys()].filter((item) => bodyOf(item).blob.pack === undefined);
    const refErrors = await insertUnordered(
      this.db.collection<BlobRefDoc>(Collections.blobRefs),
      refItems.map((item) => {
        const body = bodyOf(item);
        return newBlobRef(body.blobId, refCounts.get(item) ?? 0, body.blob.store);
      }),
    );
    const refFailed = new Map<number, WriteProblem>();
    refItems.forEach((item, i) => {
      const problem = refErrors.get(i);
      // A duplicate is this very reference, written by a batch commit that then failed as a whole.
      if (problem !== undefined && problem.code !== DUPLICATE_KEY) refFailed.set(item, problem);
    });
    for (const row of rows) {
      const problem = refFailed.get(row.item);
      if (problem !== undefined) fail(row, writeFailure('blob reference', problem));
    }
    // Search entries before messages: a message is never visible without its entry; an entry
    // without a message matches nothing (search joins on the message).
    const indexing = rows.filter((r) => r.state === 'accepted');
    const entryErrors = await insertUnordered(
      this.searchIndex(),
      indexing.map((r) => r.entry),
    );
    indexing.forEach((row, i) => {
      const problem = entryErrors.get(i);
      if (problem !== undefined) fail(row, writeFailure('search entry', problem));
    });

    const byMailbox = new Map<string, DeliveryRow[]>();
    for (const row of rows) {
      if (row.state !== 'accepted') continue;
      const id = row.mailbox._id.toHexString();
      byMailbox.set(id, [...(byMailbox.get(id) ?? []), row]);
    }
    await this.underLocks(
      [...byMailbox.keys()].map((id) => this.lockKey(id)),
      () => this.writeMessages(byMailbox, fail),
    );

    // Quota usage is the mailbox counters `writeMessages` moved: nothing to write for it.
    const changed = new Set(rows.filter((row) => row.state === 'stored').map((row) => row.doc.userId));
    const holding = new Map<number, number>();
    for (const row of rows) {
      if (row.state === 'stored') {
        outcomes[row.item]?.push({
          status: 'delivered',
          recipient: row.recipient.recipient,
          mailboxId: row.doc.mailboxId,
          uid: row.doc.uid,
        });
        holding.set(row.item, (holding.get(row.item) ?? 0) + 1);
      } else if (row.state === 'redelivered') {
        try {
          const settled = await this.settleRedelivery(row, deliveryOf(row), bodyOf(row.item));
          outcomes[row.item]?.push(settled.outcome);
          if (settled.holdsReference) {
            holding.set(row.item, (holding.get(row.item) ?? 0) + 1);
            changed.add(row.doc.userId);
          }
        } catch (error) {
          fail(row, error);
        }
      }
    }
    // References that no message holds: copies that were duplicates or failed, and bodies that no
    // copy needed at all (which deletes them).
    for (const [item, delivery] of batch.entries()) {
      const body = bodies[item];
      if (body === undefined) continue;
      const packed = body.blob.pack !== undefined;
      const taken = packed ? plannedCopies(delivery) : refFailed.has(item) ? 0 : (refCounts.get(item) ?? 0);
      const unused = taken - (holding.get(item) ?? 0);
      if (unused > 0 || taken === 0) {
        const id = bodyRefId(body.blobId, body.blob);
        await this.releaseBlobRefs(
          new Map([[id.toHexString(), { id, n: unused, store: body.blob.store }]]),
        ).catch((error: unknown) => {
          this.logger.warn({ err: error, blobId: id.toHexString() }, 'unused body not removed');
        });
      }
    }
    const orphans = rows.filter((r) => r.state !== 'stored').map((r) => r.entry._id);
    if (orphans.length > 0) {
      await this.searchIndex()
        .deleteMany({ _id: { $in: orphans } })
        .catch(() => undefined);
    }
    for (const userId of changed) this.onChanged(userId);
    return batch.map((_, item) =>
      errors[item] === undefined
        ? { ok: true, outcomes: outcomes[item] ?? [] }
        : { ok: false, error: errors[item] },
    );
  }

  /**
   * Allocates the UIDs and MODSEQs of each mailbox's new messages (one counter update per
   * mailbox: RFC 9051 §2.3.1.1, RFC 7162 §3.1), then writes the idempotency records and the
   * messages, each with one bulk insert, and patches the mailbox index. The caller holds the
   * locks of every mailbox in `byMailbox`.
   */
  private async writeMessages(
    byMailbox: ReadonlyMap<string, DeliveryRow[]>,
    fail: (row: DeliveryRow, error: unknown) => void,
  ): Promise<void> {
    const allocations: { mailboxId: string; before: MailboxRecord; rows: DeliveryRow[] }[] = [];
    try {
      for (const [mailboxId, group] of byMailbox) {
        const todo = group.filter((r) => r.state === 'accepted');
        const first = todo[0];
        if (first === undefined) continue;
        const before = await mailboxes(this.db).findOneAndUpdate(
          { _id: first.mailbox._id, path: first.mailbox.path, uidNext: { $lte: MAX_UID - todo.length + 1 } },
          { $inc: { uidNext: todo.length, highestModseq: todo.length, ...counters(todo.map((r) => r.doc)) } },
          { returnDocument: 'before' },
        );
        if (before === null) {
          this.deliveryTargets.delete(targetKey(first.mailbox.userId, first.mailbox.path));
          const exists = await mailboxes(this.db).countDocuments(
            { _id: first.mailbox._id, path: first.mailbox.path },
            { limit: 1 },
          );
          const error =
            exists === 0
              ? notFound('mailbox', 'mailbox')
              : new MailstoreError(ErrorReason.LIMIT_EXCEEDED, 'mailbox ran out of UIDs');
          for (const row of todo) fail(row, error);
          continue;
        }
        todo.forEach((row, i) => {
          row.doc.uid = before.uidNext + i;
          row.doc.modseq = before.highestModseq + 1 + i;
          row.doc._id = messageKey(mailboxId, row.doc.uid);
          row.record = {
            _id: deliveryKey(row.doc.spoolId ?? '', row.recipient.recipient),
            spoolId: row.doc.spoolId ?? '',
            recipient: row.recipient.recipient,
            userId: row.doc.userId,
            mailboxId,
            uid: row.doc.uid,
            messageId: row.doc._id,
            deliveredAt: new Date(),
            ...(row.doc.own === undefined ? {} : { own: row.doc.own }),
          };
          row.state = 'allocated';
        });
        allocations.push({ mailboxId, before, rows: todo });
      }
      const recording = allocations.flatMap((a) => a.rows);
      const recordErrors = await insertUnordered(
        this.deliveries(),
        recording.map((r) => r.record as DeliveryRecord),
      );
      recording.forEach((row, i) => {
        const problem = recordErrors.get(i);
        if (problem === undefined) row.state = 'recorded';
        else if (problem.code === DUPLICATE_KEY) row.state = 'redelivered';
        else fail(row, writeFailure('delivery record', problem));
      });
      const writing = recording.filter((r) => r.state === 'recorded');
      const messageErrors = await insertUnordered(
        this.messages(),
        writing.map((r) => r.doc),
      );
      writing.forEach((row, i) => {
        const problem = messageErrors.get(i);
        if (problem === undefined) row.state = 'stored';
        else fail(row, writeFailure('message', problem));
      });
    } catch (error) {
      // Counters were raised for messages that may not be there: the entries must be rebuilt.
      for (const a of allocations) index.drop(a.mailboxId);
      throw error;
    }
    for (const a of allocations) {
      const stored = a.rows.filter((r) => r.state === 'stored');
      const lost = a.rows.filter((r) => r.state !== 'stored');
      if (lost.length > 0) {
        // Allocated but not written here: their UIDs stay unused (a gap, which IMAP allows).
        await mailboxes(this.db)
          .updateOne(
            { _id: a.before._id },
            { $inc: this.s.transfer.counterDecrementsOf(lost.map((r) => r.doc)) },
          )
          .catch(() => undefined);
      }
      cacheWritten(stored.map((r) => r.doc));
      index.patch(a.mailboxId, a.before.highestModseq, a.before.highestModseq + a.rows.length, (entry) =>
        entry.add(stored.map((r) => indexEntryOf(r.doc))),
      );
    }
  }

  /** Runs `fn` holding every lock of `keys`, taken in one global order so holders never deadlock. */
  underLocks<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(keys)].sort();
    const step = (i: number): Promise<T> => {
      const key = sorted[i];
      return key === undefined ? fn() : this.rt.withCounterLock(key, () => step(i + 1));
    };
    return step(0);
  }

  /** The mailbox a copy goes to (its fallback when that does not exist), from memory after the first time. */
  private async deliveryMailbox(recipient: DeliveryRecipient): Promise<MailboxRecord | null> {
    const paths = [recipient.mailbox ?? 'INBOX'];
    if (recipient.fallbackMailbox !== undefined) paths.push(recipient.fallbackMailbox);
    for (const path of paths) {
      const key = targetKey(recipient.userId, path);
      const known = this.deliveryTargets.get(key);
      if (known !== undefined) return known;
      let mailbox = await mailboxes(this.db).findOne({ userId: recipient.userId, path });
      if (mailbox === null && path === 'INBOX') {
        await createDefaultMailboxes(this.db, recipient.userId);
        mailbox = await mailboxes(this.db).findOne({ userId: recipient.userId, path });
      }
      if (mailbox === null) continue;
      if (this.deliveryTargets.size >= MAX_DELIVERY_TARGETS) this.deliveryTargets.clear();
      this.deliveryTargets.set(key, mailbox);
      return mailbox;
    }
    return null;
  }

  /**
   * A copy whose idempotency record already exists: the job came back (a crash or a lost ack
   * after an earlier attempt). Reads, which is fine off the hot path: if the earlier attempt's
   * message is there (or was since expunged or moved away), this is a duplicate; otherwise the
   * attempt stopped between record and message, and the copy is stored now with a new UID (UIDs
   * only ascend, RFC 9051 §2.3.1.1) and the record pointed at it.
   */
  private async settleRedelivery(
    row: DeliveryRow,
    delivery: BatchDelivery,
    body: IngestedBody,
  ): Promise<{ outcome: DeliveryOutcome; holdsReference: boolean }> {
    const recipient = row.recipient.recipient;
    const spoolId = delivery.spoolId;
    const key = deliveryKey(spoolId, recipient);
    const record =
      (await this.deliveries().findOne({ _id: key })) ??
      (await this.deliveries().findOne({ spoolId, recipient }));
    const copy = record === null ? null : await this.deliveredCopy(record);
    if (copy !== null) {
      return { outcome: { status: 'duplicate', recipient, ...copy }, holdsReference: false };
    }
    const { uid } = await this.s.writer.insertMessage(
      row.mailbox,
      body,
      row.recipient.flags ?? [],
      delivery.receivedAt,
      { spoolId, recipient, ...(row.doc.own === undefined ? {} : { own: row.doc.own }) },
    );
    const mailboxId = row.mailbox._id.toHexString();
    // Upserted even when the record was found: a record that did not count (an unconfirmed batch
    // of a former owner) may be removed meanwhile by the clean-up of such batches, which this
    // owner runs alongside delivery (partitioned-delivery.ts). Without a record the copy stored
    // now would be stored again the next time its job comes back (ADR 0007, Commit-then-confirm).
    await this.deliveries().updateOne(
      { _id: record?._id ?? key },
      {
        $set: {
          spoolId,
          recipient,
          userId: row.recipient.userId,
          mailboxId,
          uid,
          messageId: messageKey(mailboxId, uid),
          deliveredAt: new Date(),
          ...(row.doc.own === undefined ? {} : { own: row.doc.own }),
        },
        // Not tagged now: the former tag must not have the clean-up remove the record later.
        ...(row.doc.own === undefined ? { $unset: { own: '' } } : {}),
      },
      { upsert: true },
    );
    return { outcome: { status: 'delivered', recipient, mailboxId, uid }, holdsReference: true };
  }

  /** Where the copy an idempotency record stands for is (or was), or null if it was never written. */
  private async deliveredCopy(record: DeliveryRecord): Promise<{ mailboxId: string; uid: number } | null> {
    const { spoolId, recipient } = record;
    if (record.own !== undefined && !this.writeCounts(record.own)) {
      // Written by an owner whose batch was never confirmed (ADR 0007): it does not count; its
      // message goes (the caller points the record at the copy it stores now).
      if (record.messageId !== undefined) {
        await this.discardWrites({ _id: record.messageId, ...ownFilter(record.own) });
      }
      return null;
    }
    // Records written before batched delivery got their UID only once their message was written.
    if (record.uid > 0 && record.messageId === undefined)
      return { mailboxId: record.mailboxId, uid: record.uid };
    if (record.messageId !== undefined) {
      const doc = await this.messages().findOne(
        { _id: record.messageId },
        { projection: { spoolId: 1, recipient: 1, mailboxId: 1, uid: 1 } },
      );
      if (doc !== null && doc.spoolId === spoolId && doc.recipient === recipient) {
        return { mailboxId: doc.mailboxId, uid: doc.uid };
      }
      // Expunged or moved away since: delivered all the same (its tombstone says so).
      const gone = await this.tombstones().countDocuments(
        { mailboxId: record.mailboxId, uid: record.uid },
        { limit: 1 },
      );
      if (record.uid > 0 && gone > 0) return { mailboxId: record.mailboxId, uid: record.uid };
    }
    const written = await this.messages().findOne(
      { spoolId, recipient },
      { projection: { mailboxId: 1, uid: 1, own: 1 } },
    );
    if (written?.own !== undefined && !this.writeCounts(written.own)) {
      await this.discardWrites({ _id: written._id, ...ownFilter(written.own) });
      return null;
    }
    return written === null ? null : { mailboxId: written.mailboxId, uid: written.uid };
  }

  /**
   * Removes messages that delivery batches wrote but never got confirmed (ADR 0007, Rebuild), as
   * an EXPUNGE does (counters down, tombstones in, bodies released), and the idempotency records
   * `records` selects, so their jobs, never acked, are delivered again by the partition's owner.
   * Claims first, so several processes discarding the same messages count each once.
   */
  async discardWrites(messages: Filter<MessageRecord>, records?: Filter<DeliveryRecord>): Promise<number> {
    // Clean-ups that arrive while one runs go together in the next (a replica that starts gains
    // all its partitions within a second or two, each with one): on FerretDB each is a decoding
    // scan of the whole messages collection, so 64 of them held a restart's index warm-up back
    // for minutes at 10,000 messages (docs/benchmarks.md). Deleting the union of the filters'
    // documents is what the separate calls would have done; each caller gets the total removed.
    let next = this.queuedDiscard;
    if (next === undefined) {
      const queued = { messages: [] as Filter<MessageRecord>[], records: [] as Filter<DeliveryRecord>[] };
      const run = this.discarding.then(() => {
        this.queuedDiscard = undefined;
        const one = <T>(filters: Filter<T>[]): Filter<T> | undefined =>
          filters.length <= 1 ? filters[0] : ({ $or: filters } as Filter<T>);
        return this.discardNow(one(queued.messages) ?? {}, one(queued.records));
      });
      next = { ...queued, run };
      this.queuedDiscard = next;
      this.discarding = run.catch(() => undefined);
    }
    next.messages.push(messages);
    if (records !== undefined) next.records.push(records);
    return next.run;
  }

  /**
   * Removes the flag records and tombstones `tagged` selects: those of IMAP writes of earlier
   * owners never confirmed (ADR 0007, Rebuild). No owner folds them (`PendingChanges.load`
   * skips them), so they go without touching any message.
   */
  async discardRecords(tagged: Filter<FlagChangeDoc> & Filter<PendingTombstoneDoc>): Promise<number> {
    const changes = await flagChanges(this.db).deleteMany(tagged);
    const tombstones = await this.tombstones().deleteMany(tagged);
    return changes.deletedCount + tombstones.deletedCount;
  }

  private async discardNow(
    messages: Filter<MessageRecord>,
    records?: Filter<DeliveryRecord>,
  ): Promise<number> {
    const found = await this.messages()
      .find(messages, { projection: { terms: 0, meta: 0 } })
      .toArray();
    const byMailbox = new Map<string, MessageRecord[]>();
    for (const doc of found) byMailbox.set(doc.mailboxId, [...(byMailbox.get(doc.mailboxId) ?? []), doc]);
    let removed = 0;
    for (const [mailboxId, docs] of byMailbox) {
      removed += await this.rt.withCounterLock(this.lockKey(mailboxId), async () => {
        const mine = await this.s.transfer.claim(mailboxId, docs);
        const first = mine[0];
        if (first === undefined) return 0;
        await this.messages().deleteMany({ expungeClaim: first.expungeClaim ?? '' });
        await this.searchIndex().deleteMany({ _id: { $in: mine.map(searchIdOf) } });
        const mailbox = await mailboxes(this.db).findOne({ _id: new ObjectId(mailboxId) });
        if (mailbox !== null) await this.s.transfer.removeFromSource(mailbox, mine);
        await this.releaseBlobRefs(refsOf(mine));
        this.onChanged(first.userId);
        return mine.length;
      });
    }
    if (records !== undefined) await this.deliveries().deleteMany(records);
    return removed;
  }
}
