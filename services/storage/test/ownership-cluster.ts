/**
 * Several storage processes with ownership on (ADR 0007), as production runs them: real
 * nats-server and FerretDB, each replica its own `services/storage/dist/main.js` with few
 * partitions and short leases, smtp-inbound publishing by partition and imap routing each user's
 * calls to the owner. Shared by the ownership suites (kill -9, SIGSTOP, scaling), which check
 * from the mailboxes (over the Mailstore API or IMAP) and from the database directly.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
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
  type CommitPointer,
  type PartitionRecord,
} from '@postmesh/bus';
import { DirectoryServiceClient, MailstoreServiceClient, directory, mailstore } from '@postmesh/contracts';
import {
  freePort,
  startService,
  startTestEnvironment,
  type ManagedProcess,
  type RunningService,
  type ServiceName,
  type TestEnvironment,
  waitFor as pollUntil,
} from '@postmesh/testing';
import { MongoClient, type Db } from 'mongodb';
import { openSqliteDatabase } from '../src/db/sqlite/index.js';

type Unary<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: Res) => void,
) => unknown;

export function call<Req, Res>(method: Unary<Req, Res>, request: Req): Promise<Res> {
  return new Promise((resolve, reject) => {
    method(request, new Metadata(), { deadline: Date.now() + 15_000 }, (error, response) => {
      if (error === null) resolve(response);
      else reject(error);
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** libs/testing's polling with this suite's 30 s default deadline. */
export const waitFor = <T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> => pollUntil(what, probe, timeoutMs);

/** One SMTP transaction (RFC 5321 §3.3) over a plain socket; answers the reply code after DATA. */
export async function sendSmtp(port: number, to: readonly string[], message: string): Promise<number> {
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

/** One storage replica of the cluster. */
export type Replica = RunningService;

export interface User {
  readonly id: string;
  readonly address: string;
  readonly password: string;
}

export interface ClusterOptions {
  readonly partitions: number;
  readonly leaseTtlMs: number;
  /** ack_wait of the partitions' consumers: when a dead or paused owner's jobs come back. */
  readonly ackWaitMs: number;
  readonly domain: string;
  readonly dirPrefix: string;
  /**
   * Every replica on one SQLite file in the cluster's directory (POSTMESH_STORAGE_DB=sqlite, the
   * stack's default, with the commit pointers in that file: ADR 0011/0012/0014), as replicas on one
   * machine share it; the test reads it over a connection of its own. Default: the suite's
   * MongoDB-compatible database, with the pointers in NATS KV.
   */
  readonly sqlite?: boolean;
}

/**
 * The databases the ownership suites run on: FerretDB with the commit pointers in NATS KV (the
 * chart's shape, MongoDB's stand-in), and one SQLite file the replicas share with the pointers in
 * it (the stack's default). For `describe.each`.
 */
export const CLUSTER_BACKENDS = [
  { name: 'FerretDB, pointers in NATS KV', sqlite: false },
  { name: 'one shared SQLite file', sqlite: true },
] as const;

/** The database the test reads to check what the replicas wrote, and how to let go of it. */
interface CheckedDatabase {
  readonly db: Db;
  close(): Promise<void>;
}

export class OwnershipCluster {
  readonly replicas: Replica[] = [];
  smtp: ManagedProcess | undefined;
  smtpPort = 0;
  imap: ManagedProcess | undefined;
  imapPort = 0;
  private recordsKv: KV | undefined;

  private constructor(
    readonly options: ClusterOptions,
    readonly env: TestEnvironment,
    readonly dir: string,
    readonly nc: NatsConnection,
    private readonly database: CheckedDatabase,
  ) {}

  get db(): Db {
    return this.database.db;
  }

  /** The shared SQLite file (with `sqlite`). */
  get sqliteFile(): string {
    return join(this.dir, 'postmesh.sqlite');
  }

  /** The environment and the first replica (which creates the buckets). */
  static async start(options: ClusterOptions, first: string): Promise<OwnershipCluster> {
    const sqlite = options.sqlite === true;
    const env = await startTestEnvironment({ nats: true, mongo: !sqlite });
    const dir = mkdtempSync(join(tmpdir(), options.dirPrefix));
    const database = sqlite ? sqliteDatabase(join(dir, 'postmesh.sqlite')) : await mongoDatabase(env);
    const nc = await connect(env.natsOptions('operator'));
    const pending = { env, dir, database, nc };
    try {
      const cluster = new OwnershipCluster(options, env, dir, nc, database);
      await cluster.startReplica(first);
      // The first replica has created the bucket.
      cluster.recordsKv = await new Kvm(nc).open(PartitionBuckets.PARTITIONS);
      return cluster;
    } catch (error) {
      await pending.nc.close();
      await pending.database.close();
      await pending.env.stop();
      throw error;
    }
  }

  /** A service of this cluster: its NATS and database, one stream replica, ownership on. */
  private start(service: ServiceName, name: string, vars: Readonly<Record<string, string>>) {
    const sqlite = this.options.sqlite === true && service === 'storage';
    return startService(service, {
      env: this.env,
      dir: this.dir,
      name,
      vars: {
        POSTMESH_STREAM_REPLICAS: '1',
        POSTMESH_STORAGE_OWNERSHIP: 'true',
        POSTMESH_STORAGE_PARTITIONS: String(this.options.partitions),
        ...(sqlite ? { POSTMESH_STORAGE_DB: 'sqlite', POSTMESH_SQLITE_FILE: this.sqliteFile } : {}),
        ...vars,
      },
      ...(sqlite ? { unset: ['MONGODB_URI', 'POSTMESH_MONGODB_DB'] } : {}),
    });
  }

  /** A storage replica; `vars` adds to (or overrides) its environment. */
  async startReplica(name: string, vars: Readonly<Record<string, string>> = {}): Promise<Replica> {
    const replica = await this.start('storage', name, {
      POSTMESH_SHUTDOWN_TIMEOUT_MS: '10000',
      POSTMESH_STORAGE_LEASE_TTL_MS: String(this.options.leaseTtlMs),
      POSTMESH_STORAGE_DELIVERY_ACK_WAIT_MS: String(this.options.ackWaitMs),
      ...vars,
    });
    this.replicas.push(replica);
    return replica;
  }

  /** smtp-inbound on a free port, publishing one job per partition; Directory calls go to `storage`. */
  async startSmtp(storage: Replica): Promise<void> {
    this.smtpPort = await freePort();
    const smtp = await this.start('smtp-inbound', 'smtp-inbound', {
      POSTMESH_SMTP_PORT: String(this.smtpPort),
      POSTMESH_SUBMISSION_PORT: '0',
      POSTMESH_SUBMISSIONS_PORT: '0',
      POSTMESH_STORAGE_GRPC: storage.address,
      POSTMESH_SMTP_DATA_DIR: join(this.dir, 'smtp'),
      POSTMESH_SMTP_VERIFY_SENDERS: 'false',
    });
    this.smtp = smtp.proc;
  }

  /** imap on a free port (plaintext login allowed), routing each user's calls to the owner. */
  async startImap(storage: Replica): Promise<void> {
    this.imapPort = await freePort();
    const imap = await this.start('imap', 'imap', {
      POSTMESH_STORAGE_GRPC: storage.address,
      POSTMESH_IMAP_PORT: String(this.imapPort),
      POSTMESH_IMAPS_PORT: String(await freePort()),
      POSTMESH_IMAP_DATA_DIR: join(this.dir, 'imap'),
      POSTMESH_IMAP_ALLOW_PLAINTEXT: 'true',
      POSTMESH_AUTH_BASE_DELAY_MS: '0',
    });
    this.imap = imap.proc;
  }

  clients(replica: Replica) {
    const credentials = this.env.security('operator').grpcClientCredentials();
    return {
      directory: new DirectoryServiceClient(replica.address, credentials),
      mailstore: new MailstoreServiceClient(replica.address, credentials),
    };
  }

  async createUsers(via: Replica, count: number): Promise<User[]> {
    const { directory: dc, mailstore: ms } = this.clients(via);
    const users: User[] = [];
    try {
      await call(
        dc.createDomain.bind(dc),
        directory.CreateDomainRequest.fromPartial({ name: this.options.domain }),
      );
      for (let i = 0; i < count; i++) {
        const password = `Pw-${randomBytes(8).toString('hex')}-x`;
        const res = await call(
          dc.createUser.bind(dc),
          directory.CreateUserRequest.fromPartial({ address: `user${i}@${this.options.domain}`, password }),
        );
        if (res.user === undefined) throw new Error('CreateUser returned no user');
        users.push({ id: res.user.id, address: res.user.address, password });
      }
    } finally {
      dc.close();
      ms.close();
    }
    return users;
  }

  partitionOf(userId: string): number {
    return partitionOf(userId, this.options.partitions);
  }

  async partitionRecord(partition: number): Promise<PartitionRecord | undefined> {
    if (this.recordsKv === undefined) throw new Error('no replica has started');
    const entry = await this.recordsKv.get(`partition.${partition}`);
    return entry === null || entry.operation !== 'PUT' ? undefined : decodeRecord(entry.value);
  }

  /**
   * The partition's commit pointer, what decides which tagged batches count: in the KV record, or
   * with `sqlite` in the file's `partition_pointers` (ADR 0012).
   */
  async commitPointer(partition: number): Promise<CommitPointer | undefined> {
    if (this.options.sqlite !== true) return this.partitionRecord(partition);
    const doc = await this.db
      .collection<CommitPointer & { _id: number }>('partition_pointers')
      .findOne({ _id: partition });
    return doc === null ? undefined : { epoch: doc.epoch, seq: doc.seq, closed: doc.closed };
  }

  /**
   * Waits until every partition has an owner among `live` and the share has settled: each of them
   * owns at least ⌊P/n⌋ (the assignment caps every replica at ⌈P/n⌉, so that is the settled load).
   * "Each owns some" returned mid-rebalance, with a newcomer holding one partition of its two, and a
   * test that looks for one of its users among a few could find none.
   */
  async waitForOwners(live: readonly Replica[], timeoutMs = 40_000): Promise<Map<number, PartitionRecord>> {
    const addresses = new Set(live.map((r) => r.address));
    return waitFor(
      `partitions shared by ${live.map((r) => r.name).join(', ')}`,
      async () => {
        const map = new Map<number, PartitionRecord>();
        for (let p = 0; p < this.options.partitions; p++) {
          const record = await this.partitionRecord(p);
          if (record?.owner == null || !addresses.has(record.address)) return undefined;
          map.set(p, record);
        }
        const floor = Math.floor(this.options.partitions / addresses.size);
        const load = new Map<string, number>();
        for (const record of map.values()) load.set(record.address, (load.get(record.address) ?? 0) + 1);
        return [...addresses].every((a) => (load.get(a) ?? 0) >= Math.max(1, floor)) ? map : undefined;
      },
      timeoutMs,
    );
  }

  /** The replica that owns the user now: only it serves the user's mail (ADR 0007, Routing). */
  async ownerOf(userId: string): Promise<Replica> {
    const record = await this.partitionRecord(this.partitionOf(userId));
    const owner = this.replicas.find((r) => r.address === record?.address && r.proc.running);
    if (owner === undefined) throw new Error(`no live owner for ${userId} yet`);
    return owner;
  }

  /** The token header of every message in the user's INBOX, read from its owner. */
  async tokensInInbox(userId: string): Promise<string[]> {
    return (await this.inboxTokens(userId)).map((m) => m.token).sort();
  }

  /** Every message of the user's INBOX as its owner lists it: UID and token header. */
  async inboxTokens(userId: string): Promise<{ uid: number; token: string }[]> {
    const { mailstore: ms, directory: dc } = this.clients(await this.ownerOf(userId));
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
      const tokens: { uid: number; token: string }[] = [];
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
        tokens.push({ uid, token: token ?? `no token at UID ${uid}` });
      }
      return tokens;
    } finally {
      ms.close();
      dc.close();
    }
  }

  /**
   * The mailbox's tokens once they are what is expected (`before` other messages besides), or
   * as they are after `timeoutMs`: a batch whose confirm failed is removed and delivered again,
   * so the mailbox may be short for a moment, never in the end.
   */
  async settledTokens(
    userId: string,
    expected: readonly string[],
    before = 0,
    timeoutMs = 60_000,
  ): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // A message listed and then removed before its content was read (an unconfirmed batch
      // going away) fails the read: look again.
      const tokens = await this.tokensInInbox(userId).catch((error: unknown) => {
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

  async inboxCount(userId: string): Promise<number> {
    const { mailstore: ms, directory: dc } = this.clients(await this.ownerOf(userId));
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
   * Sends `count` messages, `connections` at a time, each to `to(i)`; calls `at.run()` once
   * `at.accepted` have been accepted. Answers the tokens accepted (250) per recipient address.
   */
  async sendLoad(
    count: number,
    to: (i: number) => string[],
    at?: { accepted: number; run: () => void },
    connections = 4,
  ): Promise<Map<string, string[]>> {
    const accepted = new Map<string, string[]>();
    let acceptedCount = 0;
    let fired = false;
    let next = 0;
    const run = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
    await Promise.all(
      Array.from({ length: connections }, async () => {
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
          const code = await sendSmtp(this.smtpPort, rcpts, message);
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

  /**
   * What a mailbox that is not as expected holds, for a failure message: tokens twice, tokens
   * that no load accepted, tokens missing, and each odd message's document (spool id, tag,
   * whether the partition's record counts it) and the owners' view of the partition.
   */
  async inboxReport(userId: string, accepted: readonly string[]): Promise<string> {
    const lines: string[] = [];
    try {
      const listed = await this.inboxTokens(userId);
      const seen = new Map<string, number[]>();
      for (const m of listed) seen.set(m.token, [...(seen.get(m.token) ?? []), m.uid]);
      const twice = [...seen].filter(([, uids]) => uids.length > 1);
      const unknown = [...seen].filter(([t]) => !accepted.includes(t));
      const missing = accepted.filter((t) => !seen.has(t));
      lines.push(
        `listed ${listed.length}, distinct ${seen.size}, accepted ${accepted.length}; ` +
          `twice ${twice.length}, not accepted ${unknown.length}, missing ${missing.length}`,
      );
      const partition = this.partitionOf(userId);
      const record = await this.commitPointer(partition);
      lines.push(`partition ${partition} commit pointer ${JSON.stringify(record)}`);
      const inbox = await this.db.collection('mailboxes').findOne({ userId, path: 'INBOX' });
      lines.push(
        `INBOX doc uidNext ${inbox?.uidNext} messages ${inbox?.messages} highestModseq ${inbox?.highestModseq} ` +
          `heldBy ${inbox?.countersHeldBy ?? '-'}`,
      );
      const docs = await this.db
        .collection<{ uid: number; spoolId?: string; own?: { p: number; e: number; s: number } }>('messages')
        .find({ mailboxId: String(inbox?._id) }, { projection: { uid: 1, spoolId: 1, own: 1 } })
        .toArray();
      const byUid = new Map(docs.map((d) => [d.uid, d]));
      const describe = (uid: number): string => {
        const d = byUid.get(uid);
        if (d === undefined) return `uid ${uid}: no document`;
        const own = d.own;
        const counts = own === undefined || record === undefined ? '-' : isConfirmed(record, own.e, own.s);
        return `uid ${uid} spool ${d.spoolId} own ${own === undefined ? '-' : `${own.e}/${own.s}`} counts ${String(counts)}`;
      };
      for (const [token, uids] of [...twice, ...unknown].slice(0, 20)) {
        lines.push(`${token}: ${uids.map(describe).join('; ')}`);
      }
      if (missing.length > 0) lines.push(`missing: ${missing.slice(0, 20).join(' ')}`);
      const tags = new Map<string, number>();
      for (const d of docs) {
        const key = d.own === undefined ? '-' : `${d.own.e}/${d.own.s}`;
        tags.set(key, (tags.get(key) ?? 0) + 1);
      }
      lines.push(
        `documents ${docs.length} by epoch/seq: ${[...tags].map(([k, n]) => `${k}:${n}`).join(' ')}`,
      );
    } catch (error) {
      lines.push(`report incomplete: ${error instanceof Error ? error.message : String(error)}`);
    }
    return lines.join('\n');
  }

  /**
   * Documents of the partition whose write never got its confirm: messages and delivery records
   * of delivery batches, and what IMAP writes add (search entries, flag records, tombstones).
   */
  async unconfirmedDocuments(partition: number): Promise<number> {
    const record = await this.commitPointer(partition);
    if (record === undefined) throw new Error(`no commit pointer for partition ${partition}`);
    let unconfirmed = 0;
    for (const collection of ['messages', 'deliveries', 'message_terms', 'message_changes', 'tombstones']) {
      const docs = await this.db
        .collection<{ own?: { p: number; e: number; s: number } }>(collection)
        .find({ 'own.p': partition }, { projection: { own: 1 } })
        .toArray();
      unconfirmed += docs.filter((d) => d.own !== undefined && !isConfirmed(record, d.own.e, d.own.s)).length;
    }
    return unconfirmed;
  }

  /** Stops everything it started (a paused replica is resumed first, so it can be stopped). */
  async stop(): Promise<void> {
    for (const r of this.replicas) {
      if (r.proc.pid !== undefined && r.proc.running) process.kill(r.proc.pid, 'SIGCONT');
    }
    await Promise.all([this.smtp?.kill(), this.imap?.kill(), ...this.replicas.map((r) => r.proc.kill())]);
    await this.nc.close();
    await this.database.close();
    await this.env.stop();
    if (process.env.POSTMESH_KEEP_TEST_LOGS === undefined) rmSync(this.dir, { recursive: true, force: true });
  }
}

async function mongoDatabase(env: TestEnvironment): Promise<CheckedDatabase> {
  const mongo = new MongoClient(env.mongoUri, { serverSelectionTimeoutMS: 10_000 });
  await mongo.connect();
  const db = mongo.db(env.database);
  return {
    db,
    async close() {
      await db.dropDatabase().catch(() => undefined);
      await mongo.close();
    },
  };
}

/** A connection of the test's own to the replicas' SQLite file (it only reads through it). */
function sqliteDatabase(file: string): CheckedDatabase {
  const sqlite = openSqliteDatabase({ file, writer: 'inline' });
  return { db: sqlite.db, close: () => sqlite.close() };
}
