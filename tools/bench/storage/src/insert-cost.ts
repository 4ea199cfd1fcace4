/**
 * What one durable insert costs, in CPU and time, on the embedded default database (FerretDB 1.24
 * on SQLite, through the MongoDB driver as storage uses it) and, for comparison, on SQLite inside
 * the Node process (ADR 0011). Documents like storage's: a `messages` document (~1 KB, the three
 * indexes of `messages`) and a `message_terms` document (120 term hashes, its two indexes).
 *
 *   npm run build && node tools/bench/storage/dist/insert-cost.js [--n 2000]
 *
 * The in-process SQLite figures need better-sqlite3, which Postmesh does not ship: build it once
 * from the npm registry against the local Node's headers (no download from elsewhere), e.g.
 *   mkdir /tmp/sqlt && cd /tmp/sqlt && npm init -y && npm install better-sqlite3@11 &&
 *   cd node_modules/better-sqlite3 && npx node-gyp rebuild --release --nodedir="$(dirname "$(dirname "$(which node)")")"
 * and pass `--sqlite /tmp/sqlt/node_modules/better-sqlite3`; without it that half is not run.
 * SQLite runs in WAL mode with `synchronous=FULL` (the WAL synced at every commit), as FerretDB
 * opens it. CPU is the process's (utime + stime from /proc), so background work counts.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BSON, Binary, MongoClient, ObjectId, type Document } from 'mongodb';
import { startTestEnvironment, type TestEnvironment } from '@postmesh/testing';

const { values: opts } = parseArgs({
  options: {
    n: { type: 'string', default: '2000' },
    sqlite: { type: 'string' },
    dir: { type: 'string', default: '/tmp' },
  },
});
const N = Number(opts.n);
if (!Number.isInteger(N) || N < 16) throw new Error('--n must be an integer of at least 16');

/** CPU milliseconds of a process so far (utime + stime, in clock ticks of 10 ms). */
function cpuMs(pid: number | 'self'): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

const mailboxId = new ObjectId().toHexString();
const messageDoc = (uid: number): Document => ({
  _id: `${mailboxId}:${uid}`,
  mailboxId,
  uid,
  modseq: uid,
  flags: [],
  size: 1800,
  internalDate: new Date(),
  blobId: new ObjectId(),
  blob: { store: 'fs' },
  contentKey: new Binary(randomBytes(60)),
  meta: new Binary(randomBytes(700)),
  sentDate: new Date(),
  sentDay: 20261207,
});
const termsDoc = (uid: number): Document => ({
  _id: `${mailboxId}:${uid}`,
  userId: 'user-1',
  mailboxId,
  terms: Array.from({ length: 120 }, () => randomBytes(12).toString('base64url')),
  termsComplete: true,
  searchText: new Binary(randomBytes(1800)),
});

interface Kind {
  readonly name: string;
  readonly doc: (uid: number) => Document;
  readonly indexes: { key: Record<string, 1>; name: string; unique?: boolean }[];
}
const KINDS: Kind[] = [
  {
    name: 'messages',
    doc: messageDoc,
    indexes: [
      { key: { mailboxId: 1, uid: 1 }, name: 'mailboxId_uid_unique', unique: true },
      { key: { mailboxId: 1, modseq: 1 }, name: 'mailboxId_modseq' },
      { key: { blobId: 1 }, name: 'blobId' },
    ],
  },
  {
    name: 'message_terms',
    doc: termsDoc,
    indexes: [
      { key: { userId: 1, mailboxId: 1, terms: 1 }, name: 'userId_mailboxId_terms' },
      { key: { mailboxId: 1 }, name: 'mailboxId' },
    ],
  },
];

/** The documents to insert, made before the clock starts (their making is not measured). */
function batchesOf(kind: Kind, group: number): Document[][] {
  const batches: Document[][] = [];
  for (let i = 1; i <= N; i += group) batches.push(Array.from({ length: group }, (_, k) => kind.doc(i + k)));
  return batches;
}

const lines: string[] = [];
const report = (line: string): void => {
  lines.push(line);
  process.stderr.write(`bench-insert-cost | ${line}\n`);
};

async function ferret(env: TestEnvironment, kind: Kind, group: number): Promise<void> {
  const pid = env.ferret?.process.pid;
  if (pid === undefined) throw new Error('no FerretDB process (MONGODB_URI set?): its CPU cannot be read');
  const client = await MongoClient.connect(env.mongoUri, {
    // As storage writes (services/storage/src/service.ts).
    writeConcern: { w: 'majority', journal: true },
  });
  try {
    const collection = client.db(`insert_cost_${randomBytes(4).toString('hex')}`).collection(kind.name);
    await collection.createIndexes(kind.indexes);
    for (let i = 1; i <= 200; i++) await collection.insertOne(kind.doc(-i)); // warm-up
    const batches = batchesOf(kind, group);
    const [ownBefore, dbBefore, started] = [cpuMs('self'), cpuMs(pid), performance.now()];
    for (const batch of batches) await collection.insertMany(batch, { ordered: false });
    const wall = performance.now() - started;
    const [own, db] = [cpuMs('self') - ownBefore, cpuMs(pid) - dbBefore];
    report(
      `FerretDB (SQLite) ${kind.name}, ${group} per insert: ${(wall / (N / group)).toFixed(2)} ms per command; ` +
        `CPU per document: driver ${(own / N).toFixed(3)} ms + FerretDB ${(db / N).toFixed(3)} ms = ${((own + db) / N).toFixed(3)} ms`,
    );
  } finally {
    await client.close();
  }
}

interface SqliteStatement {
  run(...values: unknown[]): unknown;
}
interface SqliteDatabase {
  pragma(text: string): unknown;
  exec(sql: string): unknown;
  prepare(sql: string): SqliteStatement;
  transaction<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void;
  close(): void;
}

function sqlite(modulePath: string, kind: Kind, group: number): void {
  const Database = createRequire(import.meta.url)(modulePath) as new (file: string) => SqliteDatabase;
  const file = join(opts.dir ?? '/tmp', `insert-cost-${process.pid}-${kind.name}-${group}.db`);
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    // The document as BSON beside the indexed fields, one index per index of the collection.
    const columns = [...new Set(kind.indexes.flatMap((ix) => Object.keys(ix.key)))];
    db.exec(`CREATE TABLE docs (id TEXT PRIMARY KEY, ${columns.map((c) => `${c}`).join(', ')}, doc BLOB)`);
    for (const ix of kind.indexes) {
      db.exec(
        `CREATE ${ix.unique === true ? 'UNIQUE ' : ''}INDEX ${ix.name} ON docs(${Object.keys(ix.key).join(', ')})`,
      );
    }
    const insert = db.prepare(`INSERT INTO docs VALUES (?, ${columns.map(() => '?').join(', ')}, ?)`);
    const value = (v: unknown): unknown =>
      v instanceof ObjectId ? v.toHexString() : Array.isArray(v) ? JSON.stringify(v) : v;
    const many = db.transaction((docs: Document[]) => {
      for (const d of docs) insert.run(String(d._id), ...columns.map((c) => value(d[c])), BSON.serialize(d));
    });
    for (let i = 1; i <= 200; i++) many([kind.doc(-i)]);
    const batches = batchesOf(kind, group);
    const [before, started] = [cpuMs('self'), performance.now()];
    for (const batch of batches) many(batch);
    const wall = performance.now() - started;
    const own = cpuMs('self') - before;
    report(
      `SQLite in-process ${kind.name}, ${group} per transaction: ${(wall / (N / group)).toFixed(2)} ms per transaction; ` +
        `CPU per document ${(own / N).toFixed(3)} ms (BSON encoding included)`,
    );
  } finally {
    db.close();
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${file}${suffix}`, { force: true });
  }
}

const env = await startTestEnvironment();
try {
  report(
    `${N} documents each; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
  );
  for (const kind of KINDS) {
    for (const group of [1, 8]) {
      await ferret(env, kind, group);
      if (opts.sqlite !== undefined) sqlite(opts.sqlite, kind, group);
    }
  }
  if (opts.sqlite === undefined) report('SQLite in-process: not run (no --sqlite path to better-sqlite3)');
} finally {
  await env.stop();
}
process.stdout.write(`${lines.join('\n')}\n`);
