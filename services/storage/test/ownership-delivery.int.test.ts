/**
 * One owner per mailbox under SMTP load, as production runs it: real nats-server and FerretDB,
 * two storage processes with ownership on (8 partitions, 3 s leases) and smtp-inbound publishing
 * one job per partition. Checked from the mailbox (over storage's Mailstore API) and from the
 * database: every accepted message is in its mailbox exactly once when the owner of a busy user
 * is killed with SIGKILL, and no document of a batch that never got its confirm is left behind
 * (ADR 0007, Commit-then-confirm).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLUSTER_BACKENDS, OwnershipCluster, waitFor, type Replica, type User } from './ownership-cluster.js';

describe.each(CLUSTER_BACKENDS)(
  'one owner per mailbox: delivery under SMTP load with a crashed owner ($name)',
  ({ sqlite }) => {
    let cluster: OwnershipCluster;
    let users: User[] = [];

    beforeAll(async () => {
      cluster = await OwnershipCluster.start(
        {
          partitions: 8,
          leaseTtlMs: 3_000,
          ackWaitMs: 4_000,
          domain: 'owners.test',
          dirPrefix: 'postmesh-owners-',
          sqlite,
        },
        'storage-a',
      );
      await cluster.startReplica('storage-b');
      users = await cluster.createUsers(cluster.replicas[0] as Replica, 12);
    }, 120_000);

    afterAll(async () => {
      await cluster?.stop();
    }, 60_000);

    it('kill -9 of the owner of a busy user: every accepted message is in its mailbox exactly once', async () => {
      const owners = await cluster.waitForOwners(cluster.replicas);
      const busy = users[0] as User;
      const busyPartition = cluster.partitionOf(busy.id);
      const victim = cluster.replicas.find(
        (r) => r.address === owners.get(busyPartition)?.address,
      ) as Replica;
      const survivor = cluster.replicas.find((r) => r !== victim) as Replica;
      // A second recipient in another partition: the message is split in two jobs.
      const other = users.find((u) => cluster.partitionOf(u.id) !== busyPartition);
      if (other === undefined) throw new Error('every user is in one partition');
      await cluster.startSmtp(survivor);

      const accepted = await cluster.sendLoad(
        60,
        (i) => (i % 3 === 0 ? [busy.address, other.address] : [busy.address]),
        { accepted: 20, run: () => void victim.proc.kill() },
      );
      expect(victim.proc.running).toBe(false);
      const expectedBusy = (accepted.get(busy.address) ?? []).sort();
      const expectedOther = (accepted.get(other.address) ?? []).sort();
      expect(expectedBusy.length).toBeGreaterThan(30);

      // The survivor takes the dead owner's partitions and the jobs it had fetched come back.
      await waitFor(
        'the busy mailbox filled',
        async () => ((await cluster.inboxCount(busy.id)) >= expectedBusy.length ? true : undefined),
        60_000,
      );
      expect(await cluster.settledTokens(busy.id, expectedBusy)).toEqual(expectedBusy);
      expect(await cluster.settledTokens(other.id, expectedOther)).toEqual(expectedOther);
      expect(await cluster.unconfirmedDocuments(busyPartition)).toBe(0);
      expect((await cluster.partitionRecord(busyPartition))?.address).toBe(survivor.address);
    }, 150_000);
  },
);
