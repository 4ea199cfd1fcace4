/**
 * The MongoDB driver's `Db`, `Collection` and `FindCursor`, as far as storage uses them, over the
 * in-process SQLite store (ADR 0011). Results, errors (E11000 as `MongoServerError` code 11000,
 * unordered bulk failures as `MongoBulkWriteError` with `writeErrors` and the counts of what was
 * written) and option names are the driver's, so storage's code runs unchanged on either backend.
 * Anything storage does not use answers a clear `MongoServerError` (code 115, CommandNotSupported)
 * instead of a wrong result.
 */
import { BSON, MongoServerError, ObjectId, type Document } from 'mongodb';
import { applyProjection, isReplacement, type SortSpec } from './semantics.js';
import { sortEntries, type IndexSpec, type Scan, type SqliteStore } from './store.js';
import { bulkResult, notSupported, type UpdateOutcome, type WriteOp } from './write-ops.js';
import type { Writer } from './writer.js';

const BULK_COMMAND: Record<string, string> = {
  insertOne: 'insert',
  updateOne: 'update',
  updateMany: 'update',
  replaceOne: 'update',
  deleteOne: 'delete',
  deleteMany: 'delete',
};

/** Candidates one cursor read examines at most (so it holds the event loop ~ a few ms). */
const SCAN_STEP = 2_000;

interface FindOptions {
  projection?: Document;
  sort?: SortSpec;
  limit?: number;
  skip?: number;
}

/** `collection.find()`'s cursor: lazy, read in batches, chainable like the driver's. */
export class SqliteCursor<T = Document> implements AsyncIterable<T> {
  private next$: Scan | undefined;
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
    // A bounded step: a selective filter no column answers examines the collection a step per
    // read, and the reads give the event loop its turns between them.
    const { rows, done } = this.next$.some(SCAN_STEP);
    if (done) this.done = true;
    for (const row of rows) {
      const projected = applyProjection(row.doc, this.options.projection);
      this.buffer.push((this.mapper === undefined ? projected : this.mapper(projected)) as T);
    }
  }

  private command(): string {
    return this.next$ === undefined ? 'find' : 'getMore';
  }

  /** The buffered documents after one bounded step; empty with `done` false means "read on". */
  private step(): Promise<T[]> {
    return this.store.read(this.command(), this.collection, () => {
      this.fill();
      const taken = this.buffer;
      this.buffer = [];
      return taken;
    });
  }

  async next(): Promise<T | null> {
    if (this.buffer.length > 0) return this.buffer.shift() ?? null;
    for (;;) {
      const batch = await this.step();
      if (batch.length > 0) {
        this.buffer = batch;
        return this.buffer.shift() ?? null;
      }
      if (this.done) return null;
    }
  }
  async tryNext(): Promise<T | null> {
    return this.next();
  }
  async hasNext(): Promise<boolean> {
    if (this.buffer.length > 0) return true;
    for (;;) {
      const batch = await this.step();
      if (batch.length > 0) {
        this.buffer = batch;
        return true;
      }
      if (this.done) return false;
    }
  }
  async toArray(): Promise<T[]> {
    // Step by step, each a read of its own, so a large result gives the event loop its turns.
    const out: T[] = [...this.buffer];
    this.buffer = [];
    for (;;) {
      const batch = await this.step();
      for (const doc of batch) out.push(doc);
      if (batch.length === 0 && this.done) return out;
    }
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
      const batch = this.buffer.length > 0 ? this.buffer : await this.step();
      this.buffer = [];
      for (const doc of batch) yield doc;
      if (batch.length === 0 && this.done) return;
    }
  }
}

interface FindAndModifyOptions {
  upsert?: boolean;
  sort?: SortSpec;
  projection?: Document;
  returnDocument?: 'before' | 'after';
  includeResultMetadata?: boolean;
}

export class SqliteCollection<T extends Document = Document> {
  constructor(
    private readonly store: SqliteStore,
    private readonly writer: Writer,
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
    // Through a cursor: a filter no column answers is examined in bounded steps.
    return new SqliteCursor<T>(this.store, this.collectionName, filter, { ...options, limit: 1 }).next();
  }

  async countDocuments(
    filter: Document = {},
    options: { limit?: number; skip?: number } = {},
  ): Promise<number> {
    const counted = await this.store.read('count', this.collectionName, () =>
      this.store.countExactly(this.table, filter, options.limit, options.skip),
    );
    if (counted !== undefined) return counted;
    let n = 0;
    const cursor = new SqliteCursor(this.store, this.collectionName, filter, {
      projection: { _id: 1 },
      ...(options.limit === undefined ? {} : { limit: options.limit }),
      ...(options.skip === undefined ? {} : { skip: options.skip }),
    });
    for await (const _doc of cursor) n++;
    return n;
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

  private submit(command: string, op: WriteOp): Promise<unknown> {
    return this.writer.submit(command, this.collectionName, op);
  }

  async insertOne(doc: T): Promise<{ acknowledged: true; insertedId: unknown }> {
    this.withId(doc);
    await this.submit('insert', { kind: 'insert', docs: [doc], ordered: true, one: true });
    return { acknowledged: true, insertedId: doc._id as unknown };
  }

  async insertMany(
    docs: readonly T[],
    options: { ordered?: boolean } = {},
  ): Promise<{ acknowledged: true; insertedCount: number; insertedIds: Record<number, unknown> }> {
    for (const doc of docs) this.withId(doc);
    const r = (await this.submit('insert', {
      kind: 'insert',
      docs: [...docs],
      ordered: options.ordered !== false,
    })) as { insertedCount: number; insertedIds: Record<number, unknown> };
    return { acknowledged: true, insertedCount: r.insertedCount, insertedIds: r.insertedIds };
  }

  private async update(
    filter: Document,
    update: Document,
    options: { upsert?: boolean; sort?: SortSpec },
    how: { multi?: boolean; replace?: boolean },
  ) {
    const o = (await this.submit('update', {
      kind: 'update',
      filter,
      update,
      ...(options.upsert === undefined ? {} : { upsert: options.upsert }),
      ...(options.sort === undefined ? {} : { sort: options.sort }),
      ...how,
    })) as UpdateOutcome;
    return {
      acknowledged: true as const,
      matchedCount: o.matchedCount,
      modifiedCount: o.modifiedCount,
      upsertedCount: o.upsertedCount,
      upsertedId: o.upsertedId as ObjectId | null,
    };
  }

  updateOne(filter: Document, update: Document, options: { upsert?: boolean; sort?: SortSpec } = {}) {
    return this.update(filter, update, options, { multi: false });
  }

  updateMany(filter: Document, update: Document, options: { upsert?: boolean } = {}) {
    return this.update(filter, update, options, { multi: true });
  }

  replaceOne(filter: Document, replacement: Document, options: { upsert?: boolean } = {}) {
    if (!isReplacement(replacement))
      return Promise.reject(
        new MongoServerError({ message: 'Replacement document must not contain atomic operators', code: 9 }),
      );
    return this.update(filter, replacement, options, { replace: true });
  }

  private async findAndModify(
    filter: Document,
    update: Document,
    options: FindAndModifyOptions,
    replace: boolean,
  ): Promise<T | null> {
    const o = (await this.submit('findAndModify', {
      kind: 'update',
      filter,
      update,
      replace,
      want: options.returnDocument === 'after' ? 'after' : 'before',
      ...(options.upsert === undefined ? {} : { upsert: options.upsert }),
      ...(options.sort === undefined ? {} : { sort: options.sort }),
    })) as UpdateOutcome;
    const value = o.doc === undefined || o.doc === null ? null : applyProjection(o.doc, options.projection);
    if (options.includeResultMetadata === true)
      return {
        value,
        ok: 1,
        lastErrorObject: {
          n: o.matchedCount + o.upsertedCount,
          updatedExisting: o.matchedCount > 0,
          ...(o.upsertedCount > 0 ? { upserted: o.upsertedId } : {}),
        },
      } as unknown as T;
    return value as T | null;
  }

  findOneAndUpdate(
    filter: Document,
    update: Document,
    options: FindAndModifyOptions = {},
  ): Promise<T | null> {
    return this.findAndModify(filter, update, options, false);
  }

  findOneAndReplace(
    filter: Document,
    replacement: Document,
    options: FindAndModifyOptions = {},
  ): Promise<T | null> {
    return this.findAndModify(filter, replacement, options, true);
  }

  async findOneAndDelete(
    filter: Document,
    options: { sort?: SortSpec; projection?: Document; includeResultMetadata?: boolean } = {},
  ): Promise<T | null> {
    const r = (await this.submit('findAndModify', {
      kind: 'delete',
      filter,
      many: false,
      want: true,
      ...(options.sort === undefined ? {} : { sort: options.sort }),
    })) as { doc?: Document | null };
    const value = r.doc === undefined || r.doc === null ? null : applyProjection(r.doc, options.projection);
    if (options.includeResultMetadata === true) return { value, ok: 1, lastErrorObject: {} } as unknown as T;
    return value as T | null;
  }

  private async remove(filter: Document, many: boolean) {
    const r = (await this.submit('delete', { kind: 'delete', filter, many })) as { deletedCount: number };
    return { acknowledged: true as const, deletedCount: r.deletedCount };
  }

  deleteOne(filter: Document = {}) {
    return this.remove(filter, false);
  }

  deleteMany(filter: Document = {}) {
    return this.remove(filter, true);
  }

  async bulkWrite(operations: readonly Document[], options: { ordered?: boolean } = {}) {
    for (const op of operations) {
      const insert = op.insertOne as { document: Document } | undefined;
      if (insert !== undefined) this.withId(insert.document);
    }
    // Named as the driver's commands are: one kind of statement is one insert/update/delete.
    const kinds = new Set(operations.map((op) => BULK_COMMAND[Object.keys(op)[0] ?? ''] ?? 'bulkWrite'));
    const command = kinds.size === 1 ? ([...kinds][0] as string) : 'bulkWrite';
    const r = (await this.submit(command, {
      kind: 'bulk',
      ops: [...operations],
      ordered: options.ordered !== false,
    })) as Document;
    return bulkResult(r);
  }

  // ---- indexes and the collection itself ----

  async createIndex(
    key: Record<string, 1 | -1>,
    options: { name?: string; unique?: boolean } = {},
  ): Promise<string> {
    const [name] = await this.createIndexes([{ key, ...options }]);
    return name as string;
  }

  async createIndexes(
    specs: readonly (Omit<IndexSpec, 'name'> & { name?: string; expireAfterSeconds?: number })[],
  ): Promise<string[]> {
    for (const spec of specs) {
      // TTL indexes are not kept by this store; storage's own sweepers delete what expires.
      if (spec.expireAfterSeconds !== undefined)
        throw new MongoServerError({
          message: 'TTL indexes (expireAfterSeconds) are not kept by the in-process SQLite database',
          code: 238,
        });
    }
    const named: IndexSpec[] = specs.map((spec) => ({
      name:
        spec.name ??
        Object.entries(spec.key)
          .map(([k, v]) => `${k}_${v}`)
          .join('_'),
      key: spec.key,
      ...(spec.unique === true ? { unique: true } : {}),
    }));
    return (await this.submit('createIndexes', { kind: 'indexes', specs: named })) as string[];
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
    return (await this.submit('drop', { kind: 'drop' })) as boolean;
  }
}

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

/** Sort entries, re-exported for the Db's helpers. */
export { sortEntries };
