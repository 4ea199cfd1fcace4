/**
 * Owner routing end to end (ADR 0007, Routing): two real storage processes with ownership on
 * share the users of one FerretDB; a client with the ownership map (OwnershipView over NATS KV,
 * as the `imap` identity) reaches the owner of each user, a replica refuses the users it does not
 * own with "not owner", and after one replica leaves, its users are served by the other.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { OwnershipView, partitionOf } from '@postmesh/bus';
import { ErrorReason, directory, errorDetailOf, mailstore } from '@postmesh/contracts';
import {
  startService,
  startTestEnvironment,
  type RunningService,
  type TestEnvironment,
} from '@postmesh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectStorage, type StorageClient } from '../src/index.js';

const PARTITIONS = 8;
const USERS = 12;

type Replica = RunningService;

async function waitFor(what: string, predicate: () => boolean | Promise<boolean>, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('storage client owner routing with two storage replicas', () => {
  let env: TestEnvironment;
  let dir: string;
  let nc: NatsConnection;
  let view: OwnershipView;
  let operator: StorageClient;
  let imap: StorageClient;
  const replicas: Replica[] = [];
  const users: { id: string; address: string }[] = [];

  async function startReplica(name: string): Promise<Replica> {
    const replica = await startService('storage', {
      env,
      dir,
      name,
      // Both replicas share `dir` and so one body store, as the chart's shared stores: a new
      // owner reads old bodies.
      vars: {
        POSTMESH_STORAGE_OWNERSHIP: 'true',
        POSTMESH_STORAGE_PARTITIONS: String(PARTITIONS),
        POSTMESH_STORAGE_LEASE_TTL_MS: '2000',
      },
    });
    replicas.push(replica);
    return replica;
  }

  /** One made-up user id per partition, to read the owner of every partition from the view. */
  const probes = Array.from({ length: PARTITIONS }, (_, p) => {
    for (let i = 0; ; i++) if (partitionOf(`probe-${i}`, PARTITIONS) === p) return `probe-${i}`;
  });
  /** The owner address of every partition (undefined: the partition has none right now). */
  const owners = (): (string | undefined)[] => probes.map((id) => view.routeOf(id)?.address);

  beforeAll(async () => {
    env = await startTestEnvironment();
    dir = mkdtempSync(join(tmpdir(), 'postmesh-routing-'));
    await startReplica('storage-a');
    await startReplica('storage-b');
    // The client side reads the ownership map as imap does, with imap's NATS permissions.
    nc = await connect(env.natsOptions('imap'));
    view = await OwnershipView.open(nc, { partitions: PARTITIONS });
    operator = connectStorage({ address: replicas[0]!.address, security: env.security('operator') });
    imap = connectStorage({ address: replicas[0]!.address, security: env.security('imap'), routes: view });

    await operator.directory.createDomain(
      directory.CreateDomainRequest.fromPartial({ name: 'routing.test' }),
    );
    for (let i = 0; i < USERS; i++) {
      const address = `user${i}@routing.test`;
      const { user } = await operator.directory.createUser(
        directory.CreateUserRequest.fromPartial({ address, password: 'Correct-Horse-Battery-9' }),
      );
      users.push({ id: user!.id, address });
    }
  });

  afterAll(async () => {
    imap?.close();
    operator?.close();
    view?.stop();
    await nc?.close();
    await Promise.all(replicas.map((r) => r.proc.stop()));
    await env?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  const append = (userId: string, subject: string) =>
    imap.mailstore.appendMessage({
      userId,
      mailbox: { selector: { $case: 'path', value: 'INBOX' } },
      flags: [],
      keywords: [],
      internalDate: undefined,
      message: Buffer.from(`From: a@routing.test\r\nSubject: ${subject}\r\n\r\nbody of ${subject}\r\n`),
    });

  async function subjects(userId: string): Promise<string[]> {
    const { mailboxes } = await imap.mailstore.listMailboxes(
      mailstore.ListMailboxesRequest.fromPartial({ userId, pattern: 'INBOX' }),
    );
    const inbox = mailboxes.find((m) => m.path === 'INBOX');
    const found: string[] = [];
    for await (const message of imap.mailstore.fetchMessages(
      mailstore.FetchMessagesRequest.fromPartial({
        userId,
        mailboxId: inbox!.id,
        uids: { ranges: [{ first: 1, last: 0 }] },
        fields: [mailstore.FetchField.HEADER],
      }),
    )) {
      found.push(/Subject: (.*)\r\n/.exec(message.header.toString('utf8'))?.[1] ?? '');
    }
    return found.sort();
  }

  it('calls reach the owner of each user; the other replica refuses them with "not owner"', async () => {
    const [a, b] = replicas as [Replica, Replica];
    await waitFor('both replicas own partitions and every partition has an owner', () => {
      const seen = owners();
      return seen.every((o) => o !== undefined) && seen.includes(a.address) && seen.includes(b.address);
    });
    // Users land in partitions of both replicas.
    expect(new Set(users.map((u) => view.routeOf(u.id)?.address))).toEqual(new Set([a.address, b.address]));
    for (const user of users) await append(user.id, `first for ${user.address}`);
    for (const user of users) expect(await subjects(user.id)).toEqual([`first for ${user.address}`]);

    // Straight to the replica that is not the owner (no map): refused before anything runs.
    for (const user of users) {
      const owner = view.routeOf(user.id)!.address;
      const other = owner === a.address ? b.address : a.address;
      const direct = connectStorage({ address: other, security: env.security('imap') });
      try {
        const error = await direct.mailstore
          .getQuota(mailstore.GetQuotaRequest.fromPartial({ userId: user.id }))
          .then(
            () => undefined,
            (e: unknown) => e,
          );
        expect(error).toMatchObject({ code: status.UNAVAILABLE });
        expect(errorDetailOf(error)?.reason).toBe(ErrorReason.NOT_OWNER);
      } finally {
        direct.close();
      }
    }
  });

  it('after one replica leaves, the client reaches the new owner of its users', async () => {
    const [a, b] = replicas as [Replica, Replica];
    const movedUsers = users.filter((u) => view.routeOf(u.id)?.address === a.address);
    expect(movedUsers.length).toBeGreaterThan(0);
    // A graceful stop hands a's partitions over at once (no lease expiry to wait for).
    await a.proc.stop();
    await waitFor('b owns every partition', () => owners().every((o) => o === b.address));
    for (const user of users) await append(user.id, `second for ${user.address}`);
    for (const user of users) {
      expect(await subjects(user.id)).toEqual([`first for ${user.address}`, `second for ${user.address}`]);
    }
  });
});
