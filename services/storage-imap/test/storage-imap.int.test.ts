/**
 * storage-imap as production would run it (ADR 0010): the built `services/storage-imap/dist/main.js`
 * beside a plain storage replica, ownership on, real nats-server and FerretDB, a real IMAP client
 * over a socket. A user the combined process owns is served in-process (its Mailstore calls never
 * reach a gRPC server); a user the other replica owns is served through gRPC to that owner — both
 * with the same IMAP answers, failures included.
 */
import { randomBytes } from 'node:crypto';
import { connect as tcpConnect, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { OwnershipView } from '@postmesh/bus';
import { DirectoryServiceClient, type directory } from '@postmesh/contracts';
import {
  freePort,
  metricValue,
  startService,
  startTestEnvironment,
  waitFor,
  type RunningService,
  type TestEnvironment,
} from '@postmesh/testing';
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const PARTITIONS = 4;

interface User {
  readonly id: string;
  readonly address: string;
  readonly password: string;
}

let env: TestEnvironment;
let dir: string;
let nc: NatsConnection;
let routes: OwnershipView;
let combined: RunningService;
let other: RunningService;
let imapPort: number;
let directoryClient: DirectoryServiceClient;

function call<T>(run: (cb: (error: ServiceError | null, value: T) => void) => unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    run((error, value) => (error ? reject(error) : resolve(value)));
  });
}

const inProcess = (): Promise<number> =>
  metricValue(combined.opsPort, 'postmesh_imap_storage_calls_total', { path: 'in-process' });
const overGrpc = (): Promise<number> =>
  metricValue(combined.opsPort, 'postmesh_imap_storage_calls_total', { path: 'grpc' });
/** AppendMessage calls the plain replica's gRPC server answered OK. */
const appendsServedByOther = (): Promise<number> =>
  metricValue(other.opsPort, 'postmesh_grpc_server_duration_seconds_count', {
    method: '/postmesh.mailstore.v1.MailstoreService/AppendMessage',
    code: 'OK',
  });

async function createUser(): Promise<User> {
  const address = `u${randomBytes(4).toString('hex')}@example.test`;
  const password = `Pw-${randomBytes(9).toString('base64url')}`;
  const response = await call<directory.CreateUserResponse>((cb) =>
    directoryClient.createUser({ address, password, displayName: address }, new Metadata(), cb),
  );
  const id = response.user?.id;
  if (id === undefined) throw new Error('CreateUser returned no user');
  return { id, address, password };
}

/** A new user whose partition `owner` (a `host:port`) owns. */
async function userOwnedBy(owner: string): Promise<User> {
  for (let i = 0; i < 64; i++) {
    const user = await createUser();
    if (routes.routeOf(user.id)?.address === owner) return user;
  }
  throw new Error(`no user of ${owner} among 64 new users`);
}

const MESSAGE = Buffer.from(
  'From: Alice <alice@example.org>\r\nTo: Bob <bob@example.test>\r\nSubject: co-located\r\n' +
    'Message-ID: <colocated@example.org>\r\n\r\nServed where the mailbox lives.\r\n',
);

/** One IMAP session against the combined process: APPEND, FETCH, STORE, EXPUNGE and two refusals. */
async function session(user: User): Promise<void> {
  const client = new ImapFlow({
    host: '127.0.0.1',
    port: imapPort,
    secure: false,
    doSTARTTLS: false,
    auth: { user: user.address, pass: user.password },
    logger: false,
  });
  await client.connect();
  try {
    const appended = await client.append('INBOX', MESSAGE, ['\\Flagged']);
    expect(appended).toMatchObject({ uid: 1 });
    const lock = await client.getMailboxLock('INBOX');
    try {
      const fetched = await client.fetchOne('1', { uid: true, flags: true, source: true }, { uid: true });
      expect(fetched).not.toBe(false);
      if (fetched === false) return;
      expect(fetched.source?.equals(MESSAGE)).toBe(true);
      expect([...(fetched.flags ?? [])]).toEqual(['\\Flagged']);
      expect(await client.messageFlagsAdd('1', ['\\Seen'], { uid: true })).toBe(true);
      const flagged = await client.fetchOne('1', { flags: true }, { uid: true });
      expect(flagged === false ? [] : [...(flagged.flags ?? [])].sort()).toEqual(['\\Flagged', '\\Seen']);
      // STORE \Deleted then EXPUNGE (UID EXPUNGE, RFC 4315) removes it.
      expect(await client.messageDelete('1', { uid: true })).toBe(true);
      expect(client.mailbox === false ? -1 : client.mailbox.exists).toBe(0);
    } finally {
      lock.release();
    }
    // Storage's refusals reach the client as IMAP answers: NOT_FOUND as NO [TRYCREATE] /
    // NO [NONEXISTENT] (RFC 9051 §7.1), not as a failure of the channel.
    await expect(client.append('No/Such/Box', MESSAGE)).rejects.toMatchObject({
      serverResponseCode: 'TRYCREATE',
    });
    await expect(client.mailboxOpen('No/Such/Box')).rejects.toThrow();
    const status = await client.status('INBOX', { messages: true, uidNext: true });
    expect(status).toMatchObject({ messages: 0, uidNext: 2 });
  } finally {
    await client.logout();
  }
}

beforeAll(async () => {
  env = await startTestEnvironment();
  dir = mkdtempSync(join(tmpdir(), 'postmesh-storage-imap-'));
  const ownership = {
    POSTMESH_STREAM_REPLICAS: '1',
    POSTMESH_STORAGE_OWNERSHIP: 'true',
    POSTMESH_STORAGE_PARTITIONS: String(PARTITIONS),
    POSTMESH_STORAGE_LEASE_TTL_MS: '6000',
  };
  const grpcPort = await freePort();
  imapPort = await freePort();
  // Both replicas share the directory: the same KEK and body store, as replicas of one cluster.
  combined = await startService('storage-imap', {
    env,
    dir,
    grpcPort,
    vars: {
      ...ownership,
      POSTMESH_STORAGE_GRPC: `127.0.0.1:${grpcPort}`,
      POSTMESH_IMAP_PORT: String(imapPort),
      POSTMESH_IMAPS_PORT: String(await freePort()),
      POSTMESH_MANAGESIEVE_ENABLED: 'false',
      POSTMESH_IMAP_DATA_DIR: join(dir, 'imap'),
      POSTMESH_IMAP_ALLOW_PLAINTEXT: 'true',
      POSTMESH_AUTH_BASE_DELAY_MS: '0',
    },
  });
  other = await startService('storage', { env, dir, name: 'storage-other', vars: ownership });
  nc = await connect(env.natsOptions('operator'));
  routes = await OwnershipView.open(nc, { partitions: PARTITIONS });
  // Partitions are shared between the two replicas once the second has taken its part.
  await waitFor('partitions shared by both replicas', async () => {
    const owners = new Set<string>();
    // Forty ids land in every one of the four partitions but with a chance of 4·(3/4)^40.
    for (let probe = 0; probe < 40; probe++) {
      const route = await routes.lookup(`partition-probe-${probe}`);
      if (route !== undefined) owners.add(route.address);
    }
    return owners.has(combined.address) && owners.has(other.address) ? true : undefined;
  });
  directoryClient = new DirectoryServiceClient(
    combined.address,
    env.security('operator').grpcClientCredentials(),
  );
  await call<directory.CreateDomainResponse>((cb) =>
    directoryClient.createDomain({ name: 'example.test', defaultQuotaBytes: 0 }, new Metadata(), cb),
  );
}, 180_000);

afterAll(async () => {
  directoryClient?.close();
  routes?.stop();
  await nc?.close();
  await Promise.all([combined?.stop(10_000), other?.stop(10_000)]);
  await env?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('storage-imap: IMAP at the owner', () => {
  it('serves a user it owns in-process: no Mailstore call crosses gRPC', async () => {
    const user = await userOwnedBy(combined.address);
    const [localBefore, grpcBefore, otherBefore] = [
      await inProcess(),
      await overGrpc(),
      await appendsServedByOther(),
    ];
    await session(user);
    expect(await inProcess()).toBeGreaterThan(localBefore + 5);
    expect(await overGrpc()).toBe(grpcBefore);
    expect(await appendsServedByOther()).toBe(otherBefore);
  });

  it('sends a user the other replica owns over gRPC to that owner, with the same answers', async () => {
    const user = await userOwnedBy(other.address);
    const [localBefore, grpcBefore, otherBefore] = [
      await inProcess(),
      await overGrpc(),
      await appendsServedByOther(),
    ];
    await session(user);
    expect(await inProcess()).toBe(localBefore);
    expect(await overGrpc()).toBeGreaterThan(grpcBefore + 5);
    // The successful APPEND; the refused one is counted with its own code.
    expect(await appendsServedByOther()).toBe(otherBefore + 1);
  });

  it("tells an IDLE session of its owner's change in-process, and of the other replica's over NATS", async () => {
    const [mine, theirs] = [await userOwnedBy(combined.address), await userOwnedBy(other.address)];
    // Every replica still announces its changes over NATS, stamped with the process that made them.
    const heard: string[] = [];
    const sub = nc.subscribe(`mailbox.changed.${mine.id}`, {
      callback: (_error, msg) => {
        heard.push(msg.headers?.get('Postmesh-Origin') ?? '');
      },
    });
    try {
      for (const user of [mine, theirs]) {
        const idling = await RawSession.open(imapPort);
        await idling.command(`LOGIN ${user.address} ${user.password}`);
        await idling.command('SELECT INBOX');
        const exists = /^\* (\d+) EXISTS/m.exec(idling.received)?.[1];
        idling.send('i1 IDLE\r\n');
        await idling.waitFor(/^\+ /m);
        const writer = await RawSession.open(imapPort);
        await writer.command(`LOGIN ${user.address} ${user.password}`);
        const message = 'Subject: while idling\r\n\r\nhello\r\n';
        writer.send(`a1 APPEND INBOX {${message.length}+}\r\n${message}\r\n`);
        await writer.waitFor(/^a1 OK/m);
        // Mine: storage-imap's own write, heard in-process. Theirs: written by the other replica
        // (over gRPC), heard over NATS.
        await idling.waitFor(new RegExp(`^\\* ${Number(exists) + 1} EXISTS`, 'm'), 5_000);
        idling.send('DONE\r\n');
        await idling.waitFor(/^i1 OK/m);
        for (const s of [idling, writer]) s.send('z LOGOUT\r\n');
        await Promise.all([idling.closed, writer.closed]);
      }
      await waitFor(
        'the NATS copy of the change',
        () => Promise.resolve(heard.length > 0 ? true : undefined),
        5_000,
      );
      expect(heard.every((origin) => origin.startsWith(`${String(combined.proc.pid)}-`))).toBe(true);
    } finally {
      sub.unsubscribe();
    }
  });

  it('on SIGTERM says BYE to open sessions, then hands its partitions over, and exits 0', async () => {
    const [mine, theirs] = [await userOwnedBy(combined.address), await userOwnedBy(other.address)];
    // One session of each kind: IDLE on a user it owns, a selected mailbox of the other's user.
    const idling = await RawSession.open(imapPort);
    await idling.command(`LOGIN ${mine.address} ${mine.password}`);
    await idling.command('SELECT INBOX');
    idling.send('i1 IDLE\r\n');
    await idling.waitFor(/^\+ /m);
    const selected = await RawSession.open(imapPort);
    await selected.command(`LOGIN ${theirs.address} ${theirs.password}`);
    await selected.command('SELECT INBOX');
    const logBefore = combined.log().length;

    const code = await combined.stop(15_000);
    const log = combined.log().slice(logBefore);
    expect(code, log.slice(-3_000)).toBe(0);
    for (const s of [idling, selected]) {
      await s.closed;
      expect(s.received).toMatch(/^\* BYE /m);
    }
    // Sessions closed before storage gave up a partition (the hand-off), and it stopped cleanly.
    const sessionsClosed = log.indexOf('IMAP sessions closed');
    const firstLost = log.indexOf('partition lost');
    expect(sessionsClosed).toBeGreaterThanOrEqual(0);
    expect(firstLost).toBeGreaterThan(sessionsClosed);
    expect(log).toContain('stopped cleanly');
    expect(log).not.toMatch(/"level":"(error|fatal)"/);
    // The plain replica takes the partitions it handed over, without waiting out the lease TTL.
    await waitFor(
      'the other replica owns every partition',
      async () => {
        for (let probe = 0; probe < 40; probe++) {
          const route = await routes.lookup(`partition-probe-${probe}`);
          if (route?.address !== other.address) return undefined;
        }
        return true;
      },
      20_000,
    );
  });
});

/** A plain IMAP connection: what a client receives, byte for byte, until the server closes it. */
class RawSession {
  received = '';
  #tag = 0;
  #waiters: (() => void)[] = [];
  readonly closed: Promise<void>;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.received += chunk;
      for (const wake of this.#waiters.splice(0)) wake();
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static async open(port: number): Promise<RawSession> {
    const socket = tcpConnect({ port, host: '127.0.0.1' });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const session = new RawSession(socket);
    await session.waitFor(/^\* OK/m);
    return session;
  }

  send(text: string): void {
    this.socket.write(text);
  }

  async waitFor(pattern: RegExp, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.received)) {
      if (Date.now() > deadline) throw new Error(`${String(pattern)} not received:\n${this.received}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 200);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Sends one command and waits for its tagged OK. */
  async command(text: string): Promise<void> {
    const tag = `t${++this.#tag}`;
    this.send(`${tag} ${text}\r\n`);
    await this.waitFor(new RegExp(`^${tag} (OK|NO|BAD)`, 'm'));
    expect(this.received).toMatch(new RegExp(`^${tag} OK`, 'm'));
  }
}
