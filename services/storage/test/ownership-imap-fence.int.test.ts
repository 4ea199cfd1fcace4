/**
 * Commit-then-confirm of IMAP writes (ADR 0007): a former owner that was paused (SIGSTOP) past its
 * lease while it held an IMAP write, and then resumed, makes nothing of it count. Two storage
 * processes with ownership on; the user's owner holds each fenced write for a moment after taking
 * its tag (`POSTMESH_STORAGE_TEST_HOLD_WRITES_MS`, logged), so the test stops it holding a STORE
 * and an APPEND, lets the other replica take the partition, and resumes it. Both calls are
 * refused (UNAVAILABLE, NOT_OWNER), the new owner serves exactly the writes that got OK before,
 * and the database, folded, says the same: no document of the unconfirmed writes is left.
 *
 * The same on one SQLite file shared by the replicas (the stack's default), where an APPEND or
 * STORE is one transaction that checks the partition's pointer inside it (ADR 0014): the resumed
 * owner's held writes find a newer epoch and write nothing.
 */
import { readFileSync } from 'node:fs';
import { status } from '@grpc/grpc-js';
import { Kvm } from '@nats-io/kv';
import { PartitionBuckets } from '@postmesh/bus';
import { ErrorReason, MailstoreServiceClient, mailstore } from '@postmesh/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  append,
  byPath,
  failureOf,
  fetchMessages,
  foldedDocuments,
  message,
  uids,
} from './mailstore-helpers.js';
import {
  CLUSTER_BACKENDS,
  OwnershipCluster,
  call,
  waitFor,
  type Replica,
  type User,
} from './ownership-cluster.js';

const HOLD_MS = 1_500;

/** CPU time (user + system) a replica's process has used so far, in ms (Linux /proc). */
function cpuMs(replica: Replica): number {
  const stat = readFileSync(`/proc/${replica.proc.pid as number}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 per second).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

describe.each(CLUSTER_BACKENDS)(
  'one owner per mailbox: IMAP writes of an owner paused past its lease ($name)',
  ({ sqlite }) => {
    let cluster: OwnershipCluster;
    let users: User[] = [];
    const clients: MailstoreServiceClient[] = [];

    beforeAll(async () => {
      cluster = await OwnershipCluster.start(
        {
          partitions: 6,
          leaseTtlMs: 3_000,
          ackWaitMs: 3_000,
          domain: 'fence.test',
          dirPrefix: 'postmesh-fence-',
          sqlite,
        },
        'storage-a',
      );
      await cluster.startReplica('storage-b');
      // 20 users over 6 partitions: a replica's two hold none of them with a chance of (2/3)^20 < 0.1 %.
      users = await cluster.createUsers(cluster.replicas[0] as Replica, 20);
    }, 120_000);

    afterAll(async () => {
      for (const c of clients) c.close();
      await cluster?.stop();
    }, 60_000);

    it('refuses the writes it held, and the new owner and the database agree without them', async () => {
      const [, b] = cluster.replicas as [Replica, Replica];
      // A third replica, holding its writes, takes two of the six partitions; the user to test is one of its own.
      const paused = await cluster.startReplica('storage-c', {
        POSTMESH_STORAGE_TEST_HOLD_WRITES_MS: String(HOLD_MS),
      });
      const owners = await cluster.waitForOwners(cluster.replicas);
      const user = users.find((u) => owners.get(cluster.partitionOf(u.id))?.address === paused.address);
      if (user === undefined) throw new Error(`${paused.name} owns no user's partition`);
      const partition = cluster.partitionOf(user.id);
      const pausedEpoch = owners.get(partition)?.epoch as number;
      const credentials = cluster.env.security('operator').grpcClientCredentials();
      const direct = new MailstoreServiceClient(paused.address, credentials);
      clients.push(direct);
      const mailboxes = await call(
        direct.listMailboxes.bind(direct),
        mailstore.ListMailboxesRequest.fromPartial({ userId: user.id, pattern: 'INBOX' }),
      );
      const inbox = mailboxes.mailboxes[0]?.id as string;
      const raw = (token: string) =>
        message([`From: a@fence.test`, `To: ${user.address}`, `Subject: ${token}`, '', `body ${token}`, '']);
      const store = (uid: number, keyword: string) =>
        call(
          direct.storeFlags.bind(direct),
          mailstore.StoreFlagsRequest.fromPartial({
            userId: user.id,
            mailboxId: inbox,
            uids: uids([uid, uid]),
            mode: mailstore.StoreMode.ADD,
            keywords: [keyword],
          }),
        );

      // Writes that get their OK (each held for a moment, then confirmed).
      const first = await append(direct, user.id, byPath('INBOX'), raw('first'));
      const second = await append(direct, user.id, byPath('INBOX'), raw('second'));
      await store(first.uid, 'kept');

      // Two writes held with their tags: the owner is stopped while it holds them.
      const holding = (): number =>
        readFileSync(paused.logFile, 'utf8')
          .split('\n')
          .filter((line) => line.includes('holding a fenced write')).length;
      const before = holding();
      const lateStore = failureOf(store(second.uid, 'late'));
      const lateAppend = failureOf(append(direct, user.id, byPath('INBOX'), raw('late')));
      await waitFor('both writes held', () => Promise.resolve(holding() >= before + 2 || undefined), 10_000);
      const pid = paused.proc.pid as number;
      process.kill(pid, 'SIGSTOP');
      try {
        await waitFor(
          'the partition moved',
          async () => {
            const record = await cluster.partitionRecord(partition);
            return record !== undefined && record.address !== paused.address && record.owner !== null
              ? true
              : undefined;
          },
          20_000,
        );
      } finally {
        process.kill(pid, 'SIGCONT');
      }

      // Neither got OK: refused as "not owner", which IMAP answers NO [UNAVAILABLE].
      for (const failure of [await lateStore, await lateAppend]) {
        expect(failure).toMatchObject({ code: status.UNAVAILABLE, reason: ErrorReason.NOT_OWNER });
      }
      const moved = await cluster.partitionRecord(partition);
      expect(moved?.epoch).toBeGreaterThan(pausedEpoch);
      if (sqlite) {
        // Refused inside their transactions: nothing of them was ever written, untagged or not.
        const { db } = cluster;
        expect(await db.collection('messages').countDocuments({ mailboxId: inbox })).toBe(2);
        expect(await db.collection('message_terms').countDocuments({ mailboxId: inbox })).toBe(2);
        expect(await db.collection('messages').countDocuments({ 'own.p': partition })).toBe(0);
      } else {
        await expectNoUnconfirmedWrites(cluster, partition, pausedEpoch);
      }

      // The partition's owner now (the other replica, or the resumed one once it took the partition
      // back with a new epoch and rebuilt) serves exactly the writes that got OK, and the database
      // folded says the same.
      const listed = await waitFor('the owner serves the user', async () => {
        try {
          const owner = await cluster.ownerOf(user.id);
          const served = new MailstoreServiceClient(owner.address, credentials);
          clients.push(served);
          return await fetchMessages(served, { userId: user.id, mailboxId: inbox });
        } catch {
          // A hand-off in progress (NOT_OWNER): ask again.
          return undefined;
        }
      });
      const view = listed.map((m) => ({ uid: m.uid, keywords: [...m.keywords].sort() }));
      expect(view).toEqual([
        { uid: first.uid, keywords: ['kept'] },
        { uid: second.uid, keywords: [] },
      ]);
      const folded = (await foldedDocuments(cluster.db, inbox)).map((m) => ({
        uid: m.uid,
        keywords: m.flags.filter((f) => !f.startsWith('\\')).sort(),
      }));
      expect(folded).toEqual(view);
      expect(listed.map((m) => m.modseq)).toEqual(
        (await foldedDocuments(cluster.db, inbox)).map((m) => m.modseq),
      );
      // The resumed replica is alive and, no longer the owner, refuses the user's calls.
      expect(paused.proc.running).toBe(true);
      expect(b.proc.running).toBe(true);
    }, 90_000);

    // The KV pointers' own economy: SQLite's guarded writes have no compare-and-set to share.
    if (sqlite) return;
    it('shares one compare-and-set among the writes of a partition in flight together', async () => {
      const owners = await cluster.waitForOwners(cluster.replicas.filter((r) => r.proc.running));
      const replica = cluster.replicas[1] as Replica;
      const user = users.find((u) => owners.get(cluster.partitionOf(u.id))?.address === replica.address);
      if (user === undefined) throw new Error(`${replica.name} owns no user's partition`);
      const partition = cluster.partitionOf(user.id);
      const client = new MailstoreServiceClient(
        replica.address,
        cluster.env.security('operator').grpcClientCredentials(),
      );
      clients.push(client);
      const kv = await new Kvm(cluster.nc).open(PartitionBuckets.PARTITIONS);
      const revision = async (): Promise<number> => (await kv.get(`partition.${partition}`))?.revision ?? 0;
      const body = message([`From: a@fence.test`, `To: ${user.address}`, `Subject: n`, '', 'n', '']);
      // One message in each of the user's six mailboxes: STOREs of one mailbox run one at a time
      // (its lock), those of different mailboxes at once.
      const paths = ['INBOX', 'Drafts', 'Sent', 'Junk', 'Trash', 'Archive'];
      const appended: mailstore.AppendMessageResponse[] = [];
      for (const path of paths) appended.push(await append(client, user.id, byPath(path), body));
      const start = await revision();
      const cpuBefore = cpuMs(replica);
      const n = 48;
      const stores = Array.from({ length: n }, (_, i) => {
        const target = appended[i % paths.length]!;
        return call(
          client.storeFlags.bind(client),
          mailstore.StoreFlagsRequest.fromPartial({
            userId: user.id,
            mailboxId: target.mailboxId,
            uids: uids([target.uid, target.uid]),
            mode: mailstore.StoreMode.ADD,
            keywords: [`k${i}`],
          }),
        );
      });
      await Promise.all(stores);
      const kvWrites = (await revision()) - start;
      const cpu = cpuMs(replica) - cpuBefore;
      console.info(
        `${n} concurrent STOREs over ${paths.length} mailboxes of one user: ${kvWrites} KV compare-and-sets, ` +
          `storage CPU ${(cpu / n).toFixed(2)} ms per STORE`,
      );
      expect(kvWrites).toBeGreaterThan(0);
      expect(kvWrites).toBeLessThan(n);
      // Every one of them counts, as the database says.
      const keywords = new Set<string>();
      for (const a of appended) {
        for (const m of await foldedDocuments(cluster.db, a.mailboxId))
          for (const f of m.flags) keywords.add(f);
      }
      for (let i = 0; i < n; i++) expect(keywords.has(`k${i}`)).toBe(true);
    }, 60_000);
  },
);

/**
 * The resumed owner removed what it wrote under its old epoch, and the new owner's clean-up would
 * have: nothing unconfirmed is left, and nothing of the old epoch beyond its confirmed record.
 */
async function expectNoUnconfirmedWrites(
  cluster: OwnershipCluster,
  partition: number,
  pausedEpoch: number,
): Promise<void> {
  await waitFor(
    'no unconfirmed write left',
    async () => ((await cluster.unconfirmedDocuments(partition)) === 0 ? true : undefined),
    15_000,
  );
  const moved = await cluster.partitionRecord(partition);
  const confirmedSeq = moved?.closed.find((c) => c.epoch === pausedEpoch)?.seq ?? 0;
  for (const collection of ['messages', 'message_terms', 'message_changes', 'tombstones']) {
    const late = await cluster.db
      .collection(collection)
      .countDocuments({ 'own.p': partition, 'own.e': pausedEpoch, 'own.s': { $gt: confirmedSeq } });
    expect(late, collection).toBe(0);
  }
}
