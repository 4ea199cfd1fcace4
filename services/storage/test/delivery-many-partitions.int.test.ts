/**
 * Mail for many users at once, each in its own partition (ADR 0007, Delivery jobs by partition):
 * every partition's worker commits its own batch, and on FerretDB/SQLite all those commits
 * contend for the one writer lock. Without a bound on the commits running at once, FerretDB
 * answered `database is locked (SQLITE_BUSY)`, batches fell back to one commit per message and
 * delivery stalled at 1–2 messages a second (docs/benchmarks.md, "Memory at 100,000 messages").
 * Checked here from the database and from storage's log: every job is delivered exactly once,
 * and no batch commit failed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import {
  PartitionedInbound,
  Streams,
  encodeInboundJob,
  publishDurable,
  type InboundJob,
} from '@postmesh/bus';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OwnershipCluster, waitFor, type Replica, type User } from './ownership-cluster.js';

const USERS = 64;
const PER_USER = 12;

describe('delivery to many partitions at once', () => {
  let cluster: OwnershipCluster;
  let replica: Replica;
  let users: User[] = [];

  beforeAll(async () => {
    cluster = await OwnershipCluster.start(
      {
        partitions: 64,
        leaseTtlMs: 10_000,
        ackWaitMs: 30_000,
        domain: 'spread.test',
        dirPrefix: 'postmesh-spread-',
      },
      'storage-spread',
    );
    replica = cluster.replicas[0] as Replica;
    users = await cluster.createUsers(replica, USERS);
    await cluster.waitForOwners(cluster.replicas);
  }, 180_000);

  afterAll(async () => {
    await cluster?.stop();
  }, 60_000);

  it('delivers one job per user for 64 users in distinct partitions without a failed batch commit', async () => {
    const partitions = new Set(users.map((u) => cluster.partitionOf(u.id)));
    expect(partitions.size).toBeGreaterThanOrEqual(30);
    const js = jetstream(cluster.nc);
    const jobs = users.flatMap((user, u) =>
      Array.from({ length: PER_USER }, (_, k) => ({ user, spoolId: `spread${u}x${k}` })),
    );
    // All published before any is delivered: every partition has a batch to commit at once.
    await Promise.all(
      jobs.map(({ user, spoolId }) => {
        const raw = Buffer.from(
          `From: a@sender.test\r\nTo: ${user.address}\r\nSubject: ${spoolId}\r\n\r\n${'words of a body '.repeat(400)}\r\n`,
        );
        const job: InboundJob = {
          version: 1,
          spoolId,
          envelope: {
            mailFrom: 'a@sender.test',
            rcptTo: [user.address],
            remoteIp: '192.0.2.1',
            helo: 'mx.test',
          },
          authResults: {
            spf: 'pass',
            dkim: 'pass',
            dmarc: 'pass',
            arc: 'none',
            dmarcPolicy: '',
            junk: false,
          },
          receivedAt: new Date().toISOString(),
          messageId: `${spoolId}@sender.test`,
          traceparent: '',
          body: { kind: 'inline', size: raw.length },
          users: [user.id],
        };
        const partition = cluster.partitionOf(user.id);
        return publishDurable(
          js,
          PartitionedInbound.subject(partition, spoolId),
          encodeInboundJob(job, raw),
          {
            msgId: PartitionedInbound.messageId(spoolId, partition),
          },
        );
      }),
    );
    const messages = cluster.db.collection<{ spoolId?: string }>('messages');
    await waitFor(
      'every job delivered',
      async () => ((await messages.countDocuments({ spoolId: /^spread/ })) >= jobs.length ? true : undefined),
      150_000,
    );
    const stored = await messages.find({ spoolId: /^spread/ }, { projection: { spoolId: 1 } }).toArray();
    expect(stored.map((m) => m.spoolId).sort()).toEqual(jobs.map((j) => j.spoolId).sort());
    const dead = await (
      await jetstreamManager(cluster.nc)
    ).streams
      .info(Streams.MAIL_DLQ)
      .catch(() => undefined);
    expect(dead?.state.messages ?? 0).toBe(0);

    const log = readFileSync(join(cluster.dir, `${replica.name}.log`), 'utf8');
    expect(log).not.toMatch(/SQLITE_BUSY|database is locked/);
    expect(log).not.toContain('batch commit failed as a whole');
    expect(log).not.toContain('database command unanswered for long');
  }, 180_000);
});
