/**
 * One owner per mailbox under SMTP load, as production runs it: real nats-server and FerretDB,
 * two storage processes with ownership on (8 partitions, 2 s leases) and smtp-inbound publishing
 * one job per partition. Checked from the mailbox (over storage's Mailstore API) and from the
 * database: every accepted message is in its mailbox exactly once when the owner of a busy user
 * is killed with SIGKILL, and no document of a batch that never got its confirm is left behind
 * (ADR 0007, Commit-then-confirm).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, type CallOptions, type ServiceError } from '@grpc/grpc-js';
import { Kvm, type KV } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  PartitionBuckets,
  decodeRecord,
  isConfirmed,
  partitionOf,
  type PartitionRecord,
} from '@postmesh/bus';
import { DirectoryServiceClient, MailstoreServiceClient, directory, mailstore } from '@postmesh/contracts';
import {
  ManagedProcess,
  freePort,
  repoRoot,
  startTestEnvironment,
  type TestEnvironment,
} from '@postmesh/testing';
import { MongoClient, type Db } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const PARTITIONS = 8;
const LEASE_TTL_MS = 3_000;
const ACK_WAIT_MS = 4_000;
const DOMAIN = 'owners.test';

type Unary<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: Res) => void,
) => unknown;

function call<Req, Res>(method: Unary<Req, Res>, request: Req): Promise<Res> {
  return new Promise((resolve, reject) => {
    method(request, new Metadata(), { deadline: Date.now() + 15_000 }, (error, response) => {
      if (error === null) resolve(response);
      else reject(error);
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs} ms`);
    await sleep(150);
  }
}

/** One SMTP transaction (RFC 5321 §3.3) over a plain socket; answers the reply code after DATA. */
async function sendSmtp(port: number, to: readonly string[], message: string): Promise<number> {
  const socket = tcpConnect({ host: '127.0.0.1', port });
  socket.setEncoding('utf8');
  let buffer = '';
  const waiting: ((line: string) => void)[] = [];
  const replies: string[] = [];
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    for (;;) {
      const end = buffer.indexOf('\r\n');
      if (end < 0) break;
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      // The last line of a reply has a space after the code (RFC 5321 §4.2.1).
      if (!/^\d{3} /.test(line)) continue;
      const next = waiting.shift();
      if (next === undefined) replies.push(line);
      else next(line);
    }
  });
  const closed = new Promise<never>((_, reject) => {
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('connection closed')));
  });
  closed.catch(() => undefined);
  const reply = (): Promise<number> =>
    Promise.race([
      new Promise<string>((resolve) => {
        const ready = replies.shift();
        if (ready === undefined) waiting.push(resolve);
        else resolve(ready);
      }),
      closed,
    ]).then((line) => Number(line.slice(0, 3)));
  const command = async (text: string): Promise<number> => {
    socket.write(`${text}\r\n`);
    return reply();
  };
  try {
    if ((await reply()) !== 220) return 421;
    if ((await command('EHLO load.test')) !== 250) return 421;
    if ((await command('MAIL FROM:<load@sender.test>')) !== 250) return 451;
    for (const rcpt of to) {
      const code = await command(`RCPT TO:<${rcpt}>`);
      if (code !== 250) return code;
    }
    if ((await command('DATA')) !== 354) return 451;
    const body = message.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    return await command(`${body}\r\n.`);
  } catch {
    return 421;
  } finally {
    socket.end('QUIT\r\n');
    socket.destroy();
  }
}

interface Replica {
  readonly name: string;
  readonly proc: ManagedProcess;
  readonly grpcPort: number;
  readonly address: string;
  readonly logFile: string;
}

describe('one owner per mailbox: delivery under SMTP load with crashed and paused owners', () => {
  let env: TestEnvironment;
  let dir: string;
  let nc: NatsConnection;
  let records: KV;
  let mongo: MongoClient;
  let db: Db;
  let smtp: ManagedProcess | undefined;
  let smtpPort = 0;
  const replicas: Replica[] = [];
  const users: { id: string; address: string }[] = [];

  async function startReplica(name: string): Promise<Replica> {
    const grpcPort = await freePort();
    const opsPort = await freePort();
    const logFile = join(dir, `${name}.log`);
    const proc = new ManagedProcess({
      name,
      command: process.execPath,
      args: [join(repoRoot(), 'services', 'storage', 'dist', 'main.js')],
      env: {
        ...process.env,
        ...env.serviceEnv,
        POSTMESH_STREAM_REPLICAS: '1',
        POSTMESH_OPS_PORT: String(opsPort),
        POSTMESH_SHUTDOWN_TIMEOUT_MS: '10000',
        LOG_LEVEL: 'info',
        MONGODB_URI: env.mongoUri,
        POSTMESH_MONGODB_DB: env.database,
        POSTMESH_GRPC_PORT: String(grpcPort),
        POSTMESH_KEK_FILE: join(dir, 'kek'),
        POSTMESH_BLOB_DIR: join(dir, 'blobs'),
        POSTMESH_STORAGE_OWNERSHIP: 'true',
        POSTMESH_STORAGE_PARTITIONS: String(PARTITIONS),
        POSTMESH_STORAGE_LEASE_TTL_MS: String(LEASE_TTL_MS),
        POSTMESH_STORAGE_DELIVERY_ACK_WAIT_MS: String(ACK_WAIT_MS),
      },
      logFile,
    });
    proc.start();
    await waitFor(
      `${name} ready`,
      async () => {
        if (!proc.running) throw new Error(`${name} exited:\n${readFileSync(logFile, 'utf8')}`);
        const res = await fetch(`http://127.0.0.1:${opsPort}/healthz/ready`, {
          signal: AbortSignal.timeout(2_000),
        });
        return res.status === 200 ? true : undefined;
      },
      60_000,
    );
    const replica = { name, proc, grpcPort, address: `127.0.0.1:${grpcPort}`, logFile };
    replicas.push(replica);
    return replica;
  }

  async function startSmtp(storage: Replica): Promise<void> {
    smtpPort = await freePort();
    const opsPort = await freePort();
    const logFile = join(dir, 'smtp-inbound.log');
    smtp = new ManagedProcess({
      name: 'smtp-inbound',
      command: process.execPath,
      args: [join(repoRoot(), 'services', 'smtp-inbound', 'dist', 'main.js')],
      env: {
        ...process.env,
        ...env.serviceEnv,
        POSTMESH_STREAM_REPLICAS: '1',
        POSTMESH_OPS_PORT: String(opsPort),
        LOG_LEVEL: 'info',
        POSTMESH_SMTP_PORT: String(smtpPort),
        POSTMESH_SUBMISSION_PORT: '0',
        POSTMESH_SUBMISSIONS_PORT: '0',
        POSTMESH_STORAGE_GRPC: storage.address,
        POSTMESH_SMTP_DATA_DIR: join(dir, 'smtp'),
        POSTMESH_SMTP_VERIFY_SENDERS: 'false',
        POSTMESH_STORAGE_OWNERSHIP: 'true',
        POSTMESH_STORAGE_PARTITIONS: String(PARTITIONS),
      },
      logFile,
    });
    smtp.start();
    const proc = smtp;
    await waitFor(
      'smtp-inbound ready',
      async () => {
        if (!proc.running) throw new Error(`smtp-inbound exited:\n${readFileSync(logFile, 'utf8')}`);
        const res = await fetch(`http://127.0.0.1:${opsPort}/healthz/ready`, {
          signal: AbortSignal.timeout(2_000),
        });
        return res.status === 200 ? true : undefined;
      },
      60_000,
    );
  }

  async function partitionRecord(partition: number): Promise<PartitionRecord | undefined> {
    const entry = await records.get(`partition.${partition}`);
    return entry === null || entry.operation !== 'PUT' ? undefined : decodeRecord(entry.value);
  }

  /** Waits until every partition has an owner among `live` and each of them owns some. */
  async function waitForOwners(live: readonly Replica[]): Promise<Map<number, PartitionRecord>> {
    const addresses = new Set(live.map((r) => r.address));
    return waitFor(
      `partitions shared by ${live.map((r) => r.name).join(', ')}`,
      async () => {
        const map = new Map<number, PartitionRecord>();
        for (let p = 0; p < PARTITIONS; p++) {
          const record = await partitionRecord(p);
          if (record?.owner == null || !addresses.has(record.address)) return undefined;
          map.set(p, record);
        }
        const used = new Set([...map.values()].map((r) => r.address));
        return used.size === addresses.size ? map : undefined;
      },
      40_000,
    );
  }

  function clients(replica: Replica) {
    const credentials = env.security('operator').grpcClientCredentials();
    return {
      directory: new DirectoryServiceClient(replica.address, credentials),
      mailstore: new MailstoreServiceClient(replica.address, credentials),
    };
  }

  /** The replica that owns the user now: only it serves the user's mail (ADR 0007, Routing). */
  async function ownerOf(userId: string): Promise<Replica> {
    const record = await partitionRecord(partitionOf(userId, PARTITIONS));
    const owner = replicas.find((r) => r.address === record?.address && r.proc.running);
    if (owner === undefined) throw new Error(`no live owner for ${userId} yet`);
    return owner;
  }

  /** The token header of every message in the user's INBOX, read from its owner. */
  async function tokensInInbox(userId: string): Promise<string[]> {
    const { mailstore: ms, directory: dc } = clients(await ownerOf(userId));
    try {
      const boxes = await call(
        ms.listMailboxes.bind(ms),
        mailstore.ListMailboxesRequest.fromPartial({ userId, pattern: '*' }),
      );
      const inbox = boxes.mailboxes.find((m) => m.path === 'INBOX');
      if (inbox === undefined) throw new Error('no INBOX');
      const uids: number[] = [];
      await new Promise<void>((resolve, reject) => {
        const stream = ms.fetchMessages(
          mailstore.FetchMessagesRequest.fromPartial({
            userId,
            mailboxId: inbox.id,
            uids: { ranges: [{ first: 1, last: 0 }] },
          }),
        );
        stream.on('data', (r: mailstore.FetchMessagesResponse) => {
          if (r.message) uids.push(r.message.uid);
        });
        stream.on('error', reject);
        stream.on('end', resolve);
      });
      const tokens: string[] = [];
      for (const uid of uids) {
        const chunks: Buffer[] = [];
        await new Promise<void>((resolve, reject) => {
          const stream = ms.getMessageContent(
            mailstore.GetMessageContentRequest.fromPartial({
              userId,
              mailboxId: inbox.id,
              uid,
              section: 'HEADER',
            }),
          );
          stream.on('data', (r: mailstore.GetMessageContentResponse) => {
            if (r.part?.$case === 'chunk') chunks.push(Buffer.from(r.part.value));
          });
          stream.on('error', reject);
          stream.on('end', resolve);
        });
        const token = /^X-Load-Token: (\S+)/m.exec(Buffer.concat(chunks).toString('utf8'))?.[1];
        tokens.push(token ?? `no token at UID ${uid}`);
      }
      return tokens.sort();
    } finally {
      ms.close();
      dc.close();
    }
  }

  /**
   * The mailbox's tokens once they are what is expected (`before` other messages besides), or
   * as they are after 120 s: a batch whose confirm failed is removed and delivered again, so the
   * mailbox may be short for a moment, never in the end.
   */
  async function settledTokens(userId: string, expected: readonly string[], before = 0): Promise<string[]> {
    const deadline = Date.now() + 120_000;
    for (;;) {
      // A message listed and then removed before its content was read (an unconfirmed batch
      // going away) fails the read: look again.
      const tokens = await tokensInInbox(userId).catch((error: unknown) => {
        if (Date.now() > deadline) throw error;
        return undefined;
      });
      if (tokens === undefined) {
        await sleep(500);
        continue;
      }
      const mine = tokens.filter((t) => expected.includes(t));
      const done = mine.length === expected.length && tokens.length === before + expected.length;
      if (done || Date.now() > deadline) return tokens;
      await sleep(500);
    }
  }

  async function inboxCount(userId: string): Promise<number> {
    const { mailstore: ms, directory: dc } = clients(await ownerOf(userId));
    try {
      const res = await call(
        ms.getMailboxStatus.bind(ms),
        mailstore.GetMailboxStatusRequest.fromPartial({
          userId,
          mailbox: { selector: { $case: 'path', value: 'INBOX' } },
        }),
      );
      return res.status?.messages ?? 0;
    } finally {
      ms.close();
      dc.close();
    }
  }

  /**
   * Sends `count` messages, 4 connections at a time, each to `to(i)`; calls `at(n)` once `n`
   * have been accepted. Answers the tokens accepted (250) per recipient address.
   */
  async function sendLoad(
    count: number,
    to: (i: number) => string[],
    at?: { accepted: number; run: () => void },
  ): Promise<Map<string, string[]>> {
    const accepted = new Map<string, string[]>();
    let acceptedCount = 0;
    let fired = false;
    let next = 0;
    const run = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let i = next++; i < count; i = next++) {
          const token = `${run}-${String(i).padStart(4, '0')}`;
          const rcpts = to(i);
          const message = [
            `From: load@sender.test`,
            `To: ${rcpts.join(', ')}`,
            `Subject: load ${token}`,
            `Message-ID: <${token}@sender.test>`,
            `X-Load-Token: ${token}`,
            '',
            `${'lorem ipsum dolor sit amet '.repeat(60)}${token}`,
            '',
          ].join('\n');
          const code = await sendSmtp(smtpPort, rcpts, message);
          if (code !== 250) continue;
          for (const r of rcpts) accepted.set(r, [...(accepted.get(r) ?? []), token]);
          acceptedCount += 1;
          if (at !== undefined && !fired && acceptedCount >= at.accepted) {
            fired = true;
            at.run();
          }
        }
      }),
    );
    return accepted;
  }

  /** Documents of the user's messages and delivery records whose batch never got its confirm. */
  async function unconfirmedDocuments(partition: number): Promise<number> {
    const record = await partitionRecord(partition);
    if (record === undefined) throw new Error(`no record for partition ${partition}`);
    let unconfirmed = 0;
    for (const collection of ['messages', 'deliveries']) {
      const docs = await db
        .collection<{ own?: { p: number; e: number; s: number } }>(collection)
        .find({ 'own.p': partition }, { projection: { own: 1 } })
        .toArray();
      unconfirmed += docs.filter((d) => d.own !== undefined && !isConfirmed(record, d.own.e, d.own.s)).length;
    }
    return unconfirmed;
  }

  beforeAll(async () => {
    env = await startTestEnvironment({ nats: true });
    dir = mkdtempSync(join(tmpdir(), 'postmesh-owners-'));
    writeFileSync(join(dir, 'kek'), randomBytes(32).toString('base64'), { mode: 0o600 });
    mongo = new MongoClient(env.mongoUri, { serverSelectionTimeoutMS: 10_000 });
    await mongo.connect();
    db = mongo.db(env.database);
    const [a] = await Promise.all([startReplica('storage-a'), startReplica('storage-b')]);
    nc = await connect(env.natsOptions('operator'));
    records = await new Kvm(nc).open(PartitionBuckets.PARTITIONS);
    const { directory: dc, mailstore: ms } = clients(a);
    try {
      await call(dc.createDomain.bind(dc), directory.CreateDomainRequest.fromPartial({ name: DOMAIN }));
      for (let i = 0; i < 12; i++) {
        const res = await call(
          dc.createUser.bind(dc),
          directory.CreateUserRequest.fromPartial({
            address: `user${i}@${DOMAIN}`,
            password: `Pw-${randomBytes(8).toString('hex')}-x`,
          }),
        );
        if (res.user === undefined) throw new Error('CreateUser returned no user');
        users.push({ id: res.user.id, address: res.user.address });
      }
    } finally {
      dc.close();
      ms.close();
    }
  }, 120_000);

  afterAll(async () => {
    for (const r of replicas) {
      if (r.proc.pid !== undefined && r.proc.running) process.kill(r.proc.pid, 'SIGCONT');
    }
    await Promise.all([smtp?.kill(), ...replicas.map((r) => r.proc.kill())]);
    await nc?.close();
    await db?.dropDatabase().catch(() => undefined);
    await mongo?.close();
    await env?.stop();
    if (process.env.POSTMESH_KEEP_TEST_LOGS === undefined && dir !== undefined) {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('kill -9 of the owner of a busy user: every accepted message is in its mailbox exactly once', async () => {
    const owners = await waitForOwners(replicas);
    const busy = users[0] as { id: string; address: string };
    const busyPartition = partitionOf(busy.id, PARTITIONS);
    const victim = replicas.find((r) => r.address === owners.get(busyPartition)?.address) as Replica;
    const survivor = replicas.find((r) => r !== victim) as Replica;
    // A second recipient in another partition: the message is split in two jobs.
    const other = users.find((u) => partitionOf(u.id, PARTITIONS) !== busyPartition);
    if (other === undefined) throw new Error('every user is in one partition');
    await startSmtp(survivor);

    const accepted = await sendLoad(
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
      async () => ((await inboxCount(busy.id)) >= expectedBusy.length ? true : undefined),
      60_000,
    );
    expect(await settledTokens(busy.id, expectedBusy)).toEqual(expectedBusy);
    expect(await settledTokens(other.id, expectedOther)).toEqual(expectedOther);
    expect(await unconfirmedDocuments(busyPartition)).toBe(0);
    expect((await partitionRecord(busyPartition))?.address).toBe(survivor.address);
  }, 150_000);
});
