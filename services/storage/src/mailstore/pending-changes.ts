/**
 * Flag changes and expunges as appended records (ADR 0007 "Flags and expunges as appended
 * records"). On FerretDB 1.24 every update or delete of a message document scans the whole
 * `messages` collection (about 22 updates/s at 2,000 documents, fewer as it grows), while an insert
 * costs the same at any size. So STORE writes one `message_changes` record per changed message and
 * EXPUNGE one tombstone marked `pending` per removed message — inserts only, durable before the
 * command's OK — and the owner folds them into what it answers at once: into the mailbox index
 * entry, and into every message document it reads (`PendingChanges.fold`). A background
 * compaction (`compactPending`) later writes the flags into the message documents, deletes the
 * expunged ones with their search entries and blob references, and then removes the
 * records; it keeps the tombstones themselves, which QRESYNC's VANISHED needs (RFC 7162 §3.2.10).
 *
 * The records are the truth until compacted: on start (first use) the owner loads every record
 * not compacted yet, so an index rebuilt from the database after a restart folds the same
 * changes, and a flag change that got its OK is never lost. Folding is idempotent: a record
 * applies when its MODSEQ is above the document's (a compacted document carries the record's
 * MODSEQ), and an expunged message is gone whatever its document says.
 */
import { ObjectId, type AnyBulkWriteOperation, type Collection, type Db, type Filter } from 'mongodb';
import type { Logger } from '@postmesh/telemetry';
import { boundedBulkWrite } from '../db/bulk-updates.js';
import { Collections, type TombstoneDoc } from '../db/schema.js';
import type { BlobRefCounts, BlobStoreKind } from '../blob/index.js';
import { MailstoreCollections, type MessageRecord, type SearchIndexDoc, type WriteTag } from './types.js';
import { bodyRefId } from './blob-store.js';

/** One message's flags as changed by a STORE, appended (never updated in place). */
export interface FlagChangeDoc {
  _id: ObjectId;
  mailboxId: string;
  uid: number;
  /** The message's whole flag set after the change. */
  flags: string[];
  /** The MODSEQ the change got (RFC 7162 §3.1.1). */
  modseq: number;
  /** The owner's STORE that wrote it (ADR 0007, Commit-then-confirm); absent: always counts. */
  own?: WriteTag;
}

/** A tombstone whose message document is not deleted yet (`pending` is unset by compaction). */
export interface PendingTombstoneDoc extends TombstoneDoc {
  pending?: boolean;
  /** The owner's EXPUNGE or MOVE that wrote it (ADR 0007, Commit-then-confirm); absent: always counts. */
  own?: WriteTag;
}

interface PendingFlags {
  flags: readonly string[];
  modseq: number;
  /** The records behind it (one per STORE that changed the message since the last compaction). */
  ids: ObjectId[];
  /** The record of `flags` (the latest): the one kept when flag records are the flags' store. */
  latest: ObjectId;
}

export function flagChanges(db: Db): Collection<FlagChangeDoc> {
  return db.collection<FlagChangeDoc>(MailstoreCollections.flagChanges);
}

function tombstones(db: Db): Collection<PendingTombstoneDoc> {
  return db.collection<PendingTombstoneDoc>(Collections.tombstones);
}

/** The records of one database not folded into its message documents yet. */
export class PendingChanges {
  /**
   * The owner keeps each message's latest flag record as the store of its flags (ADR 0007): only
   * superseded records and expunges wait for compaction, which never writes a message document.
   */
  keepLatest = false;

  private readonly flags = new Map<string, Map<number, PendingFlags>>();
  /** Expunged messages whose documents are still there: UID → tombstone `_id`. */
  private readonly expunged = new Map<string, Map<number, ObjectId>>();
  /** The highest UID and MODSEQ of the mailbox's expunges seen (kept after compaction). */
  private readonly expungedTop = new Map<string, { uid: number; modseq: number }>();

  /** Records to compact. */
  get size(): number {
    let n = 0;
    const kept = this.keepLatest ? 1 : 0;
    for (const m of this.flags.values()) for (const p of m.values()) n += Math.max(0, p.ids.length - kept);
    for (const m of this.expunged.values()) n += m.size;
    return n;
  }

  setFlags(mailboxId: string, uid: number, flags: readonly string[], modseq: number, id: ObjectId): void {
    let byUid = this.flags.get(mailboxId);
    if (byUid === undefined) {
      byUid = new Map();
      this.flags.set(mailboxId, byUid);
    }
    const known = byUid.get(uid);
    if (known === undefined) {
      byUid.set(uid, { flags, modseq, ids: [id], latest: id });
      return;
    }
    known.ids.push(id);
    if (modseq > known.modseq) {
      known.flags = flags;
      known.modseq = modseq;
      known.latest = id;
    }
  }

  expunge(mailboxId: string, uid: number, tombstoneId: ObjectId, modseq = 0): void {
    let byUid = this.expunged.get(mailboxId);
    if (byUid === undefined) {
      byUid = new Map();
      this.expunged.set(mailboxId, byUid);
    }
    byUid.set(uid, tombstoneId);
    const top = this.expungedTop.get(mailboxId);
    if (top === undefined || uid > top.uid || modseq > top.modseq) {
      this.expungedTop.set(mailboxId, {
        uid: Math.max(uid, top?.uid ?? 0),
        modseq: Math.max(modseq, top?.modseq ?? 0),
      });
    }
  }

  /**
   * The highest UID and MODSEQ of the mailbox's expunges not compacted yet and of its flag
   * records: an index build raises UIDNEXT and HIGHESTMODSEQ above them (the owner writes its
   * counters after the records, `FlagStore.advanceCounters`), so a UID or MODSEQ is never reused.
   */
  highestOf(mailboxId: string): { uid: number; modseq: number } {
    const top = this.expungedTop.get(mailboxId) ?? { uid: 0, modseq: 0 };
    let { uid, modseq } = top;
    for (const [u, p] of this.flags.get(mailboxId) ?? []) {
      uid = Math.max(uid, u);
      modseq = Math.max(modseq, p.modseq);
    }
    return { uid, modseq };
  }

  isExpunged(mailboxId: string, uid: number): boolean {
    return this.expunged.get(mailboxId)?.has(uid) === true;
  }

  /** Whether any record of the mailbox waits for compaction. */
  has(mailboxId: string): boolean {
    return (this.flags.get(mailboxId)?.size ?? 0) > 0 || (this.expunged.get(mailboxId)?.size ?? 0) > 0;
  }

  /**
   * A message document as the records make it: null when expunged, else with the flags and
   * MODSEQ of its latest record if that is newer than the document.
   */
  fold<T extends Pick<MessageRecord, 'uid'> & Partial<Pick<MessageRecord, 'flags' | 'modseq'>>>(
    mailboxId: string,
    doc: T,
  ): T | null {
    if (this.isExpunged(mailboxId, doc.uid)) return null;
    const change = this.flags.get(mailboxId)?.get(doc.uid);
    if (change === undefined || change.modseq <= (doc.modseq ?? 0)) return doc;
    return { ...doc, flags: [...change.flags], modseq: change.modseq };
  }

  /** Flag records of the mailbox with a MODSEQ above `since` (CHANGEDSINCE over documents). */
  changedSince(
    mailboxId: string,
    since: number,
  ): { uid: number; flags: readonly string[]; modseq: number }[] {
    const out: { uid: number; flags: readonly string[]; modseq: number }[] = [];
    for (const [uid, p] of this.flags.get(mailboxId) ?? []) {
      if (p.modseq > since && !this.isExpunged(mailboxId, uid))
        out.push({ uid, flags: p.flags, modseq: p.modseq });
    }
    return out.sort((a, b) => a.uid - b.uid);
  }

  /** Forgets a mailbox's records (its messages and records were deleted with it). */
  dropMailbox(mailboxId: string): void {
    this.flags.delete(mailboxId);
    this.expunged.delete(mailboxId);
    this.expungedTop.delete(mailboxId);
  }

  mailboxesWithFlags(): string[] {
    return [...this.flags.keys()];
  }

  mailboxesWithExpunges(): string[] {
    return [...this.expunged.keys()];
  }

  flagsOf(mailboxId: string): [number, PendingFlags][] {
    return [...(this.flags.get(mailboxId) ?? [])].map(([uid, p]) => [uid, { ...p, ids: [...p.ids] }]);
  }

  expungesOf(mailboxId: string): [number, ObjectId][] {
    return [...(this.expunged.get(mailboxId) ?? [])];
  }

  /** After compaction wrote `done` (UID → MODSEQ written): forgets records nothing newer replaced. */
  compactedFlags(
    mailboxId: string,
    done: ReadonlyMap<number, { modseq: number; ids: readonly ObjectId[] }>,
  ): void {
    const byUid = this.flags.get(mailboxId);
    if (byUid === undefined) return;
    for (const [uid, written] of done) {
      const now = byUid.get(uid);
      if (now === undefined) continue;
      const gone = new Set(written.ids.map((id) => id.toHexString()));
      now.ids = now.ids.filter((id) => !gone.has(id.toHexString()));
      if (now.modseq <= written.modseq && now.ids.length === 0) byUid.delete(uid);
    }
    if (byUid.size === 0) this.flags.delete(mailboxId);
  }

  /** Forgets superseded flag records compaction deleted (the latest of each message stays). */
  supersededDeleted(mailboxId: string, ids: readonly ObjectId[]): void {
    const gone = new Set(ids.map((id) => id.toHexString()));
    for (const p of this.flags.get(mailboxId)?.values() ?? []) {
      p.ids = p.ids.filter((id) => !gone.has(id.toHexString()));
    }
  }

  compactedExpunges(mailboxId: string, uids: readonly number[]): void {
    const byUid = this.expunged.get(mailboxId);
    const flags = this.flags.get(mailboxId);
    for (const uid of uids) {
      byUid?.delete(uid);
      flags?.delete(uid);
    }
    if (byUid?.size === 0) this.expunged.delete(mailboxId);
    if (flags?.size === 0) this.flags.delete(mailboxId);
  }

  /** Mailboxes with any record. */
  mailboxes(): string[] {
    return [...new Set([...this.flags.keys(), ...this.expunged.keys()])];
  }

  /**
   * Takes the records `other` (a fresh load) holds for the mailboxes `keep` selects, and drops
   * every record of the other mailboxes: after ownership moved (ADR 0007), this replica folds
   * what the former owners of its mailboxes wrote, and leaves the records of mailboxes it no
   * longer owns to their owner (folding and compacting them is the owner's).
   */
  retainFrom(other: PendingChanges, keep: (mailboxId: string) => boolean): void {
    for (const mailboxId of this.mailboxes()) if (!keep(mailboxId)) this.dropMailbox(mailboxId);
    for (const [mailboxId, byUid] of other.flags) {
      if (!keep(mailboxId)) continue;
      for (const [uid, change] of byUid) {
        const known = new Set(
          this.flags
            .get(mailboxId)
            ?.get(uid)
            ?.ids.map((id) => id.toHexString()),
        );
        for (const id of change.ids) {
          if (!known.has(id.toHexString())) this.setFlags(mailboxId, uid, change.flags, change.modseq, id);
        }
      }
    }
    for (const [mailboxId, byUid] of other.expunged) {
      if (!keep(mailboxId)) continue;
      const top = other.expungedTop.get(mailboxId)?.modseq ?? 0;
      for (const [uid, tombstoneId] of byUid) this.expunge(mailboxId, uid, tombstoneId, top);
    }
  }

  /**
   * Loads every record not compacted yet (one read of each collection, at first use), but those
   * an owner wrote and never got confirmed (ADR 0007, Rebuild; `setRecordJudge`).
   */
  static async load(db: Db): Promise<PendingChanges> {
    const pending = new PendingChanges();
    const counts = recordJudges.get(db) ?? (() => true);
    for await (const c of flagChanges(db).find({})) {
      if (c.own !== undefined && !counts(c.own)) continue;
      pending.setFlags(c.mailboxId, c.uid, c.flags, c.modseq, c._id);
    }
    const projection = { mailboxId: 1, uid: 1, modseq: 1, own: 1 };
    for await (const t of tombstones(db).find({ pending: true }, { projection })) {
      if (t.own !== undefined && !counts(t.own)) continue;
      pending.expunge(t.mailboxId, t.uid, t._id, t.modseq);
    }
    return pending;
  }
}

/** Per database, which tagged records count (the storage process's `WriteConfirmation.counts`). */
const recordJudges = new WeakMap<Db, (tag: WriteTag) => boolean>();

/** With ownership on: records whose write was never confirmed are not folded (ADR 0007, Rebuild). */
export function setRecordJudge(db: Db, counts: (tag: WriteTag) => boolean): void {
  recordJudges.set(db, counts);
}

/**
 * With ownership on (ADR 0007), which users' records this process folds and compacts, per
 * database: the owner of a mailbox is the one to fold its records into what it serves and to
 * compact them (two replicas compacting one expunge would release its body's reference twice).
 */
const recordOwners = new WeakMap<Db, (userId: string) => boolean>();

export function setRecordOwnership(db: Db, ownsUser: (userId: string) => boolean): void {
  recordOwners.set(db, ownsUser);
}

/**
 * `into` keeps, of its own records and those of `loaded`, only the mailboxes whose users this
 * process owns now (every mailbox without ownership). One read of the mailboxes named.
 */
export async function retainOwnedRecords(
  db: Db,
  into: PendingChanges,
  loaded: PendingChanges,
): Promise<void> {
  const ownsUser = recordOwners.get(db);
  if (ownsUser === undefined) {
    into.retainFrom(loaded, () => true);
    return;
  }
  const ids = [...new Set([...into.mailboxes(), ...loaded.mailboxes()])].filter((id) => ObjectId.isValid(id));
  const userOf = new Map<string, string>();
  if (ids.length > 0) {
    const found = db
      .collection<{ _id: ObjectId; userId: string }>(Collections.mailboxes)
      .find({ _id: { $in: ids.map((id) => new ObjectId(id)) } }, { projection: { userId: 1 } });
    for await (const m of found) userOf.set(m._id.toHexString(), m.userId);
  }
  // A mailbox that is gone (deleted with its records) keeps nothing.
  into.retainFrom(loaded, (mailboxId) => {
    const userId = userOf.get(mailboxId);
    return userId !== undefined && ownsUser(userId);
  });
}

/**
 * Up to this many documents are deleted one `_id` per statement: on FerretDB 1.24 (SQLite)
 * `{_id: {$in: […]}}` decodes the whole collection, which at a few thousand messages costs as much
 * FerretDB CPU as about twenty single-`_id` deletes (measured in docs/benchmarks.md, "Long-lived
 * sessions"). A single-`_id` lookup costs far less than a delete (about 1/40), so compaction
 * looks up to COMPACTION_LOOKUPS documents (its default limit) one at a time.
 */
const POINT_DELETES = 16;
const COMPACTION_LOOKUPS = 512;

/** Deletes documents by `_id`: one statement each for a few, one `$in` for many. */
async function deleteByIds<T extends { _id: unknown }>(
  collection: Collection<T>,
  ids: readonly T['_id'][],
): Promise<void> {
  if (ids.length > POINT_DELETES) {
    await collection.deleteMany({ _id: { $in: [...ids] } } as Filter<T>);
    return;
  }
  await boundedBulkWrite(
    collection,
    ids.map((id) => ({ deleteOne: { filter: { _id: id } as Filter<T> } })),
    { ordered: false },
  );
}

/** What compaction needs from the mailstore. */
export interface CompactionDeps {
  readonly db: Db;
  readonly logger: Logger;
  /** Runs `fn` holding the compaction lock of a mailbox (DELETE and purge of the mailbox take it too). */
  readonly underCompactionLock: <T>(mailboxId: string, fn: () => Promise<T>) => Promise<T>;
  readonly releaseBlobRefs: (counts: BlobRefCounts) => Promise<void>;
  /**
   * Whether the owner holds counters of the mailbox not written yet: its expunges wait, since once
   * compacted their tombstones no longer raise a rebuilt UIDNEXT (`PendingChanges.highestOf`).
   */
  readonly countersAhead?: (mailboxId: string) => boolean;
  /**
   * Mailboxes with a write whose confirm is still to come (ADR 0007, Commit-then-confirm): none of
   * their records is compacted meanwhile, since the write may yet be removed, and what it
   * superseded or expunged must then still be there.
   */
  readonly confirming?: (mailboxId: string) => boolean;
  /**
   * The owner keeps the latest flag record of each message as its flags' store: compaction
   * deletes the superseded records in bulk and writes no message document (an update by `_id`
   * costs FerretDB a large part of a scan of `messages`, and one was spent per changed message).
   */
  readonly keepLatestFlags?: boolean;
  /**
   * With the mailbox index on, this process is the only writer of its messages' flags (ADR 0007):
   * the `_id` a keyed message has (`<mailboxId>:<uid>`), so flags are compacted by key.
   */
  readonly keyOf?: (mailboxId: string, uid: number) => string;
}

/** Runs `fn` holding the compaction locks of all these mailboxes, taken in one order (by id). */
function underCompactionLocks<T>(
  deps: CompactionDeps,
  mailboxIds: readonly string[],
  fn: () => Promise<T>,
): Promise<T> {
  const sorted = [...new Set(mailboxIds)].sort();
  const take = (i: number): Promise<T> =>
    i === sorted.length ? fn() : deps.underCompactionLock(sorted[i] as string, () => take(i + 1));
  return take(0);
}

/**
 * The expunge half of compaction, for up to `limit` expunges of every mailbox at once: on
 * FerretDB 1.24 a delete or update by `_id: {$in}` decodes its whole collection however few ids it
 * names, so a compaction costs the same few scans — one each of `messages`, the search entries,
 * `message_changes` and the tombstones — whether it removes the expunges of one mailbox or of
 * fifty (it used to cost them per mailbox). Mailboxes whose counters the owner still holds in
 * memory wait (`countersAhead`).
 */
async function compactExpunges(
  pending: PendingChanges,
  deps: CompactionDeps,
  limit: number,
  superseded: ReadonlyMap<string, readonly ObjectId[]>,
): Promise<number> {
  const { db } = deps;
  const messages = db.collection<MessageRecord>(Collections.messages);
  const eligible = pending
    .mailboxesWithExpunges()
    .filter((id) => deps.countersAhead?.(id) !== true && deps.confirming?.(id) !== true);
  const dropSuperseded = async (): Promise<void> => {
    const ids = [...superseded.values()].flat();
    if (ids.length > 0) await deleteByIds(flagChanges(db), ids);
    for (const [mailboxId, gone] of superseded) pending.supersededDeleted(mailboxId, gone);
  };
  if (eligible.length === 0) {
    await dropSuperseded();
    return 0;
  }
  return underCompactionLocks(deps, eligible, async () => {
    // Taken under the locks: a DELETE of the mailbox that ran first dropped its records.
    const batch: { mailboxId: string; gone: [number, ObjectId][] }[] = [];
    let total = 0;
    for (const mailboxId of eligible) {
      if (total >= limit) break;
      const gone = pending.expungesOf(mailboxId).slice(0, limit - total);
      if (gone.length === 0) continue;
      batch.push({ mailboxId, gone });
      total += gone.length;
    }
    if (total === 0) {
      await dropSuperseded();
      return 0;
    }
    const projection = { _id: 1, uid: 1, mailboxId: 1, blobId: 1, blob: 1, searchId: 1 } as const;
    type Found = Pick<MessageRecord, keyof typeof projection>;
    const docs: Found[] = [];
    const keyOf = deps.keyOf;
    let unkeyed = batch;
    if (keyOf !== undefined) {
      // Keyed documents (`_id` = `<mailboxId>:<uid>`) by `_id`: one at a time up to
      // COMPACTION_LOOKUPS (FerretDB answers a lone `_id` from SQLite's index without decoding
      // the collection: a few ms each, where one `$in` decodes every message, about as much as
      // several hundred of them), more with one `$in`.
      const keys = batch.flatMap(({ mailboxId, gone }) => gone.map(([uid]) => keyOf(mailboxId, uid)));
      if (keys.length <= COMPACTION_LOOKUPS) {
        for (let i = 0; i < keys.length; i += POINT_DELETES) {
          const found = await Promise.all(
            keys.slice(i, i + POINT_DELETES).map((_id) => messages.findOne({ _id }, { projection })),
          );
          for (const d of found) if (d !== null) docs.push(d);
        }
      } else {
        docs.push(...(await messages.find({ _id: { $in: keys } }, { projection }).toArray()));
      }
      const found = new Set(docs.map((d) => `${d.mailboxId}\u0000${d.uid}`));
      unkeyed = batch
        .map(({ mailboxId, gone }) => ({
          mailboxId,
          gone: gone.filter(([uid]) => !found.has(`${mailboxId}\u0000${uid}`)),
        }))
        .filter((b) => b.gone.length > 0);
    }
    // Messages stored before keyed ids (or already deleted by a compaction that crashed later):
    // looked for by mailbox and UID.
    for (const { mailboxId, gone } of unkeyed) {
      const uids = gone.map(([uid]) => uid);
      docs.push(...(await messages.find({ mailboxId, uid: { $in: uids } }, { projection }).toArray()));
    }
    if (docs.length > 0) {
      await deleteByIds(
        messages,
        docs.map((d) => d._id),
      );
      await deleteByIds(
        db.collection<SearchIndexDoc>(MailstoreCollections.searchIndex),
        docs.map((d) => d.searchId ?? d._id),
      );
      const refs = new Map<string, { id: ObjectId; n: number; store?: BlobStoreKind }>();
      for (const d of docs) {
        // A body in a pack holds a reference to the pack (DeliveryCommit.storePacked).
        const id = bodyRefId(d.blobId, d.blob);
        const key = id.toHexString();
        const entry = refs.get(key) ?? {
          id,
          n: 0,
          ...(d.blob === undefined ? {} : { store: d.blob.store }),
        };
        refs.set(key, { ...entry, n: entry.n + 1 });
      }
      await deps.releaseBlobRefs(refs);
    }
    // The flag records of the expunged messages, by the ids the owner holds (it loaded every
    // record), with the superseded ones of every mailbox.
    const records: ObjectId[] = [];
    for (const { mailboxId, gone } of batch) {
      const uids = new Set(gone.map(([uid]) => uid));
      for (const [uid, p] of pending.flagsOf(mailboxId)) if (uids.has(uid)) records.push(...p.ids);
    }
    const seen = new Set(records.map((id) => id.toHexString()));
    const extra = [...superseded.values()].flat().filter((id) => !seen.has(id.toHexString()));
    const ids = [...records, ...extra];
    if (ids.length > 0) await deleteByIds(flagChanges(db), ids);
    for (const [mailboxId, gone] of superseded) pending.supersededDeleted(mailboxId, gone);
    const tombstoneIds = batch.flatMap(({ gone }) => gone.map(([, id]) => id));
    if (tombstoneIds.length > POINT_DELETES) {
      await tombstones(db).updateMany({ _id: { $in: tombstoneIds } }, { $unset: { pending: '' } });
    } else {
      await boundedBulkWrite(
        tombstones(db),
        tombstoneIds.map((_id) => ({
          updateOne: { filter: { _id }, update: { $unset: { pending: '' } } },
        })),
        { ordered: false },
      );
    }
    for (const { mailboxId, gone } of batch) {
      pending.compactedExpunges(
        mailboxId,
        gone.map(([uid]) => uid),
      );
    }
    return total;
  });
}

/**
 * Folds up to `limit` pending records into the message documents: flags written (one bulk write
 * per mailbox), expunged documents deleted with their search entries, then their blob references
 * and usage released, and only then the records removed (a crash in between repeats a step, which
 * is idempotent, or leaks a body, never loses one in use). Runs beside the IMAP commands, never
 * under a mailbox's lock: a newer record written meanwhile keeps its higher MODSEQ and is folded
 * over the compacted document. Answers the records compacted.
 */
export async function compactPending(
  pending: PendingChanges,
  deps: CompactionDeps,
  limit = 512,
): Promise<number> {
  const { db } = deps;
  if (deps.keepLatestFlags === true) {
    // The superseded flag records of every mailbox go with the expunges' records, in one delete.
    const superseded = new Map<string, ObjectId[]>();
    let n = 0;
    for (const mailboxId of pending.mailboxesWithFlags()) {
      if (n >= limit) break;
      if (deps.confirming?.(mailboxId) === true) continue;
      const ids: ObjectId[] = [];
      for (const [, p] of pending.flagsOf(mailboxId)) {
        for (const id of p.ids) if (!id.equals(p.latest)) ids.push(id);
      }
      if (ids.length === 0) continue;
      superseded.set(mailboxId, ids);
      n += ids.length;
    }
    return (await compactExpunges(pending, deps, limit, superseded)) + n;
  }
  let done = await compactExpunges(pending, deps, limit, new Map());
  const messages = db.collection<MessageRecord>(Collections.messages);
  for (const mailboxId of pending.mailboxesWithFlags()) {
    if (done >= limit) return done;
    if (deps.confirming?.(mailboxId) === true) continue;
    const batch = pending.flagsOf(mailboxId).slice(0, limit - done);
    if (batch.length === 0) continue;
    const ops: AnyBulkWriteOperation<MessageRecord>[] = [];
    for (const [uid, p] of batch) {
      const update = { $set: { flags: [...p.flags], modseq: p.modseq } };
      const key = deps.keyOf?.(mailboxId, uid);
      if (key !== undefined) {
        // FerretDB answers a filter of `_id` alone from SQLite's index and scans the whole
        // collection for any other, so: read the MODSEQ by key and write by key (nothing else
        // writes these flags meanwhile: the owner's compaction runs one at a time).
        const doc = await messages.findOne({ _id: key }, { projection: { modseq: 1 } });
        if (doc !== null) {
          if (doc.modseq < p.modseq) ops.push({ updateOne: { filter: { _id: key }, update } });
          continue;
        }
      }
      // Never lowers a MODSEQ: a document moved or rewritten since keeps its own. (A message
      // stored before keyed ids is found by mailbox and UID: a scan on FerretDB.)
      ops.push({ updateOne: { filter: { mailboxId, uid, modseq: { $lt: p.modseq } }, update } });
    }
    // In commands of a few statements: one `update` of ~100 matched statements deadlocks FerretDB
    // (db/bulk-updates.ts).
    await boundedBulkWrite(messages, ops, { ordered: false });
    const ids = batch.flatMap(([, p]) => p.ids);
    await flagChanges(db).deleteMany({ _id: { $in: ids } });
    pending.compactedFlags(
      mailboxId,
      new Map(batch.map(([uid, p]) => [uid, { modseq: p.modseq, ids: p.ids }])),
    );
    done += ids.length;
  }
  return done;
}

/** A fresh record id (exported so the writer and tests agree on the type). */
export function newRecordId(): ObjectId {
  return new ObjectId();
}
