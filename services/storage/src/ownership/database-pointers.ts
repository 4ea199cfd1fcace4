/**
 * The partitions' commit pointers in storage's own database (ADR 0012), for storage on SQLite in
 * its process (ADR 0011): a confirm is one conditional update through the writer thread, in the
 * same group commit as other writes, where the KV pointer costs a JetStream round trip and the
 * watch of every replica. One document per partition in `partition_pointers`:
 * `{_id: <partition>, epoch, seq, closed}`, and `opening` while a newer epoch is being opened.
 *
 * The conditional writes are the fence, so they need a database that isolates a single-document
 * update (SQLite: every write runs in a `BEGIN IMMEDIATE` transaction, whichever process makes
 * it). FerretDB does not (ADR 0005), which is why configuration allows this store with SQLite only.
 *
 * `open` takes two writes. Closing the stored epoch needs its last sequence, which one update of
 * this API cannot copy from the document, so it reads the pointer and writes it back conditional
 * on that sequence; a former owner that keeps confirming moves the sequence between the two, and
 * would make every such attempt fail (measured: with the inline writer an owner confirming back to
 * back kept a new owner from opening for as long as it went on). So the opener first sets
 * `opening: <epoch>`, conditional on the epochs alone, which confirms do not move; `advance`
 * matches only a pointer without that mark, so from then on the sequence holds still and the
 * second write, which begins the epoch and removes the mark, cannot be starved. A mark left by an
 * opener that died in between keeps fencing the older epoch (its lease was taken) until a newer
 * opener replaces it.
 */
import { type CommitPointer, type CommitPointerStore, openedPointer } from '@postmesh/bus';
import type { Db } from 'mongodb';
import type { WriteGuard } from '../db/sqlite/write-ops.js';

export const POINTERS_COLLECTION = 'partition_pointers';

interface PointerDoc extends CommitPointer {
  _id: number;
  /** The epoch being opened (see the header): advances of older epochs are refused. */
  opening?: number;
}

export class DatabaseCommitPointers implements CommitPointerStore {
  constructor(private readonly db: Db) {}

  private pointers() {
    return this.db.collection<PointerDoc>(POINTERS_COLLECTION);
  }

  async read(partition: number): Promise<CommitPointer | null> {
    const doc = await this.pointers().findOne({ _id: partition });
    return doc === null ? null : { epoch: doc.epoch, seq: doc.seq, closed: doc.closed };
  }

  async open(partition: number, epoch: number, seed?: CommitPointer): Promise<CommitPointer | 'fenced'> {
    if (!(await this.markOpening(partition, epoch))) {
      if ((await this.read(partition)) === null) {
        // A seed at or after `epoch` is not history of it (the store's epochs lead, see ownership).
        const first = openedPointer(seed !== undefined && seed.epoch < epoch ? seed : null, epoch);
        try {
          await this.pointers().insertOne({ _id: partition, ...first });
          return first;
        } catch (error) {
          if ((error as { code?: unknown }).code !== 11000) throw error;
        }
      }
      // There is a pointer (another opener may have created it since the mark was tried): only a
      // stored or opening epoch at or after `epoch` keeps this one from marking it.
      if (!(await this.markOpening(partition, epoch))) return 'fenced';
    }
    // Marked: no advance of an older epoch moves the pointer any more, only a newer opener's mark.
    const current = await this.pointers().findOne({ _id: partition });
    if (current === null || current.opening !== epoch) return 'fenced';
    const next = openedPointer(current, epoch);
    const moved = await this.pointers().updateOne(
      { _id: partition, epoch: current.epoch, seq: current.seq, opening: epoch },
      { $set: { epoch: next.epoch, seq: next.seq, closed: [...next.closed] }, $unset: { opening: '' } },
    );
    return moved.matchedCount === 1 ? next : 'fenced';
  }

  /** `fenced` also once a newer epoch is being opened: its lease was taken. */
  async advance(partition: number, epoch: number, seq: number): Promise<'ok' | 'fenced'> {
    const moved = await this.pointers().updateOne(
      { _id: partition, epoch, seq: { $lt: seq }, opening: { $exists: false } },
      { $set: { seq } },
    );
    if (moved.matchedCount === 1) return 'ok';
    // Not moved: already at or past `seq` in this epoch (a confirm that covered it), or fenced.
    const current = await this.read(partition);
    return current !== null && current.epoch === epoch && current.seq >= seq ? 'ok' : 'fenced';
  }

  /**
   * What a write of the partition made in one transaction of this database checks to count
   * (ADR 0014): the pointer still in `epoch` with no newer epoch being opened, as `advance` asks.
   * Every write transaction holds the file's lock, so the write either commits before a newer
   * owner's mark (which then closes the epoch after it, and reads the partition after that) or
   * finds the mark and writes nothing.
   */
  guard(partition: number, epoch: number): WriteGuard {
    return {
      collection: POINTERS_COLLECTION,
      filter: { _id: partition, epoch, opening: { $exists: false } },
    };
  }

  /** Marks `epoch` as opening unless the stored epoch, or one being opened, is `epoch` or later. */
  private async markOpening(partition: number, epoch: number): Promise<boolean> {
    const marked = await this.pointers().updateOne(
      { _id: partition, epoch: { $lt: epoch }, opening: { $not: { $gte: epoch } } },
      { $set: { opening: epoch } },
    );
    return marked.matchedCount === 1;
  }
}
