/**
 * A former owner that was paused past its lease and then resumed makes no write count (ADR 0007,
 * Commit-then-confirm): two storage processes with ownership on, smtp-inbound publishing by
 * partition, and the owner of a busy user stopped with SIGSTOP while it holds a batch of that
 * user's jobs (fetched, not acked: the consumer's ack-pending count says so). The other replica
 * takes the partition and delivers everything; the paused one, resumed, goes on with the batch in
 * hand, writes it under its old epoch, fails its confirm and removes it. Checked from the mailbox
 * (every accepted message exactly once, before and after the resume) and from the database (no
 * document of the old epoch beyond what its record confirmed).
 */
import { readFileSync } from 'node:fs';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { PartitionedInbound, Streams } from '@postmesh/bus';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OwnershipCluster, sleep, waitFor, type Replica, type User } from './ownership-cluster.js';

/** Pauses at most this many times looking for a batch in hand (each pause is a separate trial). */
const ATTEMPTS = 3;
/** Jobs fetched and not acked by the owner at which it is paused (it is busy then). */
const BACKLOG = 8;

describe('one owner per mailbox: an owner paused past its lease', () => {
  let cluster: OwnershipCluster;
  let jsm: JetStreamManager;
  let users: User[] = [];

  beforeAll(async () => {
    cluster = await OwnershipCluster.start(
      {
        partitions: 4,
        leaseTtlMs: 3_000,
        ackWaitMs: 3_000,
        domain: 'paused.test',
        dirPrefix: 'postmesh-paused-',
      },
      'storage-a',
    );
    await cluster.startReplica('storage-b');
    users = await cluster.createUsers(cluster.replicas[0] as Replica, 8);
    jsm = await jetstreamManager(cluster.nc);
  }, 120_000);

  afterAll(async () => {
    await cluster?.stop();
  }, 60_000);

  it('resumed after its lease moved, it writes nothing that counts', async () => {
    const [front, paused] = cluster.replicas as [Replica, Replica];
    // SMTP resolves recipients at `front`, which keeps running: only delivery is paused.
    await cluster.startSmtp(front);
    const pid = paused.proc.pid as number;
    let caught = false;

    for (let attempt = 0; attempt < ATTEMPTS && !caught; attempt++) {
      // A user whose partition the replica to pause owns now (it takes some back after a resume).
      const owners = await cluster.waitForOwners([front, paused]);
      const target = users.find((u) => owners.get(cluster.partitionOf(u.id))?.address === paused.address);
      if (target === undefined) throw new Error(`${paused.name} owns no user's partition`);
      const partition = cluster.partitionOf(target.id);
      const pausedEpoch = owners.get(partition)?.epoch as number;
      const before = (await cluster.tokensInInbox(target.id)).length;
      const consumer = PartitionedInbound.consumer(partition);

      // Stop the owner the moment it holds jobs of the partition that it has not acked.
      let stoppedAt: number | undefined;
      let watching = true;
      const watch = (async () => {
        while (watching && stoppedAt === undefined) {
          const info = await jsm.consumers.info(Streams.MAIL_INBOUND, consumer).catch(() => undefined);
          // Jobs queue up in the owner's client buffer when mail arrives faster than it
          // delivers: then it works batch after batch, and a pause lands inside one.
          if (info !== undefined && info.num_ack_pending >= BACKLOG) {
            process.kill(pid, 'SIGSTOP');
            stoppedAt = Date.now();
          } else {
            await sleep(5);
          }
        }
      })();
      const load = cluster.sendLoad(
        60,
        () => [target.address],
        { accepted: 60, run: () => (watching = false) },
        8,
      );
      const accepted = await load;
      watching = false;
      await watch;
      const expected = (accepted.get(target.address) ?? []).sort();
      expect(expected.length).toBeGreaterThan(40);
      if (stoppedAt === undefined) continue;

      // The lease moves to the running replica, which delivers every message, including the
      // jobs the paused owner holds (they come back after ack_wait).
      await waitFor(
        'the partition moved',
        async () =>
          (await cluster.partitionRecord(partition))?.address === front.address ? true : undefined,
        20_000,
      );
      expect(await cluster.settledTokens(target.id, expected, before)).toHaveLength(before + expected.length);
      const moved = await cluster.partitionRecord(partition);
      expect(moved?.epoch).toBeGreaterThan(pausedEpoch);
      const confirmedSeq = moved?.closed.find((c) => c.epoch === pausedEpoch)?.seq ?? 0;

      // Resumed: whatever it still writes under the old epoch is beyond what the record confirmed.
      const logBefore = readFileSync(paused.logFile, 'utf8').length;
      process.kill(pid, 'SIGCONT');
      const refused = (): boolean =>
        readFileSync(paused.logFile, 'utf8')
          .slice(logBefore)
          .split('\n')
          .some(
            (line) =>
              line.includes('delivery batch not confirmed') &&
              line.includes(`"partition":${partition},`) &&
              line.includes(`"epoch":${pausedEpoch},`),
          );
      // A batch in hand reaches its confirm within seconds of the resume (or was never begun).
      await waitFor(
        'the resumed owner settled its batch',
        () => Promise.resolve(refused() || undefined),
        8_000,
      ).catch(() => undefined);
      caught = refused();

      // Nothing it wrote counts, and nothing is left of it: the mailbox is exactly as before the
      // resume, and the database holds no document of the old epoch beyond the confirmed ones.
      await waitFor(
        'no unconfirmed write left',
        async () => ((await cluster.unconfirmedDocuments(partition)) === 0 ? true : undefined),
        20_000,
      );
      const late = await cluster.db
        .collection('messages')
        .countDocuments({ 'own.p': partition, 'own.e': pausedEpoch, 'own.s': { $gt: confirmedSeq } });
      expect(late).toBe(0);
      const tokens = await cluster.settledTokens(target.id, expected, before);
      expect(tokens.filter((t) => expected.includes(t))).toEqual(expected);
      expect(tokens).toHaveLength(before + expected.length);
      expect(paused.proc.running).toBe(true);
    }
    // At least one pause caught the owner with a batch that it then wrote and could not confirm.
    expect(caught).toBe(true);
  }, 170_000);
});
