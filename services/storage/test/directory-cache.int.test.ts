/**
 * Recipient resolution from memory (src/directory/cache.ts) on two storage replicas sharing one
 * database and one NATS: repeated resolutions read nothing, and a Directory change made on either
 * replica reaches the other's answers (over `directory.changed`, with the storage service's own
 * NATS permissions on the second replica).
 */
import { directory } from '@postmesh/contracts';
import type { CommandStartedEvent } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StorageApp } from '../src/app.js';
import { Collections } from '../src/db/schema.js';
import {
  directoryApi,
  startSecondReplica,
  startStorageHarness,
  type DirectoryApi,
  type SecondReplica,
  type StorageHarness,
} from './harness.js';

const PASSWORD = 'correct horse battery';
const DIRECTORY_COLLECTIONS = new Set<string>([
  Collections.domains,
  Collections.addresses,
  Collections.users,
]);

let h: StorageHarness;
/** Replica A, over gRPC. */
let a: DirectoryApi;
/** Replica B: a second storage app on the same database and NATS, as the `storage` identity. */
let b: StorageApp;
let replicaB: SecondReplica | undefined;

beforeAll(async () => {
  h = await startStorageHarness({ nats: true });
  a = directoryApi(h.directory);
  replicaB = await startSecondReplica(h);
  b = replicaB.app;
});
afterAll(async () => {
  await replicaB?.stop();
  await h?.stop();
});

/** What replica B answers for an address (B's Directory, in process). */
async function resolveOnB(address: string, messageSize = 0): Promise<string | undefined> {
  const answer = await b.directory.resolveRecipient({ address, messageSize });
  if (!answer.ok) throw new Error(answer.error.message);
  return answer.value.result?.$case;
}

async function resolveOnA(address: string): Promise<string | undefined> {
  return (await a.resolveRecipient({ address, messageSize: 0 })).result?.$case;
}

/** Polls until `read` answers `expected`: the change feed is asynchronous (core NATS). */
async function eventually(read: () => Promise<string | undefined>, expected: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  let last = await read();
  while (last !== expected) {
    if (Date.now() > deadline) throw new Error(`still ${String(last)}, expected ${expected}`);
    await new Promise((r) => setTimeout(r, 50));
    last = await read();
  }
}

/** Directory reads (find commands on domains, addresses, users) the body of `run` sends. */
async function directoryReads(run: () => Promise<unknown>): Promise<number> {
  let reads = 0;
  const count = (event: CommandStartedEvent): void => {
    const collection: unknown = event.command[event.commandName];
    if (
      event.commandName === 'find' &&
      typeof collection === 'string' &&
      DIRECTORY_COLLECTIONS.has(collection)
    )
      reads += 1;
  };
  h.mongo.on('commandStarted', count);
  try {
    await run();
  } finally {
    h.mongo.off('commandStarted', count);
  }
  return reads;
}

/**
 * Polls until one resolution reads nothing, i.e. until no change announced earlier is still on
 * its way to drop the answer again (bounded: the feed delivers within milliseconds when idle).
 */
async function answeredFromMemory(resolve: () => Promise<unknown>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await directoryReads(resolve)) > 0) {
    if (Date.now() > deadline) throw new Error('B still reads the database after 10 s');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('recipient resolution from memory', () => {
  it('reads the database once per address, not once per RCPT', async () => {
    await a.createDomain({ name: 'cache.test', defaultQuotaBytes: 0 });
    await a.createUser({ address: 'ann@cache.test', password: PASSWORD });
    const first = await directoryReads(() => resolveOnB('ann@cache.test', 10_000));
    expect(first).toBeGreaterThan(0);
    // A's announcements of those two writes reach B over core NATS in their own time, and each
    // drops B's answers (that is the feed working): measured once B has taken them all in.
    await answeredFromMemory(() => resolveOnB('ann@cache.test', 10_000));
    const repeated = await directoryReads(async () => {
      for (let i = 0; i < 20; i += 1) expect(await resolveOnB('Ann@Cache.test', 10_000)).toBe('users');
    });
    expect(repeated).toBe(0);
    // Unknown addresses are remembered too (a dictionary attack costs no reads either).
    await resolveOnB('nobody@cache.test');
    expect(await directoryReads(() => resolveOnB('nobody@cache.test'))).toBe(0);
  });

  it("sees every other replica's change: a new user, an alias, a suspension, a deletion", async () => {
    const domain = (await a.createDomain({ name: 'feed.test', defaultQuotaBytes: 0 })).domain;
    if (domain === undefined) throw new Error('no domain');
    // B remembers that these do not exist.
    expect(await resolveOnB('bob@feed.test')).toBe('notFound');
    expect(await resolveOnB('team@feed.test')).toBe('notFound');

    const bob = (await a.createUser({ address: 'bob@feed.test', password: PASSWORD })).user;
    if (bob === undefined) throw new Error('no user');
    await eventually(() => resolveOnB('bob@feed.test'), 'users');

    // A change on B reaches A (B publishes with the storage service's permissions).
    expect(await resolveOnA('team@feed.test')).toBe('notFound');
    const alias = await b.directory.createAlias({ address: 'team@feed.test', userIds: [bob.id] });
    expect(alias.ok).toBe(true);
    await eventually(() => resolveOnA('team@feed.test'), 'users');

    await a.setDomainStatus({ domainId: domain.id, status: directory.DomainStatus.SUSPENDED });
    await eventually(() => resolveOnB('bob@feed.test'), 'suspended');
    await a.setDomainStatus({ domainId: domain.id, status: directory.DomainStatus.ACTIVE });
    await eventually(() => resolveOnB('bob@feed.test'), 'users');

    expect(await resolveOnA('bob@feed.test')).toBe('users');
    const deleted = await b.directory.deleteUser({ userId: bob.id, purgeData: true });
    expect(deleted.ok).toBe(true);
    await eventually(() => resolveOnA('bob@feed.test'), 'notFound');
    await eventually(() => resolveOnA('team@feed.test'), 'notFound');
  });
});
