/**
 * Bulk writes that cannot exhaust FerretDB's connections to its database.
 *
 * Why: FerretDB 1.24's `update` command (handler/msg_update.go) opens a read of the collection for
 * every statement and closes them all only when the whole command ends (the close is deferred
 * inside its loop over the statements). A statement that matched a document and is not `multi`
 * (`updateOne`, `replaceOne`) stops reading after that document, so its read keeps one of the
 * database's SQLite connections (100: `SetMaxOpenConns(100)`) until then, and applying the match
 * takes one more. An `update` of about 100 matched statements — or a few concurrent ones adding up
 * to that — waits for a connection that none of them will give back: every later command on that
 * database, from every client, waits too, with no timeout, until the connections are closed.
 * Measured: `bulkWrite` of 120 `updateOne`s by `_id` against `.bin/ferretdb` never answers, 40
 * answer in 0.2 s. A compaction of 114 flag records in one mailbox hung storage that way.
 *
 * So a bulk write goes out as commands of at most `BULK_STATEMENTS_PER_COMMAND` statements, and at
 * most `CONCURRENT_BULK_COMMANDS` of them run at a time in this process: bulk commands hold at most
 * 2 × (16 + 1) connections, whatever the callers do. On MongoDB this costs a few round trips more
 * for large bulks and nothing else. Deletes and inserts read nothing per statement and are not
 * limited by FerretDB's bug, but are chunked the same way for simplicity.
 */
import {
  MongoBulkWriteError,
  type AnyBulkWriteOperation,
  type BulkWriteOptions,
  type Collection,
  type Document,
} from 'mongodb';

export const BULK_STATEMENTS_PER_COMMAND = 16;
export const CONCURRENT_BULK_COMMANDS = 2;

/** The counts of a bulk write sent as several commands, summed. */
export interface BulkWriteCounts {
  insertedCount: number;
  matchedCount: number;
  modifiedCount: number;
  deletedCount: number;
  upsertedCount: number;
}

/** A FIFO counting semaphore (no timeouts: every holder releases in `finally`). */
class Semaphore {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(size: number) {
    this.free = size;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next !== undefined) next();
      else this.free++;
    }
  }
}

const bulkCommands = new Semaphore(CONCURRENT_BULK_COMMANDS);

/**
 * `collection.bulkWrite(ops, options)` as commands of at most `BULK_STATEMENTS_PER_COMMAND`
 * statements, in order, at most `CONCURRENT_BULK_COMMANDS` per process at a time. Unordered: every
 * command runs, and the first failure is thrown afterwards (as one bulk write would report its
 * write errors after trying every statement). Ordered: stops at the first failure.
 */
export async function boundedBulkWrite<T extends Document>(
  collection: Collection<T>,
  ops: readonly AnyBulkWriteOperation<T>[],
  options: BulkWriteOptions = {},
): Promise<BulkWriteCounts> {
  const total: BulkWriteCounts = {
    insertedCount: 0,
    matchedCount: 0,
    modifiedCount: 0,
    deletedCount: 0,
    upsertedCount: 0,
  };
  const add = (r: Partial<BulkWriteCounts>): void => {
    total.insertedCount += r.insertedCount ?? 0;
    total.matchedCount += r.matchedCount ?? 0;
    total.modifiedCount += r.modifiedCount ?? 0;
    total.deletedCount += r.deletedCount ?? 0;
    total.upsertedCount += r.upsertedCount ?? 0;
  };
  const ordered = options.ordered !== false;
  let failure: Error | undefined;
  for (let i = 0; i < ops.length; i += BULK_STATEMENTS_PER_COMMAND) {
    const chunk = ops.slice(i, i + BULK_STATEMENTS_PER_COMMAND);
    try {
      add(await bulkCommands.run(() => collection.bulkWrite(chunk, options)));
    } catch (error) {
      // What the failed command did write still counts (unordered: every other statement ran).
      if (error instanceof MongoBulkWriteError) add(error.result);
      if (ordered) throw error;
      failure ??= error instanceof Error ? error : new Error(String(error));
    }
  }
  if (failure !== undefined) throw failure;
  return total;
}
