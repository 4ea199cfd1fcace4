/**
 * Mailbox operations of the mailstore: LIST, CREATE, RENAME, DELETE, STATUS, subscriptions and
 * the purge of a user's mail (RFC 9051 §6.3).
 */
import type { mailstore } from '@postmesh/contracts';
import { ObjectId } from 'mongodb';
import { addBlobRefs } from '../blob/index.js';
import { bodyRefId, isDuplicateKey } from './blob-store.js';
import { ErrorReason, type SpecialUseValue } from './contract.js';
import { MailstoreError } from './errors.js';
import { DELETED, SEEN } from './flags.js';
import type { MailboxIndexEntry } from './mailbox-index.js';
import { sharedMailboxIndex as index } from './mailbox-index.js';
import { flagChanges } from './pending-changes.js';
import {
  createDefaultMailboxes,
  ensureParents,
  insertMailbox,
  isSubscribed,
  listMailboxes,
  mailboxRecords,
  mailboxes,
  newMailboxRecord,
  setSubscribed,
  specialUseAttribute,
  specialUseValue,
  subscriptions,
  type ListRequest,
  type ListedMailbox,
} from './mailboxes.js';
import { DELIMITER, isDescendant, validateNewPath } from './paths.js';
import {
  MailstoreCollections,
  type MailboxRecord,
  type MessageRecord,
  type UidValidityDoc,
} from './types.js';
import { StorePart } from './store-part.js';
import {
  type MailboxRef,
  messageKey,
  searchIdOf,
  POINT_LOOKUPS,
  type Intervals,
  notFound,
  refsOf,
} from './store-common.js';

export class MailboxOps extends StorePart {
  createDefaultMailboxes(userId: string): Promise<void> {
    return createDefaultMailboxes(this.db, userId);
  }

  listMailboxes(request: ListRequest): Promise<ListedMailbox[]> {
    return listMailboxes(this.db, request);
  }

  async resolveMailbox(userId: string, ref: MailboxRef, field = 'mailbox'): Promise<MailboxRecord> {
    let found: MailboxRecord | null;
    // The owner's copy when it has one (mailboxes.ts `mailboxRecords`), else one read, kept.
    if ('id' in ref) {
      // By `_id` alone, the owner checked here: FerretDB decodes every mailbox of every user for
      // any other filter. Another user's mailbox is as absent as a missing one.
      const valid = ObjectId.isValid(ref.id) && /^[0-9a-f]{24}$/i.test(ref.id);
      const id = ref.id.toLowerCase();
      let byId = valid ? (mailboxRecords.byId(this.db, id) ?? null) : null;
      if (valid && byId === null) {
        const token = mailboxRecords.readToken(this.db, id);
        byId = await mailboxes(this.db).findOne({ _id: new ObjectId(id) });
        if (byId !== null) mailboxRecords.keep(this.db, byId, token);
      }
      found = byId?.userId === userId ? byId : null;
    } else {
      const path =
        ref.path.toUpperCase() === 'INBOX' || ref.path.toUpperCase().startsWith('INBOX/')
          ? `INBOX${ref.path.slice(5)}`
          : ref.path;
      found = mailboxRecords.byUserPath(this.db, userId, path) ?? null;
      if (found === null) {
        const token = mailboxRecords.readToken(this.db, undefined);
        found = await mailboxes(this.db).findOne({ userId, path });
        if (found !== null) mailboxRecords.keep(this.db, found, token);
      }
    }
    if (found === null) throw notFound('mailbox', field);
    return found;
  }

  async createMailbox(
    userId: string,
    rawPath: string,
    specialUse: SpecialUseValue,
    subscribe: boolean,
  ): Promise<{ mailbox: ListedMailbox; createdParents: string[] }> {
    const path = validateNewPath(rawPath, 'path');
    const attribute = specialUseAttribute(specialUse);
    if (attribute !== null) {
      // RFC 6154 §3: one mailbox per special use in Postmesh, so clients find a single \Sent.
      const taken = await mailboxes(this.db).countDocuments({ userId, specialUse: attribute }, { limit: 1 });
      if (taken > 0) {
        throw new MailstoreError(
          ErrorReason.NOT_ALLOWED,
          'special use already given to another mailbox',
          'special_use',
        );
      }
    }
    if ((await mailboxes(this.db).countDocuments({ userId, path }, { limit: 1 })) > 0) {
      throw new MailstoreError(ErrorReason.ALREADY_EXISTS, 'mailbox exists', 'path');
    }
    await this.checkMailboxLimit(userId, path.split(DELIMITER).length);
    const createdParents = await ensureParents(this.db, userId, path);
    if (subscribe) await setSubscribed(this.db, userId, path, true);
    const record = await newMailboxRecord(
      this.db,
      userId,
      path,
      attribute,
      subscribe || (await isSubscribed(this.db, userId, path)),
    );
    if (!(await insertMailbox(this.db, record))) {
      throw new MailstoreError(ErrorReason.ALREADY_EXISTS, 'mailbox exists', 'path');
    }
    this.onChanged(userId);
    return {
      mailbox: { record, path, subscribed: record.subscribed, hasChildren: false },
      createdParents,
    };
  }

  /** LIMIT_EXCEEDED when `adding` more mailboxes would pass the per-user limit (a bound, not exact). */
  private async checkMailboxLimit(userId: string, adding: number): Promise<void> {
    const count = await mailboxes(this.db).countDocuments({ userId });
    if (count + adding > this.limits.maxMailboxes) {
      throw new MailstoreError(ErrorReason.LIMIT_EXCEEDED, 'too many mailboxes', 'path');
    }
  }

  /**
   * RFC 9051 §6.3.6 RENAME: the mailbox and all its children. Renaming INBOX moves its messages
   * to a new mailbox and leaves INBOX empty; INBOX's children stay where they are.
   */
  async renameMailbox(userId: string, ref: MailboxRef, rawNewPath: string): Promise<ListedMailbox> {
    const source = await this.resolveMailbox(userId, ref);
    const newPath = validateNewPath(rawNewPath, 'new_path');
    if (source.path === 'INBOX') return this.renameInbox(source, newPath);
    if (newPath === source.path || newPath === 'INBOX') {
      throw new MailstoreError(ErrorReason.ALREADY_EXISTS, 'mailbox exists', 'new_path');
    }
    if (isDescendant(newPath, source.path)) {
      throw new MailstoreError(ErrorReason.NOT_ALLOWED, 'cannot rename a mailbox into itself', 'new_path');
    }
    const all = await mailboxes(this.db)
      .find({ userId }, { projection: { _id: 1, path: 1 } })
      .toArray();
    const existing = new Set(all.map((m) => m.path));
    const moving = all.filter((m) => m.path === source.path || isDescendant(m.path, source.path));
    const renames = moving.map((m) => ({ id: m._id, to: newPath + m.path.slice(source.path.length) }));
    if (renames.some((r) => existing.has(r.to))) {
      throw new MailstoreError(ErrorReason.ALREADY_EXISTS, 'mailbox exists', 'new_path');
    }
    await this.checkMailboxLimit(userId, newPath.split(DELIMITER).length - 1);
    await ensureParents(this.db, userId, newPath);
    for (const { id, to } of renames) {
      try {
        await mailboxes(this.db).updateOne(
          { _id: id, userId },
          { $set: { path: to, subscribed: await isSubscribed(this.db, userId, to) } },
        );
      } catch (error) {
        if (isDuplicateKey(error))
          throw new MailstoreError(ErrorReason.ALREADY_EXISTS, 'mailbox exists', 'new_path');
        throw error;
      }
    }
    this.onChanged(userId);
    const renamed = await this.resolveMailbox(userId, { id: source._id.toHexString() });
    return {
      record: renamed,
      path: renamed.path,
      subscribed: renamed.subscribed,
      hasChildren: renames.length > 1,
    };
  }

  private renameInbox(inbox: MailboxRecord, newPath: string): Promise<ListedMailbox> {
    return this.rt.withCounterLock(this.lockKey(inbox._id.toHexString()), () =>
      this.renameInboxLocked(inbox, newPath),
    );
  }

  private async renameInboxLocked(inbox: MailboxRecord, newPath: string): Promise<ListedMailbox> {
    const userId = inbox.userId;
    if (
      newPath === 'INBOX' ||
      (await mailboxes(this.db).countDocuments({ userId, path: newPath }, { limit: 1 })) > 0
    ) {
      throw new MailstoreError(ErrorReason.ALREADY_EXISTS, 'mailbox exists', 'new_path');
    }
    await this.checkMailboxLimit(userId, newPath.split(DELIMITER).length);
    await ensureParents(this.db, userId, newPath);
    // One mod-sequence for the expunges INBOX's sessions will see (RFC 7162 §3.2.10 VANISHED).
    const after = await mailboxes(this.db).findOneAndUpdate(
      { _id: inbox._id },
      { $inc: { highestModseq: 1 } },
      { returnDocument: 'after' },
    );
    if (after === null) throw notFound('mailbox');
    index.drop(inbox._id.toHexString());
    const modseq = after.highestModseq;
    const lastUid = after.uidNext - 1;
    const inboxId = inbox._id.toHexString();
    const pending = await this.s.upkeep.pending();
    const moving = (
      await this.messages()
        .find({ mailboxId: inboxId, uid: { $lte: lastUid } }, { projection: { terms: 0 } })
        .toArray()
    ).flatMap((m) => pending.fold(inboxId, m) ?? []);
    const target = await newMailboxRecord(
      this.db,
      userId,
      newPath,
      null,
      await isSubscribed(this.db, userId, newPath),
    );
    // The moved messages keep their UIDs: the new mailbox starts where INBOX stands, so its UIDs
    // stay ascending; its UIDVALIDITY is new, as for any new mailbox.
    target.uidNext = after.uidNext;
    target.highestModseq = modseq;
    target.messages = moving.length;
    target.size = moving.reduce((s, m) => s + m.size, 0);
    target.unseen = moving.filter((m) => !m.flags.includes(SEEN)).length;
    target.deleted = moving.filter((m) => m.flags.includes(DELETED)).length;
    target.recentFloor = after.uidNext;
    if (!(await insertMailbox(this.db, target))) {
      throw new MailstoreError(ErrorReason.ALREADY_EXISTS, 'mailbox exists', 'new_path');
    }
    if (moving.length > 0) {
      // The messages get ids in the new mailbox (same UIDs), with blob references of their own
      // until the INBOX documents are gone, as for MOVE.
      const targetId = target._id.toHexString();
      const refs = refsOf(moving);
      await addBlobRefs(this.db, refs);
      await this.messages().insertMany(
        moving.map(({ expungeClaim: _claim, expungeClaimedAt: _at, ...m }) => ({
          ...m,
          _id: messageKey(targetId, m.uid),
          searchId: searchIdOf(m),
          mailboxId: targetId,
        })),
        { ordered: false },
      );
      await this.messages().deleteMany({ _id: { $in: moving.map((m) => m._id) } });
      await this.releaseBlobRefs(refs);
      await this.searchIndex().updateMany(
        { _id: { $in: moving.map(searchIdOf) } },
        { $set: { mailboxId: targetId } },
      );
      await this.tombstones().insertMany(
        moving.map((m) => ({
          _id: new ObjectId(),
          mailboxId: inbox._id.toHexString(),
          uid: m.uid,
          modseq,
          expungedAt: new Date(),
        })),
      );
      await mailboxes(this.db).updateOne(
        { _id: inbox._id },
        {
          $inc: {
            messages: -target.messages,
            size: -target.size,
            unseen: -target.unseen,
            deleted: -(target.deleted ?? 0),
          },
        },
      );
    }
    this.onChanged(userId);
    return { record: target, path: newPath, subscribed: target.subscribed, hasChildren: false };
  }

  /**
   * RFC 9051 §6.3.5 DELETE. INBOX cannot be deleted. A mailbox with children is refused
   * (NOT_ALLOWED, IMAP `NO [HASCHILDREN]` of RFC 5530 §3): Postmesh has no \Noselect mailboxes,
   * so the RFC's alternative of keeping a non-selectable parent does not arise.
   */
  async deleteMailbox(userId: string, ref: MailboxRef): Promise<string> {
    const mailbox = await this.resolveMailbox(userId, ref);
    if (mailbox.path === 'INBOX') {
      throw new MailstoreError(ErrorReason.NOT_ALLOWED, 'INBOX cannot be deleted', 'mailbox'); // RFC 9051 §6.3.5
    }
    const all = await mailboxes(this.db)
      .find({ userId }, { projection: { path: 1 } })
      .toArray();
    if (all.some((m) => isDescendant(m.path, mailbox.path))) {
      throw new MailstoreError(ErrorReason.NOT_ALLOWED, 'mailbox has children', 'mailbox');
    }
    const mailboxId = mailbox._id.toHexString();
    // The mailbox goes first so nothing new lands in it; then its messages and their blobs, and its
    // pending records, whose compaction must not release a body a second time.
    await mailboxes(this.db).deleteOne({ _id: mailbox._id, userId });
    index.drop(mailboxId);
    await this.rt.compactionLocks.run(this.lockKey(mailboxId), () =>
      this.deleteMessagesOf(userId, mailboxId),
    );
    this.onChanged(userId);
    return mailboxId;
  }

  private async deleteMessagesOf(userId: string, mailboxId: string): Promise<void> {
    const pending = await this.s.upkeep.pending();
    const refs = new Map<string, { id: ObjectId; n: number }>();
    for await (const m of this.messages().find({ mailboxId }, { projection: { blobId: 1, blob: 1 } })) {
      // A body in a pack holds a reference to the pack (storePacked).
      const id = bodyRefId(m.blobId, m.blob);
      const key = id.toHexString();
      const entry = refs.get(key) ?? { id, n: 0 };
      entry.n++;
      refs.set(key, entry);
    }
    await this.messages().deleteMany({ mailboxId });
    await this.searchIndex().deleteMany({ mailboxId });
    await this.tombstones().deleteMany({ mailboxId });
    await flagChanges(this.db).deleteMany({ mailboxId });
    pending.dropMailbox(mailboxId);
    await this.releaseBlobRefs(refs);
  }

  /**
   * Removes all mail of a user (DeleteUser with purge): messages, tombstones, mailboxes,
   * subscriptions, and the user's references to stored bodies, so a body is deleted when no other
   * user's copy refers to it. The UIDVALIDITY record goes too: the user id is never reused.
   */
  async purgeUserMail(userId: string): Promise<void> {
    const boxes = await mailboxes(this.db)
      .find({ userId }, { projection: { _id: 1 } })
      .toArray();
    // Sorted: compaction takes the locks of several mailboxes in that order too (no deadlock).
    const mailboxIds = boxes.map((b) => b._id.toHexString()).sort();
    // Mailboxes first, so nothing new lands in them while their messages go; compaction of their
    // pending records is held off (it would release bodies a second time).
    await mailboxes(this.db).deleteMany({ userId });
    index.dropUser(userId);
    const step = (i: number): Promise<void> => {
      const id = mailboxIds[i];
      return id === undefined
        ? this.purgeMessagesOf(userId, mailboxIds)
        : this.rt.compactionLocks.run(this.lockKey(id), () => step(i + 1));
    };
    await step(0);
  }

  private async purgeMessagesOf(userId: string, mailboxIds: readonly string[]): Promise<void> {
    const pending = await this.s.upkeep.pending();
    const refs = new Map<string, { id: ObjectId; n: number }>();
    for await (const m of this.messages().find({ userId }, { projection: { blobId: 1, blob: 1 } })) {
      // A body in a pack holds a reference to the pack (storePacked).
      const id = bodyRefId(m.blobId, m.blob);
      const entry = refs.get(id.toHexString()) ?? { id, n: 0 };
      entry.n++;
      refs.set(id.toHexString(), entry);
    }
    await this.messages().deleteMany({ userId });
    await this.searchIndex().deleteMany({ userId });
    await this.releaseBlobRefs(refs);
    await this.tombstones().deleteMany({ mailboxId: { $in: [...mailboxIds] } });
    await flagChanges(this.db).deleteMany({ mailboxId: { $in: [...mailboxIds] } });
    for (const id of mailboxIds) pending.dropMailbox(id);
    await subscriptions(this.db).deleteMany({ userId });
    await this.db.collection<UidValidityDoc>(MailstoreCollections.uidValidity).deleteMany({ _id: userId });
  }

  setSubscribed(userId: string, path: string, subscribed: boolean): Promise<void> {
    return setSubscribed(this.db, userId, path, subscribed);
  }

  /** SELECT / EXAMINE / STATUS counters (RFC 9051 §6.3.2, §6.3.11; RFC 7162 §3.1.2.1). */
  async getMailboxStatus(
    userId: string,
    ref: MailboxRef,
    claimRecent: boolean,
  ): Promise<mailstore.GetMailboxStatusResponse> {
    let mailbox = await this.s.upkeep.settled(await this.resolveMailbox(userId, ref));
    const mailboxId = mailbox._id.toHexString();
    // The owner builds the entry of any mailbox it is asked about, small ones too: on FerretDB an
    // `_id` lookup decodes the collection as a read of the whole mailbox does, and after the
    // build every command on the mailbox is answered from memory (ADR 0006).
    const entry = await this.s.upkeep.indexOf(mailbox, true);
    // A build that found counters behind the messages (lost with a former process) raised them.
    if (entry !== undefined && entry.stamp !== mailbox.highestModseq)
      mailbox = await this.s.upkeep.settled(mailbox);
    const recentFrom = mailbox.recentFloor ?? 1;
    let recent = 0;
    const fewRecent = mailbox.keyedMessages === true && mailbox.uidNext - recentFrom <= POINT_LOOKUPS;
    if (entry !== undefined) {
      recent = entry.countFrom(recentFrom);
    } else if (fewRecent) {
      // A few UIDs since the last SELECT (the usual case): `_id` lookups, not a count over the mailbox.
      const range: Intervals = recentFrom < mailbox.uidNext ? [[recentFrom, mailbox.uidNext - 1]] : [];
      for await (const _ of this.s.reader.messagesIn(mailbox, range, { projection: { _id: 1 } })) recent++;
    } else {
      recent = await this.messages().countDocuments({ mailboxId, uid: { $gte: recentFrom } });
    }
    let firstRecentUid = 0;
    if (claimRecent) {
      // RFC 3501 §6.3.1: the session that SELECTs claims \Recent; later ones see none.
      const floor = await this.rt.withCounterLock(this.lockKey(mailboxId), async () => {
        // The owner's copy is what the database holds (ADR 0007): with nothing new to claim
        // there is nothing to write, and a write keeps the copy (`after`) for the next command.
        const known = mailboxRecords.byId(this.db, mailboxId);
        if (known !== undefined) {
          const was = known.recentFloor ?? 1;
          if (was >= mailbox.uidNext) return was;
          // In memory, written with the mailbox's counters (ADR 0007): a session's claim after
          // each APPEND of another session was an update of the mailbox each.
          if (mailboxRecords.raiseRecentFloor(this.db, mailboxId, mailbox.uidNext)) {
            this.s.flags.countersAhead();
            return was;
          }
          await mailboxes(this.db).findOneAndUpdate(
            { _id: mailbox._id },
            { $max: { recentFloor: mailbox.uidNext } },
            { returnDocument: 'after' },
          );
          return was;
        }
        const before = await mailboxes(this.db).findOneAndUpdate(
          { _id: mailbox._id },
          { $max: { recentFloor: mailbox.uidNext } },
          { returnDocument: 'before' },
        );
        return before?.recentFloor ?? 1;
      });
      firstRecentUid = Math.min(floor, mailbox.uidNext);
    }
    const firstUnseenUid = await this.firstUnseenUid(mailbox, entry);
    return {
      status: {
        mailboxId,
        path: mailbox.path,
        messages: mailbox.messages,
        recent,
        uidNext: mailbox.uidNext,
        uidValidity: mailbox.uidValidity,
        unseen: mailbox.unseen,
        deleted: Math.max(0, mailbox.deleted ?? 0),
        highestModseq: mailbox.highestModseq,
        size: mailbox.size,
        firstUnseenUid,
      },
      specialUse: specialUseValue(mailbox.specialUse),
      firstRecentUid,
    };
  }

  /**
   * UID of the first message without \Seen (RFC 3501 §7.1 `[UNSEEN n]`), 0 for none. The `unseen`
   * counter says whether to look and, in keyed mailboxes, lets a window of `_id` lookups answer
   * the usual cases without a query over the mailbox: when every message is unseen it is the
   * lowest UID in use; when the unseen messages are the last ones it is the lowest unseen UID of
   * the window at the top, if the window holds exactly `unseen` of them. Otherwise, one query.
   */
  private async firstUnseenUid(mailbox: MailboxRecord, entry?: MailboxIndexEntry): Promise<number> {
    if (mailbox.unseen <= 0) return 0;
    if (entry !== undefined) return entry.firstWithout(SEEN);
    const top = mailbox.uidNext - 1;
    if (mailbox.keyedMessages === true && top >= 1) {
      const window: Intervals =
        mailbox.unseen >= mailbox.messages
          ? [[1, Math.min(top, POINT_LOOKUPS)]]
          : [[Math.max(1, top - POINT_LOOKUPS + 1), top]];
      const docs: MessageRecord[] = [];
      for await (const doc of this.s.reader.messagesIn(mailbox, window, {
        projection: { uid: 1, flags: 1 },
      })) {
        docs.push(doc);
      }
      const unseen = docs.filter((d) => !d.flags.includes(SEEN));
      if (mailbox.unseen >= mailbox.messages) {
        const lowest = docs[0];
        if (lowest !== undefined && !lowest.flags.includes(SEEN)) return lowest.uid;
      } else if (unseen.length === mailbox.unseen && unseen[0] !== undefined) {
        return unseen[0].uid;
      }
    }
    const built = await this.s.upkeep.indexOf(mailbox, true);
    if (built !== undefined) return built.firstWithout(SEEN);
    const first = await this.messages().findOne(
      { mailboxId: mailbox._id.toHexString(), flags: { $ne: SEEN } },
      { sort: { uid: 1 }, projection: { uid: 1 } },
    );
    return first?.uid ?? 0;
  }

  async mailboxById(userId: string, mailboxId: string): Promise<MailboxRecord> {
    return this.resolveMailbox(userId, { id: mailboxId }, 'mailbox_id');
  }
}
