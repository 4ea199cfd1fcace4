import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createLogger } from '@postmesh/telemetry';
import { startTestEnvironment, type TestEnvironment } from '@postmesh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MailboxIndex, MailboxIndexEntry } from '../src/mailstore/mailbox-index.js';
import { PartitionCoordinator } from '../src/ownership/index.js';

const logger = createLogger('ownership-test', 'silent');

async function waitFor(what: string, predicate: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('storage partition coordinator', () => {
  let env: TestEnvironment;
  const connections: NatsConnection[] = [];

  beforeAll(async () => {
    env = await startTestEnvironment({ mongo: false });
  });
  afterAll(async () => {
    await Promise.all(connections.map((nc) => nc.close()));
    await env?.stop();
  });

  async function coordinator(replicaId: string, index: MailboxIndex): Promise<PartitionCoordinator> {
    const nc = await connect(env.natsOptions());
    connections.push(nc);
    return PartitionCoordinator.start({
      nc,
      logger,
      replicaId,
      address: `127.0.0.1:${replicaId.length}`,
      partitions: 8,
      leaseTtlMs: 2_000,
      caches: [index],
    });
  }

  it('serves every user from exactly one replica and forgets the indexes of partitions it hands over', async () => {
    const users = Array.from({ length: 40 }, (_, i) => `65f0c0ffee${String(i).padStart(14, '0')}`);
    const indexA = new MailboxIndex(1_000);
    const a = await coordinator('storage-a', indexA);
    await waitFor('a owns every partition', () => a.owned().length === 8);
    expect(users.every((u) => a.owns(u))).toBe(true);

    // a has warm indexes for every user's INBOX.
    for (const user of users) indexA.set(`inbox-${user}`, new MailboxIndexEntry(user, 1));
    expect(users.every((u) => indexA.has(`inbox-${u}`))).toBe(true);

    const indexB = new MailboxIndex(1_000);
    const b = await coordinator('storage-b', indexB);
    await waitFor(
      'the partitions are shared',
      () => a.owned().length + b.owned().length === 8 && b.owned().length >= 3,
    );
    for (const user of users) {
      expect(a.owns(user) !== b.owns(user)).toBe(true);
      // What a no longer owns, it no longer caches: the next owner's writes would make it stale.
      expect(indexA.has(`inbox-${user}`)).toBe(a.owns(user));
    }

    // Commit-then-confirm through the coordinator: only the owner gets a tag, and it confirms.
    const user = users.find((u) => b.owns(u))!;
    const partition = b.partitionOf(user);
    expect(a.beginBatch(partition)).toBeUndefined();
    const first = b.beginBatch(partition)!;
    const second = b.beginBatch(partition)!;
    expect(second).toEqual({ ...first, seq: first.seq + 1 });
    // A confirm covers every smaller seq: the second waits while the first is still being written.
    let secondAnswered = false;
    const secondConfirmed = b.confirm(second).then((result) => {
      secondAnswered = true;
      return result;
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(secondAnswered).toBe(false);
    expect((await a.commitState(partition))?.isConfirmed(first.epoch, first.seq)).toBe(false);
    // The first wrote nothing after all: the second goes through.
    b.abandon(first);
    expect(await secondConfirmed).toEqual({ ok: true });
    const state = await a.commitState(partition);
    expect(state?.isConfirmed(first.epoch, first.seq)).toBe(true);
    expect(state?.isConfirmed(first.epoch, second.seq + 1)).toBe(false);
    // Writes confirmed together share one compare-and-set, and each gets its answer.
    const together = [b.beginBatch(partition)!, b.beginBatch(partition)!, b.beginBatch(partition)!];
    const answers = await Promise.all([...together].reverse().map((tag) => b.confirm(tag)));
    expect(answers).toEqual(together.map(() => ({ ok: true })));
    expect((await a.commitState(partition))?.isConfirmed(first.epoch, together[2]!.seq)).toBe(true);

    const map = await a.ownership.ownershipMap();
    expect(map.owners.get(partition)).toMatchObject({
      owner: 'storage-b',
      address: '127.0.0.1:9',
      live: true,
    });

    await b.stop();
    await waitFor('a owns everything again', () => a.owned().length === 8);
    await a.stop();
  });
});
