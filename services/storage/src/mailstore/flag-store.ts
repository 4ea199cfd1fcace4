/**
 * STORE of flags (RFC 9051 §6.4.6, RFC 7162 UNCHANGEDSINCE) and the mailbox counters moved in
 * memory by the owner, written later (ADR 0007 "Counters in the owner").
 */
import type { UidSet, mailstore } from '@postmesh/contracts';
import { ObjectId, type AnyBulkWriteOperation } from 'mongodb';
import { boundedBulkWrite } from '../db/bulk-updates.js';
import { Collections } from '../db/schema.js';
import { ErrorReason, StoreModes, type StoreModeValue } from './contract.js';
import { MailstoreError } from './errors.js';
import { DELETED, SEEN, splitFlags } from './flags.js';
import type { MailboxIndexEntry } from './mailbox-index.js';
import { sharedMailboxIndex as index } from './mailbox-index.js';
import { flagChanges, type FlagChangeDoc } from './pending-changes.js';
import { mailboxRecords, mailboxes, counterTenure, type CounterDelta } from './mailboxes.js';
import type { MailboxRecord, MessageId, MessageRecord } from './types.js';
import { StorePart } from './store-part.js';
import { messageKey, idText, type Intervals, notFound } from './store-common.js';
import { taggedWith, type FencedWrite } from './write-fence.js';

/**
 * A command's fenced write under its mailbox's lock (`FlagStore.fencedUnderLock`): `begin` takes
 * the tag just before the records are written and keeps it in `write` for the confirm.
 */
export interface FencedRecords {
  readonly begin: () => Promise<FencedWrite | undefined>;
  write: FencedWrite | undefined;
  /** What to do once the write counts (announce the change). */
  readonly confirmed: (() => void)[];
  /** What removes the write's documents besides its records, should its confirm fail. */
  readonly undo: (() => Promise<void>)[];
}

function negated(delta: CounterDelta): CounterDelta {
  const out: CounterDelta = {};
  for (const [field, n] of Object.entries(delta) as [keyof CounterDelta, number][]) out[field] = -n;
  return out;
}

export class FlagStore extends StorePart {
  /** RFC 9051 §6.4.6 STORE, RFC 7162 §3.1.3 UNCHANGEDSINCE. */
  storeFlags(
    userId: string,
    mailboxId: string,
    uids: UidSet,
    mode: StoreModeValue,
    flags: readonly string[],
    unchangedSince: number | undefined,
  ): Promise<mailstore.StoreFlagsResponse> {
    return this.fencedUnderLock(userId, mailboxId, (fenced) =>
      this.storeFlagsLocked(userId, mailboxId, uids, mode, flags, unchangedSince, fenced),
    );
  }

  /**
   * Runs `locked` under the mailbox's lock and, when it wrote records under a tag
   * (`fenced.write`), confirms that tag after the lock is released and before the call answers
   * (ADR 0007, Commit-then-confirm): concurrent writers of the partition share the confirm, and
   * the mailbox's next command does not wait for it. A failed confirm removes the records.
   */
  async fencedUnderLock<T>(
    userId: string,
    mailboxId: string,
    locked: (fenced: FencedRecords) => Promise<T>,
  ): Promise<T> {
    // From its tag until it is confirmed or removed, compaction leaves the mailbox's records alone.
    const confirming = this.rt.confirming;
    let counted = false;
    const fenced: FencedRecords = {
      begin: async () => {
        const write = await this.beginWrite(userId);
        if (write !== undefined && !counted) {
          counted = true;
          confirming.set(mailboxId, (confirming.get(mailboxId) ?? 0) + 1);
        }
        return write;
      },
      write: undefined,
      confirmed: [],
      undo: [],
    };
    try {
      let result: T;
      try {
        result = await this.rt.withCounterLock(this.lockKey(mailboxId), () => locked(fenced));
      } catch (error) {
        fenced.write?.abandon();
        throw error;
      }
      await this.confirmWrite(fenced.write, userId, async (tag) => {
        await flagChanges(this.db).deleteMany({ mailboxId, ...taggedWith(tag) });
        await this.tombstones().deleteMany({ mailboxId, ...taggedWith(tag) });
        for (const undo of fenced.undo) await undo();
      });
      for (const run of fenced.confirmed) run();
      return result;
    } finally {
      if (counted) {
        const left = (confirming.get(mailboxId) ?? 1) - 1;
        if (left > 0) confirming.set(mailboxId, left);
        else confirming.delete(mailboxId);
      }
    }
  }

  private async storeFlagsLocked(
    userId: string,
    mailboxId: string,
    uids: UidSet,
    mode: StoreModeValue,
    flags: readonly string[],
    unchangedSince: number | undefined,
    fenced: FencedRecords,
  ): Promise<mailstore.StoreFlagsResponse> {
    const mailbox = await this.s.boxes.mailboxById(userId, mailboxId);
    if (mode !== StoreModes.ADD && mode !== StoreModes.REMOVE && mode !== StoreModes.REPLACE) {
      throw new MailstoreError(ErrorReason.INVALID_ARGUMENT, 'store mode not set', 'mode');
    }
    const intervals = await this.s.upkeep.intervalsOf(mailbox, uids, 'uids');
    const apply = (current: readonly string[]): string[] => {
      switch (mode) {
        case StoreModes.ADD:
          return [...new Set([...current, ...flags])];
        case StoreModes.REMOVE:
          return current.filter((f) => !flags.includes(f));
        default:
          return [...new Set(flags)];
      }
    };
    const sameSet = (a: readonly string[], b: readonly string[]) =>
      a.length === b.length && a.every((f) => b.includes(f));
    if (this.s.upkeep.appendsRecords) {
      return this.storeFlagsAsRecords(
        mailbox,
        intervals,
        unchangedSince,
        (current) => {
          const next = apply(current);
          return sameSet(next, current) ? null : next;
        },
        fenced,
      );
    }
    const pendingNow = await this.s.upkeep.pending();
    if (pendingNow.has(mailboxId)) {
      // Records left by an owner that had the index on: folded into the documents first, since the
      // updates below compare-and-set on the documents' MODSEQ.
      await this.s.upkeep.compactChanges({ holding: mailboxId });
    }
    const changed = new Map<number, mailstore.MessageFlags>();
    const modified = new Set<number>();
    const projection = { _id: 1, uid: 1, flags: 1, modseq: 1 } as const;
    // With a current index entry (one storage process, ADR 0006; this runs under the mailbox's
    // lock) the flags and MODSEQs are known and nobody else writes them: no read, and updates by
    // `_id` alone, which FerretDB finds without decoding the collection (a compare-and-set on
    // `modseq` as well is a decoding scan per message there).
    const entry = mailbox.keyedMessages === true ? index.get(mailboxId, mailbox.highestModseq) : undefined;
    let retry: MessageId[] | null = null;
    for (let attempt = 0; attempt < 8; attempt++) {
      const known = retry === null && entry !== undefined;
      const docs: Pick<MessageRecord, '_id' | 'uid' | 'flags' | 'modseq'>[] = [];
      if (known) {
        for (const m of entry.select(intervals)) {
          docs.push({ _id: messageKey(mailboxId, m.uid), uid: m.uid, flags: [...m.flags], modseq: m.modseq });
        }
      } else if (retry === null) {
        for await (const doc of this.s.reader.messagesIn(mailbox, intervals, { projection })) docs.push(doc);
      } else {
        docs.push(
          ...(await this.messages()
            .find({ _id: { $in: retry } }, { projection })
            .sort({ uid: 1 })
            .toArray()),
        );
      }
      const updates: { doc: (typeof docs)[number]; next: string[] }[] = [];
      for (const doc of docs) {
        // RFC 7162 §3.1.3: a message changed after UNCHANGEDSINCE is not touched; MODIFIED lists it.
        if (unchangedSince !== undefined && doc.modseq > unchangedSince) {
          modified.add(doc.uid);
          continue;
        }
        const next = apply(doc.flags);
        if (!sameSet(next, doc.flags)) updates.push({ doc, next });
      }
      if (updates.length === 0) break;
      let unseen = 0;
      let deleted = 0;
      for (const { doc, next } of updates) {
        unseen += Number(!next.includes(SEEN)) - Number(!doc.flags.includes(SEEN));
        deleted += Number(next.includes(DELETED)) - Number(doc.flags.includes(DELETED));
      }
      // One new mod-sequence for this command's changes (RFC 7162 §3.1.1: greater than any before).
      const after = await mailboxes(this.db).findOneAndUpdate(
        { _id: mailbox._id },
        { $inc: { highestModseq: 1 } },
        { returnDocument: 'after' },
      );
      if (after === null) throw notFound('mailbox', 'mailbox_id');
      const modseq = after.highestModseq;
      const ops: AnyBulkWriteOperation<MessageRecord>[] = updates.map(({ doc, next }) => ({
        updateOne: {
          filter: known ? { _id: doc._id } : { _id: doc._id, modseq: doc.modseq },
          update: { $set: { flags: next, modseq } },
        },
      }));
      // In commands of a few statements: one `update` of ~100 matched statements deadlocks FerretDB.
      const result = await boundedBulkWrite(this.messages(), ops, { ordered: false });
      const ids = updates.map((u) => u.doc._id);
      let lost: MessageId[] = [];
      if (result.matchedCount !== updates.length) {
        // Someone changed some of them meanwhile: those are read again and recomputed.
        const now = await this.messages()
          .find({ _id: { $in: ids } }, { projection: { _id: 1, modseq: 1 } })
          .toArray();
        const applied = new Set(now.filter((d) => d.modseq === modseq).map((d) => idText(d._id)));
        const present = new Set(now.map((d) => idText(d._id)));
        lost = ids.filter((id) => !applied.has(idText(id)) && present.has(idText(id)));
        for (const u of updates.filter((x) => !applied.has(idText(x.doc._id)))) {
          unseen -= Number(!u.next.includes(SEEN)) - Number(!u.doc.flags.includes(SEEN));
          deleted -= Number(u.next.includes(DELETED)) - Number(u.doc.flags.includes(DELETED));
        }
      }
      const lostSet = new Set(lost.map(idText));
      for (const { doc, next } of updates) {
        if (lostSet.has(idText(doc._id))) continue;
        const split = splitFlags(next);
        changed.set(doc.uid, { uid: doc.uid, modseq, flags: split.flags, keywords: split.keywords });
      }
      if (lost.length > 0 || result.matchedCount !== updates.length) {
        index.drop(mailboxId); // changed by someone else too: the entry cannot know how
      } else {
        index.patch(mailboxId, modseq - 1, modseq, (entry) => {
          for (const { doc, next } of updates) entry.setFlags(doc.uid, next, modseq);
        });
      }
      if (unseen !== 0 || deleted !== 0) {
        await mailboxes(this.db).updateOne({ _id: mailbox._id }, { $inc: { unseen, deleted } });
      }
      if (lost.length === 0) break;
      retry = lost;
    }
    if (changed.size > 0) this.onChanged(userId);
    const final = await mailboxes(this.db).findOne(
      { _id: mailbox._id },
      { projection: { highestModseq: 1 } },
    );
    return {
      changed: [...changed.values()].sort((a, b) => a.uid - b.uid),
      modifiedUids: [...modified].sort((a, b) => a - b),
      highestModseq: final?.highestModseq ?? mailbox.highestModseq,
    };
  }

  /**
   * STORE as appended records (the caller holds the mailbox's lock and this process owns the
   * mailbox, ADR 0007): the flags and MODSEQs come from the index entry (or the documents, folded),
   * one counter update allocates the command's MODSEQ (RFC 7162 §3.1.1) and moves UNSEEN/DELETED,
   * and one insert writes a record per changed message; the entry and the pending records are
   * patched once that insert is durable. No message document is read or updated.
   */
  private async storeFlagsAsRecords(
    mailbox: MailboxRecord,
    intervals: Intervals,
    unchangedSince: number | undefined,
    nextFlags: (current: readonly string[]) => string[] | null,
    fenced?: FencedRecords,
  ): Promise<mailstore.StoreFlagsResponse> {
    const mailboxId = mailbox._id.toHexString();
    const pending = await this.s.upkeep.pending();
    const entry = index.get(mailboxId, mailbox.highestModseq);
    const current: { uid: number; flags: readonly string[]; modseq: number }[] = [];
    if (entry !== undefined) current.push(...entry.select(intervals));
    else
      for await (const doc of this.s.reader.messagesIn(mailbox, intervals, {
        projection: { _id: 1, uid: 1, flags: 1, modseq: 1 },
      }))
        current.push(doc);
    const modified: number[] = [];
    const updates: { uid: number; before: readonly string[]; next: string[] }[] = [];
    for (const m of current) {
      // RFC 7162 §3.1.3: a message changed after UNCHANGEDSINCE is not touched; MODIFIED lists it.
      if (unchangedSince !== undefined && m.modseq > unchangedSince) {
        modified.push(m.uid);
        continue;
      }
      const next = nextFlags(m.flags);
      if (next !== null) updates.push({ uid: m.uid, before: m.flags, next });
    }
    if (updates.length === 0) {
      return { changed: [], modifiedUids: modified, highestModseq: mailbox.highestModseq };
    }
    let unseen = 0;
    let deleted = 0;
    for (const { before, next } of updates) {
      unseen += Number(!next.includes(SEEN)) - Number(!before.includes(SEEN));
      deleted += Number(next.includes(DELETED)) - Number(before.includes(DELETED));
    }
    // Written in one transaction guarded by the partition's pointer (ADR 0014), or under its
    // partition's tag, taken once nothing but the write is left, and confirmed after (ADR 0007).
    const { atomic, write } = await this.recordWrite(mailbox.userId, fenced);
    const modseq = await this.advanceCounters(mailbox, entry, { highestModseq: 1, unseen, deleted });
    const records: FlagChangeDoc[] = updates.map((u) => ({
      _id: new ObjectId(),
      mailboxId,
      uid: u.uid,
      flags: u.next,
      modseq,
      ...(write === undefined ? {} : { own: write.tag }),
    }));
    try {
      await this.insertRecords(mailbox.userId, atomic, flagChanges(this.db), records);
    } catch (error) {
      // Nothing of the command counts: its counters go back (the MODSEQ stays used, a gap).
      await this.takeBackCounters(mailbox, { unseen: -unseen, deleted: -deleted });
      index.drop(mailboxId);
      throw error;
    }
    for (const r of records) pending.setFlags(mailboxId, r.uid, r.flags, modseq, r._id);
    index.patch(mailboxId, modseq - 1, modseq, (e) => {
      for (const u of updates) e.setFlags(u.uid, u.next, modseq);
    });
    this.s.upkeep.recordWritten();
    // Announced once it counts.
    const announce = (): void => this.onChanged(mailbox.userId, { mailboxId, highestModseq: modseq });
    if (fenced === undefined) announce();
    else fenced.confirmed.push(announce);
    return {
      changed: updates.map((u) => {
        const split = splitFlags(u.next);
        return { uid: u.uid, modseq, flags: split.flags, keywords: split.keywords };
      }),
      modifiedUids: modified,
      highestModseq: modseq,
    };
  }

  /**
   * Moves the counters of `mailbox` (the caller holds its lock) and answers its new HIGHESTMODSEQ.
   * With a current index entry the owner moves them in memory (ADR 0007, "Counters in the owner"):
   * it is their only writer, `flushCounters` writes them later, and an index build recounts them
   * from the messages and records should they be lost with the process. Otherwise one counter
   * update of the mailbox document.
   */
  async advanceCounters(
    mailbox: MailboxRecord,
    entry: MailboxIndexEntry | undefined,
    delta: CounterDelta,
  ): Promise<number> {
    const mailboxId = mailbox._id.toHexString();
    const current = (): boolean =>
      entry !== undefined && index.get(mailboxId, mailbox.highestModseq) === entry;
    const moved =
      current() && (await this.holdCounters(mailbox)) && current()
        ? mailboxRecords.advance(this.db, mailboxId, delta)
        : undefined;
    if (moved !== undefined && moved.before.highestModseq === mailbox.highestModseq) {
      this.countersAhead();
      return moved.after.highestModseq;
    }
    if (moved !== undefined) {
      // The copy was not the document this command read: put it back and write to the database.
      mailboxRecords.advance(this.db, mailboxId, negated(delta));
    }
    const after = await mailboxes(this.db).findOneAndUpdate(
      { _id: mailbox._id },
      { $inc: delta },
      { returnDocument: 'after' },
    );
    if (after === null) throw notFound('mailbox', 'mailbox_id');
    return after.highestModseq;
  }

  /** Takes counters of a write that failed back out (never UIDNEXT or HIGHESTMODSEQ: gaps). */
  async takeBackCounters(mailbox: MailboxRecord, delta: CounterDelta): Promise<void> {
    const mailboxId = mailbox._id.toHexString();
    if (mailboxRecords.advance(this.db, mailboxId, delta) !== undefined) {
      this.countersAhead();
      return;
    }
    await mailboxes(this.db)
      .updateOne({ _id: mailbox._id }, { $inc: delta })
      .catch(() => undefined);
  }

  /** Counters were moved in memory: written within the runtime's `settings.counterFlush.delayMs`. */
  countersAhead(): void {
    const state = this.rt.counterFlush;
    if (state.timer !== undefined) return;
    state.timer = setTimeout(() => {
      state.timer = undefined;
      this.flushCounters().catch((error: unknown) => {
        this.logger.warn({ err: error }, 'writing mailbox counters failed; retried later');
        this.countersAhead();
      });
    }, this.rt.settings.counterFlush.delayMs);
    state.timer.unref();
  }

  /**
   * Writes the counters this process moved in memory to the mailbox documents: one update per
   * mailbox, under its lock (compaction and tests call it too). A restart or a new owner never
   * needs them (the index build recounts), but other readers of the documents do (admin usage).
   */
  async flushCounters(holding?: string): Promise<number> {
    let written = 0;
    const flush = async (id: string): Promise<void> => {
      if (!mailboxRecords.aheadIds(this.db).includes(id)) return;
      // `mailboxes(db)` adds what is held ahead to this `$inc` (mailboxes.ts).
      await mailboxes(this.db).findOneAndUpdate(
        { _id: new ObjectId(id) },
        { $inc: { highestModseq: 0 } },
        { returnDocument: 'after' },
      );
      written++;
    };
    for (const id of mailboxRecords.aheadIds(this.db)) {
      // A caller holding one mailbox's lock flushes that one only: taking another's could
      // deadlock with a caller holding that one (compaction skips the mailboxes left ahead).
      if (id === holding) await flush(id);
      else if (holding === undefined) await this.rt.withCounterLock(this.lockKey(id), () => flush(id));
    }
    return written;
  }

  /**
   * Before the first counter of `mailbox` moved in memory in this tenure: marks its document
   * (`counterTenure`, ADR 0007 "Counters in the owner"), durably, so an owner that cannot rebuild
   * the counters from an index entry knows they may have been lost and recounts them. Answers
   * whether the counters may move in memory (false: the caller writes them to the database).
   */
  async holdCounters(mailbox: MailboxRecord): Promise<boolean> {
    const mailboxId = mailbox._id.toHexString();
    if (mailboxRecords.holds(this.db, mailboxId)) return true;
    try {
      // Not through `mailboxes(db)`: the mark changes no counter, and the owner's copy stays.
      await this.db
        .collection<MailboxRecord>(Collections.mailboxes)
        .updateOne({ _id: mailbox._id }, { $set: { countersHeldBy: counterTenure } });
    } catch (error) {
      this.logger.warn({ err: error, mailboxId }, 'could not mark the mailbox counters as held');
      return false;
    }
    mailboxRecords.markHeld(this.db, mailboxId, mailbox.userId);
    return true;
  }

  /**
   * At a clean shutdown: writes the counters moved in memory (`flushCounters`) and takes this
   * tenure's marks off the mailboxes whose counters are all written, so their next owner need not
   * recount them. A mark left (a write failed) only costs that owner a recount.
   */
  async releaseCounters(): Promise<void> {
    await this.flushCounters();
    for (const id of mailboxRecords.heldIds(this.db)) {
      await this.rt.withCounterLock(this.lockKey(id), async () => {
        if (mailboxRecords.aheadIds(this.db).includes(id)) return;
        await this.db
          .collection<MailboxRecord>(Collections.mailboxes)
          .updateOne(
            { _id: new ObjectId(id), countersHeldBy: counterTenure },
            { $unset: { countersHeldBy: '' } },
          );
        mailboxRecords.released(this.db, id);
      });
    }
  }

  /**
   * Recounts the counters of a mailbox whose document carries the mark `mark` of a tenure that
   * may have lost counters it moved in memory, and takes the mark off, in one update conditional
   * on the mark. UIDNEXT goes above every UID of its messages, flag records and tombstones,
   * HIGHESTMODSEQ to at least every MODSEQ among them (RFC 9051 §2.3.1.1, RFC 7162 §3.1); MESSAGES,
   * SIZE, UNSEEN and DELETED are counted from the messages not expunged, with their latest flags.
   * Off the hot path: once per mailbox after its holder was lost, and only where no index entry
   * was built (a build recounts the same way, `finishIndexBuild`). The caller holds the mailbox's
   * counter lock.
   */
  async recountCounters(mailboxId: string, mark: string): Promise<void> {
    let uid = 0;
    let modseq = 0;
    const latest = new Map<number, { flags: readonly string[]; modseq: number }>();
    for await (const c of flagChanges(this.db).find(
      { mailboxId },
      { projection: { uid: 1, flags: 1, modseq: 1 } },
    )) {
      uid = Math.max(uid, c.uid);
      modseq = Math.max(modseq, c.modseq);
      if ((latest.get(c.uid)?.modseq ?? 0) < c.modseq)
        latest.set(c.uid, { flags: c.flags, modseq: c.modseq });
    }
    const expunged = new Set<number>();
    for await (const t of this.tombstones().find({ mailboxId }, { projection: { uid: 1, modseq: 1 } })) {
      uid = Math.max(uid, t.uid);
      modseq = Math.max(modseq, t.modseq);
      expunged.add(t.uid);
    }
    const counted = { messages: 0, size: 0, unseen: 0, deleted: 0 };
    for await (const d of this.messages().find(
      { mailboxId },
      { projection: { uid: 1, size: 1, flags: 1, modseq: 1 } },
    )) {
      uid = Math.max(uid, d.uid);
      modseq = Math.max(modseq, d.modseq);
      if (expunged.has(d.uid)) continue;
      const change = latest.get(d.uid);
      const flags = change !== undefined && change.modseq > d.modseq ? change.flags : d.flags;
      counted.messages++;
      counted.size += d.size;
      if (!flags.includes(SEEN)) counted.unseen++;
      if (flags.includes(DELETED)) counted.deleted++;
    }
    this.logger.warn(
      { mailboxId, heldBy: mark, highestUid: uid, highestModseq: modseq, messages: counted.messages },
      'mailbox counters were held in memory by a lost owner; recounted from its messages and records',
    );
    // Not through `mailboxes(db)`: the caller is inside a write of this mailbox through it.
    await this.db
      .collection<MailboxRecord>(Collections.mailboxes)
      .updateOne(
        { _id: new ObjectId(mailboxId), countersHeldBy: mark },
        { $max: { uidNext: uid + 1, highestModseq: modseq }, $set: counted, $unset: { countersHeldBy: '' } },
      );
    index.drop(mailboxId);
  }
}
