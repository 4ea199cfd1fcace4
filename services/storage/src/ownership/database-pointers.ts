/**
 * The partitions' commit pointers in storage's own database (ADR 0012), for storage on SQLite in
 * its process (ADR 0011): a confirm is one conditional update through the writer thread, in the
 * same group commit as other writes, where the KV pointer costs a JetStream round trip and the
 * watch of every replica. One document per partition in `partition_pointers`:
 * `{_id: <partition>, epoch, seq, closed}`.
 *
 * The conditional writes are the fence, so they need a database that isolates a single-document
 * update (SQLite: every write runs in a `BEGIN IMMEDIATE` transaction, whichever process makes
 * it). FerretDB does not (ADR 0005), which is why configuration allows this store with SQLite only.
 */
import { type CommitPointer, type CommitPointerStore, openedPointer } from '@postmesh/bus';
import type { Db } from 'mongodb';

export const POINTERS_COLLECTION = 'partition_pointers';

interface PointerDoc extends CommitPointer {
  _id: number;
}

/** Attempts of `open` against concurrent openers before it gives up (the caller retries later). */
const OPEN_ATTEMPTS = 3;

export class DatabaseCommitPointers implements CommitPointerStore {
  constructor(private readonly db: Db) {}

  private pointers() {
    return this.db.collection<PointerDoc>(POINTERS_COLLECTION);
  }

  async read(partition: number): Promise<CommitPointer | null> {
    const doc = await this.pointers().findOne({ _id: partition });
    return doc === null ? null : { epoch: doc.epoch, seq: doc.seq, closed: doc.closed };
  }

  async open(partition: number, epoch: number): Promise<CommitPointer | 'fenced'> {
    for (let attempt = 0; attempt < OPEN_ATTEMPTS; attempt++) {
      const current = await this.read(partition);
      if (current !== null && current.epoch >= epoch) return 'fenced';
      const next = openedPointer(current, epoch);
      if (current === null) {
        try {
          await this.pointers().insertOne({ _id: partition, ...next });
          return next;
        } catch (error) {
          if ((error as { code?: unknown }).code === 11000) continue; // another opener was first
          throw error;
        }
      }
      // Moves only the pointer read above: an opener or a confirm in between makes it read again.
      const moved = await this.pointers().updateOne(
        { _id: partition, epoch: current.epoch, seq: current.seq },
        { $set: { epoch: next.epoch, seq: next.seq, closed: [...next.closed] } },
      );
      if (moved.matchedCount === 1) return next;
    }
    throw new Error(`partition ${partition}: the commit pointer kept moving while epoch ${epoch} was opened`);
  }

  async advance(partition: number, epoch: number, seq: number): Promise<'ok' | 'fenced'> {
    const moved = await this.pointers().updateOne(
      { _id: partition, epoch, seq: { $lt: seq } },
      { $set: { seq } },
    );
    if (moved.matchedCount === 1) return 'ok';
    // Not moved: already at or past `seq` in this epoch (a confirm that covered it), or fenced.
    const current = await this.read(partition);
    return current !== null && current.epoch === epoch && current.seq >= seq ? 'ok' : 'fenced';
  }
}
