/**
 * Group commit of inserts (ADR 0007, "Batched write path"): concurrent writers of one process that
 * insert into the same collection share one unordered `insertMany`. On FerretDB 1.24 (SQLite)
 * every write command is a transaction with its own fsync and its own pass through FerretDB's
 * handler, whatever its size, so the concurrent STOREs, EXPUNGEs and APPENDs of the mailboxes one
 * storage process owns cost one insert per collection per group instead of one per command.
 *
 * One insert per collection is in flight at a time; whatever arrives meanwhile waits for it and
 * goes out as the next group (as the delivery batches do), so a group grows with the load and a
 * lone writer waits for nothing. Each writer learns the outcome of its own documents only: its
 * promise resolves once the insert that carried them is durable (the collection's write concern),
 * with the indexes of its documents the database refused as duplicates; any other error of one of
 * its documents, or of the command as a whole, rejects it.
 */
import { MongoBulkWriteError, type WriteError, type Collection, type Db, type Document } from 'mongodb';

const DUPLICATE_KEY = 11000;

/** At most this many documents per command (a larger group goes out as several, in order). */
export const GROUP_INSERT_LIMIT = 1000;

interface Waiting<T> {
  readonly docs: readonly T[];
  readonly resolve: (refused: Set<number>) => void;
  readonly reject: (error: unknown) => void;
}

interface Lane {
  waiting: Waiting<Document>[];
  running: boolean;
}

const lanes = new WeakMap<Db, Map<string, Lane>>();

/** Counts of the groups written, for tests and the benchmark notes. */
export const groupInsertStats = { commands: 0, documents: 0 };

/**
 * Inserts `docs` into `collection` of `db` with whatever other writers of this process insert there
 * meanwhile. Answers the indexes (into `docs`) refused with a duplicate key.
 */
export function groupInsert<T extends Document>(
  db: Db,
  collection: Collection<T>,
  docs: readonly T[],
): Promise<Set<number>> {
  if (docs.length === 0) return Promise.resolve(new Set());
  let byName = lanes.get(db);
  if (byName === undefined) {
    byName = new Map();
    lanes.set(db, byName);
  }
  let lane = byName.get(collection.collectionName);
  if (lane === undefined) {
    lane = { waiting: [], running: false };
    byName.set(collection.collectionName, lane);
  }
  const joined = lane;
  return new Promise<Set<number>>((resolve, reject) => {
    joined.waiting.push({ docs, resolve, reject });
    if (!joined.running) void drain(joined, collection as unknown as Collection<Document>);
  });
}

async function drain(lane: Lane, collection: Collection<Document>): Promise<void> {
  lane.running = true;
  try {
    while (lane.waiting.length > 0) {
      const group: Waiting<Document>[] = [];
      let size = 0;
      while (lane.waiting.length > 0) {
        const next = lane.waiting[0];
        if (next === undefined || (group.length > 0 && size + next.docs.length > GROUP_INSERT_LIMIT)) break;
        group.push(next);
        size += next.docs.length;
        lane.waiting.shift();
      }
      await writeGroup(collection, group);
    }
  } finally {
    lane.running = false;
  }
}

async function writeGroup(
  collection: Collection<Document>,
  group: readonly Waiting<Document>[],
): Promise<void> {
  const all: Document[] = [];
  const owner: { writer: number; index: number }[] = [];
  group.forEach((w, writer) => {
    w.docs.forEach((doc, index) => {
      all.push(doc);
      owner.push({ writer, index });
    });
  });
  groupInsertStats.commands++;
  groupInsertStats.documents += all.length;
  try {
    await collection.insertMany(all, { ordered: false });
  } catch (error) {
    const reported = error instanceof MongoBulkWriteError ? error.writeErrors : null;
    const writeErrors: readonly WriteError[] | null =
      reported === null
        ? null
        : Array.isArray(reported)
          ? (reported as readonly WriteError[])
          : [reported as WriteError];
    const concern = error instanceof MongoBulkWriteError ? error.result?.getWriteConcernError?.() : undefined;
    if (writeErrors === null || writeErrors.length === 0 || concern !== undefined) {
      for (const w of group) w.reject(error);
      return;
    }
    const refused = group.map(() => new Set<number>());
    const failed = group.map(() => false);
    for (const e of writeErrors) {
      const at = owner[e.index];
      if (at === undefined) continue;
      if (e.code === DUPLICATE_KEY) refused[at.writer]?.add(at.index);
      else failed[at.writer] = true;
    }
    group.forEach((w, i) => {
      if (failed[i] === true) w.reject(error);
      else w.resolve(refused[i] ?? new Set());
    });
    return;
  }
  for (const w of group) w.resolve(new Set());
}
