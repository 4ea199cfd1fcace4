/**
 * Reference counts of stored bodies (`blob_refs`): one body is shared by every mailbox copy of
 * one delivery, and by COPY; it is deleted from its store when its last reference goes.
 *
 * Order that keeps every body in use (no transactions, DESIGN §4): the body is put (durable),
 * then its reference document is inserted with the initial count (`newBlobRef` +
 * `insertBlobRefs`, which batches: one insert for the bodies of many deliveries), and only then
 * the messages that hold the references. References are added before the copies that hold them
 * and released after the copies are gone. A crash can therefore leave a body without a
 * reference document (put, then crash: the blob sweeper deletes it after a grace period) or a
 * count too high (a leak), never a body deleted while a message refers to it.
 */
import type { Db, ObjectId } from 'mongodb';
import { boundedBulkWrite } from '../db/bulk-updates.js';
import { groupInsert } from '../db/group-insert.js';
import { Collections } from '../db/schema.js';
import type { BlobStores } from './stores.js';
import type { BlobStoreKind } from './types.js';

export interface BlobRefDoc {
  _id: ObjectId;
  refs: number;
  /** Where the body is; absent on references written before there was a choice: GridFS. */
  store?: BlobStoreKind;
}

/** References to change, by blob id (hex): `n` each, with the body's store when known. */
export type BlobRefCounts = ReadonlyMap<string, { id: ObjectId; n: number; store?: BlobStoreKind }>;

export function blobRefs(db: Db) {
  return db.collection<BlobRefDoc>(Collections.blobRefs);
}

/** The reference document of a new body held by `refs` messages about to be written. */
export function newBlobRef(blobId: ObjectId, refs: number, store: BlobStoreKind): BlobRefDoc {
  return { _id: blobId, refs, store };
}

/**
 * Inserts reference documents of new bodies, in one unordered write shared with whatever other
 * writers of this process insert references meanwhile (group commit, db/group-insert.ts): the
 * concurrent APPENDs of an owner's sessions cost one insert between them.
 */
export async function insertBlobRefs(db: Db, docs: readonly BlobRefDoc[]): Promise<void> {
  if (docs.length === 0) return;
  const refused = await groupInsert(db, blobRefs(db), docs);
  // A fresh ObjectId is never a duplicate; should one be, the body is not referenced as asked.
  if (refused.size > 0) throw new Error('blob reference already exists');
}

/**
 * Adds references before the copies that hold them are written: a crash in between leaks a body
 * (its count stays too high) but never deletes one still in use.
 */
export async function addBlobRefs(db: Db, counts: BlobRefCounts): Promise<void> {
  if (counts.size === 0) return;
  // In commands of a few statements: one `update` of ~100 matched statements deadlocks FerretDB.
  await boundedBulkWrite(
    blobRefs(db),
    [...counts.values()].map(({ id, n, store }) => ({
      updateOne: {
        filter: { _id: id },
        update: { $inc: { refs: n }, ...(store === undefined ? {} : { $setOnInsert: { store } }) },
        upsert: true,
      },
    })),
    { ordered: false },
  );
}

/** Drops references; a body whose last reference goes is deleted from the store it is in. */
export async function releaseBlobRefs(db: Db, stores: BlobStores, counts: BlobRefCounts): Promise<void> {
  const refs = blobRefs(db);
  const unused: ObjectId[] = [];
  for (const { id, n, store } of counts.values()) {
    const after = await refs.findOneAndUpdate(
      { _id: id },
      { $inc: { refs: -n } },
      { returnDocument: 'after' },
    );
    if (after === null || after.refs <= 0) {
      await stores.get(after?.store ?? store ?? 'gridfs').delete(id.toHexString());
      if (after !== null) unused.push(id);
    }
  }
  // One delete for all of them: on FerretDB a filter of more than `_id` decodes the whole
  // collection, so one per body cost a scan each (compaction releases many at once).
  if (unused.length === 1) await refs.deleteOne({ _id: unused[0], refs: { $lte: 0 } });
  else if (unused.length > 1) await refs.deleteMany({ _id: { $in: unused }, refs: { $lte: 0 } });
}
