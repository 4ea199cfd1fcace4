/**
 * The in-process SQLite document store (ADR 0011): one database file, one table per collection
 * (`c:<name>`: rowid, `id` = the encoded `_id`, `doc` = the BSON document, and one column per
 * indexed path), MongoDB's indexes as SQLite indexes over those columns, and every write of one
 * event-loop turn committed as one transaction (group commit: one fsync for all of them).
 *
 * Queries push the conditions an index column can answer down to SQLite (keys.ts explains the
 * encoding) and decide every candidate by the full filter in JavaScript (semantics.ts), so a
 * filter SQLite cannot express is slower, never wrong. Sorts and limits go to SQLite when the
 * columns answer them exactly; otherwise they run in JavaScript over the matches.
 */
import Database from 'better-sqlite3';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { BSON, MongoServerError, ObjectId, type Document } from 'mongodb';
import {
  columnName,
  columnValue,
  bracketOf,
  encodeScalar,
  OPAQUE,
  quoteIdent,
  type ColumnValue,
} from './keys.js';
import { compileFilter, sortComparator, type SortSpec } from './semantics.js';

export interface IndexSpec {
  readonly name: string;
  readonly key: Readonly<Record<string, 1 | -1>>;
  readonly unique?: boolean;
}

/** What storage learns of each operation (the database metrics of db/metrics.ts). */
export interface StoreEvent {
  readonly command: string;
  readonly collection: string;
  readonly durationMs: number;
  readonly failed: boolean;
}

export interface StoreOptions {
  readonly file: string;
  readonly observe?: (event: StoreEvent) => void;
}

/** One collection's table as this process knows it (reloaded when the schema changes). */
interface Table {
  readonly name: string;
  readonly table: string;
  exists: boolean;
  /** Indexed path → its column ('_id' → 'id'). */
  readonly columns: Map<string, string>;
  readonly indexes: Map<string, IndexSpec>;
  /** Columns known to hold an OPAQUE value (only ever set: a marker is never removed). */
  readonly opaque: Set<string>;
}

interface Pending {
  readonly run: () => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
  readonly command: string;
  readonly collection: string;
  readonly started: number;
}

/** A write that kept what it did and still reports an error (unordered bulk writes). */
export class PartialFailure {
  constructor(readonly error: Error) {}
}

type Row = { rowid: number; doc: Document; bytes: Buffer };

/** The rows of a query, read a batch at a time. */
export interface Scan {
  /** The next batch of matches; empty only at the end. */
  (): Row[];
  /**
   * The next batch having examined at most `max` candidates: may be empty before the end (a
   * selective filter no column answers), so that a cursor gives the event loop its turns.
   */
  some(max: number): { rows: Row[]; done: boolean };
}

function scanOf(step: (max: number) => { rows: Row[]; done: boolean }): Scan {
  const all = (): Row[] => {
    for (;;) {
      const { rows, done } = step(Number.POSITIVE_INFINITY);
      if (rows.length > 0 || done) return rows;
    }
  };
  return Object.assign(all, { some: step });
}

/** A plan: the SQL condition over the columns, and whether it decides the filter alone. */
interface Plan {
  readonly where: string;
  readonly params: ColumnValue[];
  readonly exact: boolean;
}

const ID_COLUMN = 'id';
/** At most this long of reads answered without giving the event loop a turn. */
const READ_YIELD_MS = 10;
const DOC_BATCH = 256;

export function duplicateKeyError(collection: string, detail: string): MongoServerError {
  const error = new MongoServerError({
    message: `E11000 duplicate key error collection: ${collection} ${detail}`,
    code: 11000,
  });
  return error;
}

function isConstraintError(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return (
    typeof code === 'string' &&
    (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY')
  );
}

function isOperatorObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  if (value instanceof Date || value instanceof RegExp || value instanceof Uint8Array) return false;
  if ((value as { _bsontype?: unknown })._bsontype !== undefined) return false;
  const keys = Object.keys(value);
  return keys.length > 0 && keys.every((k) => k.startsWith('$'));
}

export class SqliteStore {
  readonly sql: Database.Database;
  private readonly tables = new Map<string, Table>();
  private readonly statements = new Map<string, Database.Statement>();
  private queue: Pending[] = [];
  private flushScheduled = false;
  private schemaVersion = -1;
  private closed = false;
  private lastYield = 0;
  /** Transactions committed and writes they carried (the group commit's effect). */
  readonly stats = { commits: 0, writes: 0 };

  constructor(private readonly options: StoreOptions) {
    makeDirectory(dirname(options.file));
    this.sql = new Database(options.file, { timeout: 10_000 });
    this.sql.pragma('journal_mode = WAL');
    // Every commit is on disk before its callers hear OK (DESIGN §2 step 6's `j: true`).
    this.sql.pragma('synchronous = FULL');
    this.sql.pragma('cache_size = -32768');
    this.sql.pragma('temp_store = MEMORY');
    this.sql.exec(
      'CREATE TABLE IF NOT EXISTS "meta:indexes" (coll TEXT NOT NULL, name TEXT NOT NULL, spec TEXT NOT NULL, PRIMARY KEY (coll, name));' +
        'CREATE TABLE IF NOT EXISTS "meta:opaque" (coll TEXT NOT NULL, col TEXT NOT NULL, PRIMARY KEY (coll, col));',
    );
  }

  get file(): string {
    return this.options.file;
  }

  // ---- schema ---------------------------------------------------------------------------------

  private stmt(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (s === undefined) {
      s = this.sql.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  /** Re-reads what this process knows of the tables when another connection changed the schema. */
  refreshSchema(): void {
    const version = this.stmt('PRAGMA schema_version').pluck().get() as number;
    if (version === this.schemaVersion) return;
    this.schemaVersion = version;
    this.statements.clear();
    for (const table of this.tables.values()) this.loadTable(table);
  }

  private loadTable(table: Table): void {
    table.exists =
      this.stmt("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table.table) !==
      undefined;
    table.columns.clear();
    table.indexes.clear();
    table.columns.set('_id', ID_COLUMN);
    if (!table.exists) return;
    const columns = new Set(
      (this.sql.pragma(`table_info(${quoteIdent(table.table)})`) as { name: string }[]).map((c) => c.name),
    );
    for (const name of columns) if (name.startsWith('k:')) table.columns.set(name.slice(2), name);
    const rows = this.stmt('SELECT spec FROM "meta:indexes" WHERE coll = ?').all(table.name) as {
      spec: string;
    }[];
    for (const row of rows) {
      const spec = JSON.parse(row.spec) as IndexSpec;
      table.indexes.set(spec.name, spec);
    }
    const opaque = this.stmt('SELECT col FROM "meta:opaque" WHERE coll = ?').all(table.name) as {
      col: string;
    }[];
    for (const row of opaque) table.opaque.add(row.col);
  }

  table(name: string): Table {
    let table = this.tables.get(name);
    if (table === undefined) {
      table = {
        name,
        table: `c:${name}`,
        exists: false,
        columns: new Map(),
        indexes: new Map(),
        opaque: new Set(),
      };
      this.tables.set(name, table);
      this.loadTable(table);
    }
    return table;
  }

  /** Creates the collection's table (inside a write). */
  ensureTable(table: Table): void {
    if (table.exists) return;
    this.sql.exec(
      `CREATE TABLE IF NOT EXISTS ${quoteIdent(table.table)} (id NOT NULL UNIQUE, doc BLOB NOT NULL)`,
    );
    this.refreshSchema();
    this.loadTable(table);
  }

  /** Creates an index (inside a write): columns added and filled, then the SQLite index. */
  ensureIndex(table: Table, spec: IndexSpec): string {
    this.ensureTable(table);
    if (table.indexes.has(spec.name)) return spec.name;
    const cols: string[] = [];
    for (const [path, direction] of Object.entries(spec.key)) {
      let col = table.columns.get(path);
      if (col === undefined) {
        col = columnName(path);
        this.sql.exec(`ALTER TABLE ${quoteIdent(table.table)} ADD COLUMN ${quoteIdent(col)}`);
        table.columns.set(path, col);
        this.fillColumn(table, path, col);
      }
      cols.push(`${quoteIdent(col)}${direction === -1 ? ' DESC' : ''}`);
    }
    const unique = spec.unique === true ? 'UNIQUE ' : '';
    try {
      this.sql.exec(
        `CREATE ${unique}INDEX IF NOT EXISTS ${quoteIdent(`i:${table.name}:${spec.name}`)} ON ${quoteIdent(table.table)} (${cols.join(', ')})`,
      );
    } catch (error) {
      if (isConstraintError(error)) throw duplicateKeyError(table.name, `index: ${spec.name}`);
      throw error;
    }
    this.stmt('INSERT OR REPLACE INTO "meta:indexes" (coll, name, spec) VALUES (?, ?, ?)').run(
      table.name,
      spec.name,
      JSON.stringify({ name: spec.name, key: spec.key, ...(spec.unique === true ? { unique: true } : {}) }),
    );
    table.indexes.set(spec.name, spec);
    this.refreshSchema();
    return spec.name;
  }

  private fillColumn(table: Table, path: string, col: string): void {
    let after = 0;
    const page = this.stmt(
      `SELECT rowid AS r, doc FROM ${quoteIdent(table.table)} WHERE rowid > ? ORDER BY rowid LIMIT 500`,
    );
    const set = this.sql.prepare(
      `UPDATE ${quoteIdent(table.table)} SET ${quoteIdent(col)} = ? WHERE rowid = ?`,
    );
    for (;;) {
      const rows = page.all(after) as { r: number; doc: Buffer }[];
      if (rows.length === 0) break;
      for (const row of rows) {
        const value = columnValue(this.decode(row.doc), path);
        if (value === OPAQUE) this.markOpaque(table, col);
        set.run(value, row.r);
        after = row.r;
      }
    }
  }

  private markOpaque(table: Table, col: string): void {
    if (table.opaque.has(col)) return;
    this.stmt('INSERT OR IGNORE INTO "meta:opaque" (coll, col) VALUES (?, ?)').run(table.name, col);
    table.opaque.add(col);
  }

  /** Whether a column may hold OPAQUE values (asked of the file: another process may have set it). */
  private mayBeOpaque(table: Table, col: string): boolean {
    if (table.opaque.has(col)) return true;
    if (
      this.stmt('SELECT 1 FROM "meta:opaque" WHERE coll = ? AND col = ?').get(table.name, col) === undefined
    )
      return false;
    table.opaque.add(col);
    return true;
  }

  dropTable(name: string): boolean {
    const table = this.table(name);
    const existed = table.exists;
    this.sql.exec(`DROP TABLE IF EXISTS ${quoteIdent(table.table)}`);
    this.stmt('DELETE FROM "meta:indexes" WHERE coll = ?').run(name);
    this.stmt('DELETE FROM "meta:opaque" WHERE coll = ?').run(name);
    table.opaque.clear();
    this.refreshSchema();
    this.loadTable(table);
    return existed;
  }

  collectionNames(): string[] {
    const rows = this.stmt(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'c:%'",
    ).all() as {
      name: string;
    }[];
    return rows.map((r) => r.name.slice(2));
  }

  // ---- rows -----------------------------------------------------------------------------------

  decode(buffer: Buffer): Document {
    return BSON.deserialize(buffer);
  }

  /** The id column's value of an `_id`. */
  idValue(id: unknown): ColumnValue {
    const encoded = encodeScalar(id);
    if (encoded === undefined || encoded === null)
      return `z${Buffer.from(BSON.serialize({ v: id })).toString('hex')}`;
    return encoded;
  }

  private columnsOf(table: Table): [string, string][] {
    return [...table.columns].filter(([path]) => path !== '_id');
  }

  /** The index columns' values of `doc`, marking the columns that receive an OPAQUE value. */
  private columnValues(table: Table, cols: [string, string][], doc: Document): ColumnValue[] {
    return cols.map(([path, col]) => {
      const value = columnValue(doc, path);
      if (value === OPAQUE) this.markOpaque(table, col);
      return value;
    });
  }

  insertRow(table: Table, doc: Document): void {
    this.ensureTable(table);
    const cols = this.columnsOf(table);
    const values = this.columnValues(table, cols, doc);
    const sql = `INSERT INTO ${quoteIdent(table.table)} (id, doc${cols.map(([, c]) => `, ${quoteIdent(c)}`).join('')}) VALUES (?, ?${', ?'.repeat(cols.length)})`;
    try {
      this.stmt(sql).run(this.idValue(doc._id), Buffer.from(BSON.serialize(doc)), ...values);
    } catch (error) {
      if (isConstraintError(error)) throw duplicateKeyError(table.name, duplicateDetail(error, doc));
      throw error;
    }
  }

  updateRow(table: Table, rowid: number, doc: Document, bytes: Buffer): void {
    const cols = this.columnsOf(table);
    const values = this.columnValues(table, cols, doc);
    const sql = `UPDATE ${quoteIdent(table.table)} SET doc = ?${cols.map(([, c]) => `, ${quoteIdent(c)} = ?`).join('')} WHERE rowid = ?`;
    try {
      this.stmt(sql).run(bytes, ...values, rowid);
    } catch (error) {
      if (isConstraintError(error)) throw duplicateKeyError(table.name, duplicateDetail(error, doc));
      throw error;
    }
  }

  deleteRow(table: Table, rowid: number): void {
    this.stmt(`DELETE FROM ${quoteIdent(table.table)} WHERE rowid = ?`).run(rowid);
  }

  /** The stored bytes of a row, or undefined if it is gone. */
  rowBytes(table: Table, rowid: number): Buffer | undefined {
    const row = this.stmt(`SELECT doc FROM ${quoteIdent(table.table)} WHERE rowid = ?`).get(rowid) as
      { doc: Buffer } | undefined;
    return row?.doc;
  }

  // ---- queries --------------------------------------------------------------------------------

  /** The SQL condition that narrows `filter` to candidates on this table's columns. */
  plan(table: Table, filter: Document): Plan {
    const parts: string[] = [];
    const params: ColumnValue[] = [];
    let exact = true;
    const visit = (f: Document): void => {
      for (const [key, condition] of Object.entries(f)) {
        if (key === '$and' && Array.isArray(condition)) {
          for (const sub of condition) visit(sub as Document);
          continue;
        }
        if (key === '$comment') continue;
        const col = key.startsWith('$') ? undefined : table.columns.get(key);
        if (col === undefined) {
          exact = false;
          continue;
        }
        const opaque = col !== ID_COLUMN && this.mayBeOpaque(table, col);
        if (opaque) exact = false;
        const pushed = this.condition(quoteIdent(col), condition, opaque, params);
        if (pushed === undefined) exact = false;
        else {
          parts.push(pushed.sql);
          if (!pushed.exact) exact = false;
        }
      }
    };
    visit(filter);
    return { where: parts.length === 0 ? '1' : parts.join(' AND '), params, exact };
  }

  private condition(
    col: string,
    condition: unknown,
    opaque: boolean,
    params: ColumnValue[],
  ): { sql: string; exact: boolean } | undefined {
    const orOpaque = (sql: string): string => (opaque ? `(${sql} OR ${col} = '${OPAQUE}')` : `(${sql})`);
    const equal = (value: unknown): { sql: string; exact: boolean } | undefined => {
      const encoded = encodeScalar(value);
      if (encoded === undefined) return undefined;
      if (encoded === null) return { sql: orOpaque(`${col} IS NULL`), exact: true };
      params.push(encoded);
      return { sql: orOpaque(`${col} = ?`), exact: true };
    };
    if (!isOperatorObject(condition)) {
      if (condition instanceof RegExp || Array.isArray(condition)) return undefined;
      return equal(condition);
    }
    const pieces: string[] = [];
    let exact = true;
    for (const [op, operand] of Object.entries(condition)) {
      if (op === '$eq') {
        const piece = equal(operand);
        if (piece === undefined) exact = false;
        else {
          pieces.push(piece.sql);
          exact &&= piece.exact;
        }
      } else if (op === '$in' && Array.isArray(operand)) {
        const values: ColumnValue[] = [];
        let nullable = false;
        let ok = true;
        for (const v of operand) {
          const encoded = encodeScalar(v);
          if (encoded === undefined) ok = false;
          else if (encoded === null) nullable = true;
          else values.push(encoded);
        }
        if (!ok) {
          exact = false;
          continue;
        }
        const alternatives: string[] = [];
        if (values.length > 0) {
          alternatives.push(`${col} IN (${values.map(() => '?').join(', ')})`);
          params.push(...values);
        }
        if (nullable) alternatives.push(`${col} IS NULL`);
        pieces.push(orOpaque(alternatives.length === 0 ? '0' : alternatives.join(' OR ')));
      } else if (op === '$gt' || op === '$gte' || op === '$lt' || op === '$lte') {
        const encoded = encodeScalar(operand);
        const bracket = encoded === undefined ? undefined : bracketOf(encoded);
        if (encoded === undefined || encoded === null || bracket === undefined) {
          exact = false;
          continue;
        }
        const sign = { $gt: '>', $gte: '>=', $lt: '<', $lte: '<=' }[op];
        const range = [`${col} ${sign} ?`];
        params.push(encoded);
        if (op === '$gt' || op === '$gte') {
          range.push(`${col} < ?`);
          params.push(bracket.high);
        } else if (bracket.low === null) {
          range.push(`${col} IS NOT NULL`);
        } else {
          range.push(`${col} >= ?`);
          params.push(bracket.low);
        }
        pieces.push(orOpaque(range.join(' AND ')));
      } else {
        exact = false;
      }
    }
    if (pieces.length === 0) return undefined;
    return { sql: pieces.join(' AND '), exact };
  }

  /** `ORDER BY` for a sort the columns answer exactly, or undefined. */
  private orderBy(table: Table, sort: SortSpec): string | undefined {
    if (sort === undefined) return 'rowid';
    const entries = sortEntries(sort);
    if (entries === undefined) return undefined;
    const parts: string[] = [];
    for (const [path, direction] of entries) {
      const col = table.columns.get(path);
      if (col === undefined || (col !== ID_COLUMN && this.mayBeOpaque(table, col))) return undefined;
      parts.push(`${quoteIdent(col)} ${direction === -1 ? 'DESC' : 'ASC'}`);
    }
    parts.push('rowid');
    return parts.join(', ');
  }

  /**
   * The rows matching `filter`, in `sort` order, after `skip`, at most `limit`: rowids and their
   * decoded documents, read in batches (`next` answers the next batch, empty at the end).
   */
  query(table: Table, filter: Document, options: { sort?: SortSpec; limit?: number; skip?: number }): Scan {
    this.refreshSchema();
    if (!table.exists) return scanOf(() => ({ rows: [], done: true }));
    const plan = this.plan(table, filter);
    const matches = plan.exact ? () => true : compileFilter(filter);
    const order = this.orderBy(table, options.sort);
    const limit = options.limit !== undefined && options.limit > 0 ? options.limit : undefined;
    const skip = options.skip ?? 0;
    if (order === undefined) {
      // Sorted in JavaScript: every match first.
      const all = this.candidates(table, plan, 'rowid', undefined, 0)
        .map((rowid) => this.load(table, rowid))
        .filter((row): row is { rowid: number; doc: Document; bytes: Buffer } => row !== undefined)
        .filter((row) => matches(row.doc));
      const compare = sortComparator(options.sort);
      if (compare !== undefined) all.sort((a, b) => compare(a.doc, b.doc));
      const page = all.slice(skip, limit === undefined ? undefined : skip + limit);
      let given = false;
      return scanOf(() => {
        if (given) return { rows: [], done: true };
        given = true;
        return { rows: page, done: false };
      });
    }
    const rowids = plan.exact
      ? this.candidates(table, plan, order, limit, skip)
      : this.candidates(table, plan, order, undefined, 0);
    let at = 0;
    let toSkip = plan.exact ? 0 : skip;
    let left = plan.exact ? Number.POSITIVE_INFINITY : (limit ?? Number.POSITIVE_INFINITY);
    return scanOf((max) => {
      const out: Row[] = [];
      let examined = 0;
      while (out.length < DOC_BATCH && at < rowids.length && left > 0 && examined++ < max) {
        const rowid = rowids[at++] as number;
        const row = this.load(table, rowid);
        if (row === undefined) continue;
        if (!matches(row.doc)) continue;
        if (toSkip > 0) {
          toSkip--;
          continue;
        }
        out.push(row);
        left--;
      }
      return { rows: out, done: out.length === 0 && (at >= rowids.length || left <= 0) };
    });
  }

  private candidates(
    table: Table,
    plan: Plan,
    order: string,
    limit: number | undefined,
    skip: number,
  ): number[] {
    let sql = `SELECT rowid AS r FROM ${quoteIdent(table.table)} WHERE ${plan.where} ORDER BY ${order}`;
    if (limit !== undefined) sql += ` LIMIT ${limit} OFFSET ${skip}`;
    else if (skip > 0) sql += ` LIMIT -1 OFFSET ${skip}`;
    return this.stmt(sql)
      .pluck()
      .all(...plan.params) as number[];
  }

  private load(table: Table, rowid: number): { rowid: number; doc: Document; bytes: Buffer } | undefined {
    const bytes = this.rowBytes(table, rowid);
    return bytes === undefined ? undefined : { rowid, doc: this.decode(bytes), bytes };
  }

  /** How many documents match, when SQLite can count them by the columns alone; else undefined. */
  countExactly(table: Table, filter: Document, limit?: number, skip?: number): number | undefined {
    this.refreshSchema();
    if (!table.exists) return 0;
    const plan = this.plan(table, filter);
    if (!plan.exact || limit !== undefined || (skip ?? 0) !== 0) return undefined;
    return this.stmt(`SELECT count(*) FROM ${quoteIdent(table.table)} WHERE ${plan.where}`)
      .pluck()
      .get(...plan.params) as number;
  }

  // ---- writes: group commit -------------------------------------------------------------------

  /**
   * Runs `run` inside the next group commit and answers once that commit is on disk. A throw
   * undoes this write only (a savepoint); a PartialFailure keeps what it did and rejects.
   */
  write<T>(command: string, collection: string, run: () => T | PartialFailure): Promise<T> {
    if (this.closed) return Promise.reject(new Error('the database is closed'));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({
        run,
        resolve: resolve as (value: unknown) => void,
        reject,
        command,
        collection,
        started: performance.now(),
      });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  flush(): void {
    this.flushScheduled = false;
    const group = this.queue;
    this.queue = [];
    if (group.length === 0) return;
    const outcomes: { ok: boolean; value: unknown }[] = [];
    try {
      this.sql.exec('BEGIN IMMEDIATE');
    } catch (error) {
      for (const p of group) this.settle(p, { ok: false, value: error });
      return;
    }
    try {
      this.refreshSchema();
      for (const p of group) {
        this.sql.exec('SAVEPOINT w');
        try {
          const value = p.run();
          this.sql.exec('RELEASE w');
          outcomes.push(
            value instanceof PartialFailure ? { ok: false, value: value.error } : { ok: true, value },
          );
        } catch (error) {
          this.sql.exec('ROLLBACK TO w');
          this.sql.exec('RELEASE w');
          outcomes.push({ ok: false, value: error });
        }
      }
      this.sql.exec('COMMIT');
      this.stats.commits++;
      this.stats.writes += group.length;
    } catch (error) {
      // The commit itself failed (disk full, I/O error): nothing of the group counts.
      if (this.sql.inTransaction) this.sql.exec('ROLLBACK');
      this.statements.clear();
      this.schemaVersion = -1;
      for (const t of this.tables.values()) t.opaque.clear();
      for (const p of group) this.settle(p, { ok: false, value: error });
      return;
    }
    group.forEach((p, i) => this.settle(p, outcomes[i] as { ok: boolean; value: unknown }));
  }

  private settle(p: Pending, outcome: { ok: boolean; value: unknown }): void {
    this.options.observe?.({
      command: p.command,
      collection: p.collection,
      durationMs: performance.now() - p.started,
      failed: !outcome.ok,
    });
    if (outcome.ok) p.resolve(outcome.value);
    else p.reject(outcome.value);
  }

  /** Times a read for the metrics. */
  read<T>(command: string, collection: string, run: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new Error('the database is closed'));
    const started = performance.now();
    try {
      const value = run();
      const now = performance.now();
      this.options.observe?.({ command, collection, durationMs: now - started, failed: false });
      // A read answers without I/O, so a loop of reads (a cursor over 100,000 documents) would
      // run as one chain of microtasks and starve timers and sockets: the ownership leases'
      // renewals among them (measured: a 14 s index warm-up lost every partition's 6 s lease).
      // So a read answers through the event loop once READ_YIELD_MS have passed since the last.
      if (now - this.lastYield >= READ_YIELD_MS) {
        this.lastYield = now;
        return new Promise((resolve) => setImmediate(() => resolve(value)));
      }
      return Promise.resolve(value);
    } catch (error) {
      this.options.observe?.({ command, collection, durationMs: performance.now() - started, failed: true });
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.sql.close();
  }

  isClosed(): boolean {
    return this.closed;
  }

  newId(): ObjectId {
    return new ObjectId();
  }
}

/**
 * `mkdir -p`, one level at a time: Node's recursive mkdirSync never returns for some paths it
 * cannot create (measured: '/proc/nope' spins at 100 % CPU), where this throws the error.
 */
function makeDirectory(dir: string): void {
  if (existsSync(dir)) return;
  const parent = dirname(dir);
  if (parent !== dir) makeDirectory(parent);
  try {
    mkdirSync(dir);
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'EEXIST') throw error;
  }
}

/** The sort as [path, direction] pairs, or undefined for a form only JavaScript sorts. */
export function sortEntries(sort: SortSpec): [string, 1 | -1][] | undefined {
  if (sort === undefined) return [];
  if (typeof sort === 'string') return [[sort, 1]];
  if (Array.isArray(sort)) {
    const out: [string, 1 | -1][] = [];
    for (const entry of sort as unknown[]) {
      if (typeof entry === 'string') out.push([entry, 1]);
      else if (Array.isArray(entry) && typeof entry[0] === 'string')
        out.push([entry[0], direction(entry[1])]);
      else return undefined;
    }
    return out;
  }
  return Object.entries(sort as Document).map(([k, v]) => [k, direction(v)]);
}

function direction(value: unknown): 1 | -1 {
  return value === -1 || value === 'desc' || value === 'descending' ? -1 : 1;
}

function duplicateDetail(error: unknown, doc: Document): string {
  const message = error instanceof Error ? error.message : String(error);
  return `(${message}) dup key: { _id: ${JSON.stringify(String(doc._id))} }`;
}
