/**
 * COPY (RFC 4315 UIDPLUS), MOVE (RFC 6851) and EXPUNGE / UID EXPUNGE of the mailstore.
 */
import { MAX_UID, type UidSet, type mailstore } from '@postmesh/contracts';
import { ObjectId, type Collection, type Filter, type WithId } from 'mongodb';
import { addBlobRefs } from '../blob/index.js';
import { ErrorReason } from './contract.js';
import { MailstoreError } from './errors.js';
import { DELETED, SEEN } from './flags.js';
import { sharedMailboxIndex as index } from './mailbox-index.js';
import { mailboxes } from './mailboxes.js';
import type { MailboxRecord, MessageId, MessageRecord, SearchIndexDoc, WriteTag } from './types.js';
import type { FencedRecords } from './flag-store.js';
import { taggedWith, type FencedWrite } from './write-fence.js';
import { StorePart } from './store-part.js';
import {
  type MailboxRef,
  indexEntryOf,
  messageKey,
  cacheWritten,
  idText,
  searchIdOf,
  POINT_LOOKUPS,
  LOOKUP_CONCURRENCY,
  mapLimited,
  type Intervals,
  notFound,
  refsOf,
} from './store-common.js';

/** A claim older than this belongs to an expunge that died midway; it may be taken over. */
const CLAIM_EXPIRY_MS = 5 * 60_000;

/** Messages no live EXPUNGE is about to delete. */
function unclaimed(): Filter<MessageRecord> {
  return {
    $or: [
      { expungeClaim: { $exists: false } },
      { expungeClaimedAt: { $lt: new Date(Date.now() - CLAIM_EXPIRY_MS) } },
    ],
  };
}

export class CopyMoveExpunge extends StorePart {
  private async selectForTransfer(mailbox: MailboxRecord, uids: UidSet): Promise<MessageRecord[]> {
    const intervals = await this.s.upkeep.intervalsOf(mailbox, uids, 'uids');
    const docs: MessageRecord[] = [];
    for await (const doc of this.s.reader.messagesIn(mailbox, intervals)) docs.push(doc);
    return docs;
  }

  /** Documents by `_id` (equality lookups for a few: FerretDB decodes the collection for `$in`). */
  private async byIds<T extends { _id: MessageId }>(
    collection: Collection<T>,
    ids: readonly MessageId[],
  ): Promise<WithId<T>[]> {
    if (ids.length === 0) return [];
    if (ids.length > POINT_LOOKUPS) {
      return collection.find({ _id: { $in: [...ids] } } as Filter<T>).toArray();
    }
    const found = await mapLimited(ids, LOOKUP_CONCURRENCY, (id) =>
      collection.findOne({ _id: id } as Filter<T>),
    );
    return found.filter((d): d is WithId<T> => d !== null);
  }

  /**
   * Allocates `n` UIDs and one mod-sequence in `mailbox`, adding the counters of `docs`. The
   * caller holds the mailbox's lock until the messages carrying them are written, so nobody sees
   * the new HIGHESTMODSEQ before the messages that have it (RFC 7162 §3.1.2.1).
   */
  private async allocate(mailbox: MailboxRecord, docs: readonly MessageRecord[]) {
    const counters = {
      messages: docs.length,
      size: docs.reduce((s, d) => s + d.size, 0),
      unseen: docs.filter((d) => !d.flags.includes(SEEN)).length,
      deleted: docs.filter((d) => d.flags.includes(DELETED)).length,
    };
    const before = await mailboxes(this.db).findOneAndUpdate(
      { _id: mailbox._id, uidNext: { $lte: MAX_UID - docs.length + 1 } },
      { $inc: { uidNext: docs.length, highestModseq: 1, ...counters } },
      { returnDocument: 'before' },
    );
    if (before === null) throw notFound('mailbox', 'destination');
    return {
      firstUid: before.uidNext,
      previousModseq: before.highestModseq,
      modseq: before.highestModseq + 1,
      counters,
      uidValidity: before.uidValidity,
    };
  }

  /** RFC 9051 §6.4.7 COPY with RFC 4315 §3 COPYUID. Copies share the stored body. */
  async copyMessages(
    userId: string,
    mailboxId: string,
    uids: UidSet,
    destination: MailboxRef,
  ): Promise<mailstore.CopyMessagesResponse> {
    const source = await this.s.boxes.mailboxById(userId, mailboxId);
    const dest = await this.s.boxes.resolveMailbox(userId, destination, 'destination');
    const docs = await this.selectForTransfer(source, uids);
    if (docs.length === 0) {
      return {
        destinationMailboxId: dest._id.toHexString(),
        destinationUidValidity: dest.uidValidity,
        mappings: [],
      };
    }
    await this.s.quota.checkQuota(
      userId,
      docs.reduce((s, d) => s + d.size, 0),
      docs.length,
    );
    // Tagged with its partition's (epoch, seq) and confirmed before the OK (ADR 0007).
    const { firstUid, uidValidity } = await this.s.flags.fencedUnderLock(
      userId,
      dest._id.toHexString(),
      async (fenced) => {
        const write = (fenced.write = await fenced.begin());
        const allocated = await this.writeCopies(dest, docs, 'copy', write?.tag);
        if (write !== undefined) fenced.undo.push(() => this.undoCopies(dest, docs, 'copy', write.tag));
        return allocated;
      },
    );
    this.onChanged(userId);
    return {
      destinationMailboxId: dest._id.toHexString(),
      destinationUidValidity: uidValidity,
      mappings: docs.map((d, i) => ({ sourceUid: d.uid, destinationUid: firstUid + i })),
    };
  }

  /**
   * Writes `docs` into `dest` with new UIDs and one new mod-sequence; the caller holds `dest`'s
   * lock. Blob references for the new documents are added first. A `copy` gets search entries of
   * its own (entry before message, as for a new message); a `move` keeps the source's entry
   * (re-pointed by the caller once the source is gone).
   */
  private async writeCopies(
    dest: MailboxRecord,
    docs: readonly MessageRecord[],
    kind: 'copy' | 'move',
    own?: WriteTag,
  ) {
    const destId = dest._id.toHexString();
    const refs = refsOf(docs);
    await addBlobRefs(this.db, refs);
    const searchIds = docs.map((d) => (kind === 'copy' ? new ObjectId() : searchIdOf(d)));
    if (kind === 'copy') {
      const sourceEntries = new Map(
        (await this.byIds(this.searchIndex(), docs.map(searchIdOf))).map((e) => [idText(e._id), e]),
      );
      const entries: SearchIndexDoc[] = [];
      docs.forEach((d, i) => {
        const entry = sourceEntries.get(idText(searchIdOf(d)));
        const id = searchIds[i];
        if (entry !== undefined && id !== undefined) {
          const { own: _own, ...copied } = entry;
          entries.push({ ...copied, _id: id, mailboxId: destId, ...(own === undefined ? {} : { own }) });
        }
      });
      if (entries.length > 0) await this.searchIndex().insertMany(entries, { ordered: false });
    }
    let allocated: Awaited<ReturnType<CopyMoveExpunge['allocate']>>;
    try {
      allocated = await this.allocate(dest, docs);
    } catch (error) {
      await this.releaseBlobRefs(refs);
      if (kind === 'copy') {
        await this.searchIndex()
          .deleteMany({ _id: { $in: searchIds } })
          .catch(() => undefined);
      }
      throw error;
    }
    // A copy carries neither a source's expunge claim (that EXPUNGE deletes by claim) nor its
    // delivery key (the copy is not the delivered message).
    // A copy carries the tag of this write, not its source's (ADR 0007, Commit-then-confirm).
    const copies: MessageRecord[] = docs.map(
      (
        { expungeClaim: _claim, expungeClaimedAt: _at, spoolId: _spool, recipient: _rcpt, own: _own, ...d },
        i,
      ) => ({
        ...d,
        _id: messageKey(destId, allocated.firstUid + i),
        searchId: searchIds[i] ?? searchIdOf(d),
        mailboxId: destId,
        uid: allocated.firstUid + i,
        modseq: allocated.modseq,
        ...(own === undefined ? {} : { own }),
      }),
    );
    try {
      await this.messages().insertMany(copies, { ordered: true });
    } catch (error) {
      // Whatever got in stays out of sight only if removed: a half-written COPY is undone.
      await this.messages()
        .deleteMany({ _id: { $in: copies.map((c) => c._id) } })
        .catch(() => undefined);
      await mailboxes(this.db)
        .updateOne({ _id: dest._id }, { $inc: this.counterDecrementsOf(docs) })
        .catch(() => undefined);
      await this.releaseBlobRefs(refs);
      if (kind === 'copy') {
        await this.searchIndex()
          .deleteMany({ _id: { $in: searchIds } })
          .catch(() => undefined);
      }
      index.drop(destId);
      throw error;
    }
    cacheWritten(copies);
    index.patch(destId, allocated.previousModseq, allocated.modseq, (entry) =>
      entry.add(copies.map(indexEntryOf)),
    );
    return allocated;
  }

  /**
   * Takes back the copies a COPY or MOVE wrote under `tag` whose confirm failed (ADR 0007): as a
   * failed insert of them is taken back in `writeCopies`.
   */
  private async undoCopies(
    dest: MailboxRecord,
    docs: readonly MessageRecord[],
    kind: 'copy' | 'move',
    tag: WriteTag,
  ): Promise<void> {
    const destId = dest._id.toHexString();
    const removed = await this.messages().deleteMany({ mailboxId: destId, ...taggedWith(tag) });
    if (removed.deletedCount > 0) {
      await mailboxes(this.db).updateOne({ _id: dest._id }, { $inc: this.counterDecrementsOf(docs) });
      await this.releaseBlobRefs(refsOf(docs));
    }
    if (kind === 'copy') await this.searchIndex().deleteMany({ mailboxId: destId, ...taggedWith(tag) });
    index.drop(destId);
  }

  /**
   * RFC 6851 §3.3 MOVE. A message's `_id` names its mailbox and UID, so a move writes the message
   * into the destination with its new UID and then deletes the source document: the source
   * messages are first claimed (as by EXPUNGE, so a concurrent EXPUNGE or MOVE cannot take them
   * too), then copied (with blob references of their own), then deleted by that claim, and the
   * source gets tombstones (VANISHED, RFC 7162 §3.2.10). A crash in between can leave a message in
   * both mailboxes (the claim expires and the source copy reappears), never in neither. Bodies
   * and search entries stay where they are.
   */
  async moveMessages(
    userId: string,
    mailboxId: string,
    uids: UidSet,
    destination: MailboxRef,
  ): Promise<mailstore.MoveMessagesResponse> {
    const source = await this.s.boxes.mailboxById(userId, mailboxId);
    const dest = await this.s.boxes.resolveMailbox(userId, destination, 'destination');
    const destId = dest._id.toHexString();
    if (destId === mailboxId) {
      throw new MailstoreError(
        ErrorReason.NOT_ALLOWED,
        'source and destination are the same mailbox',
        'destination',
      );
    }
    if (this.s.upkeep.appendsRecords) {
      // Both mailboxes locked for the whole move: an EXPUNGE of the source, which writes only a
      // tombstone record under the source's lock, cannot take the same messages meanwhile.
      return this.s.batches.underLocks([this.lockKey(mailboxId), this.lockKey(destId)], () =>
        this.moveLocked(userId, source, dest, uids, (_key, fn) => fn()),
      );
    }
    return this.moveLocked(userId, source, dest, uids, (key, fn) => this.rt.withCounterLock(key, fn));
  }

  private async moveLocked(
    userId: string,
    source: MailboxRecord,
    dest: MailboxRecord,
    uids: UidSet,
    lock: <T>(key: string, fn: () => Promise<T>) => Promise<T>,
  ): Promise<mailstore.MoveMessagesResponse> {
    const mailboxId = source._id.toHexString();
    const destId = dest._id.toHexString();
    if (this.s.upkeep.appendsRecords) source = await this.s.boxes.mailboxById(userId, mailboxId);
    const selected = await this.selectForTransfer(source, uids);
    const docs = await this.claim(mailboxId, selected);
    if (docs.length === 0) {
      return {
        destinationMailboxId: destId,
        destinationUidValidity: dest.uidValidity,
        mappings: [],
        sourceHighestModseq: source.highestModseq,
      };
    }
    const claim = docs[0]?.expungeClaim ?? '';
    const giveBack = () =>
      this.messages().updateMany(
        { expungeClaim: claim },
        { $unset: { expungeClaim: '', expungeClaimedAt: '' } },
      );
    // The copies carry the partition's tag; the sources go only once it is confirmed (ADR 0007).
    let write: FencedWrite | undefined;
    const { firstUid, uidValidity } = await lock(this.lockKey(destId), async () => {
      try {
        write = await this.beginWrite(userId);
        return await this.writeCopies(dest, docs, 'move', write?.tag);
      } catch (error) {
        write?.abandon();
        // Nothing moved: give the sources back.
        await giveBack().catch(() => undefined);
        throw error;
      }
    });
    await this.confirmWrite(write, userId, async (tag) => {
      await this.undoCopies(dest, docs, 'move', tag);
      await giveBack();
    });
    await this.messages().deleteMany({ expungeClaim: claim });
    const searchIds = docs.map(searchIdOf);
    await this.searchIndex().updateMany({ _id: { $in: searchIds } }, { $set: { mailboxId: destId } });
    await this.releaseBlobRefs(refsOf(docs));
    const sourceModseq = await lock(this.lockKey(mailboxId), () => this.removeFromSource(source, docs));
    this.onChanged(userId);
    return {
      destinationMailboxId: destId,
      destinationUidValidity: uidValidity,
      mappings: docs.map((d, i) => ({ sourceUid: d.uid, destinationUid: firstUid + i })),
      sourceHighestModseq: sourceModseq,
    };
  }

  /**
   * Marks `docs` (of `mailboxId`) as about to leave, unless a live EXPUNGE or MOVE claimed them
   * first; returns those this call claimed, in UID order, with `expungeClaim` set.
   */
  async claim(mailboxId: string, docs: readonly MessageRecord[]): Promise<MessageRecord[]> {
    if (docs.length === 0) return [];
    const claim = new ObjectId().toHexString();
    const claimedAt = new Date();
    await this.messages().updateMany(
      { _id: { $in: docs.map((d) => d._id) }, mailboxId, ...unclaimed() },
      { $set: { expungeClaim: claim, expungeClaimedAt: claimedAt } },
    );
    const mine = new Set(
      (
        await this.messages()
          .find({ expungeClaim: claim }, { projection: { _id: 1 } })
          .toArray()
      ).map((d) => idText(d._id)),
    );
    return docs
      .filter((d) => mine.has(idText(d._id)))
      .map((d) => ({ ...d, expungeClaim: claim, expungeClaimedAt: claimedAt }));
  }

  /** The `$inc` that takes `docs` out of their mailbox's counters (messages, size, unseen, deleted). */
  counterDecrementsOf(docs: readonly MessageRecord[]) {
    return {
      messages: -docs.length,
      size: -docs.reduce((s, d) => s + d.size, 0),
      unseen: -docs.filter((d) => !d.flags.includes(SEEN)).length,
      deleted: -docs.filter((d) => d.flags.includes(DELETED)).length,
    };
  }

  /** Counters down and tombstones in for messages that left `mailbox`; returns its HIGHESTMODSEQ. */
  async removeFromSource(mailbox: MailboxRecord, gone: readonly MessageRecord[]): Promise<number> {
    const after = await mailboxes(this.db).findOneAndUpdate(
      { _id: mailbox._id },
      { $inc: { highestModseq: 1, ...(gone.length > 0 ? this.counterDecrementsOf(gone) : {}) } },
      { returnDocument: 'after' },
    );
    if (after === null) return mailbox.highestModseq;
    index.patch(mailbox._id.toHexString(), after.highestModseq - 1, after.highestModseq, (entry) =>
      entry.remove(
        gone.map((d) => d.uid),
        after.highestModseq,
      ),
    );
    if (gone.length > 0) {
      await this.tombstones().insertMany(
        gone.map((d) => ({
          _id: new ObjectId(),
          mailboxId: mailbox._id.toHexString(),
          uid: d.uid,
          modseq: after.highestModseq,
          expungedAt: new Date(),
        })),
        { ordered: false },
      );
    }
    return after.highestModseq;
  }

  /**
   * RFC 9051 §6.4.3 EXPUNGE, RFC 4315 §2.1 UID EXPUNGE: removes \Deleted messages, leaves
   * tombstones with a new mod-sequence (RFC 7162 §3.2.10) and releases their bodies.
   */
  expunge(userId: string, mailboxId: string, uids: UidSet | undefined): Promise<mailstore.ExpungeResponse> {
    return this.s.flags.fencedUnderLock(userId, mailboxId, (fenced) =>
      this.expungeLocked(userId, mailboxId, uids, fenced),
    );
  }

  private async expungeLocked(
    userId: string,
    mailboxId: string,
    uids: UidSet | undefined,
    fenced: FencedRecords,
  ): Promise<mailstore.ExpungeResponse> {
    const mailbox = await this.s.boxes.mailboxById(userId, mailboxId);
    if (this.s.upkeep.appendsRecords) return this.expungeAsRecords(mailbox, uids, fenced);
    if ((await this.s.upkeep.pending()).has(mailboxId))
      await this.s.upkeep.compactChanges({ holding: mailboxId });
    let docs: MessageRecord[];
    if (uids === undefined) {
      docs = await this.messages()
        .find({ mailboxId, flags: DELETED }, { projection: { terms: 0, meta: 0 } })
        .sort({ uid: 1 })
        .toArray();
    } else {
      docs = (await this.selectForTransfer(mailbox, uids)).filter((d) => d.flags.includes(DELETED));
    }
    if (docs.length === 0) return { expungedUids: [], highestModseq: mailbox.highestModseq };
    // Claim, then delete what was claimed: a concurrent EXPUNGE or MOVE of the same messages
    // cannot make both count (and release) one message.
    docs = await this.claim(mailboxId, docs);
    if (docs.length === 0) return { expungedUids: [], highestModseq: mailbox.highestModseq };
    await this.messages().deleteMany({ expungeClaim: docs[0]?.expungeClaim ?? '' });
    await this.searchIndex().deleteMany({ _id: { $in: docs.map(searchIdOf) } });
    const highestModseq = await this.removeFromSource(mailbox, docs);
    await this.releaseBlobRefs(refsOf(docs));
    this.onChanged(userId);
    return { expungedUids: docs.map((d) => d.uid), highestModseq };
  }

  /**
   * EXPUNGE as appended records (the caller holds the mailbox's lock; this process owns the
   * mailbox, ADR 0007): the \Deleted messages come from the index entry (or the documents,
   * folded), one counter update allocates the MODSEQ of the removal (RFC 7162 §3.2.10) and takes
   * the messages out of the counters, and one insert writes their tombstones, marked pending. The
   * documents, search entries, blob references and usage follow in the background
   * (`compactChanges`); until then every read folds the tombstones.
   */
  private async expungeAsRecords(
    mailbox: MailboxRecord,
    uids: UidSet | undefined,
    fenced?: FencedRecords,
  ): Promise<mailstore.ExpungeResponse> {
    const mailboxId = mailbox._id.toHexString();
    const pending = await this.s.upkeep.pending();
    const intervals: Intervals =
      uids === undefined ? [[1, MAX_UID]] : await this.s.upkeep.intervalsOf(mailbox, uids, 'uids');
    const entry = index.get(mailboxId, mailbox.highestModseq);
    const gone: { uid: number; flags: readonly string[]; size: number }[] = [];
    if (entry !== undefined) {
      for (const m of entry.select(intervals)) if (m.flags.includes(DELETED)) gone.push(m);
    } else {
      const projection: Record<string, 0 | 1> = { _id: 1, uid: 1, flags: 1, modseq: 1, size: 1 };
      for await (const d of this.s.reader.messagesIn(mailbox, intervals, { projection })) {
        if (d.flags.includes(DELETED)) gone.push(d);
      }
    }
    if (gone.length === 0) return { expungedUids: [], highestModseq: mailbox.highestModseq };
    // One guarded transaction (ADR 0014), or its partition's tag, taken once nothing but the
    // write is left, and a confirm after (ADR 0007).
    const { atomic, write } = await this.recordWrite(mailbox.userId, fenced);
    const modseq = await this.s.flags.advanceCounters(mailbox, entry, {
      highestModseq: 1,
      messages: -gone.length,
      size: -gone.reduce((s, m) => s + m.size, 0),
      unseen: -gone.filter((m) => !m.flags.includes(SEEN)).length,
      deleted: -gone.length,
    });
    const now = new Date();
    const tombstones = gone.map((m) => ({
      _id: new ObjectId(),
      mailboxId,
      uid: m.uid,
      modseq,
      expungedAt: now,
      pending: true,
      ...(write === undefined ? {} : { own: write.tag }),
    }));
    try {
      await this.insertRecords(mailbox.userId, atomic, this.tombstones(), tombstones);
    } catch (error) {
      await this.s.flags.takeBackCounters(mailbox, {
        messages: gone.length,
        size: gone.reduce((s, m) => s + m.size, 0),
        unseen: gone.filter((m) => !m.flags.includes(SEEN)).length,
        deleted: gone.length,
      });
      index.drop(mailboxId);
      throw error;
    }
    for (const t of tombstones) pending.expunge(mailboxId, t.uid, t._id, modseq);
    // Quota usage drops with the EXPUNGE (RFC 9208 §5: it is the counters just moved), the
    // bodies with compaction.
    index.patch(mailboxId, modseq - 1, modseq, (e) =>
      e.remove(
        gone.map((m) => m.uid),
        modseq,
      ),
    );
    this.s.upkeep.recordWritten();
    // Announced once it counts.
    const announce = (): void => this.onChanged(mailbox.userId, { mailboxId, highestModseq: modseq });
    if (fenced === undefined) announce();
    else fenced.confirmed.push(announce);
    return { expungedUids: gone.map((m) => m.uid), highestModseq: modseq };
  }
}
