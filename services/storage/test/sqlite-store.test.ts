/**
 * The in-process SQLite database (ADR 0011) as storage's code sees it: the driver's results and
 * errors, indexes that never hide a match, sorts and limits, the group commit, and writes that
 * survive the process being killed right after their acknowledgement.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';
import { Binary, MongoBulkWriteError, ObjectId, type Db } from 'mongodb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SqliteCollection } from '../src/db/sqlite/collection.js';
import { ThreadWriter } from '../src/db/sqlite/writer.js';
import {
  GUARD_FAILED,
  atomicWriterOf,
  openSqliteDatabase,
  type SqliteDatabase,
  type StoreEvent,
} from '../src/db/sqlite/index.js';

let dir: string;
let opened: SqliteDatabase[];
let events: StoreEvent[];

/** Documents with any `_id`, as storage's collections have. */
/** The database as its classes type it (storage itself sees the driver's `Db`). */
type TestDb = Omit<Db, 'collection'> & { collection: (name: string) => SqliteCollection };

let writer: 'thread' | 'inline' = 'thread';

function open(name = 'a.sqlite'): TestDb {
  const database = openSqliteDatabase({ file: join(dir, name), observe: (e) => events.push(e), writer });
  opened.push(database);
  return database.db as unknown as TestDb;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'postmesh-sqlite-'));
  opened = [];
  events = [];
});

afterEach(async () => {
  for (const d of opened) await d.close();
  rmSync(dir, { recursive: true, force: true });
});

describe.each(['thread', 'inline'] as const)('the driver API over SQLite, writes %s', (mode) => {
  beforeEach(() => {
    writer = mode;
  });

  it('inserts, finds by indexed and unindexed fields, updates and deletes with the driver results', async () => {
    const db = open();
    const c = db.collection('messages');
    await c.createIndexes([{ key: { mailboxId: 1, uid: 1 }, name: 'mailboxId_uid_unique', unique: true }]);
    const inserted = await c.insertMany([
      { _id: 'm1:1', mailboxId: 'm1', uid: 1, flags: ['\\Seen'], size: 10 },
      { _id: 'm1:2', mailboxId: 'm1', uid: 2, flags: [], size: 20 },
      { _id: 'm2:1', mailboxId: 'm2', uid: 1, flags: ['\\Flagged'], size: 30 },
    ]);
    expect(inserted.insertedCount).toBe(3);
    expect(await c.findOne({ mailboxId: 'm1', uid: 2 })).toMatchObject({ _id: 'm1:2', size: 20 });
    expect(await c.countDocuments({ mailboxId: 'm1' })).toBe(2);
    expect(await c.countDocuments({ flags: '\\Seen' })).toBe(1);
    expect(
      (
        await c
          .find({ size: { $gte: 20 } })
          .sort({ size: -1 })
          .toArray()
      ).map((d) => d._id as unknown),
    ).toEqual(['m2:1', 'm1:2']);

    const updated = await c.updateOne(
      { _id: 'm1:2' },
      { $set: { flags: ['\\Deleted'] }, $inc: { modseq: 1 } },
    );
    expect(updated).toMatchObject({ matchedCount: 1, modifiedCount: 1, upsertedCount: 0 });
    const same = await c.updateOne({ _id: 'm1:2' }, { $set: { flags: ['\\Deleted'] } });
    expect(same).toMatchObject({ matchedCount: 1, modifiedCount: 0 });
    const after = await c.findOneAndUpdate(
      { mailboxId: 'm2', uid: 1 },
      { $inc: { modseq: 5 } },
      { returnDocument: 'after', projection: { modseq: 1 } },
    );
    expect(after).toEqual({ _id: 'm2:1', modseq: 5 });

    const upserted = await c.updateOne(
      { _id: 'm3:1' },
      { $setOnInsert: { mailboxId: 'm3', uid: 1 } },
      { upsert: true },
    );
    expect(upserted).toMatchObject({ matchedCount: 0, upsertedCount: 1, upsertedId: 'm3:1' });
    expect(await c.findOne({ mailboxId: 'm3' })).toEqual({ _id: 'm3:1', mailboxId: 'm3', uid: 1 });

    expect((await c.deleteMany({ mailboxId: 'm1' })).deletedCount).toBe(2);
    expect(await c.countDocuments({})).toBe(2);
  });

  it('refuses a duplicate key with code 11000, and an unordered bulk keeps the other documents', async () => {
    const db = open();
    const c = db.collection('domains');
    await c.createIndexes([{ key: { name: 1 }, name: 'name_unique', unique: true }]);
    const id = new ObjectId();
    await c.insertOne({ _id: id, name: 'example.org' });
    await expect(c.insertOne({ name: 'example.org' })).rejects.toMatchObject({ code: 11000 });
    await expect(c.insertOne({ _id: id, name: 'other.org' })).rejects.toMatchObject({ code: 11000 });

    const error = await c
      .insertMany([{ name: 'a.org' }, { name: 'example.org' }, { name: 'b.org' }], { ordered: false })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(MongoBulkWriteError);
    const bulk = error as MongoBulkWriteError;
    expect(bulk.insertedCount).toBe(2);
    expect(
      (bulk.writeErrors as unknown as { index: number; code: number }[]).map((e) => [e.index, e.code]),
    ).toEqual([[1, 11000]]);
    expect((await c.find({}).toArray()).map((d) => d.name as unknown).sort()).toEqual([
      'a.org',
      'b.org',
      'example.org',
    ]);

    // An update that would make a duplicate changes nothing.
    await expect(c.updateOne({ name: 'a.org' }, { $set: { name: 'b.org' } })).rejects.toMatchObject({
      code: 11000,
    });
    expect(await c.countDocuments({ name: 'a.org' })).toBe(1);
  });

  it('finds documents whose indexed field is an array or missing (a column never hides a match)', async () => {
    const db = open();
    const c = db.collection('addresses');
    await c.createIndexes([{ key: { userIds: 1, addressKey: 1 }, name: 'userIds_addressKey' }]);
    const u1 = new ObjectId();
    const u2 = new ObjectId();
    await c.insertMany([
      { addressKey: 'a', userIds: [u1, u2] },
      { addressKey: 'b', userIds: u1 },
      { addressKey: 'c' },
    ]);
    expect((await c.find({ userIds: u1 }).toArray()).map((d) => d.addressKey as unknown).sort()).toEqual([
      'a',
      'b',
    ]);
    expect((await c.find({ userIds: { $in: [u2] } }).toArray()).map((d) => d.addressKey as unknown)).toEqual([
      'a',
    ]);
    expect((await c.find({ userIds: null }).toArray()).map((d) => d.addressKey as unknown)).toEqual(['c']);
    expect(
      (await c.find({ userIds: { $exists: false } }).toArray()).map((d) => d.addressKey as unknown),
    ).toEqual(['c']);
  });

  it('keeps types apart in ranges and sorts, and pages with skip and limit', async () => {
    const db = open();
    const c = db.collection('events');
    await c.createIndexes([{ key: { time: 1 }, name: 'time' }]);
    const base = Date.UTC(2026, 0, 1);
    await c.insertMany([
      ...Array.from({ length: 30 }, (_, i) => ({ _id: i, time: new Date(base + i * 1000) })),
      { _id: 100, time: 'not a date' },
      { _id: 101, time: 5 },
      { _id: 102 },
    ]);
    const since = await c.find({ time: { $gte: new Date(base + 25_000) } }).toArray();
    expect(since.map((d) => d._id as unknown)).toEqual([25, 26, 27, 28, 29]);
    const numbers = await c.find({ time: { $lt: 100 } }).toArray();
    expect(numbers.map((d) => d._id as unknown)).toEqual([101]);
    const page = await c.find({}).sort({ time: -1 }).skip(1).limit(3).toArray();
    expect(page.map((d) => d._id as unknown)).toEqual([28, 27, 26]);
    const ascending = await c.find({}, { sort: { time: 1 }, limit: 3 }).toArray();
    // MongoDB's order across types: missing/null, numbers, strings, ..., dates.
    expect(ascending.map((d) => d._id as unknown)).toEqual([102, 101, 100]);
  });

  it('orders indexed binary values and large integers as MongoDB does (no column order for them)', async () => {
    const db = open();
    const c = db.collection('keys');
    await c.createIndexes([{ key: { k: 1 }, name: 'k' }]);
    // MongoDB orders binary data by length first: 20 bytes of 0xff before 21 bytes of 0x00.
    await c.insertMany([
      { _id: 21, k: new Binary(Buffer.alloc(21, 0)) },
      { _id: 20, k: new Binary(Buffer.alloc(20, 0xff)) },
    ]);
    expect((await c.find({}).sort({ k: 1 }).toArray()).map((d) => d._id as unknown)).toEqual([20, 21]);
    expect(await c.countDocuments({ k: { $gt: new Binary(Buffer.alloc(21, 0)) } })).toBe(0);
    const big = 2n ** 60n;
    await c.insertMany([
      { _id: 'a', k: big },
      { _id: 'b', k: big + 1n },
    ]);
    expect((await c.find({ k: big + 1n }).toArray()).map((d) => d._id as unknown)).toEqual(['b']);
    // A replacement keeps _id first, and may not change it.
    await c.replaceOne({ _id: 'n' }, { v: 1 }, { upsert: true });
    expect(Object.keys((await c.findOne({ _id: 'n' })) ?? {})).toEqual(['_id', 'v']);
    await expect(c.replaceOne({ _id: 'n' }, { _id: 'm', v: 2 })).rejects.toMatchObject({ code: 66 });
  });

  it('sorts in JavaScript what the columns cannot order, and streams a large result in batches', async () => {
    const db = open();
    const c = db.collection('terms');
    await c.createIndexes([{ key: { mailboxId: 1 }, name: 'mailboxId' }]);
    const docs = Array.from({ length: 1_000 }, (_, i) => ({
      _id: `t${i}`,
      mailboxId: i % 2 === 0 ? 'even' : 'odd',
      rank: (i * 7919) % 1000,
      terms: [`w${i % 10}`, 'all'],
    }));
    await c.insertMany(docs);
    const top = await c.find({ mailboxId: 'even', terms: 'w4' }).sort({ rank: -1 }).limit(2).toArray();
    const expected = docs
      .filter((d) => d.mailboxId === 'even' && d.terms.includes('w4'))
      .sort((a, b) => b.rank - a.rank)
      .slice(0, 2)
      .map((d) => d._id as unknown);
    expect(top.map((d) => d._id as unknown)).toEqual(expected);
    let seen = 0;
    for await (const doc of c.find({ terms: { $all: ['all'] } }, { projection: { _id: 1 } })) {
      expect(Object.keys(doc)).toEqual(['_id']);
      seen++;
    }
    expect(seen).toBe(1_000);
  });

  it('gives timers their turn while a long cursor is read (leases are renewed by timers)', async () => {
    const db = open();
    const c = db.collection('many');
    await c.insertMany(Array.from({ length: 20_000 }, (_, i) => ({ _id: i, v: 'x'.repeat(100) })));
    let ticks = 0;
    let longestGap = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      longestGap = Math.max(longestGap, now - last);
      last = now;
      ticks++;
    }, 1);
    try {
      const started = performance.now();
      let n = 0;
      for await (const doc of c.find({ v: { $exists: true } })) {
        // Work per document, as an index warm-up does.
        if (typeof doc.v === 'string') n += doc.v.length > 0 ? 1 : 0;
      }
      expect(n).toBe(20_000);
      expect((await c.find({}).toArray()).length).toBe(20_000);
      const took = performance.now() - started;
      // The loop turned during the reads, not only after them (the gap bound allows for a loaded
      // CI machine; without the yields it is the whole read, and the ticks are 0).
      expect(ticks).toBeGreaterThan(Math.min(20, took / 50));
      expect(longestGap).toBeLessThan(1_500);
      // A selective filter no column answers (a scan of every document) yields as well.
      ticks = 0;
      const scanned = performance.now();
      expect(await c.findOne({ v: 'nowhere' })).toBeNull();
      expect(await c.countDocuments({ v: 'nowhere' })).toBe(0);
      const scanTook = performance.now() - scanned;
      expect(ticks).toBeGreaterThan(Math.min(10, scanTook / 50));
      expect(longestGap).toBeLessThan(1_500);
    } finally {
      clearInterval(timer);
    }
  });

  it('answers bulkWrite with counts and keeps binary values as Binary', async () => {
    const db = open();
    const c = db.collection('flags');
    const key = new Binary(Buffer.from('secret'));
    const result = await c.bulkWrite(
      [
        { insertOne: { document: { _id: 1, v: 1, key } } },
        { insertOne: { document: { _id: 2, v: 2 } } },
        { updateOne: { filter: { _id: 1 }, update: { $set: { v: 10 } } } },
        { updateOne: { filter: { _id: 3 }, update: { $set: { v: 3 } }, upsert: true } },
        { deleteOne: { filter: { _id: 2 } } },
      ],
      { ordered: false },
    );
    expect(result).toMatchObject({
      insertedCount: 2,
      matchedCount: 1,
      modifiedCount: 1,
      upsertedCount: 1,
      deletedCount: 1,
    });
    const one = await c.findOne({ _id: 1 });
    expect(one?.key).toBeInstanceOf(Binary);
    expect(Buffer.from((one?.key as Binary).buffer).toString()).toBe('secret');
    expect(await c.countDocuments({})).toBe(2);
  });

  it('commits concurrent writes together (group commit), not one transaction each', async () => {
    const db = open();
    const c = db.collection('group');
    await c.insertOne({ _id: 'first' });
    const before = opened[0]?.stats() ?? { commits: 0, writes: 0 };
    await Promise.all(Array.from({ length: 200 }, (_, i) => c.insertOne({ _id: i })));
    const after = opened[0]?.stats() ?? { commits: 0, writes: 0 };
    expect(after.writes - before.writes).toBe(200);
    // Inline: the writes of one event-loop turn are one transaction. On the thread: what has
    // arrived when a commit starts (the rest joins the next one).
    expect(after.commits - before.commits).toBeLessThanOrEqual(mode === 'inline' ? 1 : 5);
    expect(await c.countDocuments({})).toBe(201);
    expect(events.filter((e) => e.command === 'insert')).toHaveLength(201);
  });

  it('writes several collections atomically, only while the guard matches (ADR 0014)', async () => {
    const db = open('shared.sqlite');
    const other = open('shared.sqlite');
    const write = atomicWriterOf(db as unknown as Db);
    if (write === undefined) throw new Error('no atomic writer on SQLite');
    await db.collection('pointers').insertOne({ _id: 3, epoch: 7 });
    const guard = { collection: 'pointers', filter: { _id: 3, epoch: 7, opening: { $exists: false } } };
    await write(guard, [
      { collection: 'refs', docs: [{ _id: 'r1', refs: 1 }] },
      { collection: 'msgs', docs: [{ _id: 'm:1' }, { _id: 'm:2' }] },
    ]);
    expect(await db.collection('msgs').countDocuments({})).toBe(2);
    expect(await db.collection('refs').countDocuments({})).toBe(1);
    // A newer owner marks the pointer through another connection: the guard fails, nothing is written.
    await other.collection('pointers').updateOne({ _id: 3 }, { $set: { opening: 8 } });
    await expect(
      write(guard, [
        { collection: 'refs', docs: [{ _id: 'r2', refs: 1 }] },
        { collection: 'msgs', docs: [{ _id: 'm:3' }] },
      ]),
    ).rejects.toMatchObject({ code: GUARD_FAILED });
    expect(await db.collection('refs').findOne({ _id: 'r2' })).toBeNull();
    expect(await db.collection('msgs').findOne({ _id: 'm:3' })).toBeNull();
    // A duplicate key in a later step undoes the earlier ones; other writes of the same commit stay.
    const alone = db.collection('msgs').insertOne({ _id: 'beside' });
    const duplicate = write(undefined, [
      { collection: 'refs', docs: [{ _id: 'r3', refs: 1 }] },
      { collection: 'msgs', docs: [{ _id: 'm:4' }, { _id: 'm:1' }] },
    ]);
    await expect(duplicate).rejects.toMatchObject({ code: 11000 });
    await alone;
    expect(await db.collection('refs').findOne({ _id: 'r3' })).toBeNull();
    expect(await db.collection('msgs').findOne({ _id: 'm:4' })).toBeNull();
    expect(await db.collection('msgs').findOne({ _id: 'beside' })).toEqual({ _id: 'beside' });
  });

  it('sees another connection’s new collections and indexes (two replicas on one file)', async () => {
    const a = open('shared.sqlite');
    const b = open('shared.sqlite');
    await a.collection('x').insertOne({ _id: 1, k: 'v' });
    expect(await b.collection('x').findOne({ k: 'v' })).toEqual({ _id: 1, k: 'v' });
    await b.collection('x').createIndexes([{ key: { k: 1 }, name: 'k' }]);
    await a.collection('x').insertOne({ _id: 2, k: ['w', 'v'] });
    expect((await b.collection('x').find({ k: 'v' }).toArray()).map((d) => d._id as unknown)).toEqual([1, 2]);
    expect((await a.listCollections().toArray()).map((c) => c.name as unknown)).toContain('x');
  });

  it('answers what it does not support with a clear error, not a wrong result', async () => {
    const db = open();
    await expect(db.command({ serverStatus: 1 })).rejects.toMatchObject({ code: 115 });
    await expect(
      db
        .collection('x')
        .aggregate([{ $match: {} }])
        .toArray(),
    ).rejects.toMatchObject({ code: 115 });
    await expect(db.collection('x').updateOne({}, { $bogus: { a: 1 } })).rejects.toThrow();
  });
});

describe('the writer thread', () => {
  it('fails every waiting and later write, and says so, when the thread dies', async () => {
    const writer = new ThreadWriter(join(dir, 'w.sqlite'));
    try {
      await writer.submit('insert', 'x', { kind: 'insert', docs: [{ _id: 1 }], ordered: true, one: true });
      expect(writer.failure()).toBeUndefined();
      expect(writer.stats().writes).toBe(1);
      // A write not answered yet is reported to the stall watch with its age.
      const waiting = writer.submit('insert', 'x', {
        kind: 'insert',
        docs: [{ _id: 3 }],
        ordered: true,
        one: true,
      });
      expect(writer.longerThan(0)).toMatchObject([{ command: 'insert', collection: 'x', statements: 1 }]);
      await waiting;
      expect(writer.longerThan(0)).toEqual([]);
      // White-box: end the thread as a crash inside it would.
      await (writer as unknown as { worker: Worker }).worker.terminate();
      await expect(
        writer.submit('insert', 'x', { kind: 'insert', docs: [{ _id: 2 }], ordered: true, one: true }),
      ).rejects.toThrow(/writer thread exited/);
      expect(writer.failure()?.message).toMatch(/writer thread exited/);
    } finally {
      await writer.close();
    }
  });
});

describe('durability', () => {
  it('keeps every acknowledged write when the process is killed right after the acknowledgement', async () => {
    const file = join(dir, 'crash.sqlite');
    const child = spawn(
      process.execPath,
      [fileURLToPath(new URL('./fixtures/sqlite-crash-writer.mjs', import.meta.url)), file],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let acknowledged = 0;
    let text = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error('the writer did not acknowledge 300 writes within 20 s')),
        20_000,
      );
      child.stdout.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        const lines = text.split('\n');
        text = lines.pop() ?? '';
        for (const line of lines) if (line.startsWith('ack ')) acknowledged = Number(line.slice(4));
        if (acknowledged >= 300) {
          clearTimeout(timer);
          child.kill('SIGKILL');
          resolve();
        }
      });
      child.on('exit', () => {
        if (acknowledged < 300) {
          clearTimeout(timer);
          reject(new Error(`the writer exited after ${acknowledged} acknowledgements`));
        }
      });
    });
    await new Promise((resolve) => child.once('close', resolve));
    const db = open('crash.sqlite');
    const stored = await db.collection('messages').countDocuments({});
    expect(stored).toBeGreaterThanOrEqual(acknowledged);
    for (let i = 1; i <= acknowledged; i++) {
      expect(await db.collection('messages').findOne({ _id: i }, { projection: { _id: 1 } })).toEqual({
        _id: i,
      });
    }
  });
});
