import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestEnvironment, type TestEnvironment } from '@postmesh/testing';
import {
  OwnershipView,
  PartitionOwnership,
  assignPartitions,
  partitionOf,
  type OwnershipEvent,
  type PartitionOwnershipOptions,
} from '../src/index.js';

const fixture = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'partition-replica.mjs');
const TTL = 2_000;

async function waitFor(
  what: string,
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

type ChildLine = (
  | OwnershipEvent
  | { type: 'started' }
  | { type: 'confirm'; seq: number; epoch: number; ok: boolean; reason?: string }
) & {
  at?: number;
};

/** A replica in its own process (the fixture), so it can be killed or paused as a whole. */
class ChildReplica {
  readonly lines: ChildLine[] = [];
  private constructor(readonly child: ChildProcessWithoutNullStreams) {
    createInterface({ input: child.stdout }).on('line', (line) =>
      this.lines.push(JSON.parse(line) as ChildLine),
    );
    child.stderr.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  }

  static async start(env: Record<string, string>): Promise<ChildReplica> {
    const child = spawn(process.execPath, [fixture], {
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const replica = new ChildReplica(child);
    children.add(replica);
    await waitFor('child started', () => replica.lines.some((l) => l.type === 'started'));
    return replica;
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
const children = new Set<ChildReplica>();

describe('partition ownership on a real JetStream KV', () => {
  let env: TestEnvironment;
  const connections: NatsConnection[] = [];
  const replicas: PartitionOwnership[] = [];

  async function replica(
    options: PartitionOwnershipOptions,
  ): Promise<{ ownership: PartitionOwnership; events: OwnershipEvent[] }> {
    const nc = await connect(env.natsOptions());
    connections.push(nc);
    const events: OwnershipEvent[] = [];
    // Subscribing right after start can miss nothing: the first acquisition needs a KV round trip.
    const ownership = await PartitionOwnership.start(nc, { leaseTtlMs: TTL, ...options });
    ownership.subscribe((e) => events.push(e));
    replicas.push(ownership);
    return { ownership, events };
  }

  beforeAll(async () => {
    env = await startTestEnvironment({ mongo: false });
  });
  afterEach(async () => {
    await Promise.all(replicas.splice(0).map((r) => r.stop()));
    await Promise.all([...children].map((c) => c.kill()));
    children.clear();
    await Promise.all(connections.splice(0).map((nc) => nc.close()));
  });
  afterAll(async () => {
    await env?.stop();
  });

  it('assigns the partitions evenly over the live replicas and then leaves them alone', async () => {
    const P = 12;
    const set = await Promise.all(
      ['even-a', 'even-b', 'even-c'].map((replicaId) => replica({ replicaId, partitions: P })),
    );
    const expected = assignPartitions(P, ['even-a', 'even-b', 'even-c']);
    await waitFor('the assignment converged', () =>
      set.every(({ ownership }) => {
        const mine = [...expected].filter(([, o]) => o === ownership.replicaId).map(([p]) => p);
        return JSON.stringify(ownership.owned()) === JSON.stringify(mine);
      }),
    );
    for (const { ownership } of set) expect(ownership.owned().length).toBeLessThanOrEqual(Math.ceil(P / 3));
    const map = await set[0]!.ownership.ownershipMap();
    for (const [p, owner] of expected) {
      expect(map.owners.get(p)).toMatchObject({ owner, live: true });
    }
    const eventsBefore = set.map(({ events }) => events.length);
    // Several renewals later nothing has moved.
    await new Promise((r) => setTimeout(r, TTL * 1.5));
    expect(set.map(({ events }) => events.length)).toEqual(eventsBefore);
  });

  it('scales 1 → 3 → 1 with never two owners of a partition and only the owner confirming', async () => {
    const P = 8;
    const a = await replica({ replicaId: 'scale-a', partitions: P });
    await waitFor('one replica owns everything', () => a.ownership.owned().length === P);
    // The same events as an async iterator, for consumers that prefer `for await`.
    const iterated: OwnershipEvent[] = [];
    const stopIterating = new AbortController();
    const iterating = (async () => {
      for await (const event of a.ownership.events(stopIterating.signal)) iterated.push(event);
    })();

    const confirmed: { partition: number; epoch: number; seq: number; by: string }[] = [];
    const live = new Set([a.ownership]);
    let overlaps = 0;
    let running = true;
    // A busy owner: every partition it owns gets a batch confirmed every few milliseconds.
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
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const sampler = setInterval(() => {
      const owners = new Map<number, number>();
      for (const o of live) for (const p of o.owned()) owners.set(p, (owners.get(p) ?? 0) + 1);
      for (const n of owners.values()) if (n > 1) overlaps++;
    }, 5);
    const writers = [writer(a.ownership)];
    try {
      const b = await replica({ replicaId: 'scale-b', partitions: P });
      const c = await replica({ replicaId: 'scale-c', partitions: P });
      live.add(b.ownership).add(c.ownership);
      writers.push(writer(b.ownership), writer(c.ownership));
      const expected = assignPartitions(P, ['scale-a', 'scale-b', 'scale-c']);
      await waitFor('three replicas share the partitions as assigned', () =>
        [a, b, c].every(
          ({ ownership }) =>
            JSON.stringify(ownership.owned()) ===
            JSON.stringify([...expected].filter(([, o]) => o === ownership.replicaId).map(([p]) => p)),
        ),
      );
      expect(a.events.some((e) => e.type === 'lost' && e.reason === 'handoff')).toBe(true);

      await waitFor('each replica confirmed batches of its own', () =>
        ['scale-b', 'scale-c'].every((id) => confirmed.some((c) => c.by === id)),
      );
      // Back to one: the two leave gracefully, one after the other.
      for (const leaving of [b, c]) {
        await leaving.ownership.stop();
        live.delete(leaving.ownership);
      }
      await waitFor('the remaining replica owns everything again', () => a.ownership.owned().length === P);
    } finally {
      running = false;
      clearInterval(sampler);
      await Promise.all(writers);
    }
    stopIterating.abort();
    await iterating;
    // Subscribed later than `subscribe`, it saw the tail of the same sequence: the hand-offs.
    expect(iterated.length).toBeGreaterThan(0);
    expect(a.events.slice(-iterated.length)).toEqual(iterated);
    expect(overlaps, 'samples with a partition owned by two replicas').toBe(0);
    expect(new Set(confirmed.map((c) => c.by)).size).toBe(3);
    // Every acknowledged confirm counts in the stored pointer, and each epoch had one writer.
    const writerOfEpoch = new Map<string, string>();
    for (const c of confirmed) {
      const key = `${c.partition}:${c.epoch}`;
      expect(writerOfEpoch.get(key) ?? c.by).toBe(c.by);
      writerOfEpoch.set(key, c.by);
      const state = await a.ownership.commitState(c.partition);
      expect(state?.isConfirmed(c.epoch, c.seq)).toBe(true);
    }
  });

  it('routes each user to its owner’s address from a client’s view of the map, also after a hand-off', async () => {
    const P = 8;
    const a = await replica({ replicaId: 'route-a', partitions: P, address: '10.0.0.1:7001' });
    const b = await replica({ replicaId: 'route-b', partitions: P, address: '10.0.0.2:7001' });
    await waitFor(
      'both own their share',
      () => a.ownership.owned().length === 4 && b.ownership.owned().length === 4,
    );
    const nc = await connect(env.natsOptions());
    connections.push(nc);
    const view = await OwnershipView.open(nc, { partitions: P });
    const users = Array.from({ length: 24 }, (_, i) => `route-user-${i}`);
    const expectedAddress = (user: string): string =>
      a.ownership.owns(partitionOf(user, P)) ? '10.0.0.1:7001' : '10.0.0.2:7001';
    for (const user of users) expect(view.routeOf(user)?.address).toBe(expectedAddress(user));

    await b.ownership.stop();
    await waitFor('a owns everything', () => a.ownership.owned().length === P);
    await waitFor('the view follows', () => users.every((u) => view.routeOf(u)?.owner === 'route-a'));
    expect(await view.lookup(users[0]!)).toMatchObject({ owner: 'route-a', address: '10.0.0.1:7001' });
    view.stop();
  });

  it('moves a killed replica’s partitions to a live one within the lease TTL', async () => {
    const P = 6;
    // The child keeps writing batches of a partition it keeps after the survivor joins.
    const busy = [...assignPartitions(P, ['killed-1', 'survivor'])].find(([, o]) => o === 'killed-1')![0];
    const child = await ChildReplica.start({
      ...env.serviceEnv,
      REPLICA_ID: 'killed-1',
      PARTITIONS: String(P),
      LEASE_TTL_MS: String(TTL),
      CONFIRM_PARTITION: String(busy),
    });
    const acked = (): Extract<ChildLine, { type: 'confirm' }>[] =>
      child.lines.filter((l): l is Extract<ChildLine, { type: 'confirm' }> => l.type === 'confirm' && l.ok);
    const gained = (): number => child.lines.filter((l) => l.type === 'gained').length;
    await waitFor('the child owns every partition', () => gained() === P);
    const b = await replica({ replicaId: 'survivor', partitions: P });
    await waitFor('the child handed some over', () => b.ownership.owned().length > 0);
    const childHeld = P - b.ownership.owned().length;
    expect(childHeld).toBeGreaterThan(0);

    const ackedBeforeJoin = acked().length;
    await waitFor(
      'the child confirms batches after the hand-off',
      () => acked().length > ackedBeforeJoin + 3,
    );

    await child.kill();
    const killedAt = Date.now();
    await waitFor('the survivor owns everything', () => b.ownership.owned().length === P, 4 * TTL);
    // The child's replica lease expires TTL after its last renewal; then the next rebalance takes it.
    expect(Date.now() - killedAt).toBeLessThan(TTL + 2_000);
    const map = await b.ownership.ownershipMap();
    for (let p = 0; p < P; p++) expect(map.owners.get(p)).toMatchObject({ owner: 'survivor', live: true });
    // Everything the killed owner was told is confirmed still counts after the takeover.
    const state = await b.ownership.commitState(busy);
    const childEpoch = acked()[0]!.epoch;
    expect(state!.epoch).toBeGreaterThan(childEpoch);
    for (const c of acked()) expect(state!.isConfirmed(childEpoch, c.seq)).toBe(true);
  });

  it('a replica paused past its lease cannot confirm after it resumes, and notices the loss', async () => {
    const P = 2;
    const child = await ChildReplica.start({
      ...env.serviceEnv,
      REPLICA_ID: 'paused-1',
      PARTITIONS: String(P),
      LEASE_TTL_MS: String(TTL),
      CONFIRM_PARTITION: '0',
    });
    const confirms = (): Extract<ChildLine, { type: 'confirm' }>[] =>
      child.lines.filter((l): l is Extract<ChildLine, { type: 'confirm' }> => l.type === 'confirm');
    await waitFor(
      'the child confirms batches of partition 0',
      () => confirms().filter((c) => c.ok).length >= 5,
    );

    child.signal('SIGSTOP');
    const stoppedAt = Date.now();
    const linesWhenStopped = child.lines.length;
    const b = await replica({ replicaId: 'taker', partitions: P });
    await waitFor('another replica took both partitions', () => b.ownership.owned().length === P, 4 * TTL);
    expect(Date.now() - stoppedAt).toBeGreaterThan(TTL * 0.8);
    const takerEpoch = b.ownership.epochOf(0);
    expect(takerEpoch).toBeDefined();
    expect((await b.ownership.confirm(0, takerEpoch!, 1)).ok).toBe(true);
    expect(child.lines.length).toBe(linesWhenStopped);

    child.signal('SIGCONT');
    await waitFor(
      'the resumed child reported losing partition 0 and a refused confirm',
      () =>
        child.lines.some((l) => l.type === 'lost' && l.partition === 0) &&
        confirms().some((c) => !c.ok && c.seq > 0),
    );
    // Let it keep trying for a while: not one of its confirms may succeed any more.
    await new Promise((r) => setTimeout(r, 500));
    const childEpoch = confirms()[0]!.epoch;
    const acked = confirms().filter((c) => c.ok);
    const refused = confirms().filter((c) => !c.ok);
    const lastAcked = Math.max(...acked.map((c) => c.seq));
    expect(refused.every((c) => c.seq > lastAcked)).toBe(true);
    // The first refusal comes from the compare-and-set on the commit pointer, not from the
    // child's clock: its batch was written while it still believed it owned the partition.
    expect(refused[0]?.reason).toBe('fenced');

    const state = await b.ownership.commitState(0);
    expect(state).not.toBeNull();
    expect(state!.epoch).toBeGreaterThan(childEpoch);
    // What the child was told is confirmed counts; its later batches never do.
    for (const c of acked) expect(state!.isConfirmed(childEpoch, c.seq)).toBe(true);
    for (const c of refused) expect(state!.isConfirmed(childEpoch, c.seq)).toBe(false);
  });
});
