/**
 * Storage scaled 1 → 3 → 1 replicas under SMTP and IMAP load (ADR 0007, Assignment): partitions
 * are handed over as replicas join and leave (gracefully, as Kubernetes scales a Deployment),
 * smtp-inbound keeps queuing by partition and imap keeps routing each user's calls to the owner.
 * Checked as users would notice: every accepted message is in its mailbox exactly once, no UID
 * an IMAP client saw ever names another message (RFC 9051 §2.3.1.1, with UIDVALIDITY unchanged),
 * and every flag change that got OK is there at the end.
 */
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLUSTER_BACKENDS, OwnershipCluster, sleep, type Replica, type User } from './ownership-cluster.js';

interface ImapObservations {
  /** UID → token of every message a session saw, and the UIDs seen with two different tokens. */
  readonly tokens: Map<number, string>;
  readonly reused: string[];
  readonly uidValidities: Set<string>;
  /** Keywords whose STORE got OK, with the UID they were set on. */
  readonly stored: Map<string, number>;
  commands: number;
  refused: number;
}

function imapClient(port: number, user: User): ImapFlow {
  return new ImapFlow({
    host: '127.0.0.1',
    port,
    secure: false,
    doSTARTTLS: false,
    auth: { user: user.address, pass: user.password },
    logger: false,
    // Routing refusals during a hand-off answer NO: fail the command, never wait for ever.
    socketTimeout: 20_000,
  });
}

/** The load's token, from the Subject (`load <token>`, ENVELOPE: no body read). */
function tokenOf(subject: string | undefined): string | undefined {
  return /^load (\S+)$/.exec(subject ?? '')?.[1];
}

/** Records which token each UID names; a UID seen with another token is a reuse. */
function observe(seen: ImapObservations, uid: number, token: string): void {
  const known = seen.tokens.get(uid);
  if (known === undefined) seen.tokens.set(uid, token);
  else if (known !== token) seen.reused.push(`UID ${uid}: ${known} then ${token}`);
}

/**
 * One IMAP session after another until `running()` says stop: SELECT INBOX, FETCH every
 * message's token, STORE a new keyword on one of them. Commands refused or cut during a hand-off
 * are not OK'd and so not counted; the session reconnects.
 */
async function imapLoad(
  port: number,
  user: User,
  seen: ImapObservations,
  running: () => boolean,
): Promise<void> {
  let n = 0;
  while (running()) {
    const client = imapClient(port, user);
    client.on('error', () => undefined);
    try {
      await client.connect();
      const lock = await client.getMailboxLock('INBOX');
      try {
        while (running()) {
          const box = client.mailbox;
          if (box !== false) seen.uidValidities.add(String(box.uidValidity));
          const uids: number[] = [];
          for await (const msg of client.fetch('1:*', { uid: true, envelope: true }, { uid: true })) {
            const token = tokenOf(msg.envelope?.subject);
            if (token !== undefined) observe(seen, msg.uid, token);
            uids.push(msg.uid);
          }
          seen.commands += 1;
          const uid = uids[n % Math.max(1, uids.length)];
          if (uid !== undefined) {
            const keyword = `k${user.id.slice(-4)}x${n}`;
            n += 1;
            if (await client.messageFlagsAdd(String(uid), [keyword], { uid: true }))
              seen.stored.set(keyword, uid);
            else seen.refused += 1;
            seen.commands += 1;
          }
          await sleep(300);
        }
      } finally {
        lock.release();
      }
    } catch {
      seen.refused += 1;
      await sleep(200);
    } finally {
      await client.logout().catch(() => client.close());
    }
  }
}

describe.each(CLUSTER_BACKENDS)(
  'one owner per mailbox: scaling storage 1 → 3 → 1 under load ($name)',
  ({ sqlite }) => {
    let cluster: OwnershipCluster;
    let users: User[] = [];

    beforeAll(async () => {
      cluster = await OwnershipCluster.start(
        {
          partitions: 8,
          // The default lease: the hand-offs here are graceful and do not wait for it, and a
          // shorter one expires needlessly when the machine is starved of CPU.
          leaseTtlMs: 6_000,
          ackWaitMs: 6_000,
          domain: 'scale.test',
          dirPrefix: 'postmesh-scale-',
          sqlite,
        },
        'storage-a',
      );
      const first = cluster.replicas[0] as Replica;
      users = await cluster.createUsers(first, 4);
      await Promise.all([cluster.startSmtp(first), cluster.startImap(first)]);
    }, 120_000);

    afterAll(async () => {
      await cluster?.stop();
    }, 60_000);

    it('keeps every accepted message exactly once, every UID for one message, every OK’d flag change', async () => {
      const first = cluster.replicas[0] as Replica;
      await cluster.waitForOwners([first]);
      const seen = new Map<string, ImapObservations>(
        users.map((u) => [
          u.id,
          {
            tokens: new Map(),
            reused: [],
            uidValidities: new Set(),
            stored: new Map(),
            commands: 0,
            refused: 0,
          },
        ]),
      );
      let loading = true;
      const accepted = new Map<string, string[]>();
      const smtpLoad = (async () => {
        for (let round = 0; loading && round < 40; round++) {
          const more = await cluster.sendLoad(
            8,
            (i) => [(users[i % users.length] as User).address],
            undefined,
            2,
          );
          for (const [rcpt, tokens] of more) accepted.set(rcpt, [...(accepted.get(rcpt) ?? []), ...tokens]);
        }
      })();
      const imapSessions = users.map((u) =>
        imapLoad(cluster.imapPort, u, seen.get(u.id) as ImapObservations, () => loading),
      );

      try {
        await sleep(3_000);
        // Scale up: two replicas join and take their share of the partitions.
        const [b, c] = await Promise.all([
          cluster.startReplica('storage-b'),
          cluster.startReplica('storage-c'),
        ]);
        await cluster.waitForOwners([first, b, c]);
        await sleep(5_000);
        // Scale down, as a Deployment does: SIGTERM, each hands its partitions over before it exits.
        await Promise.all([b.proc.stop(15_000), c.proc.stop(15_000)]);
        await cluster.waitForOwners([first], 20_000);
        await sleep(2_000);
      } finally {
        loading = false;
        await smtpLoad;
        await Promise.all(imapSessions);
      }

      // Flag changes got OK while partitions moved (on a loaded machine a session is slow).
      const okd = [...seen.values()].reduce((n, o) => n + o.stored.size, 0);
      expect(okd, "flag changes OK'd").toBeGreaterThan(4);
      for (const user of users) {
        const expected = (accepted.get(user.address) ?? []).sort();
        const observed = seen.get(user.id) as ImapObservations;
        expect(expected.length, `${user.address}: mail accepted`).toBeGreaterThan(3);
        expect(observed.commands, `${user.address}: IMAP commands answered`).toBeGreaterThan(2);
        // Every accepted message exactly once.
        expect(await cluster.settledTokens(user.id, expected), user.address).toEqual(expected);

        // A fresh session sees the same UIDs for the same messages and every OK'd keyword.
        const client = imapClient(cluster.imapPort, user);
        await client.connect();
        try {
          const lock = await client.getMailboxLock('INBOX');
          try {
            const box = client.mailbox;
            if (box !== false) observed.uidValidities.add(String(box.uidValidity));
            const flags = new Map<number, Set<string>>();
            for await (const msg of client.fetch(
              '1:*',
              { uid: true, flags: true, envelope: true },
              { uid: true },
            )) {
              const token = tokenOf(msg.envelope?.subject);
              if (token !== undefined) observe(observed, msg.uid, token);
              flags.set(msg.uid, msg.flags ?? new Set());
            }
            expect(observed.reused, `${user.address}: UIDs naming two messages`).toEqual([]);
            expect([...observed.uidValidities], `${user.address}: UIDVALIDITY`).toHaveLength(1);
            const lost = [...observed.stored].filter(
              ([keyword, uid]) => flags.get(uid)?.has(keyword) !== true,
            );
            expect(lost, `${user.address}: OK'd flag changes missing`).toEqual([]);
          } finally {
            lock.release();
          }
        } finally {
          await client.logout().catch(() => client.close());
        }
      }
    }, 170_000);
  },
);
