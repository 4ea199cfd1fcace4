/**
 * Verified credentials kept in memory (src/directory/credential-cache.ts) on two storage replicas
 * sharing one database and one NATS: a repeated login reads nothing, a wrong password is still
 * refused, and every change that must end a login — a disabled user, a new password, a revoked
 * app password, a suspended domain — takes effect on both replicas at once, whoever made it.
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
const NEW_PASSWORD = 'staple gun orchard 42';
const READ_COLLECTIONS = new Set<string>([
  Collections.domains,
  Collections.addresses,
  Collections.users,
  Collections.appPasswords,
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

type Outcome = string;

/** `success`, or the failure reason's name. */
function outcomeOf(answer: directory.AuthenticateResponse): Outcome {
  const result = answer.result;
  if (result?.$case === 'success') return 'success';
  if (result?.$case === 'failure') {
    return directory.authFailureReasonToJSON(result.value.reason).replace('AUTH_FAILURE_REASON_', '');
  }
  return 'none';
}

const request = (
  address: string,
  password: string,
  protocol: directory.Protocol = directory.Protocol.IMAP,
) => ({
  address,
  password,
  protocol,
  remoteIp: '192.0.2.1',
  totpCode: '',
});

async function loginOnA(address: string, password: string, protocol?: directory.Protocol): Promise<Outcome> {
  return outcomeOf(await a.authenticate(request(address, password, protocol)));
}

async function loginOnB(address: string, password: string, protocol?: directory.Protocol): Promise<Outcome> {
  const answer = await b.directory.authenticate(request(address, password, protocol));
  if (!answer.ok) throw new Error(answer.error.message);
  return outcomeOf(answer.value);
}

/** Polls until `read` answers `expected`: the change feed between replicas is asynchronous. */
async function eventually(read: () => Promise<Outcome>, expected: Outcome): Promise<void> {
  const deadline = Date.now() + 10_000;
  let last = await read();
  while (last !== expected) {
    if (Date.now() > deadline) throw new Error(`still ${last}, expected ${expected}`);
    await new Promise((r) => setTimeout(r, 50));
    last = await read();
  }
}

/** Reads of the Directory's collections (find commands) the body of `run` sends. */
async function directoryReads(run: () => Promise<unknown>): Promise<number> {
  let reads = 0;
  const count = (event: CommandStartedEvent): void => {
    const collection: unknown = event.command[event.commandName];
    if (event.commandName === 'find' && typeof collection === 'string' && READ_COLLECTIONS.has(collection))
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

async function newUser(address: string): Promise<directory.User> {
  const user = (await a.createUser({ address, password: PASSWORD })).user;
  if (user === undefined) throw new Error('no user');
  return user;
}

describe('verified credentials in memory', () => {
  let domainId: string;

  beforeAll(async () => {
    const domain = (await a.createDomain({ name: 'auth-cache.test', defaultQuotaBytes: 0 })).domain;
    if (domain === undefined) throw new Error('no domain');
    domainId = domain.id;
  });

  it('answers a repeated login without reading the database, and never a wrong password', async () => {
    await newUser('ann@auth-cache.test');
    expect(await directoryReads(() => loginOnB('ann@auth-cache.test', PASSWORD))).toBeGreaterThan(0);
    // The user's creation on A reaches B asynchronously and drops B's memory once more.
    await eventually(
      async () => String(await directoryReads(() => loginOnB('ann@auth-cache.test', PASSWORD))),
      '0',
    );
    const hitsBefore = b.credentials.hits;
    const repeated = await directoryReads(async () => {
      for (let i = 0; i < 10; i += 1) expect(await loginOnB('ann@auth-cache.test', PASSWORD)).toBe('success');
    });
    expect(repeated).toBe(0);
    expect(b.credentials.hits - hitsBefore).toBe(10);
    // Another password for the same login is checked in full, and refused.
    expect(await directoryReads(() => loginOnB('ann@auth-cache.test', `${PASSWORD}!`))).toBeGreaterThan(0);
    expect(await loginOnB('ann@auth-cache.test', `${PASSWORD}!`)).toBe('INVALID_CREDENTIALS');
    expect(await loginOnB('ann@auth-cache.test', PASSWORD.toUpperCase())).toBe('INVALID_CREDENTIALS');
    // A success over IMAP says nothing about the web console (app passwords are never valid there).
    expect(await loginOnB('ann@auth-cache.test', PASSWORD, directory.Protocol.WEB)).toBe('success');
  });

  it('never answers a web sign-in from memory (it may need a one-time code as well)', async () => {
    await newUser('web@auth-cache.test');
    expect(await loginOnB('web@auth-cache.test', PASSWORD, directory.Protocol.WEB)).toBe('success');
    const hitsBefore = b.credentials.hits;
    const reads = await directoryReads(async () => {
      for (let i = 0; i < 3; i += 1) {
        expect(await loginOnB('web@auth-cache.test', PASSWORD, directory.Protocol.WEB)).toBe('success');
      }
    });
    expect(reads).toBeGreaterThanOrEqual(3);
    expect(b.credentials.hits).toBe(hitsBefore);
  });

  it('refuses a disabled user at once on both replicas, and lets them in again when enabled', async () => {
    const user = await newUser('bob@auth-cache.test');
    expect(await loginOnA('bob@auth-cache.test', PASSWORD)).toBe('success');
    expect(await loginOnB('bob@auth-cache.test', PASSWORD)).toBe('success');
    await a.updateUser({ userId: user.id, status: directory.UserStatus.DISABLED });
    expect(await loginOnA('bob@auth-cache.test', PASSWORD)).toBe('USER_DISABLED');
    await eventually(() => loginOnB('bob@auth-cache.test', PASSWORD), 'USER_DISABLED');
    const enabled = await b.directory.updateUser(
      directory.UpdateUserRequest.fromPartial({ userId: user.id, status: directory.UserStatus.ACTIVE }),
    );
    expect(enabled.ok).toBe(true);
    expect(await loginOnB('bob@auth-cache.test', PASSWORD)).toBe('success');
    await eventually(() => loginOnA('bob@auth-cache.test', PASSWORD), 'success');
  });

  it('refuses the old password after a change, on both replicas', async () => {
    const user = await newUser('cat@auth-cache.test');
    expect(await loginOnA('cat@auth-cache.test', PASSWORD)).toBe('success');
    expect(await loginOnB('cat@auth-cache.test', PASSWORD)).toBe('success');
    await a.setPassword({ userId: user.id, password: NEW_PASSWORD, revokeAppPasswords: false });
    expect(await loginOnA('cat@auth-cache.test', PASSWORD)).toBe('INVALID_CREDENTIALS');
    await eventually(() => loginOnB('cat@auth-cache.test', PASSWORD), 'INVALID_CREDENTIALS');
    expect(await loginOnB('cat@auth-cache.test', NEW_PASSWORD)).toBe('success');
  });

  it('refuses a revoked app password, on both replicas', async () => {
    const user = await newUser('dan@auth-cache.test');
    const created = await a.createAppPassword({ userId: user.id, label: 'phone', protocols: [] });
    const secret = created.secret;
    const id = created.appPassword?.id ?? '';
    expect(await loginOnA('dan@auth-cache.test', secret)).toBe('success');
    expect(await loginOnB('dan@auth-cache.test', secret)).toBe('success');
    await a.deleteAppPassword({ userId: user.id, appPasswordId: id });
    expect(await loginOnA('dan@auth-cache.test', secret)).toBe('INVALID_CREDENTIALS');
    await eventually(() => loginOnB('dan@auth-cache.test', secret), 'INVALID_CREDENTIALS');
  });

  it('refuses every user of a suspended domain, on both replicas', async () => {
    await newUser('eve@auth-cache.test');
    expect(await loginOnB('eve@auth-cache.test', PASSWORD)).toBe('success');
    const suspended = await b.directory.setDomainStatus({
      domainId,
      status: directory.DomainStatus.SUSPENDED,
    });
    expect(suspended.ok).toBe(true);
    expect(await loginOnB('eve@auth-cache.test', PASSWORD)).toBe('DOMAIN_SUSPENDED');
    await eventually(() => loginOnA('eve@auth-cache.test', PASSWORD), 'DOMAIN_SUSPENDED');
    await a.setDomainStatus({ domainId, status: directory.DomainStatus.ACTIVE });
    await eventually(() => loginOnB('eve@auth-cache.test', PASSWORD), 'success');
  });
});
