/**
 * The partitions' commit pointers in storage's SQLite file (ADR 0012): `DatabaseCommitPointers`
 * alone, over one connection and over two connections to one file (as two storage processes on one
 * machine have); then under `PartitionOwnership` with its leases in a real NATS KV, with two
 * replicas in this process and with one in a child process that is paused past its lease.
 * NATS only (no FerretDB); each test has a SQLite file of its own.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  MAX_CLOSED_EPOCHS,
  PartitionBuckets,
  PartitionOwnership,
  assignPartitions,
  confirmationOf,
  decodeRecord,
  type CommitPointer,
  type OwnershipEvent,
} from '@postmesh/bus';
import { startTestEnvironment, type TestEnvironment } from '@postmesh/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteDatabase, type SqliteDatabase } from '../src/db/sqlite/index.js';
import { DatabaseCommitPointers, POINTERS_COLLECTION } from '../src/ownership/index.js';

const here = dirname(fileURLToPath(import.meta.url));
/** libs/bus's child replica, with its pointers in a SQLite file (fixtures/sqlite-pointers.mjs). */
const fixture = join(here, '..', '..', '..', 'libs', 'bus', 'test', 'fixtures', 'partition-replica.mjs');
const pointersModule = join(here, 'fixtures', 'sqlite-pointers.mjs');
const TTL = 2_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(
  what: string,
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs} ms`);
    await sleep(20);
  }
}

let dir: string;
let files = 0;
const databases: SqliteDatabase[] = [];
/** A new SQLite file for this test (its directory is removed after the suite). */
const freshFile = (): string => join(dir, `pointers-${++files}.sqlite`);
/** A connection to `file` of its own, closed after the test: one storage process's view of it. */
function openDatabase(file: string, writer: 'thread' | 'inline' = 'thread'): SqliteDatabase {
  const database = openSqliteDatabase({ file, writer });
  databases.push(database);
  return database;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'postmesh-pointers-'));
});
afterEach(async () => {
  await Promise.all(databases.splice(0).map((d) => d.close()));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe.each(['thread', 'inline'] as const)('DatabaseCommitPointers on SQLite (%s writer)', (writer) => {
  it('opens the first epoch of an empty store and advances only in the open epoch', async () => {
    const pointers = new DatabaseCommitPointers(openDatabase(freshFile(), writer).db);
    expect(await pointers.read(0)).toBeNull();
    // Nothing was opened: no epoch may confirm anything.
    expect(await pointers.advance(0, 1, 1)).toBe('fenced');
    expect(await pointers.open(0, 1)).toEqual({ epoch: 1, seq: 0, closed: [] });
    expect(await pointers.read(0)).toEqual({ epoch: 1, seq: 0, closed: [] });

    expect(await pointers.advance(0, 1, 3)).toBe('ok');
    expect(await pointers.read(0)).toEqual({ epoch: 1, seq: 3, closed: [] });
    // Already covered (a confirm that raced a later one): ok, and the pointer stays.
    expect(await pointers.advance(0, 1, 2)).toBe('ok');
    expect(await pointers.advance(0, 1, 3)).toBe('ok');
    expect(await pointers.read(0)).toEqual({ epoch: 1, seq: 3, closed: [] });
    // Another epoch than the stored one, older or newer, moves nothing.
    expect(await pointers.advance(0, 2, 4)).toBe('fenced');
    expect(await pointers.advance(0, 0, 4)).toBe('fenced');
    expect(await pointers.read(0)).toEqual({ epoch: 1, seq: 3, closed: [] });
    expect(await pointers.read(1)).toBeNull();
  });

  it('seeds the first pointer from the pointer kept in KV until now, so its unconfirmed batches stay so', async () => {
    const pointers = new DatabaseCommitPointers(openDatabase(freshFile(), writer).db);
    const kept: CommitPointer = { epoch: 4, seq: 9, closed: [{ epoch: 3, seq: 2 }] };
    const first = await pointers.open(0, 5, kept);
    expect(first).toEqual({
      epoch: 5,
      seq: 0,
      closed: [
        { epoch: 4, seq: 9 },
        { epoch: 3, seq: 2 },
      ],
    });
    const stored = (await pointers.read(0))!;
    expect(confirmationOf(stored, 4, 9)).toBe('confirmed');
    expect(confirmationOf(stored, 4, 10)).toBe('unconfirmed');
    expect(confirmationOf(stored, 3, 3)).toBe('unconfirmed');
    // Once the store has a pointer, a seed changes nothing.
    expect(await pointers.open(0, 6, { epoch: 40, seq: 1, closed: [] })).toEqual({
      epoch: 6,
      seq: 0,
      closed: [
        { epoch: 5, seq: 0 },
        { epoch: 4, seq: 9 },
        { epoch: 3, seq: 2 },
      ],
    });
    // A seed that is not older than the epoch opened is no history of it.
    expect(await pointers.open(1, 2, { epoch: 7, seq: 3, closed: [] })).toEqual({
      epoch: 2,
      seq: 0,
      closed: [],
    });
  });

  it('refuses to open an epoch at or before the stored one, and leaves the pointer as it was', async () => {
    const pointers = new DatabaseCommitPointers(openDatabase(freshFile(), writer).db);
    expect(await pointers.open(5, 3)).toEqual({ epoch: 3, seq: 0, closed: [] });
    expect(await pointers.advance(5, 3, 9)).toBe('ok');
    expect(await pointers.open(5, 3)).toBe('fenced');
    expect(await pointers.open(5, 2)).toBe('fenced');
    expect(await pointers.read(5)).toEqual({ epoch: 3, seq: 9, closed: [] });
    // The epoch that was open still confirms: nobody opened a newer one.
    expect(await pointers.advance(5, 3, 10)).toBe('ok');
  });

  it('keeps the ended epochs most recent first, durably, up to MAX_CLOSED_EPOCHS', async () => {
    const file = freshFile();
    const first = openDatabase(file, writer);
    const pointers = new DatabaseCommitPointers(first.db);
    await pointers.open(2, 1);
    expect(await pointers.advance(2, 1, 4)).toBe('ok');
    await pointers.open(2, 2);
    // Epochs 3 and 4 took the lease and never opened (they confirmed nothing).
    await pointers.open(2, 5);
    expect(await pointers.advance(2, 5, 7)).toBe('ok');
    const opened = await pointers.open(2, 6);
    const expected: CommitPointer = {
      epoch: 6,
      seq: 0,
      closed: [
        { epoch: 5, seq: 7 },
        { epoch: 2, seq: 0 },
        { epoch: 1, seq: 4 },
      ],
    };
    expect(opened).toEqual(expected);
    await first.close();

    // Another connection, after the first closed: what the file holds, not a cache.
    const reopened = new DatabaseCommitPointers(openDatabase(file, writer).db);
    const stored = await reopened.read(2);
    expect(stored).toEqual(expected);
    const table: [epoch: number, seq: number, expected: string][] = [
      [1, 4, 'confirmed'],
      [1, 5, 'unconfirmed'],
      [2, 1, 'unconfirmed'],
      [3, 1, 'unconfirmed'],
      [4, 1, 'unconfirmed'],
      [5, 7, 'confirmed'],
      [5, 8, 'unconfirmed'],
      [6, 1, 'unconfirmed'],
    ];
    for (const [epoch, seq, confirmation] of table) {
      expect(confirmationOf(stored!, epoch, seq), `(${epoch}, ${seq})`).toBe(confirmation);
    }

    for (let epoch = 7; epoch < 7 + MAX_CLOSED_EPOCHS; epoch++) {
      expect(await reopened.advance(2, epoch - 1, epoch)).toBe('ok');
      await reopened.open(2, epoch);
    }
    const last = (await reopened.read(2))!;
    expect(last.epoch).toBe(6 + MAX_CLOSED_EPOCHS);
    expect(last.closed).toHaveLength(MAX_CLOSED_EPOCHS);
    expect(last.closed[0]).toEqual({ epoch: 5 + MAX_CLOSED_EPOCHS, seq: 6 + MAX_CLOSED_EPOCHS });
    expect(last.closed.at(-1)).toEqual({ epoch: 6, seq: 7 });
    expect(confirmationOf(last, 5, 1)).toBe('before-history');
  });

  it('leaves the older epoch fenced when an opener dies between its two writes, until a newer one opens', async () => {
    const database = openDatabase(freshFile(), writer);
    const pointers = new DatabaseCommitPointers(database.db);
    await pointers.open(3, 1);
    expect(await pointers.advance(3, 1, 4)).toBe('ok');
    // The state an opener of epoch 2 leaves when it dies after marking the pointer (the first of
    // its two writes, database-pointers.ts), before beginning its epoch.
    await database.db
      .collection<{ _id: number }>(POINTERS_COLLECTION)
      .updateOne({ _id: 3 }, { $set: { opening: 2 } });
    expect(await pointers.advance(3, 1, 5)).toBe('fenced');
    // Still covered: what was confirmed stays confirmed.
    expect(await pointers.advance(3, 1, 4)).toBe('ok');
    expect(await pointers.read(3)).toEqual({ epoch: 1, seq: 4, closed: [] });
    expect(await pointers.open(3, 2)).toBe('fenced');
    expect(await pointers.open(3, 3)).toEqual({ epoch: 3, seq: 0, closed: [{ epoch: 1, seq: 4 }] });
    expect(await pointers.advance(3, 3, 1)).toBe('ok');
  });

  it('opens the newest of several epochs opened at once over two connections', async () => {
    const file = freshFile();
    const one = new DatabaseCommitPointers(openDatabase(file, writer).db);
    const two = new DatabaseCommitPointers(openDatabase(file, writer).db);
    for (let round = 0; round < 10; round++) {
      const p = 200 + round;
      // Epochs 1..6, alternately on each connection, all at once (the first ones race to create it).
      const epochs = [1, 2, 3, 4, 5, 6];
      const results = await Promise.all(
        epochs.map((epoch, i) => ((i + round) % 2 === 0 ? one : two).open(p, epoch)),
      );
      const opened = epochs.filter((_, i) => results[i] !== 'fenced');
      const stored = (await one.read(p))!;
      expect(stored.epoch).toBe(6);
      // Those that answered a pointer began their epochs in increasing order, each closing the
      // one before it; the fenced ones left no trace.
      expect([...stored.closed.map((c) => c.epoch)].reverse().concat(stored.epoch)).toEqual(opened);
      opened.forEach((epoch, k) => {
        const result = results[epochs.indexOf(epoch)] as CommitPointer;
        expect(result.epoch).toBe(epoch);
        expect(result.closed[0]?.epoch).toBe(opened[k - 1]);
      });
    }
  });

  /**
   * Two connections to one file, as two storage processes on one machine: a former owner keeps
   * advancing its epoch back to back while the new owner opens the next one. Whatever the
   * interleaving, the open returns (the advances cannot starve it), every advance that answered
   * `ok` counts in the pointer the new owner reads, every `fenced` one does not, and an advance
   * asked once the open has returned is fenced.
   */
  it('fences a former owner’s advances racing an open over another connection', async () => {
    const file = freshFile();
    const former = new DatabaseCommitPointers(openDatabase(file, writer).db);
    const taker = new DatabaseCommitPointers(openDatabase(file, writer).db);
    const ROUNDS = 24;
    let ackedBeforeOpen = 0;
    let fencedInFlight = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const p = 100 + round;
      await former.open(p, 1);
      const answers: { seq: number; result: 'ok' | 'fenced'; askedAfterOpen: boolean }[] = [];
      let openReturned = false;
      let gaveUp = false;
      let seq = 0;
      const advancing = (async () => {
        while (!gaveUp) {
          const askedAfterOpen = openReturned;
          seq += 1;
          const result = await former.advance(p, 1, seq);
          answers.push({ seq, result, askedAfterOpen });
          if (result === 'fenced' || askedAfterOpen) return;
        }
      })();
      // From racing the first advance to opening after several (the delay varies by round).
      await sleep(round % 8);
      let timer: NodeJS.Timeout | undefined;
      const opened = await Promise.race([
        taker.open(p, 2),
        new Promise<'no answer'>((resolve) => (timer = setTimeout(() => resolve('no answer'), 5_000))),
      ]).finally(() => clearTimeout(timer));
      openReturned = true;
      gaveUp = opened === 'no answer';
      await advancing;
      expect(opened, `round ${round}: the open while ${seq} advances went on`).not.toBe('no answer');
      if (!answers.some((a) => a.askedAfterOpen)) {
        seq += 1;
        answers.push({ seq, result: await former.advance(p, 1, seq), askedAfterOpen: true });
      }

      const acked = answers.filter((a) => a.result === 'ok');
      const lastAcked = Math.max(0, ...acked.map((a) => a.seq));
      ackedBeforeOpen += acked.length;
      fencedInFlight += answers.filter((a) => a.result === 'fenced' && !a.askedAfterOpen).length;
      // The open closed epoch 1 at exactly what was acknowledged of it.
      expect(opened).toEqual({ epoch: 2, seq: 0, closed: [{ epoch: 1, seq: lastAcked }] });
      const stored = (await taker.read(p))!;
      expect(stored).toEqual(opened);
      for (const a of answers) {
        expect(confirmationOf(stored, 1, a.seq), `round ${round}, seq ${a.seq}: ${a.result}`).toBe(
          a.result === 'ok' ? 'confirmed' : 'unconfirmed',
        );
        if (a.askedAfterOpen) expect(a.result, `round ${round}, seq ${a.seq}`).toBe('fenced');
      }
    }
    // The rounds did race: advances were acknowledged before the opens, and some were in flight
    // when an open fenced them.
    expect(ackedBeforeOpen).toBeGreaterThan(ROUNDS);
    expect(fencedInFlight).toBeGreaterThan(0);
  });
});

describe('PartitionOwnership with DatabaseCommitPointers', () => {
  let env: TestEnvironment;
  const connections: NatsConnection[] = [];
  const replicas: PartitionOwnership[] = [];
  const children = new Set<ChildReplica>();

  async function replica(
    replicaId: string,
    file: string,
    partitions: number,
  ): Promise<{ ownership: PartitionOwnership; events: OwnershipEvent[] }> {
    const nc = await connect(env.natsOptions());
    connections.push(nc);
    const events: OwnershipEvent[] = [];
    const ownership = await PartitionOwnership.start(nc, {
      replicaId,
      partitions,
      leaseTtlMs: TTL,
      pointers: new DatabaseCommitPointers(openDatabase(file).db),
    });
    ownership.subscribe((e) => events.push(e));
    replicas.push(ownership);
    return { ownership, events };
  }

  /** The lease records (`partition.<n>` in KV) as stored now, with their revisions. */
  async function leaseRecords(partitions: number) {
    const nc = connections[0]!;
    const kv = await new Kvm(nc).open(PartitionBuckets.PARTITIONS);
    const out = new Map<number, { revision: number; epoch: number; seq: number; owner: string | null }>();
    for (let p = 0; p < partitions; p++) {
      const entry = await kv.get(`partition.${p}`);
      if (entry === null || entry.operation !== 'PUT') continue;
      const { epoch, seq, owner } = decodeRecord(entry.value);
      out.set(p, { revision: entry.revision, epoch, seq, owner });
    }
    return out;
  }

  beforeAll(async () => {
    env = await startTestEnvironment({ mongo: false });
  });
  afterEach(async () => {
    await Promise.all(replicas.splice(0).map((r) => r.stop()));
    await Promise.all([...children].map((c) => c.kill()));
    children.clear();
    // Each test starts from no leases: its SQLite file is new, and so are the buckets.
    if (connections[0] !== undefined) {
      const jsm = await jetstreamManager(connections[0]);
      for (const bucket of Object.values(PartitionBuckets)) {
        await jsm.streams.delete(`KV_${bucket}`).catch(() => false);
      }
    }
    await Promise.all(connections.splice(0).map((nc) => nc.close()));
    // The replicas' database connections close in the file-level afterEach.
  });
  afterAll(async () => {
    await env?.stop();
  });

  it('two replicas split the partitions, confirm in the file, hand over gracefully; the lease record stays put', async () => {
    const P = 4;
    const file = freshFile();
    const a = await replica('pointers-a', file, P);
    const b = await replica('pointers-b', file, P);
    const expected = assignPartitions(P, ['pointers-a', 'pointers-b']);
    const mine = (id: string): number[] => [...expected].filter(([, o]) => o === id).map(([p]) => p);
    await waitFor('the replicas split the partitions as assigned', () =>
      [a, b].every(
        ({ ownership }) => JSON.stringify(ownership.owned()) === JSON.stringify(mine(ownership.replicaId)),
      ),
    );
    const pointers = new DatabaseCommitPointers(openDatabase(file).db);

    const confirmed: { partition: number; epoch: number; seq: number; by: string }[] = [];
    const live = new Set([a.ownership, b.ownership]);
    let running = true;
    // Busy owners: every partition each one owns gets its next batch confirmed every 10 ms.
    const writer = async (ownership: PartitionOwnership): Promise<void> => {
      const seqs = new Map<string, number>();
      while (running && live.has(ownership)) {
        for (const p of ownership.owned()) {
          const epoch = ownership.epochOf(p);
          if (epoch === undefined) continue;
          const key = `${p}:${epoch}`;
          const seq = (seqs.get(key) ?? 0) + 1;
          seqs.set(key, seq);
          const result = await ownership.confirm(p, epoch, seq);
          if (result.ok) confirmed.push({ partition: p, epoch, seq, by: ownership.replicaId });
        }
        await sleep(10);
      }
    };
    const leasesBefore = await leaseRecords(P);
    const bEpochs = new Map<number, number>();
    const writers = [writer(a.ownership), writer(b.ownership)];
    try {
      await waitFor('each replica confirmed batches of every partition it owns', () =>
        [...expected].every(
          ([p, owner]) => confirmed.filter((c) => c.partition === p && c.by === owner).length >= 5,
        ),
      );
      // Only the owner's epoch moves a pointer: another replica, or another epoch, is not the owner.
      for (const [p, owner] of expected) {
        const [holder, other] = owner === 'pointers-a' ? [a, b] : [b, a];
        const epoch = holder.ownership.epochOf(p)!;
        expect(await other.ownership.confirm(p, epoch, 1_000)).toEqual({ ok: false, reason: 'not-owner' });
        expect(await holder.ownership.confirm(p, epoch + 1, 1_000)).toEqual({
          ok: false,
          reason: 'not-owner',
        });
        expect(await holder.ownership.confirm(p, epoch - 1, 1_000)).toEqual({
          ok: false,
          reason: 'not-owner',
        });
        // The lease and the store agree on the epoch; the store has the confirms.
        const stored = (await pointers.read(p))!;
        expect(stored.epoch).toBe(epoch);
        expect(stored.seq).toBeGreaterThanOrEqual(5);
      }
      // Confirms moved the pointers in the file, not the lease records in KV.
      const leasesConfirmed = await leaseRecords(P);
      for (const [p, owner] of expected) {
        expect(leasesConfirmed.get(p)).toEqual(leasesBefore.get(p));
        expect(leasesConfirmed.get(p)).toMatchObject({ owner, seq: 0 });
      }

      for (const p of mine('pointers-b')) bEpochs.set(p, b.ownership.epochOf(p)!);
      const bEventsBeforeStop = b.events.length;
      await b.ownership.stop();
      live.delete(b.ownership);
      await waitFor('a owns every partition', () => a.ownership.owned().length === P);
      // (The releases run side by side: their events come in any order.)
      const stopEvents = b.events.slice(bEventsBeforeStop);
      expect(stopEvents.sort((x, y) => x.partition - y.partition)).toEqual(
        [...bEpochs].map(([partition, epoch]) => ({ type: 'lost', partition, epoch, reason: 'stopped' })),
      );
      for (const [p, epoch] of bEpochs) {
        expect(a.ownership.epochOf(p)).toBeGreaterThan(epoch);
        expect(await b.ownership.confirm(p, epoch, 10_000)).toEqual({ ok: false, reason: 'not-owner' });
      }
      const handedOver = confirmed.length;
      await waitFor('a confirms batches of the partitions it took over', () =>
        [...bEpochs.keys()].every(
          (p) =>
            confirmed.slice(handedOver).filter((c) => c.partition === p && c.by === 'pointers-a').length >= 3,
        ),
      );
      const leasesAfter = await leaseRecords(P);
      for (let p = 0; p < P; p++) {
        expect(leasesAfter.get(p)).toMatchObject({
          owner: 'pointers-a',
          seq: 0,
          epoch: a.ownership.epochOf(p),
        });
      }
    } finally {
      running = false;
      await Promise.all(writers);
    }

    // Every confirm that answered ok counts in the pointer a rebuild reads, b's as well as a's.
    expect(new Set(confirmed.map((c) => c.by))).toEqual(new Set(['pointers-a', 'pointers-b']));
    const writerOfEpoch = new Map<string, string>();
    for (const c of confirmed) {
      const key = `${c.partition}:${c.epoch}`;
      expect(writerOfEpoch.get(key) ?? c.by, key).toBe(c.by);
      writerOfEpoch.set(key, c.by);
      const state = await a.ownership.commitState(c.partition);
      expect(state?.confirmation(c.epoch, c.seq), `${key}:${c.seq} by ${c.by}`).toBe('confirmed');
    }
    for (const [p, epoch] of bEpochs) {
      const state = (await a.ownership.commitState(p))!;
      const lastOfB = Math.max(
        ...confirmed.filter((c) => c.partition === p && c.epoch === epoch).map((c) => c.seq),
      );
      expect(state.record.closed[0]).toEqual({ epoch, seq: lastOfB });
    }
  });

  it('a child replica paused past its lease is fenced by the file when it resumes', async () => {
    const P = 2;
    const file = freshFile();
    const child = await ChildReplica.start(children, {
      ...env.serviceEnv,
      REPLICA_ID: 'paused-pointers',
      PARTITIONS: String(P),
      LEASE_TTL_MS: String(TTL),
      SQLITE_FILE: file,
      CONFIRM_PARTITION: '0',
    });
    const confirms = (): ConfirmLine[] => child.lines.filter((l): l is ConfirmLine => l.type === 'confirm');
    await waitFor(
      'the child confirms batches of partition 0',
      () => confirms().filter((c) => c.ok).length >= 5,
    );

    // Right after a confirm's answer was printed: the child is between two confirms, so it holds
    // no SQLite transaction that would keep the file locked while it is stopped.
    await child.stopAfterNextConfirm();
    const stoppedAt = Date.now();
    const linesWhenStopped = child.lines.length;
    const taker = await replica('taker', file, P);
    await waitFor(
      'another replica took both partitions',
      () => taker.ownership.owned().length === P,
      4 * TTL,
    );
    expect(Date.now() - stoppedAt).toBeGreaterThan(TTL * 0.8);
    const takerEpoch = taker.ownership.epochOf(0)!;
    expect(await taker.ownership.confirm(0, takerEpoch, 1)).toEqual({ ok: true });
    expect(child.lines.length).toBe(linesWhenStopped);

    child.signal('SIGCONT');
    await waitFor(
      'the resumed child had a confirm refused and reported the loss',
      () => child.lines.some((l) => l.type === 'lost' && l.partition === 0) && confirms().some((c) => !c.ok),
    );
    // Let it keep trying for a while: not one of its confirms may succeed any more.
    await sleep(500);
    const childEpoch = confirms()[0]!.epoch;
    const acked = confirms().filter((c) => c.ok);
    const refused = confirms().filter((c) => !c.ok);
    const lastAcked = Math.max(...acked.map((c) => c.seq));
    expect(refused.every((c) => c.seq > lastAcked)).toBe(true);
    // The first refusal is the file's conditional update (`fenced` comes from the pointer store
    // alone when it is configured), not the child's clock or its view of KV.
    expect(refused[0]?.reason).toBe('fenced');

    const state = (await taker.ownership.commitState(0))!;
    expect(state.epoch).toBe(takerEpoch);
    expect(state.epoch).toBeGreaterThan(childEpoch);
    expect(state.record.closed[0]).toEqual({ epoch: childEpoch, seq: lastAcked });
    // What the child was told is confirmed counts; its later batches never do.
    for (const c of acked) expect(state.confirmation(childEpoch, c.seq), `seq ${c.seq}`).toBe('confirmed');
    for (const c of refused)
      expect(state.confirmation(childEpoch, c.seq), `seq ${c.seq}`).toBe('unconfirmed');
    expect(state.confirmation(takerEpoch, 1)).toBe('confirmed');
  });
});

type ConfirmLine = {
  type: 'confirm';
  partition: number;
  epoch: number;
  seq: number;
  ok: boolean;
  reason?: string;
};
type ChildLine = (
  OwnershipEvent | { type: 'started' } | { type: 'warning'; what: string; error: string } | ConfirmLine
) & {
  at?: number;
};

/** A replica in its own process (libs/bus's fixture with the SQLite pointers), so it can be paused or killed whole. */
class ChildReplica {
  readonly lines: ChildLine[] = [];
  private onConfirm: (() => void) | undefined;

  private constructor(readonly child: ChildProcessWithoutNullStreams) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const parsed = JSON.parse(line) as ChildLine;
      this.lines.push(parsed);
      if (parsed.type === 'confirm') this.onConfirm?.();
    });
    child.stderr.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  }

  static async start(registry: Set<ChildReplica>, env: Record<string, string>): Promise<ChildReplica> {
    const child = spawn(process.execPath, [fixture], {
      env: { ...process.env, ...env, POINTERS_MODULE: pointersModule },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const replica = new ChildReplica(child);
    registry.add(replica);
    await waitFor('child started', () => replica.lines.some((l) => l.type === 'started'));
    return replica;
  }

  /** SIGSTOP as soon as the next confirm line arrives (in the same turn that reads it). */
  stopAfterNextConfirm(): Promise<void> {
    return new Promise((resolve) => {
      this.onConfirm = () => {
        this.onConfirm = undefined;
        this.child.kill('SIGSTOP');
        resolve();
      };
    });
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGCONT');
    this.child.kill('SIGKILL');
    await exited;
  }
}
