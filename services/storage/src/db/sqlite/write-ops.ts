/**
 * The writes of the in-process SQLite database as data (ADR 0011): what a `Collection` call asks,
 * executed where the writes happen — on the writer thread (writer-thread.ts), or inline on the
 * event loop (`POSTMESH_SQLITE_WRITER=inline`, and the tests that want one thread). Each op runs
 * inside the group commit of store.ts; an unordered bulk that partly failed keeps what it wrote
 * and reports its write errors with the counts, as the driver's `MongoBulkWriteError` does.
 */
import { BSON, MongoBulkWriteError, MongoServerError, ObjectId, type Document } from 'mongodb';
import { applyUpdate, isReplacement, isUpdateOperator, upsertSeed, type SortSpec } from './semantics.js';
import { PartialFailure, type IndexSpec, type SqliteStore } from './store.js';

export type WriteOp =
  | { kind: 'insert'; docs: Document[]; ordered: boolean; one?: boolean }
  | {
      kind: 'update';
      filter: Document;
      update: Document;
      upsert?: boolean;
      multi?: boolean;
      sort?: SortSpec;
      replace?: boolean;
      /** Which document the caller wants back (findOneAndUpdate/Replace). */
      want?: 'before' | 'after';
    }
  | { kind: 'delete'; filter: Document; many: boolean; sort?: SortSpec; want?: boolean }
  | { kind: 'bulk'; ops: Document[]; ordered: boolean }
  | { kind: 'indexes'; specs: IndexSpec[] }
  | { kind: 'drop' }
  | AtomicOp;

/**
 * Writes to several collections that take effect together or not at all (`atomicWrite` in
 * index.ts): with a `guard`, only if the guard's collection holds a document matching its filter
 * when the transaction runs (the partition's commit pointer still in this owner's epoch, ADR 0014).
 * Any error of a step, a duplicate key included, undoes every step.
 */
export interface AtomicOp {
  kind: 'atomic';
  guard?: WriteGuard;
  steps: { collection: string; op: WriteOp }[];
}

/** A document that must exist for an atomic write to be made. */
export interface WriteGuard {
  readonly collection: string;
  readonly filter: Document;
}

/** The code of the error an atomic write answers when its guard matched nothing. */
export const GUARD_FAILED = 90_001;

export interface UpdateOutcome {
  matchedCount: number;
  modifiedCount: number;
  upsertedCount: number;
  upsertedId: unknown;
  doc?: Document | null;
}

export function notSupported(what: string): MongoServerError {
  return new MongoServerError({
    message: `${what} is not supported by the in-process SQLite database`,
    code: 115,
  });
}

/** Runs one op inside the current transaction of `store`. */
export function executeWrite(store: SqliteStore, collection: string, op: WriteOp): unknown {
  switch (op.kind) {
    case 'insert':
      return insertDocs(store, collection, op.docs, op.ordered, op.one === true);
    case 'update':
      return updateStatement(store, collection, op);
    case 'delete':
      return deleteStatement(store, collection, op);
    case 'bulk':
      return bulk(store, collection, op.ops, op.ordered);
    case 'indexes':
      return op.specs.map((spec) => store.ensureIndex(store.table(collection), spec));
    case 'drop':
      return store.dropTable(collection);
    case 'atomic':
      return atomic(store, op);
  }
}

/** Runs inside the write's savepoint (store.ts): a throw here undoes every step. */
function atomic(store: SqliteStore, op: AtomicOp): unknown[] {
  if (op.guard !== undefined) {
    const found = store.query(store.table(op.guard.collection), op.guard.filter, { limit: 1 })();
    if (found.length === 0) {
      throw new MongoServerError({
        message: `the write's guard matched nothing in ${op.guard.collection}`,
        code: GUARD_FAILED,
      });
    }
  }
  return op.steps.map((step) => {
    if (step.op.kind === 'atomic') throw notSupported('an atomic write inside another');
    const result = executeWrite(store, step.collection, step.op);
    if (result instanceof PartialFailure) throw result.error;
    return result;
  });
}

function insertDocs(
  store: SqliteStore,
  collection: string,
  docs: Document[],
  ordered: boolean,
  one: boolean,
): unknown {
  const table = store.table(collection);
  const writeErrors: Document[] = [];
  let insertedCount = 0;
  for (let i = 0; i < docs.length; i++) {
    try {
      store.insertRow(table, docs[i] as Document);
      insertedCount++;
    } catch (error) {
      if (one) throw error;
      writeErrors.push(writeError(error, i, docs[i]));
      if (ordered) break;
    }
  }
  const insertedIds: Record<number, unknown> = {};
  // Ordered stops at the first error; unordered skips only the refused ones.
  const refused = new Set(writeErrors.map((e) => e.index as number));
  const last = ordered && writeErrors.length > 0 ? (writeErrors[0]?.index as number) : docs.length;
  for (let i = 0; i < last; i++) if (!refused.has(i)) insertedIds[i] = docs[i]?._id as unknown;
  if (writeErrors.length > 0)
    return new PartialFailure(bulkError(writeErrors, bulkResult({ insertedCount, insertedIds })));
  return { insertedCount, insertedIds };
}

function updateStatement(
  store: SqliteStore,
  collection: string,
  op: Extract<WriteOp, { kind: 'update' }>,
): UpdateOutcome {
  const table = store.table(collection);
  const { filter, update } = op;
  const replacing = op.replace === true;
  if (Array.isArray(update)) throw notSupported('an update pipeline');
  if (!replacing) {
    if (isReplacement(update))
      throw new MongoServerError({ message: 'Update document requires atomic operators', code: 9 });
    for (const name of Object.keys(update))
      if (!isUpdateOperator(name))
        throw new MongoServerError({ message: `Unknown modifier: ${name}`, code: 9 });
  }
  const out: UpdateOutcome = { matchedCount: 0, modifiedCount: 0, upsertedCount: 0, upsertedId: null };
  let before: Document | null = null;
  let after: Document | null = null;
  const next = store.query(table, filter, {
    ...(op.sort === undefined ? {} : { sort: op.sort }),
    ...(op.multi === true ? {} : { limit: 1 }),
  });
  const rows: { rowid: number; doc: Document; bytes: Buffer }[] = [];
  for (let batch = next(); batch.length > 0; batch = next()) rows.push(...batch);
  for (const row of rows) {
    out.matchedCount++;
    if (replacing && update._id !== undefined && !sameValue(update._id, row.doc._id))
      throw new MongoServerError({
        message: "After applying the update, the (immutable) field '_id' was found to have been altered",
        code: 66,
      });
    const updated = replacing
      ? { _id: row.doc._id as unknown, ...withoutId(update) }
      : applyUpdate(row.doc, update, false);
    if (updated._id !== undefined && !sameValue(updated._id, row.doc._id))
      throw new MongoServerError({
        message: "Performing an update on the path '_id' would modify the immutable field '_id'",
        code: 66,
      });
    const bytes = Buffer.from(BSON.serialize(updated));
    before ??= row.doc;
    const stored = BSON.deserialize(bytes);
    after ??= stored;
    if (bytes.equals(row.bytes)) continue;
    store.updateRow(table, row.rowid, stored, bytes);
    out.modifiedCount++;
  }
  if (out.matchedCount === 0 && op.upsert === true) {
    const seed = upsertSeed(filter);
    const id: unknown = replacing ? (update._id ?? seed._id) : undefined;
    let doc = replacing
      ? { ...(id === undefined ? {} : { _id: id }), ...withoutId(update) }
      : applyUpdate(seed, update, true);
    if (doc._id === undefined) doc = { _id: new ObjectId(), ...doc };
    const stored = BSON.deserialize(BSON.serialize(doc));
    store.insertRow(table, stored);
    out.upsertedCount = 1;
    out.upsertedId = stored._id;
    after = stored;
  }
  if (op.want !== undefined) out.doc = op.want === 'after' ? after : before;
  return out;
}

function deleteStatement(
  store: SqliteStore,
  collection: string,
  op: Extract<WriteOp, { kind: 'delete' }>,
): { deletedCount: number; doc?: Document | null } {
  const table = store.table(collection);
  const next = store.query(table, op.filter, {
    ...(op.sort === undefined ? {} : { sort: op.sort }),
    ...(op.many ? {} : { limit: 1 }),
  });
  const rows: { rowid: number; doc: Document }[] = [];
  for (let batch = next(); batch.length > 0; batch = next()) rows.push(...batch);
  for (const row of rows) store.deleteRow(table, row.rowid);
  return { deletedCount: rows.length, ...(op.want === true ? { doc: rows[0]?.doc ?? null } : {}) };
}

function bulk(store: SqliteStore, collection: string, ops: Document[], ordered: boolean): unknown {
  const table = store.table(collection);
  const counts = { insertedCount: 0, matchedCount: 0, modifiedCount: 0, deletedCount: 0, upsertedCount: 0 };
  const insertedIds: Record<number, unknown> = {};
  const upsertedIds: Record<number, unknown> = {};
  const writeErrors: Document[] = [];
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i] as Document;
    store.sql.exec('SAVEPOINT s');
    try {
      const kind = Object.keys(op)[0];
      const body = op[kind ?? ''] as Document;
      if (kind === 'insertOne') {
        store.insertRow(table, body.document as Document);
        counts.insertedCount++;
        insertedIds[i] = (body.document as Document)._id as unknown;
      } else if (kind === 'updateOne' || kind === 'updateMany' || kind === 'replaceOne') {
        const replace = kind === 'replaceOne';
        const o = updateStatement(store, collection, {
          kind: 'update',
          filter: body.filter as Document,
          update: (replace ? body.replacement : body.update) as Document,
          upsert: body.upsert === true,
          multi: kind === 'updateMany',
          replace,
        });
        counts.matchedCount += o.matchedCount;
        counts.modifiedCount += o.modifiedCount;
        counts.upsertedCount += o.upsertedCount;
        if (o.upsertedCount > 0) upsertedIds[i] = o.upsertedId;
      } else if (kind === 'deleteOne' || kind === 'deleteMany') {
        counts.deletedCount += deleteStatement(store, collection, {
          kind: 'delete',
          filter: body.filter as Document,
          many: kind === 'deleteMany',
        }).deletedCount;
      } else {
        throw notSupported(`bulk operation ${String(kind)}`);
      }
      store.sql.exec('RELEASE s');
    } catch (error) {
      store.sql.exec('ROLLBACK TO s');
      store.sql.exec('RELEASE s');
      writeErrors.push(writeError(error, i, op));
      if (ordered) break;
    }
  }
  const result = { ...counts, insertedIds, upsertedIds };
  if (writeErrors.length > 0) return new PartialFailure(bulkError(writeErrors, bulkResult(result)));
  return result;
}

function withoutId(doc: Document): Document {
  const { _id: _ignored, ...rest } = doc;
  return rest;
}

function sameValue(a: unknown, b: unknown): boolean {
  return Buffer.from(BSON.serialize({ v: a })).equals(BSON.serialize({ v: b }));
}

function writeError(error: unknown, index: number, op: unknown): Document {
  const code = (error as { code?: unknown }).code;
  return {
    index,
    code: typeof code === 'number' ? code : 1,
    errmsg: error instanceof Error ? error.message : String(error),
    op,
  };
}

/** A bulk result with the driver's helper methods. */
export function bulkResult(partial: Document): Document {
  const r = {
    ok: 1,
    insertedCount: 0,
    matchedCount: 0,
    modifiedCount: 0,
    deletedCount: 0,
    upsertedCount: 0,
    insertedIds: {},
    upsertedIds: {},
    ...partial,
  };
  return { ...r, isOk: () => true, hasWriteErrors: () => false, getWriteErrorCount: () => 0 };
}

export function bulkError(writeErrors: Document[], result: Document): MongoBulkWriteError {
  const first = writeErrors[0] as Document;
  return new MongoBulkWriteError(
    {
      message: String(first.errmsg),
      code: first.code as number,
      writeErrors,
    } as unknown as ConstructorParameters<typeof MongoBulkWriteError>[0],
    result as unknown as ConstructorParameters<typeof MongoBulkWriteError>[1],
  );
}

// ---- crossing the thread boundary: BSON keeps ObjectId, Binary, Date, Long as they are ----

export function encode(value: unknown): Uint8Array {
  const bytes = BSON.serialize({ v: value });
  // A small result is a view into Node's 8 KiB buffer pool. Posted as it is, the whole pool would
  // be copied to the other thread; in a buffer of its own it is moved (`transferable`).
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    ? bytes
    : new Uint8Array(bytes);
}

/** The buffers of encoded messages, to be moved rather than copied by `postMessage`. */
export function transferable(encoded: readonly (Uint8Array | undefined)[]): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const bytes of encoded) {
    if (bytes !== undefined && bytes.buffer instanceof ArrayBuffer) buffers.add(bytes.buffer);
  }
  return [...buffers];
}

export function decode(bytes: Uint8Array): unknown {
  return BSON.deserialize(bytes).v as unknown;
}

/** An error as the writer thread sends it back. */
export function encodeError(error: unknown): Uint8Array {
  if (error instanceof MongoBulkWriteError) {
    const result = error.result as unknown as Document;
    const plain = Object.fromEntries(Object.entries(result).filter(([, v]) => typeof v !== 'function'));
    return encode({ bulk: true, writeErrors: error.writeErrors as unknown, result: plain });
  }
  const code = (error as { code?: unknown }).code;
  return encode({
    message: error instanceof Error ? error.message : String(error),
    ...(typeof code === 'number' ? { code } : {}),
  });
}

export function decodeError(bytes: Uint8Array): Error {
  const e = decode(bytes) as Document;
  if (e.bulk === true) return bulkError(e.writeErrors as Document[], bulkResult(e.result as Document));
  if (typeof e.code === 'number') return new MongoServerError({ message: String(e.message), code: e.code });
  return new Error(String(e.message));
}
