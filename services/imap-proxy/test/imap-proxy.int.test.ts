/**
 * The IMAP proxy in front of two storage-imap replicas (ADR 0010, step 2), all as production
 * runs them (built dist/main.js, real nats-server and FerretDB, the internal PKI's mutual TLS
 * between proxy and backends): a login lands on the replica that owns the user, whose Mailstore
 * calls then stay in-process; imapflow and Python's imaplib through the proxy, in plaintext (for
 * the loopback test), with STARTTLS and with implicit TLS; a wrong password reaches the backend's
 * throttle under the client's own address; garbage before login gets BAD; a killed replica's
 * users reconnect to the survivor once their partition has moved.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as connectTcp, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { assignPartitions, Buckets, OwnershipView, ReplicaMembers } from '@postmesh/bus';
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

const run = promisify(execFile);
/**
 * With 8 partitions a third replica always takes some (bounded load: at most 3 each of 3), which
 * 4 would not guarantee (2 + 2 + 0).
 */
const PARTITIONS = 8;

interface User {
  readonly id: string;
  readonly address: string;
  readonly password: string;
}

let env: TestEnvironment;
let dir: string;
let nc: NatsConnection;
let routes: OwnershipView;
let members: ReplicaMembers;
let replicaA: RunningService;
let replicaB: RunningService;
let proxy: RunningService;
let proxyPort: number;
let proxyTlsPort: number;
let directoryClient: DirectoryServiceClient;

function call<T>(invoke: (cb: (error: ServiceError | null, value: T) => void) => unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    invoke((error, value) => (error ? reject(error) : resolve(value)));
  });
}

/** The value of `name` (with these labels) on the service's ops port. */
const metric = (service: RunningService, name: string, labels: Readonly<Record<string, string>> = {}) =>
  metricValue(service.opsPort, name, labels);

const calls = (replica: RunningService, path: 'in-process' | 'grpc'): Promise<number> =>
  metric(replica, 'postmesh_imap_storage_calls_total', { path });

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

/** A new user whose partition `owner` owns. */
async function userOwnedBy(owner: RunningService): Promise<User> {
  for (let i = 0; i < 64; i++) {
    const user = await createUser();
    if ((await routes.lookup(user.id))?.address === owner.address) return user;
  }
  throw new Error(`no user of ${owner.name} among 64 new users`);
}

const MESSAGE = Buffer.from(
  'From: Alice <alice@example.org>\r\nTo: Bob <bob@example.test>\r\nSubject: proxied\r\n' +
    'Message-ID: <proxied@example.org>\r\n\r\nServed where the mailbox lives.\r\n',
);

function imapflow(user: User, how: 'plain' | 'starttls' | 'tls', password = user.password): ImapFlow {
  return new ImapFlow({
    host: '127.0.0.1',
    port: how === 'tls' ? proxyTlsPort : proxyPort,
    secure: how === 'tls',
    doSTARTTLS: how === 'starttls',
    tls: { rejectUnauthorized: false },
    auth: { user: user.address, pass: password },
    logger: false,
    connectionTimeout: 20_000,
    greetingTimeout: 20_000,
    socketTimeout: 30_000,
  });
}

/** APPEND, FETCH, STORE and EXPUNGE through the proxy. */
async function session(user: User, how: 'plain' | 'starttls' | 'tls' = 'plain'): Promise<void> {
  const client = imapflow(user, how);
  await client.connect();
  try {
    const appended = await client.append('INBOX', MESSAGE, ['\\Flagged']);
    expect(appended).not.toBe(false);
    const lock = await client.getMailboxLock('INBOX');
    try {
      const fetched = await client.fetchOne('*', { uid: true, flags: true, source: true });
      expect(fetched === false ? undefined : fetched.source?.equals(MESSAGE)).toBe(true);
      expect(await client.messageFlagsAdd('1:*', ['\\Seen'])).toBe(true);
      expect(await client.messageDelete('1:*')).toBe(true);
      expect(client.mailbox === false ? -1 : client.mailbox.exists).toBe(0);
    } finally {
      lock.release();
    }
  } finally {
    await client.logout();
  }
}

/** A raw client: what it reads, line by line, with a deadline on each wait. */
class RawClient {
  #buffer = '';
  #waiters: (() => void)[] = [];
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (text: string) => {
      this.#buffer += text;
      for (const wake of this.#waiters.splice(0)) wake();
    });
    socket.on('close', () => {
      this.closed = true;
      for (const wake of this.#waiters.splice(0)) wake();
    });
    socket.on('error', () => undefined);
  }

  static async open(port: number, localAddress?: string): Promise<RawClient> {
    const socket = connectTcp({
      host: '127.0.0.1',
      port,
      ...(localAddress === undefined ? {} : { localAddress }),
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  /** Reads up to and including the first line matching `pattern`; the lines read. */
  async until(pattern: RegExp, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lines = this.#buffer.split('\r\n');
      for (let i = 0; i < lines.length - 1; i++) {
        if (pattern.test(lines[i] ?? '')) {
          const taken = lines.slice(0, i + 1).join('\r\n');
          this.#buffer = lines.slice(i + 1).join('\r\n');
          return taken;
        }
      }
      if (this.closed) throw new Error(`closed before ${pattern}; read: ${this.#buffer}`);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`no ${pattern} within ${timeoutMs} ms; read: ${this.#buffer.slice(0, 500)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  send(text: string | Buffer): void {
    this.socket.write(text);
  }

  async waitClosed(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (!this.closed) throw new Error('connection still open');
  }

  close(): void {
    this.socket.destroy();
  }
}

async function startReplica(name: string): Promise<RunningService> {
  const grpcPort = await freePort();
  return startService('storage-imap', {
    env,
    dir,
    name,
    grpcPort,
    // Generous: the shared 2-core machine runs other suites beside this one.
    readyTimeoutMs: 150_000,
    vars: {
      POSTMESH_STREAM_REPLICAS: '1',
      POSTMESH_STORAGE_OWNERSHIP: 'true',
      POSTMESH_STORAGE_PARTITIONS: String(PARTITIONS),
      POSTMESH_STORAGE_LEASE_TTL_MS: '6000',
      POSTMESH_STORAGE_GRPC: `127.0.0.1:${grpcPort}`,
      POSTMESH_IMAP_PORT: String(await freePort()),
      POSTMESH_IMAPS_PORT: String(await freePort()),
      POSTMESH_IMAP_BACKEND_PORT: String(await freePort()),
      POSTMESH_MANAGESIEVE_ENABLED: 'false',
      POSTMESH_IMAP_DATA_DIR: join(dir, `${name}-imap`),
      POSTMESH_AUTH_BASE_DELAY_MS: '0',
    },
  });
}

beforeAll(async () => {
  env = await startTestEnvironment();
  dir = mkdtempSync(join(tmpdir(), 'postmesh-imap-proxy-'));
  // Both replicas share the directory: the same KEK and body store, as replicas of one cluster.
  replicaA = await startReplica('replica-a');
  replicaB = await startReplica('replica-b');
  nc = await connect(env.natsOptions('operator'));
  routes = await OwnershipView.open(nc, { partitions: PARTITIONS });
  members = await ReplicaMembers.open(nc);
  await waitFor('partitions shared by both replicas, both publishing IMAP', async () => {
    const owners = new Set<string>();
    // Two owners among sixty ids of eight partitions: all but certain once both own some.
    for (let probe = 0; probe < 60; probe++) {
      const route = await routes.lookup(`partition-probe-${probe}`);
      if (route !== undefined) owners.add(route.address);
    }
    const both = owners.has(replicaA.address) && owners.has(replicaB.address);
    return both && members.imapServers().length === 2 ? true : undefined;
  });
  proxyPort = await freePort();
  proxyTlsPort = await freePort();
  proxy = await startService('imap-proxy', {
    env,
    dir,
    vars: {
      POSTMESH_IMAP_PORT: String(proxyPort),
      POSTMESH_IMAPS_PORT: String(proxyTlsPort),
      POSTMESH_STORAGE_GRPC: replicaA.address,
      POSTMESH_STORAGE_PARTITIONS: String(PARTITIONS),
      POSTMESH_IMAP_PROXY_DATA_DIR: join(dir, 'proxy'),
      POSTMESH_IMAP_ALLOW_PLAINTEXT: 'true',
      POSTMESH_IMAP_PROXY_CONNECT_TIMEOUT_MS: '2000',
    },
  });
  directoryClient = new DirectoryServiceClient(
    replicaA.address,
    env.security('operator').grpcClientCredentials(),
  );
  await call<directory.CreateDomainResponse>((cb) =>
    directoryClient.createDomain({ name: 'example.test', defaultQuotaBytes: 0 }, new Metadata(), cb),
  );
}, 480_000);

afterAll(async () => {
  directoryClient?.close();
  routes?.stop();
  members?.stop();
  await nc?.close();
  await Promise.all([proxy?.stop(10_000), replicaA?.stop(10_000), replicaB?.stop(10_000)]);
  await env?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('imap-proxy: each login at its owner', () => {
  it.each(['A', 'B'])(
    'serves a user replica %s owns there, in-process',
    async (name) => {
      const [owner, other] = name === 'A' ? [replicaA, replicaB] : [replicaB, replicaA];
      const user = await userOwnedBy(owner);
      const before = {
        local: await calls(owner, 'in-process'),
        grpc: await calls(owner, 'grpc'),
        otherLocal: await calls(other, 'in-process'),
        otherGrpc: await calls(other, 'grpc'),
        owned: await metric(proxy, 'postmesh_imap_proxy_logins_total', { route: 'owner', result: 'ok' }),
      };
      await session(user);
      expect(await calls(owner, 'in-process')).toBeGreaterThan(before.local + 5);
      expect(await calls(owner, 'grpc')).toBe(before.grpc);
      expect(await calls(other, 'in-process')).toBe(before.otherLocal);
      expect(await calls(other, 'grpc')).toBe(before.otherGrpc);
      expect(await metric(proxy, 'postmesh_imap_proxy_logins_total', { route: 'owner', result: 'ok' })).toBe(
        before.owned + 1,
      );
    },
    60_000,
  );

  it('STARTTLS and implicit TLS with the proxy certificate', async () => {
    const user = await userOwnedBy(replicaB);
    await session(user, 'starttls');
    await session(user, 'tls');
  }, 60_000);

  it("Python's imaplib: STARTTLS, implicit TLS, AUTHENTICATE PLAIN with a continuation", async () => {
    const user = await userOwnedBy(replicaA);
    const before = await calls(replicaA, 'in-process');
    const script = `
import imaplib, ssl, sys
port, tls_port, user, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
m = imaplib.IMAP4('127.0.0.1', port, timeout=20)
assert 'STARTTLS' in m.capabilities, m.capabilities
m.starttls(ssl_context=ctx)
typ, _ = m.login(user, password); assert typ == 'OK'
typ, _ = m.append('INBOX', '', None, b'Subject: py\\r\\n\\r\\nfrom imaplib\\r\\n'); assert typ == 'OK'
typ, data = m.select('INBOX'); assert typ == 'OK' and data[0] == b'1', data
typ, data = m.search(None, 'ALL'); assert data[0] == b'1', data
m.logout()
s = imaplib.IMAP4_SSL('127.0.0.1', tls_port, ssl_context=ctx, timeout=20)
# imaplib sends AUTHENTICATE PLAIN and answers the server's continuation.
typ, _ = s.authenticate('PLAIN', lambda _: ('\\0' + user + '\\0' + password).encode()); assert typ == 'OK'
typ, data = s.status('INBOX', '(MESSAGES)'); assert b'MESSAGES 1' in data[0], data
s.logout()
print('imaplib through the proxy: ok')
`;
    const { stdout } = await run(
      'python3',
      ['-c', script, String(proxyPort), String(proxyTlsPort), user.address, user.password],
      { timeout: 60_000 },
    );
    expect(stdout).toContain('imaplib through the proxy: ok');
    expect(await calls(replicaA, 'in-process')).toBeGreaterThan(before + 3);
  }, 90_000);

  it("a wrong password gets NO [AUTHENTICATIONFAILED], counted under the client's own address", async () => {
    const user = await userOwnedBy(replicaA);
    // The client connects from 127.0.0.7, the proxy to the backend from 127.0.0.1: the throttle
    // must count the first (the PROXY header), not the proxy.
    const client = await RawClient.open(proxyPort, '127.0.0.7');
    try {
      await client.until(/^\* OK \[CAPABILITY /);
      client.send(`a1 LOGIN "${user.address}" "wrong-password"\r\n`);
      expect(await client.until(/^a1 /)).toMatch(/^a1 NO \[AUTHENTICATIONFAILED\]/m);
      // Not logged in: the connection is still before login, at the proxy.
      client.send('a2 SELECT INBOX\r\n');
      expect(await client.until(/^a2 /)).toMatch(/^a2 BAD/m);
      client.send(`a3 LOGIN "${user.address}" "${user.password}"\r\n`);
      expect(await client.until(/^a3 /)).toMatch(/^a3 OK/m);
      client.send('a4 SELECT INBOX\r\n');
      expect(await client.until(/^a4 /)).toMatch(/^a4 OK/m);
      client.send('a5 LOGOUT\r\n');
      await client.until(/^a5 OK/);
    } finally {
      client.close();
    }
    const kv = await new Kvm(nc).open(Buckets.AUTH_FAILURES);
    const keys: string[] = [];
    for await (const key of await kv.keys()) keys.push(key);
    expect(keys.some((key) => key.includes('127.0.0.7'))).toBe(true);
  }, 60_000);

  it('answers garbage and over-long lines before login with BAD, and stays up', async () => {
    const client = await RawClient.open(proxyPort);
    try {
      await client.until(/^\* OK /);
      client.send('\x00\x01\x02 garbage\r\n');
      expect(await client.until(/BAD/)).toMatch(/BAD/);
      client.send(`a1 LOGIN ${'x'.repeat(100_000)}\r\n`);
      expect(await client.until(/BAD/)).toMatch(/BAD/);
      client.send('a2 FETCH 1 BODY[]\r\n');
      expect(await client.until(/^a2 /)).toMatch(/^a2 BAD/);
      client.send('a3 AUTHENTICATE PLAIN\r\n');
      await client.until(/^\+/);
      client.send('not base64!\r\n');
      expect(await client.until(/^a3 /)).toMatch(/^a3 BAD/);
      client.send('a4 AUTHENTICATE PLAIN\r\n');
      await client.until(/^\+/);
      client.send('*\r\n');
      expect(await client.until(/^a4 /)).toMatch(/^a4 BAD/);
      // A non-synchronizing literal over LITERAL-'s 4096 octets ends the connection (RFC 7888 §4).
      client.send('a5 LOGIN {100000+}\r\n');
      await client.until(/BYE/);
      await client.waitClosed();
    } finally {
      client.close();
    }
    // Still serving.
    const again = await RawClient.open(proxyPort);
    try {
      await again.until(/^\* OK /);
      again.send('b1 CAPABILITY\r\nb2 NOOP\r\nb3 LOGOUT\r\n');
      const reply = await again.until(/^b3 /);
      expect(reply).toMatch(/^\* CAPABILITY .*IMAP4rev2.*AUTH=PLAIN/m);
      expect(reply).toMatch(/^b2 OK/m);
      expect(reply).toMatch(/^\* BYE/m);
    } finally {
      again.close();
    }
  }, 60_000);
});

describe('imap-proxy: partitions move', () => {
  it('a replica joins: sessions of the partitions it takes get BYE [UNAVAILABLE] and reconnect to it', async () => {
    // One logged-in session per partition, each at its owner.
    const sessions = new Map<number, { user: User; client: RawClient }>();
    for (let i = 0; i < 160 && sessions.size < PARTITIONS; i++) {
      const user = await createUser();
      const route = await routes.lookup(user.id);
      if (route === undefined || sessions.has(route.partition)) continue;
      const client = await RawClient.open(proxyPort);
      await client.until(/^\* OK /);
      client.send(`s1 LOGIN "${user.address}" "${user.password}"\r\ns2 SELECT INBOX\r\n`);
      await client.until(/^s2 OK/);
      sessions.set(route.partition, { user, client });
    }
    expect(sessions.size).toBe(PARTITIONS);
    const ownerOf = async (user: User) => (await routes.lookup(user.id))?.owner ?? '';
    const before = new Set(
      (await Promise.all([...sessions.values()].map(({ user }) => ownerOf(user)))).filter((id) => id !== ''),
    );
    const replicaC = await startReplica('replica-c');
    try {
      // The rebalance moves partitions one renewal at a time; wait for the whole of it (the
      // assignment is a function of the live replicas' ids) so no later move ends a session
      // this test expects to stay.
      const moved = await waitFor(
        'the rebalance onto the new replica',
        async () => {
          const owners = new Map<number, string>();
          for (const [partition, { user }] of sessions) owners.set(partition, await ownerOf(user));
          const newcomer = [...owners.values()].find((id) => id !== '' && !before.has(id));
          if (newcomer === undefined) return undefined;
          const target = assignPartitions(PARTITIONS, [...before, newcomer]);
          if ([...owners].some(([partition, id]) => target.get(partition) !== id)) return undefined;
          return [...owners].filter(([, id]) => id === newcomer).map(([partition]) => partition);
        },
        90_000,
      ).catch((error: unknown) => {
        throw new Error(`${String(error)}\n${replicaC.log().slice(-6000)}`);
      });
      expect(moved.length).toBeGreaterThan(0);
      for (const partition of moved) {
        const entry = sessions.get(partition);
        if (entry === undefined) continue;
        expect(await entry.client.until(/^\* BYE/, 20_000)).toMatch(/^\* BYE \[UNAVAILABLE\]/m);
        await entry.client.waitClosed();
        // Reconnecting lands on the new owner, served in-process there.
        const before = await calls(replicaC, 'in-process');
        await session(entry.user);
        expect(await calls(replicaC, 'in-process')).toBeGreaterThan(before + 5);
      }
      // A session whose partition stayed is still served.
      const stayed = [...sessions.keys()].find((p) => !moved.includes(p));
      if (stayed !== undefined) {
        const entry = sessions.get(stayed);
        entry?.client.send('s3 NOOP\r\n');
        expect(await entry?.client.until(/^s3 /)).toMatch(/^s3 OK/m);
      }
    } finally {
      for (const { client } of sessions.values()) client.close();
      await replicaC.stop(15_000);
    }
    // Back to two replicas for what follows.
    await waitFor('both replicas own partitions again', async () => {
      const seen = new Set<string>();
      for (const { user } of sessions.values()) seen.add((await routes.lookup(user.id))?.address ?? '');
      return seen.has(replicaC.address) ? undefined : true;
    });
  }, 180_000);
});

describe('imap-proxy: a replica goes away', () => {
  it("a killed replica's user reconnects to the survivor once the partition has moved", async () => {
    const user = await userOwnedBy(replicaB);
    const client = imapflow(user, 'plain');
    await client.connect();
    await client.mailboxOpen('INBOX');
    await replicaB.kill();
    // The spliced connection ends with its backend.
    await waitFor('the session to end', () => Promise.resolve(client.usable ? undefined : true), 20_000);
    client.close();
    // Until the lease expires the proxy may fall back on A (the slow path); then A owns it.
    await waitFor(
      "the partition's move to A",
      async () => ((await routes.lookup(user.id))?.address === replicaA.address ? true : undefined),
      30_000,
    );
    const before = await calls(replicaA, 'in-process');
    await session(user);
    expect(await calls(replicaA, 'in-process')).toBeGreaterThan(before + 5);
  }, 90_000);

  it('no backend at all: a login gets NO [UNAVAILABLE], a new connection BYE [UNAVAILABLE]', async () => {
    const user = await userOwnedBy(replicaA);
    const client = await RawClient.open(proxyPort);
    try {
      await client.until(/^\* OK /);
      await replicaA.kill();
      client.send(`a1 LOGIN "${user.address}" "${user.password}"\r\n`);
      expect(await client.until(/^a1 /, 30_000)).toMatch(/^a1 NO \[UNAVAILABLE\]/m);
    } finally {
      client.close();
    }
    // Once A's record has expired from the proxy's view, nothing is left to greet for.
    await waitFor(
      'a BYE greeting',
      async () => {
        const probe = await RawClient.open(proxyPort);
        try {
          const first = await probe.until(/^\* /, 5_000);
          return /^\* BYE \[UNAVAILABLE\]/.test(first) ? true : undefined;
        } finally {
          probe.close();
        }
      },
      30_000,
    );
    expect(await metric(proxy, 'postmesh_imap_proxy_unavailable_total')).toBeGreaterThanOrEqual(2);
  }, 90_000);
});
