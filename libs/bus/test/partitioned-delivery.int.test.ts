import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestEnvironment, type TestEnvironment } from '@postmesh/testing';
import {
  Consumers,
  PartitionOwnership,
  PartitionedInbound,
  PartitionedJobs,
  Streams,
  Subjects,
  ensurePartitionConsumers,
  ensureTopology,
  groupByPartition,
  partitionOf,
  publishDurable,
  streamConfigs,
  type PartitionBatch,
} from '../src/index.js';

async function waitFor(
  what: string,
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const enc = new TextEncoder();
const dec = new TextDecoder();

describe('delivery jobs partitioned by user', () => {
  let env: TestEnvironment;
  let nc: NatsConnection;
  let jsm: JetStreamManager;

  beforeAll(async () => {
    env = await startTestEnvironment({ mongo: false });
    nc = await connect(env.natsOptions());
    jsm = await jetstreamManager(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await env?.stop();
  });

  it('narrows an existing storage-deliver to unpartitioned jobs so partition consumers can exist', async () => {
    // A deployment from before partitioning: MAIL_INBOUND with an unfiltered work-queue consumer.
    const inbound = streamConfigs({ replicas: 1 }).find((s) => s.name === Streams.MAIL_INBOUND);
    await jsm.streams.add(inbound!);
    await jsm.consumers.add(Streams.MAIL_INBOUND, {
      durable_name: Consumers.STORAGE_DELIVER,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
    });
    // A work queue refuses a second consumer whose filter overlaps the unfiltered one.
    await expect(ensurePartitionConsumers(jsm, { partitions: 4 })).rejects.toThrow();

    await ensureTopology(nc, jsm, { replicas: 1 });
    const legacy = await jsm.consumers.info(Streams.MAIL_INBOUND, Consumers.STORAGE_DELIVER);
    expect(legacy.config.filter_subject).toBe(PartitionedInbound.unpartitionedFilter);
    await ensurePartitionConsumers(jsm, { partitions: 4 });
    await ensurePartitionConsumers(jsm, { partitions: 4 });

    const js = jetstream(nc);
    await publishDurable(js, Subjects.inbound('legacy-job'), enc.encode('{}'), { msgId: 'legacy-job' });
    await publishDurable(js, PartitionedInbound.subject(2, 'split-job'), enc.encode('{}'), {
      msgId: PartitionedInbound.messageId('split-job', 2),
    });
    expect((await jsm.consumers.info(Streams.MAIL_INBOUND, Consumers.STORAGE_DELIVER)).num_pending).toBe(1);
    expect((await jsm.consumers.info(Streams.MAIL_INBOUND, PartitionedInbound.consumer(2))).num_pending).toBe(
      1,
    );
    expect((await jsm.consumers.info(Streams.MAIL_INBOUND, PartitionedInbound.consumer(1))).num_pending).toBe(
      0,
    );
    await jsm.streams.purge(Streams.MAIL_INBOUND);
  });

  it('splits a job’s recipients by partition', () => {
    const users = Array.from({ length: 40 }, (_, i) => ({ userId: `u${i}` }));
    const groups = groupByPartition(users, (u) => u.userId, 8);
    expect([...groups.keys()]).toEqual([...groups.keys()].sort((a, b) => a - b));
    expect([...groups.values()].flat()).toHaveLength(40);
    for (const [p, members] of groups) for (const u of members) expect(partitionOf(u.userId, 8)).toBe(p);
  });

  it('gives each owner its own users’ jobs in order, also across a hand-off', async () => {
    const P = 4;
    await ensurePartitionConsumers(jsm, { partitions: P });
    const handled: { replica: string; user: string; n: number; owned: boolean }[] = [];
    const owners: { ownership: PartitionOwnership; jobs: PartitionedJobs; nc: NatsConnection }[] = [];
    for (const replicaId of ['jobs-a', 'jobs-b']) {
      const conn = await connect(env.natsOptions());
      const ownership = await PartitionOwnership.start(conn, { replicaId, partitions: P, leaseTtlMs: 2_000 });
      const seqs = new Map<string, number>();
      const jobs = new PartitionedJobs({
        js: jetstream(conn),
        ownership,
        batchSize: 8,
        handleBatch: async ({ partition, epoch, messages }: PartitionBatch) => {
          // The write of the batch would go here, tagged (epoch, seq); then confirm, then ack.
          const key = `${partition}:${epoch}`;
          const seq = (seqs.get(key) ?? 0) + 1;
          seqs.set(key, seq);
          const result = await ownership.confirm(partition, epoch, seq);
          for (const m of messages) {
            if (!result.ok) {
              m.nak();
              continue;
            }
            const job = JSON.parse(dec.decode(m.data)) as { user: string; n: number };
            handled.push({ replica: replicaId, ...job, owned: partitionOf(job.user, P) === partition });
            m.ack();
          }
        },
      });
      jobs.start();
      owners.push({ ownership, jobs, nc: conn });
    }
    const [a, b] = owners as [(typeof owners)[0], (typeof owners)[0]];
    await waitFor(
      'both replicas own partitions',
      () => a.ownership.owned().length === 2 && b.ownership.owned().length === 2,
    );

    const js = jetstream(nc);
    const users = Array.from({ length: 12 }, (_, i) => `user-${i}`);
    const publishRound = async (from: number, to: number): Promise<void> => {
      for (let n = from; n < to; n++) {
        for (const user of users) {
          const spoolId = `${user}-${n}`;
          const p = partitionOf(user, P);
          await publishDurable(
            js,
            PartitionedInbound.subject(p, spoolId),
            enc.encode(JSON.stringify({ user, n })),
            {
              msgId: PartitionedInbound.messageId(spoolId, p),
            },
          );
        }
      }
    };
    await publishRound(0, 5);
    await waitFor('the first jobs are handled', () => handled.length === users.length * 5);
    expect(new Set(handled.map((h) => h.replica))).toEqual(new Set(['jobs-a', 'jobs-b']));

    // b leaves while jobs keep coming: it finishes its batch, releases, and a takes over.
    const publishing = publishRound(5, 15);
    await new Promise((r) => setTimeout(r, 100));
    // Leaving releases each partition only after its puller finished the batch in hand.
    await b.ownership.stop();
    expect(b.jobs.active()).toEqual([]);
    await b.jobs.stop();
    await publishing;
    await waitFor('every job is handled', () => handled.length >= users.length * 15);
    await new Promise((r) => setTimeout(r, 500)); // a duplicate would show up by now
    expect(handled.every((h) => h.owned)).toBe(true);
    for (const user of users) {
      expect(handled.filter((h) => h.user === user).map((h) => h.n)).toEqual(
        Array.from({ length: 15 }, (_, n) => n),
      );
    }
    expect(a.ownership.owned()).toHaveLength(P);
    await a.jobs.stop();
    await a.ownership.stop();
    await Promise.all(owners.map((o) => o.nc.close()));
  });
});
