/**
 * The in-process SQLite database (ADR 0011): `openSqliteDatabase({ file })` answers a `Db` that
 * storage uses exactly as it uses MongoDB's. See store.ts for the tables and the group commit,
 * collection.ts for the driver's API over them.
 */
import { statSync } from 'node:fs';
import { MongoServerError, type Db, type Document } from 'mongodb';
import { SqliteCollection, StaticCursor } from './collection.js';
import { SqliteStore, type StoreEvent } from './store.js';
import type { AtomicOp, WriteGuard } from './write-ops.js';
import { InlineWriter, ThreadWriter, type Writer } from './writer.js';

export interface SqliteDatabaseOptions {
  /** The database file; its directory is created. */
  readonly file: string;
  /** `db.databaseName` (default 'postmesh'). */
  readonly name?: string;
  /** Told of every operation (command name, collection, duration, outcome). */
  readonly observe?: (event: StoreEvent) => void;
  /**
   * Where writes run: `thread` (default) on a worker thread that owns the write connection, or
   * `inline` on the event loop (one thread; the fsync of each group commit then blocks it).
   */
  readonly writer?: 'thread' | 'inline';
}

export interface SqliteDatabase {
  /** Typed as the driver's Db: supports what storage calls. */
  readonly db: Db;
  readonly file: string;
  /** Throws if the file is not usable. */
  ping(): Promise<void>;
  /** Transactions committed and the writes they carried, since the file was opened here. */
  stats(): { commits: number; writes: number };
  /** Writes asked and not answered for at least `minMs` (for the stall watch). */
  writesLongerThan(
    minMs: number,
  ): { command: string; collection: string; statements: number; runningMs: number }[];
  /** Commits what is pending, then closes the file. */
  close(): Promise<void>;
}

/** One step of an atomic write: documents (each with its `_id`) inserted into a collection. */
export interface AtomicInsert {
  readonly collection: string;
  readonly docs: readonly Document[];
}

/**
 * Inserts into several collections in one transaction of the database, only if `guard` matches a
 * document then (when given); rejects with a `MongoServerError` of code GUARD_FAILED when it does
 * not, and with the first step's error (E11000 included) otherwise, having written nothing.
 */
export type AtomicWriter = (guard: WriteGuard | undefined, steps: readonly AtomicInsert[]) => Promise<void>;

class SqliteDb {
  private readonly byName = new Map<string, SqliteCollection>();

  constructor(
    private readonly store: SqliteStore,
    private readonly writer: Writer,
    readonly databaseName: string,
  ) {}

  collection<T extends Document = Document>(name: string): SqliteCollection<T> {
    let c = this.byName.get(name);
    if (c === undefined) {
      c = new SqliteCollection(this.store, this.writer, name, this.databaseName);
      this.byName.set(name, c);
    }
    return c as unknown as SqliteCollection<T>;
  }

  async command(command: Document): Promise<Document> {
    const name = Object.keys(command)[0];
    if (name === 'ping') {
      return this.store.read('ping', '', () => {
        this.store.sql.prepare('SELECT 1').get();
        return { ok: 1 };
      });
    }
    if (name === 'dbStats') {
      return this.store.read('dbStats', '', () => {
        const pageSize = this.store.sql.pragma('page_size', { simple: true }) as number;
        const pages = this.store.sql.pragma('page_count', { simple: true }) as number;
        let objects = 0;
        let dataSize = 0;
        for (const c of this.store.collectionNames()) {
          const row = this.store.sql
            .prepare(
              `SELECT count(*) AS n, coalesce(sum(length(doc)), 0) AS bytes FROM "c:${c.replaceAll('"', '""')}"`,
            )
            .get() as { n: number; bytes: number };
          objects += row.n;
          dataSize += row.bytes;
        }
        let wal = 0;
        try {
          wal = statSync(`${this.store.file}-wal`).size;
        } catch {
          // No WAL file right now.
        }
        const storageSize = pageSize * pages + wal;
        return {
          db: this.databaseName,
          objects,
          dataSize,
          storageSize,
          indexSize: 0,
          totalSize: storageSize,
          ok: 1,
        };
      });
    }
    throw new MongoServerError({
      message: `command ${String(name)} is not supported by the in-process SQLite database`,
      code: 115,
    });
  }

  atomicInsert(guard: WriteGuard | undefined, steps: readonly AtomicInsert[]): Promise<void> {
    const op: AtomicOp = {
      kind: 'atomic',
      ...(guard === undefined ? {} : { guard }),
      steps: steps.map((s) => ({
        collection: s.collection,
        op: { kind: 'insert', docs: [...s.docs], ordered: true },
      })),
    };
    return this.writer
      .submit('atomic', guard?.collection ?? steps[0]?.collection ?? '', op)
      .then(() => undefined);
  }

  listCollections(_filter: Document = {}, _options: Document = {}): StaticCursor<Document> {
    return new StaticCursor(this.store, '', () => {
      this.store.refreshSchema();
      return this.store.collectionNames().map((name) => ({ name, type: 'collection' }));
    });
  }

  collections(): Promise<SqliteCollection[]> {
    return Promise.resolve(this.store.collectionNames().map((name) => this.collection(name)));
  }

  async dropCollection(name: string): Promise<boolean> {
    return this.collection(name).drop();
  }

  async dropDatabase(): Promise<boolean> {
    const names = this.store.collectionNames();
    await Promise.all(names.map((n) => this.collection(n).drop()));
    return true;
  }
}

/** The atomic writer of `db` when it is the in-process SQLite database; undefined for any other. */
export function atomicWriterOf(db: Db): AtomicWriter | undefined {
  const own = db as unknown;
  return own instanceof SqliteDb ? (guard, steps) => own.atomicInsert(guard, steps) : undefined;
}

export function openSqliteDatabase(options: SqliteDatabaseOptions): SqliteDatabase {
  const store = new SqliteStore({
    file: options.file,
    ...(options.observe === undefined ? {} : { observe: options.observe }),
  });
  const writer: Writer =
    options.writer === 'inline' ? new InlineWriter(store) : new ThreadWriter(options.file, options.observe);
  const db = new SqliteDb(store, writer, options.name ?? 'postmesh');
  return {
    db: db as unknown as Db,
    file: options.file,
    async ping() {
      // Readiness covers the writes too: a dead writer thread makes storage not ready.
      const failure = writer.failure();
      if (failure !== undefined) throw failure;
      await db.command({ ping: 1 });
    },
    stats: () => writer.stats(),
    writesLongerThan: (minMs) => writer.longerThan(minMs),
    async close() {
      await writer.close();
      store.close();
    },
  };
}

export type { StoreEvent } from './store.js';
export { GUARD_FAILED, type WriteGuard } from './write-ops.js';
