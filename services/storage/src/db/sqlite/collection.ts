/**
 * The MongoDB driver's `Db`, `Collection` and `FindCursor`, as far as storage uses them, over the
 * in-process SQLite store (ADR 0011). Results, errors (E11000 as `MongoServerError` code 11000,
 * unordered bulk failures as `MongoBulkWriteError` with `writeErrors` and the counts of what was
 * written) and option names are the driver's, so storage's code runs unchanged on either backend.
 * Anything storage does not use answers a clear `MongoServerError` (code 115, CommandNotSupported)
 * instead of a wrong result.
 */
import { BSON, MongoBulkWriteError, MongoServerError, ObjectId, type Document } from 'mongodb';
import { PartialFailure, sortEntries, type IndexSpec, type SqliteStore } from './store.js';
import { applyProjection, applyUpdate, isReplacement, upsertSeed, type SortSpec } from './semantics.js';

const UPDATE_OPERATORS = new Set([
  '$set',
  '$unset',
  '$inc',
  '$setOnInsert',
  '$max',
  '$min',
  '$push',
  '$addToSet',
  '$pull',
  '$pullAll',
  '$pop',
  '$currentDate',
  '$rename',
  '$mul',
]);

const BULK_COMMAND: Record<string, string> = {
  insertOne: 'insert',
  updateOne: 'update',
  updateMany: 'update',
  replaceOne: 'update',
  deleteOne: 'delete',
  deleteMany: 'delete',
};

type Row = { rowid: number; doc: Document; bytes: Buffer };

function notSupported(what: string): MongoServerError {
  return new MongoServerError({
    message: `${what} is not supported by the in-process SQLite database`,
    code: 115,
  });
}

interface FindOptions {
  projection?: Document;
  sort?: SortSpec;
  limit?: number;
  skip?: number;
}

/** `collection.find()`'s cursor: lazy, read in batches, chainable like the driver's. */
export class SqliteCursor<T = Document> implements AsyncIterable<T> {
  private next$: (() => Row[]) | undefined;
  private buffer: T[] = [];
  private done = false;
  private mapper: ((doc: Document) => unknown) | undefined;

  constructor(
    private readonly store: SqliteStore,
    private readonly collection: string,
    private readonly filter: Document,
    private options: FindOptions,
  ) {}

  sort(sort: SortSpec, dir?: 1 | -1): this {
    this.options = {
      ...this.options,
      sort: typeof sort === 'string' && dir !== undefined ? { [sort]: dir } : sort,
    };
    return this;
  }
  limit(n: number): this {
    this.options = { ...this.options, limit: n };
    return this;
  }
  skip(n: number): this {
    this.options = { ...this.options, skip: n };
    return this;
  }
  project<P = Document>(projection: Document): SqliteCursor<P> {
    this.options = { ...this.options, projection };
    return this as unknown as SqliteCursor<P>;
  }
  map<U>(fn: (doc: T) => U): SqliteCursor<U> {
    const previous = this.mapper;
    this.mapper = (doc) => fn((previous === undefined ? doc : previous(doc)) as T);
    return this as unknown as SqliteCursor<U>;
  }
  batchSize(_n: number): this {
    return this;
  }
  hint(_hint: unknown): this {
    return this;
  }
  maxTimeMS(_ms: number): this {
    return this;
  }
  comment(_comment: unknown): this {
    return this;
  }

  private fill(): void {
    if (this.done || this.buffer.length > 0) return;
    if (this.next$ === undefined) {
      const table = this.store.table(this.collection);
      this.next$ = this.store.query(table, this.filter, this.options);
    }
    const rows = this.next$();
    if (rows.length === 0) {
      this.done = true;
      return;
    }
    for (const row of rows) {
      const projected = applyProjection(row.doc, this.options.projection);
      this.buffer.push((this.mapper === undefined ? projected : this.mapper(projected)) as T);
    }
  }

  async next(): Promise<T | null> {
    return this.store.read(this.next$ === undefined ? 'find' : 'getMore', this.collection, () => {
      this.fill();
      return this.buffer.shift() ?? null;
    });
  }
  async tryNext(): Promise<T | null> {
    return this.next();
  }
  async hasNext(): Promise<boolean> {
    return this.store.read(this.next$ === undefined ? 'find' : 'getMore', this.collection, () => {
      this.fill();
      return this.buffer.length > 0;
    });
  }
  async toArray(): Promise<T[]> {
    return this.store.read('find', this.collection, () => {
      const out: T[] = [];
      for (;;) {
        this.fill();
        if (this.buffer.length === 0) return out;
        out.push(...this.buffer);
        this.buffer = [];
      }
    });
  }
  async forEach(fn: (doc: T) => boolean | void): Promise<void> {
    for await (const doc of this) if (fn(doc) === false) return;
  }
  close(): Promise<void> {
    this.done = true;
    this.buffer = [];
    return Promise.resolve();
  }
  rewind(): void {
    this.next$ = undefined;
    this.buffer = [];
    this.done = false;
  }
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      const batch = await this.store.read(
        this.next$ === undefined ? 'find' : 'getMore',
        this.collection,
        () => {
          this.fill();
          const out = this.buffer;
          this.buffer = [];
          return out;
        },
      );
      if (batch.length === 0) return;
      for (const doc of batch) yield doc;
    }
  }
}

interface UpdateOutcome {
  matchedCount: number;
  modifiedCount: number;
  upsertedCount: number;
  upsertedId: unknown;
  before: Document | null;
  after: Document | null;
}

export class SqliteCollection<T extends Document = Document> {
  constructor(
    private readonly store: SqliteStore,
    readonly collectionName: string,
    readonly dbName: string,
  ) {}

  get namespace(): string {
    return `${this.dbName}.${this.collectionName}`;
  }

  private get table() {
    return this.store.table(this.collectionName);
  }

  // ---- reads ----

  find(filter: Document = {}, options: FindOptions = {}): SqliteCursor<T> {
    return new SqliteCursor<T>(this.store, this.collectionName, filter, options);
  }

  async findOne(filter: Document = {}, options: FindOptions = {}): Promise<T | null> {
    return this.store.read('find', this.collectionName, () => {
      const rows = this.store.query(this.table, filter, { ...options, limit: 1 })();
      const row = rows[0];
      return row === undefined ? null : (applyProjection(row.doc, options.projection) as T);
    });
  }

  async countDocuments(
    filter: Document = {},
    options: { limit?: number; skip?: number } = {},
  ): Promise<number> {
    return this.store.read('count', this.collectionName, () =>
      this.store.count(this.table, filter, options.limit, options.skip),
    );
  }

  async estimatedDocumentCount(): Promise<number> {
    return this.countDocuments({});
  }

  async distinct(key: string, filter: Document = {}): Promise<unknown[]> {
    const docs = await this.find(filter).toArray();
    const seen = new Map<string, unknown>();
    for (const doc of docs) {
      const value: unknown = (doc as Document)[key];
      for (const v of Array.isArray(value) ? (value as unknown[]) : [value]) {
        if (v === undefined) continue;
        seen.set(Buffer.from(BSON.serialize({ v })).toString('hex'), v);
      }
    }
    return [...seen.values()];
  }

  aggregate<R = Document>(pipeline: Document[]): SqliteCursor<R> {
    const [stage] = pipeline;
    if (pipeline.length === 1 && stage !== undefined && '$collStats' in stage) {
      const store = this.store;
      const name = this.collectionName;
      return new StaticCursor<R>(store, name, () => {
        const table = store.table(name);
        store.refreshSchema();
        if (!table.exists) return [];
        const row = store.sql
          .prepare(
            `SELECT count(*) AS n, coalesce(sum(length(doc)), 0) AS bytes FROM "${table.table.replaceAll('"', '""')}"`,
          )
          .get() as { n: number; bytes: number };
        return [
          {
            ns: `${this.dbName}.${name}`,
            storageStats: { count: row.n, size: row.bytes, storageSize: row.bytes, totalIndexSize: 0 },
          },
        ] as R[];
      }) as unknown as SqliteCursor<R>;
    }
    return new StaticCursor<R>(this.store, this.collectionName, () => {
      throw notSupported('this aggregation pipeline');
    }) as unknown as SqliteCursor<R>;
  }

  // ---- writes ----

  private withId(doc: Document): Document {
    if (doc._id === undefined) (doc as { _id?: unknown })._id = new ObjectId();
    return doc;
  }

  async insertOne(doc: T): Promise<{ acknowledged: true; insertedId: unknown }> {
    this.withId(doc);
    const copy = BSON.deserialize(BSON.serialize(doc));
    return this.store.write('insert', this.collectionName, () => {
      this.store.insertRow(this.table, copy);
      return { acknowledged: true as const, insertedId: doc._id as unknown };
    });
  }

  async insertMany(
    docs: readonly T[],
    options: { ordered?: boolean } = {},
  ): Promise<{ acknowledged: true; insertedCount: number; insertedIds: Record<number, unknown> }> {
    const copies = docs.map((d) => BSON.deserialize(BSON.serialize(this.withId(d))));
    const ordered = options.ordered !== false;
    return this.store.write('insert', this.collectionName, () => {
      const insertedIds: Record<number, unknown> = {};
      const writeErrors: Document[] = [];
      let insertedCount = 0;
      for (let i = 0; i < copies.length; i++) {
        try {
          this.store.insertRow(this.table, copies[i] as Document);
          insertedIds[i] = copies[i]?._id;
          insertedCount++;
        } catch (error) {
          writeErrors.push(writeError(error, i, copies[i]));
          if (ordered) break;
        }
      }
      const result = { acknowledged: true as const, insertedCount, insertedIds };
      if (writeErrors.length > 0)
        return new PartialFailure(bulkError(writeErrors, bulkResult({ insertedCount, insertedIds })));
      return result;
    });
  }

  /** One update statement, inside a write. */
  private applyUpdateStatement(
    filter: Document,
    update: Document,
    options: { upsert?: boolean; multi?: boolean; sort?: SortSpec; replace?: boolean },
  ): UpdateOutcome {
    const table = this.table;
    const replacing = options.replace === true;
    if (!replacing && isReplacement(update) && !Array.isArray(update))
      throw new MongoServerError({ message: 'Update document requires atomic operators', code: 9 });
    if (Array.isArray(update)) throw notSupported('an update pipeline');
    if (!replacing) {
      for (const op of Object.keys(update))
        if (!UPDATE_OPERATORS.has(op))
          throw new MongoServerError({ message: `Unknown modifier: ${op}`, code: 9 });
    }
    const out: UpdateOutcome = {
      matchedCount: 0,
      modifiedCount: 0,
      upsertedCount: 0,
      upsertedId: null,
      before: null,
      after: null,
    };
    const next = this.store.query(table, filter, {
      ...(options.sort === undefined ? {} : { sort: options.sort }),
      ...(options.multi === true ? {} : { limit: 1 }),
    });
    const rows: Row[] = [];
    for (let batch = next(); batch.length > 0; batch = next()) rows.push(...batch);
    for (const row of rows) {
      out.matchedCount++;
      const updated = replacing
        ? { _id: row.doc._id as unknown, ...withoutId(update) }
        : applyUpdate(row.doc, update, false);
      if (updated._id !== undefined && !sameId(updated._id, row.doc._id))
        throw new MongoServerError({
          message: "Performing an update on the path '_id' would modify the immutable field '_id'",
          code: 66,
        });
      const bytes = Buffer.from(BSON.serialize(updated));
      out.before ??= row.doc;
      const after = BSON.deserialize(bytes);
      out.after ??= after;
      if (bytes.equals(row.bytes)) continue;
      this.store.updateRow(table, row.rowid, after, bytes);
      out.modifiedCount++;
    }
    if (out.matchedCount === 0 && options.upsert === true) {
      const seed = upsertSeed(filter);
      let doc = replacing
        ? { ...withoutId(update), ...(seed._id === undefined ? {} : { _id: seed._id as unknown }) }
        : applyUpdate(seed, update, true);
      if (replacing && update._id !== undefined) doc = { ...doc, _id: update._id as unknown };
      if (doc._id === undefined) doc = { _id: new ObjectId(), ...doc };
      const stored = BSON.deserialize(BSON.serialize(doc));
      this.store.insertRow(table, stored);
      out.upsertedCount = 1;
      out.upsertedId = stored._id;
      out.after = stored;
    }
    return out;
  }

  private updateResult(o: UpdateOutcome) {
    return {
      acknowledged: true as const,
      matchedCount: o.matchedCount,
      modifiedCount: o.modifiedCount,
      upsertedCount: o.upsertedCount,
      upsertedId: o.upsertedId as ObjectId | null,
    };
  }

  async updateOne(filter: Document, update: Document, options: { upsert?: boolean; sort?: SortSpec } = {}) {
    return this.store.write('update', this.collectionName, () =>
      this.updateResult(this.applyUpdateStatement(filter, update, { ...options, multi: false })),
    );
  }

  async updateMany(filter: Document, update: Document, options: { upsert?: boolean } = {}) {
    return this.store.write('update', this.collectionName, () =>
      this.updateResult(this.applyUpdateStatement(filter, update, { ...options, multi: true })),
    );
  }

  async replaceOne(filter: Document, replacement: Document, options: { upsert?: boolean } = {}) {
    if (!isReplacement(replacement))
      throw new MongoServerError({
        message: 'Replacement document must not contain atomic operators',
        code: 9,
      });
    return this.store.write('update', this.collectionName, () =>
      this.updateResult(this.applyUpdateStatement(filter, replacement, { ...options, replace: true })),
    );
  }

  private findAndModifyResult(
    doc: Document | null,
    options: { projection?: Document; includeResultMetadata?: boolean },
    lastErrorObject?: Document,
  ): unknown {
    const value = doc === null ? null : applyProjection(doc, options.projection);
    if (options.includeResultMetadata === true)
      return { value, ok: 1, lastErrorObject: lastErrorObject ?? {} };
    return value;
  }

  async findOneAndUpdate(
    filter: Document,
    update: Document,
    options: {
      upsert?: boolean;
      sort?: SortSpec;
      projection?: Document;
      returnDocument?: 'before' | 'after';
      includeResultMetadata?: boolean;
    } = {},
  ): Promise<T | null> {
    return this.store.write('findAndModify', this.collectionName, () => {
      const o = this.applyUpdateStatement(filter, update, { ...options, multi: false });
      const doc = options.returnDocument === 'after' ? o.after : o.before;
      return this.findAndModifyResult(doc, options, {
        n: o.matchedCount + o.upsertedCount,
        updatedExisting: o.matchedCount > 0,
        ...(o.upsertedCount > 0 ? { upserted: o.upsertedId } : {}),
      }) as T | null;
    });
  }

  async findOneAndReplace(
    filter: Document,
    replacement: Document,
    options: {
      upsert?: boolean;
      sort?: SortSpec;
      projection?: Document;
      returnDocument?: 'before' | 'after';
      includeResultMetadata?: boolean;
    } = {},
  ): Promise<T | null> {
    return this.store.write('findAndModify', this.collectionName, () => {
      const o = this.applyUpdateStatement(filter, replacement, { ...options, replace: true, multi: false });
      const doc = options.returnDocument === 'after' ? o.after : o.before;
      return this.findAndModifyResult(doc, options) as T | null;
    });
  }

  async findOneAndDelete(
    filter: Document,
    options: { sort?: SortSpec; projection?: Document; includeResultMetadata?: boolean } = {},
  ): Promise<T | null> {
    return this.store.write('findAndModify', this.collectionName, () => {
      const row = this.store.query(this.table, filter, {
        ...(options.sort === undefined ? {} : { sort: options.sort }),
        limit: 1,
      })()[0];
      if (row === undefined) return this.findAndModifyResult(null, options) as T | null;
      this.store.deleteRow(this.table, row.rowid);
      return this.findAndModifyResult(row.doc, options) as T | null;
    });
  }

  private deleteStatement(filter: Document, many: boolean): number {
    const next = this.store.query(this.table, filter, many ? {} : { limit: 1 });
    const rows: Row[] = [];
    for (let batch = next(); batch.length > 0; batch = next()) rows.push(...batch);
    for (const row of rows) this.store.deleteRow(this.table, row.rowid);
    return rows.length;
  }

  async deleteOne(filter: Document = {}) {
    return this.store.write('delete', this.collectionName, () => ({
      acknowledged: true as const,
      deletedCount: this.deleteStatement(filter, false),
    }));
  }

  async deleteMany(filter: Document = {}) {
    return this.store.write('delete', this.collectionName, () => ({
      acknowledged: true as const,
      deletedCount: this.deleteStatement(filter, true),
    }));
  }

  async bulkWrite(operations: readonly Document[], options: { ordered?: boolean } = {}) {
    const ordered = options.ordered !== false;
    // Inserted documents get their _id now, as the driver gives them.
    const prepared = operations.map((op) => {
      const insert = op.insertOne as { document: Document } | undefined;
      if (insert === undefined) return op;
      return { insertOne: { document: BSON.deserialize(BSON.serialize(this.withId(insert.document))) } };
    });
    // Named as the driver's commands are: one kind of statement is one insert/update/delete.
    const kinds = new Set(prepared.map((op) => BULK_COMMAND[Object.keys(op)[0] ?? ''] ?? 'bulkWrite'));
    const command = kinds.size === 1 ? ([...kinds][0] as string) : 'bulkWrite';
    return this.store.write(command, this.collectionName, () => {
      const counts = {
        insertedCount: 0,
        matchedCount: 0,
        modifiedCount: 0,
        deletedCount: 0,
        upsertedCount: 0,
      };
      const insertedIds: Record<number, unknown> = {};
      const upsertedIds: Record<number, unknown> = {};
      const writeErrors: Document[] = [];
      for (let i = 0; i < prepared.length; i++) {
        const op = prepared[i] as Document;
        this.store.sql.exec('SAVEPOINT s');
        try {
          const kind = Object.keys(op)[0];
          const body = op[kind ?? ''] as Document;
          if (kind === 'insertOne') {
            this.store.insertRow(this.table, body.document as Document);
            counts.insertedCount++;
            insertedIds[i] = (body.document as Document)._id;
          } else if (kind === 'updateOne' || kind === 'updateMany' || kind === 'replaceOne') {
            const replace = kind === 'replaceOne';
            const o = this.applyUpdateStatement(
              body.filter as Document,
              (replace ? body.replacement : body.update) as Document,
              {
                upsert: body.upsert === true,
                multi: kind === 'updateMany',
                replace,
              },
            );
            counts.matchedCount += o.matchedCount;
            counts.modifiedCount += o.modifiedCount;
            counts.upsertedCount += o.upsertedCount;
            if (o.upsertedCount > 0) upsertedIds[i] = o.upsertedId;
          } else if (kind === 'deleteOne' || kind === 'deleteMany') {
            counts.deletedCount += this.deleteStatement(body.filter as Document, kind === 'deleteMany');
          } else {
            throw notSupported(`bulk operation ${String(kind)}`);
          }
          this.store.sql.exec('RELEASE s');
        } catch (error) {
          this.store.sql.exec('ROLLBACK TO s');
          this.store.sql.exec('RELEASE s');
          writeErrors.push(writeError(error, i, op));
          if (ordered) break;
        }
      }
      const result = bulkResult({ ...counts, insertedIds, upsertedIds });
      if (writeErrors.length > 0) return new PartialFailure(bulkError(writeErrors, result));
      return result;
    });
  }

  // ---- indexes and the collection itself ----

  async createIndex(
    key: Record<string, 1 | -1>,
    options: { name?: string; unique?: boolean } = {},
  ): Promise<string> {
    const name =
      options.name ??
      Object.entries(key)
        .map(([k, v]) => `${k}_${v}`)
        .join('_');
    return this.store.write('createIndexes', this.collectionName, () =>
      this.store.ensureIndex(this.table, { name, key, ...(options.unique === true ? { unique: true } : {}) }),
    );
  }

  async createIndexes(specs: readonly (IndexSpec & { expireAfterSeconds?: number })[]): Promise<string[]> {
    for (const spec of specs) {
      // TTL indexes are not kept by this store; storage's own sweepers delete what expires.
      if (spec.expireAfterSeconds !== undefined)
        throw new MongoServerError({ message: 'expireAfterSeconds is not implemented', code: 238 });
    }
    return this.store.write('createIndexes', this.collectionName, () =>
      specs.map((spec) => {
        const name =
          spec.name ??
          Object.entries(spec.key)
            .map(([k, v]) => `${k}_${v}`)
            .join('_');
        return this.store.ensureIndex(this.table, {
          name,
          key: spec.key,
          ...(spec.unique === true ? { unique: true } : {}),
        });
      }),
    );
  }

  async indexes(): Promise<Document[]> {
    return this.store.read('listIndexes', this.collectionName, () => {
      this.store.refreshSchema();
      const table = this.table;
      if (!table.exists) return [];
      return [
        { v: 2, key: { _id: 1 }, name: '_id_' },
        ...[...table.indexes.values()].map((s) => ({ v: 2, ...s })),
      ];
    });
  }

  listIndexes(): StaticCursor<Document> {
    return new StaticCursor(this.store, this.collectionName, () => {
      this.store.refreshSchema();
      const table = this.table;
      if (!table.exists) return [];
      return [
        { v: 2, key: { _id: 1 }, name: '_id_' },
        ...[...table.indexes.values()].map((s) => ({ v: 2, ...s })),
      ];
    });
  }

  async drop(): Promise<boolean> {
    return this.store.write('drop', this.collectionName, () => this.store.dropTable(this.collectionName));
  }
}

/** A cursor over documents computed at once (aggregation stats, index lists). */
export class StaticCursor<T> {
  constructor(
    private readonly store: SqliteStore,
    private readonly collection: string,
    private readonly compute: () => T[],
  ) {}
  async toArray(): Promise<T[]> {
    return this.store.read('aggregate', this.collection, () => this.compute());
  }
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (const doc of await this.toArray()) yield doc;
  }
  async close(): Promise<void> {}
}

function withoutId(doc: Document): Document {
  const { _id: _ignored, ...rest } = doc;
  return rest;
}

function sameId(a: unknown, b: unknown): boolean {
  return Buffer.from(BSON.serialize({ v: a })).equals(BSON.serialize({ v: b }));
}

function writeError(error: unknown, index: number, op: unknown): Document {
  const code = (error as { code?: unknown }).code;
  return {
    index,
    code: typeof code === 'number' ? code : 1,
    errmsg: error instanceof Error ? error.message : String(error),
    errInfo: undefined,
    op,
  };
}

function bulkResult(partial: Document): Document {
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

function bulkError(writeErrors: Document[], result: Document): MongoBulkWriteError {
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

/** Sort entries, re-exported for the Db's helpers. */
export { sortEntries };
