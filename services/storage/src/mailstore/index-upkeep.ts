/**
 * The in-memory mailbox index (mailbox-index.ts) built, warmed and kept current, and the flag
 * and expunge records (pending-changes.ts) loaded and compacted in the background (ADR 0006, 0007).
 */
import { resolveUidSet, uidSetProblem, type UidSet } from '@postmesh/contracts';
import { ObjectId, type Filter } from 'mongodb';
import { Collections } from '../db/schema.js';
import { ErrorReason } from './contract.js';
import { MailstoreError } from './errors.js';
import {
  MailboxIndexEntry,
  sharedMailboxIndex as index,
  type IndexBuild,
  type IndexedMessage,
  summaryBytes,
} from './mailbox-index.js';
import type { PendingState } from './runtime.js';
import { PendingChanges, compactPending, retainOwnedRecords } from './pending-changes.js';
import { mailboxRecords, mailboxes } from './mailboxes.js';
import type { MailboxRecord, MessageRecord } from './types.js';
import { StorePart } from './store-part.js';
import {
  indexEntryOf,
  messageKey,
  idText,
  POINT_LOOKUPS,
  WHOLE_READ_BATCH,
  type Intervals,
  notFound,
} from './store-common.js';
import { summaryOf } from './content-reader.js';

/**
 * What an index build reads of each message: the entry's fields, and what the message's summary
 * is made of (on FerretDB the database decodes whole documents whatever the projection, so one
 * read that also yields the summaries costs about what the entry's fields alone cost, and the
 * sync that follows a SELECT reads nothing more).
 */
const INDEX_BUILD_PROJECTION = {
  mailboxId: 1,
  uid: 1,
  modseq: 1,
  flags: 1,
  size: 1,
  internalDate: 1,
  own: 1,
  userId: 1,
  blobId: 1,
  contentKey: 1,
  meta: 1,
  sentDay: 1,
} as const;

export class IndexUpkeep extends StorePart {
  private pendingState(): PendingState {
    let state = this.rt.records;
    if (state === undefined) {
      const db = this.db;
      const changes = PendingChanges.load(db).then(async (loaded) => {
        const owned = new PendingChanges();
        await retainOwnedRecords(db, owned, loaded);
        return owned;
      });
      state = {
        changes,
        refreshQueued: false,
        timer: undefined,
        running: undefined,
        lastWrite: 0,
        stopped: false,
      };
      const loaded = state;
      changes.then(
        (p) => {
          if (p.size > 0) this.scheduleCompaction(loaded);
        },
        () => {
          if (this.rt.records === loaded) this.rt.records = undefined;
        },
      );
      this.rt.records = state;
    }
    return state;
  }

  /** The records not folded into message documents yet (loaded once per database). */
  pending(): Promise<PendingChanges> {
    return this.pendingState().changes;
  }

  /**
   * Whether flag changes and expunges are written as appended records: when this process owns
   * its mailboxes' state, i.e. the mailbox index is on (ADR 0006, 0007). With the index off
   * (several replicas on MongoDB) they update the documents in place, as other replicas read them.
   */
  get appendsRecords(): boolean {
    return index.enabled;
  }

  private scheduleCompaction(state: PendingState, delay = this.rt.settings.compaction.quietMs): void {
    if (state.timer !== undefined || state.stopped) return;
    state.timer = setTimeout(() => {
      state.timer = undefined;
      (async () => {
        const pending = await state.changes;
        pending.keepLatest = this.appendsRecords;
        const { quietMs, minBatch, idleMs, backlog } = this.rt.settings.compaction;
        const quietFor = Date.now() - state.lastWrite;
        const due =
          pending.size >= backlog ||
          (quietFor >= quietMs && pending.size >= minBatch) ||
          quietFor >= Math.max(quietMs, idleMs);
        if (!due) {
          this.scheduleCompaction(state);
          return;
        }
        await this.compactChanges().catch((error: unknown) => {
          this.logger.warn({ err: error }, 'compacting flag and expunge records failed; retried later');
        });
        if (pending.size > 0) this.scheduleCompaction(state);
      })().catch((error: unknown) => {
        // The records could not be loaded (the next use loads them again) or the client closed.
        this.logger.warn({ err: error }, 'background compaction of flag and expunge records failed');
      });
    }, delay);
    state.timer.unref();
  }

  /** A record was written: compaction comes once writes pause. */
  recordWritten(): void {
    const state = this.pendingState();
    state.lastWrite = Date.now();
    this.scheduleCompaction(state);
  }

  /**
   * Folds every pending flag and expunge record into the message documents (normally in the
   * background after writes pause; tests and shutdown call it). Answers the records compacted.
   */
  async compactChanges(options: { holding?: string } = {}): Promise<number> {
    const state = this.pendingState();
    const pending = await state.changes;
    pending.keepLatest = this.appendsRecords;
    // Counters first: an index build takes UIDNEXT and HIGHESTMODSEQ above the pending
    // tombstones, which compaction turns into ordinary ones (`finishIndexBuild`); the expunges
    // of a mailbox whose counters are still ahead wait for the next compaction.
    await this.s.flags.flushCounters(options.holding);
    while (state.running !== undefined) await state.running.catch(() => undefined);
    const run = (async () => {
      let total = 0;
      for (;;) {
        const n = await compactPending(pending, {
          db: this.db,
          logger: this.logger,
          underCompactionLock: (mailboxId, fn) => this.rt.compactionLocks.run(this.lockKey(mailboxId), fn),
          releaseBlobRefs: (counts) => this.releaseBlobRefs(counts),
          countersAhead: (mailboxId) => mailboxRecords.aheadIds(this.db).includes(mailboxId),
          confirming: (mailboxId) => this.rt.confirming.has(mailboxId),
          keepLatestFlags: this.appendsRecords,
          ...(this.appendsRecords ? { keyOf: messageKey } : {}),
        });
        total += n;
        if (n === 0 || pending.size === 0) return total;
      }
    })();
    state.running = run;
    try {
      const total = await run;
      if (total > 0) this.logger.debug({ records: total }, 'flag and expunge records compacted');
      return total;
    } finally {
      if (state.running === run) state.running = undefined;
    }
  }

  /**
   * The mailbox as it stands once this process's writes in flight to it have finished, so a
   * HIGHESTMODSEQ or UIDNEXT handed out is never ahead of the messages that carry it.
   */
  async settled(mailbox: MailboxRecord): Promise<MailboxRecord> {
    const id = mailbox._id.toHexString();
    const current = await this.rt.withCounterLock(this.lockKey(id), async () => {
      const known = mailboxRecords.byId(this.db, id);
      if (known !== undefined) return known;
      const token = mailboxRecords.readToken(this.db, id);
      const read = await mailboxes(this.db).findOne({ _id: mailbox._id });
      if (read !== null) mailboxRecords.keep(this.db, read, token);
      return read;
    });
    if (current === null) throw notFound('mailbox', 'mailbox');
    return current;
  }

  /** Highest UID in use (RFC 9051 §9 `*`), 0 for an empty mailbox. */
  async highestUid(mailbox: MailboxRecord): Promise<number> {
    const mailboxId = mailbox._id.toHexString();
    if (mailbox.keyedMessages === true && mailbox.uidNext > 1) {
      // Usually the last UID handed out is still there: one `_id` lookup instead of a scan.
      const last = await this.messages().findOne(
        { _id: messageKey(mailboxId, mailbox.uidNext - 1) },
        { projection: { uid: 1 } },
      );
      if (last !== null) return last.uid;
    }
    const last = await this.messages().findOne({ mailboxId }, { sort: { uid: -1 }, projection: { uid: 1 } });
    return last?.uid ?? 0;
  }

  /**
   * The UID intervals a set names in `mailbox`. `*` is the highest UID in use (RFC 9051 §9); it is
   * looked up only when it matters: in `1:*` any upper bound at or above it names the same
   * messages, and UIDNEXT - 1 is one.
   */
  async intervalsOf(mailbox: MailboxRecord, set: UidSet, field: string): Promise<Intervals> {
    const problem = uidSetProblem(set);
    if (problem !== undefined) throw new MailstoreError(ErrorReason.INVALID_ARGUMENT, problem, field);
    const exact = set.ranges.some((r) => r.last === 0 && r.first > 1);
    const entry = exact ? index.get(mailbox._id.toHexString(), mailbox.highestModseq) : undefined;
    const highest = !exact ? mailbox.uidNext - 1 : (entry?.highestUid ?? (await this.highestUid(mailbox)));
    return resolveUidSet(set, highest);
  }

  uidFilter(intervals: Intervals): Filter<MessageRecord> {
    if (intervals.length === 0) return { uid: -1 };
    if (intervals.length > 64) {
      // Many ranges: one range scan, the rest filtered here (`inIntervals`).
      return { uid: { $gte: intervals[0]?.[0] ?? 1, $lte: intervals.at(-1)?.[1] ?? 0 } };
    }
    return { $or: intervals.map(([a, b]) => (a === b ? { uid: a } : { uid: { $gte: a, $lte: b } })) };
  }

  /**
   * The index of `mailbox` as of the document just read, built (under the mailbox's lock, one read
   * of its messages) when `build` and the index is on; undefined otherwise.
   */
  async indexOf(mailbox: MailboxRecord, build: boolean): Promise<MailboxIndexEntry | undefined> {
    const mailboxId = mailbox._id.toHexString();
    const entry = index.get(mailboxId, mailbox.highestModseq);
    if (entry !== undefined || !index.enabled) return entry;
    if (index.has(mailboxId)) {
      // A step behind the document just read (a writer is patching it): wait, do not rebuild.
      const caught = await this.currentIndex(mailbox);
      if (caught !== undefined) return caught;
    }
    if (!build) return undefined;
    let pending = this.rt.indexBuilds.get(mailboxId);
    if (pending === undefined) {
      pending = this.buildIndex(mailbox).finally(() => this.rt.indexBuilds.delete(mailboxId));
      this.rt.indexBuilds.set(mailboxId, pending);
    }
    return pending;
  }

  /**
   * Fills the mailbox index at start, largest mailboxes first up to its bound, with ONE read of
   * the messages collection for all of them (on FerretDB any read by mailbox is a read of the
   * whole collection, so one per mailbox would cost as many). Builds as `buildIndex` does:
   * stamps under each lock, writers recorded meanwhile, caught up at the end. Readers of a
   * mailbox being warmed wait for it rather than read on their own. Logs progress.
   */
  async warmIndex(options: { minMessages?: number; signal?: AbortSignal } = {}): Promise<number> {
    if (!index.enabled) return 0;
    const minMessages = options.minMessages ?? POINT_LOOKUPS;
    const started = Date.now();
    const candidates = await mailboxes(this.db)
      .find({ messages: { $gte: minMessages } }, { projection: { _id: 1, messages: 1 } })
      .toArray();
    candidates.sort((a, b) => b.messages - a.messages);
    const chosen = new Map<string, { build: IndexBuild; entry: MailboxIndexEntry }>();
    let planned = 0;
    for (const c of candidates) {
      if (planned + c.messages > index.maxMessages) continue;
      const id = c._id.toHexString();
      if (this.rt.indexBuilds.has(id)) continue;
      const started = await this.rt.withCounterLock(this.lockKey(id), async () => {
        const current = await mailboxes(this.db).findOne({ _id: c._id });
        if (current === null || index.get(id, current.highestModseq) !== undefined) return undefined;
        const build = index.beginBuild(id, current.userId, current.highestModseq);
        if (build === undefined) return undefined;
        return { build, entry: new MailboxIndexEntry(current.userId, current.highestModseq) };
      });
      if (started === undefined) continue;
      chosen.set(id, started);
      planned += c.messages;
    }
    if (chosen.size === 0) return 0;
    this.logger.info({ mailboxes: chosen.size, messages: planned }, 'warming the mailbox index');
    let finish!: (kept: Set<string>) => void;
    const done = new Promise<Set<string>>((resolve) => (finish = resolve));
    for (const [id, { entry }] of chosen) {
      this.rt.indexBuilds.set(
        id,
        done.then((kept) => (kept.has(id) ? entry : undefined)).finally(() => this.rt.indexBuilds.delete(id)),
      );
    }
    const kept = new Set<string>();
    try {
      const pending = await this.pending();
      const budget = { bytes: index.maxSummaryBytes - index.summaryBytes };
      let read = 0;
      let lastLog = Date.now();
      const cursor = this.messages()
        .find({}, { projection: INDEX_BUILD_PROJECTION })
        .batchSize(WHOLE_READ_BATCH);
      for await (const doc of cursor) {
        if (options.signal?.aborted === true) throw new Error('warming the mailbox index was stopped');
        read++;
        if (Date.now() - lastLog > 10_000) {
          lastLog = Date.now();
          this.logger.info(
            { read, of: planned, ms: lastLog - started },
            'warming the mailbox index: messages read',
          );
        }
        if (doc.own !== undefined && !this.writeCounts(doc.own)) continue;
        const entry = chosen.get(doc.mailboxId)?.entry;
        const folded = entry === undefined ? null : pending.fold(doc.mailboxId, doc);
        if (folded !== null) entry?.add([await this.indexedWithSummary(folded, budget)]);
      }
      for (const [id, { build, entry }] of chosen) {
        if (await this.finishIndexBuild(build, entry)) kept.add(id);
      }
      this.logger.info(
        {
          mailboxes: kept.size,
          messages: index.messages,
          summaryBytes: index.summaryBytes,
          read,
          ms: Date.now() - started,
        },
        'mailbox index warm',
      );
      return kept.size;
    } catch (error) {
      for (const [id, { build }] of chosen) if (!kept.has(id)) index.abortBuild(build);
      throw error;
    } finally {
      finish(kept);
    }
  }

  /**
   * The current entry of `mailbox` without building one: when the entry is a step behind the
   * document just read (a writer of this process is between raising HIGHESTMODSEQ and patching),
   * waits for the mailbox's lock and looks again.
   */
  private async currentIndex(mailbox: MailboxRecord): Promise<MailboxIndexEntry | undefined> {
    const mailboxId = mailbox._id.toHexString();
    const entry = index.get(mailboxId, mailbox.highestModseq);
    if (entry !== undefined || !index.has(mailboxId)) return entry;
    return this.rt.withCounterLock(this.lockKey(mailboxId), async () => {
      const now =
        mailboxRecords.byId(this.db, mailboxId) ??
        (await mailboxes(this.db).findOne({ _id: mailbox._id }, { projection: { highestModseq: 1 } }));
      return now === null ? undefined : index.get(mailboxId, now.highestModseq);
    });
  }

  /**
   * Ends a build under the mailbox's lock against its HIGHESTMODSEQ now; true if the entry is kept.
   * A kept entry holds every message of the mailbox, so it also checks that UIDNEXT is above all
   * of them and raises it if not (a counter written after its messages and lost in a crash): a UID
   * is never handed out twice (RFC 9051 §2.3.1.1).
   */
  private finishIndexBuild(build: IndexBuild, entry: MailboxIndexEntry): Promise<boolean> {
    return this.rt.withCounterLock(this.lockKey(build.mailboxId), async () => {
      const _id = new ObjectId(build.mailboxId);
      const pending = await this.pending();
      const now = await mailboxes(this.db).findOne(
        { _id },
        {
          projection: {
            highestModseq: 1,
            uidNext: 1,
            messages: 1,
            size: 1,
            unseen: 1,
            deleted: 1,
            countersHeldBy: 1,
          },
        },
      );
      if (now === null) {
        index.abortBuild(build);
        return false;
      }
      const kept = index.finishBuild(build, entry, now.highestModseq);
      if (!kept) return false;
      // The owner writes the counters it moves in memory after the messages and records that
      // carry them (ADR 0007, "Counters in the owner"); lost with the process, they are recounted
      // here, so a UID or MODSEQ is never handed out twice (RFC 9051 §2.3.1.1, RFC 7162 §3.1).
      const counted = entry.counters();
      const top = pending.highestOf(build.mailboxId);
      const uidNext = Math.max(now.uidNext, entry.highestUid + 1, top.uid + 1);
      const highestModseq = Math.max(now.highestModseq, counted.highestModseq, top.modseq);
      const recount =
        now.messages !== counted.messages ||
        now.size !== counted.size ||
        now.unseen !== counted.unseen ||
        (now.deleted ?? 0) !== counted.deleted;
      // A mark of a lost holder (`holdCounters`) is answered by this recount: taken off.
      const mark = mailboxRecords.foreignMark(this.db, build.mailboxId, now);
      if (uidNext === now.uidNext && highestModseq === now.highestModseq && !recount) {
        if (mark !== undefined) {
          await this.db
            .collection<MailboxRecord>(Collections.mailboxes)
            .updateOne({ _id, countersHeldBy: mark }, { $unset: { countersHeldBy: '' } });
        }
        return true;
      }
      this.logger.warn(
        {
          mailboxId: build.mailboxId,
          uidNext: [now.uidNext, uidNext],
          highestModseq: [now.highestModseq, highestModseq],
          messages: [now.messages, counted.messages],
        },
        'mailbox counters were behind its messages and records; raised and recounted',
      );
      await mailboxes(this.db).updateOne(
        { _id },
        {
          $max: { uidNext, highestModseq },
          $set: {
            messages: counted.messages,
            size: counted.size,
            unseen: counted.unseen,
            deleted: counted.deleted,
          },
          ...(mark === undefined ? {} : { $unset: { countersHeldBy: '' } }),
        },
      );
      // The entry holds every message: it stands for the raised HIGHESTMODSEQ too.
      entry.stamp = highestModseq;
      return true;
    });
  }

  /**
   * Builds the entry of `mailbox`: its HIGHESTMODSEQ is read under the mailbox's lock (no change of
   * this process half done), its messages without it (writers go on; their patches are recorded),
   * and the recorded patches are replayed under the lock again (ADR 0006).
   */
  private async buildIndex(mailbox: MailboxRecord): Promise<MailboxIndexEntry | undefined> {
    const mailboxId = mailbox._id.toHexString();
    const lock = this.lockKey(mailboxId);
    const start = await this.rt.withCounterLock(lock, async () => {
      const current = await mailboxes(this.db).findOne({ _id: mailbox._id });
      if (current === null) return undefined;
      // A writer may have patched an entry while this call waited for the lock.
      const ready = index.get(mailboxId, current.highestModseq);
      if (ready !== undefined) return { current, ready, build: undefined };
      return { current, ready, build: index.beginBuild(mailboxId, current.userId, current.highestModseq) };
    });
    if (start === undefined) return undefined;
    if (start.ready !== undefined) return start.ready;
    const build = start.build;
    if (build === undefined) return undefined; // the start-up warm-up has it
    const started = Date.now();
    const entry = new MailboxIndexEntry(start.current.userId, start.current.highestModseq);
    try {
      const pending = await this.pending();
      const budget = { bytes: index.maxSummaryBytes - index.summaryBytes };
      const batch: IndexedMessage[] = [];
      const cursor = this.messages()
        .find({ mailboxId }, { projection: INDEX_BUILD_PROJECTION })
        .sort({ uid: 1 })
        .batchSize(WHOLE_READ_BATCH);
      for await (const found of cursor) {
        // A batch whose confirm never came does not count (ADR 0007, Rebuild).
        if (found.own !== undefined && !this.writeCounts(found.own)) continue;
        const doc = pending.fold(mailboxId, found);
        if (doc !== null) batch.push(await this.indexedWithSummary(doc, budget));
        if (batch.length >= 4096) entry.add(batch.splice(0));
      }
      entry.add(batch);
    } catch (error) {
      index.abortBuild(build);
      throw error;
    }
    const kept = await this.finishIndexBuild(build, entry);
    this.logger.info(
      { mailboxId, messages: entry.size, ms: Date.now() - started, kept, indexed: index.messages },
      'mailbox index built',
    );
    return kept ? entry : undefined;
  }

  /**
   * `doc` as the index holds it, with its summary while the build's `budget` (bytes of summaries
   * it may still add within POSTMESH_MAILBOX_INDEX_SUMMARY_BYTES) lasts. A message that cannot be
   * opened is indexed without one: the fetch that needs it reports the problem.
   */
  private async indexedWithSummary(doc: MessageRecord, budget: { bytes: number }): Promise<IndexedMessage> {
    const entry = indexEntryOf(doc);
    if (budget.bytes <= 0 || doc.meta === undefined) return entry;
    try {
      const summary = summaryOf(doc, await this.s.reader.opened(doc));
      budget.bytes -= summaryBytes(summary);
      return { ...entry, summary };
    } catch (error) {
      this.logger.warn(
        { err: error, messageId: idText(doc._id) },
        'message could not be opened for the index',
      );
      return entry;
    }
  }
}
