/**
 * A former owner that was paused past its lease and then resumed makes no write count (ADR 0007,
 * Commit-then-confirm): two storage processes with ownership on, smtp-inbound publishing by
 * partition, and the owner of a busy user stopped with SIGSTOP in the middle of a commit of that
 * user's jobs (the moment its batch's body pack appears as a temporary file). The other replica
 * takes the partition and delivers everything; the paused one, resumed, goes on with the batch in
 * hand, writes it under its old epoch, fails its confirm and removes it. Checked from the mailbox
 * (every message accepted for the user in any attempt exactly once, before and after the resume)
 * and from the database (no document of the old epoch beyond what its record confirmed).
 */
import { readFileSync, watch } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLUSTER_BACKENDS, OwnershipCluster, waitFor, type Replica, type User } from './ownership-cluster.js';

/**
 * Loads sent at most looking for a batch in hand: the first without a pause, then up to four
 * pauses (each a separate trial).
 */
const ATTEMPTS = 5;
/** Messages accepted before the pause is armed, so the owner is busy delivering by then. */
const WARM_UP = 10;

describe.each(CLUSTER_BACKENDS)(
  'one owner per mailbox: an owner paused past its lease ($name)',
  ({ sqlite }) => {
    let cluster: OwnershipCluster;
    let users: User[] = [];

    beforeAll(async () => {
      cluster = await OwnershipCluster.start(
        {
          partitions: 4,
          leaseTtlMs: 3_000,
          ackWaitMs: 3_000,
          domain: 'paused.test',
          dirPrefix: 'postmesh-paused-',
          sqlite,
        },
        'storage-a',
      );
      await cluster.startReplica('storage-b');
      users = await cluster.createUsers(cluster.replicas[0] as Replica, 8);
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
      /**
       * Every token accepted for each user so far, over all attempts: only the test sends them mail,
       * so their INBOX must hold exactly these, each once. (A count of the INBOX taken at the start of
       * an attempt is no baseline: the mail an earlier attempt's load had accepted may still be on
       * its way, and arrive during this one.)
       */
      const accepted = new Map<string, string[]>();
      const history: string[] = [];
      /** The INBOX once it holds exactly `expected`; if it does not, says what it holds instead. */
      const settled = async (user: User, expected: readonly string[]): Promise<string[]> => {
        const tokens = await cluster.settledTokens(user.id, expected);
        if (tokens.join() !== expected.join()) {
          throw new Error(
            `${user.address}: ${tokens.length} messages, ${expected.length} accepted ` +
              `(attempts: ${history.join('; ')})\n${await cluster.inboxReport(user.id, expected)}`,
          );
        }
        return tokens;
      };

      for (let attempt = 0; attempt < ATTEMPTS && !caught; attempt++) {
        // A user whose partition the replica to pause owns now (it takes some back after a resume).
        const owners = await cluster.waitForOwners([front, paused]);
        const target = users.find((u) => owners.get(cluster.partitionOf(u.id))?.address === paused.address);
        if (target === undefined) throw new Error(`${paused.name} owns no user's partition`);
        const partition = cluster.partitionOf(target.id);
        const pausedEpoch = owners.get(partition)?.epoch as number;

        // Stop the owner in the middle of a commit: a batch's bodies are written as one pack, a
        // temporary file renamed once durable, before its documents are inserted and the batch is
        // confirmed. Only this user gets mail, so a pack written now is the paused owner's. (Polling
        // the consumer's ack-pending count instead mostly caught the owner between batches: it keeps
        // up with this load, and a resumed owner that holds jobs it has not begun gives them up.)
        let stoppedAt: number | undefined;
        let armed = false;
        const packs = watch(join(cluster.dir, 'blobs'), { recursive: true }, (_event, name) => {
          if (!armed || stoppedAt !== undefined || name === null || !name.endsWith('.tmp')) return;
          process.kill(pid, 'SIGSTOP');
          stoppedAt = Date.now();
        });
        const load = cluster.sendLoad(
          60,
          () => [target.address],
          // The first load is not paused and not waited for: the first pause comes with its jobs
          // still on their way (a mailbox count taken now would be no baseline for the next check).
          { accepted: WARM_UP, run: () => (armed = attempt > 0) },
          8,
        );
        const now = (await load.finally(() => packs.close())).get(target.address) ?? [];
        expect(now.length).toBeGreaterThan(40);
        const expected = [...(accepted.get(target.id) ?? []), ...now].sort();
        accepted.set(target.id, expected);
        history.push(
          `${attempt + 1}: ${target.address} partition ${partition} epoch ${pausedEpoch}, ${now.length} accepted, ` +
            (stoppedAt === undefined ? 'not paused' : 'paused'),
        );
        // Not paused: its messages are checked with the next attempt's.
        if (stoppedAt === undefined) continue;

        // The lease moves to the running replica, which delivers every message, including the
        // jobs the paused owner holds (they come back after ack_wait).
        await waitFor(
          'the partition moved',
          async () =>
            (await cluster.partitionRecord(partition))?.address === front.address ? true : undefined,
          20_000,
        );
        await settled(target, expected);
        const moved = await cluster.partitionRecord(partition);
        expect(moved?.epoch).toBeGreaterThan(pausedEpoch);
        // What counts of the old epoch: in the KV record, or in the SQLite file's pointer.
        const pointer = await cluster.commitPointer(partition);
        const confirmedSeq = pointer?.closed.find((c) => c.epoch === pausedEpoch)?.seq ?? 0;

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
        await settled(target, expected);
        expect(paused.proc.running).toBe(true);
        history.push(`batch ${caught ? '' : 'not '}refused after the resume`);
      }
      // At least one pause caught the owner with a batch that it then wrote and could not confirm.
      expect(caught).toBe(true);
      // Every load's messages, paused or not, are in their user's INBOX exactly once.
      for (const user of users) {
        const expected = accepted.get(user.id);
        if (expected !== undefined) await settled(user, expected);
      }
    }, 170_000);
  },
);
