#!/usr/bin/env node
/**
 * Memory benchmark: how much the storage process holds with many messages loaded, measured the
 * way production runs it (ownership on, so the one replica owns every partition and keeps every
 * mailbox's index in memory, ADR 0006/0007; bodies in the filesystem blob store; encrypted).
 *
 *   1. starts its own nats-server and FerretDB (libs/testing) and the real storage service
 *      (services/storage/dist/main.js) with `memory-hook.mjs` preloaded, which answers SIGUSR2
 *      with the process's memoryUsage() and V8 heap statistics, after a full GC when asked;
 *   2. creates U users and delivers N messages (N/U to each, one recipient per message)
 *      through the delivery path: inbound jobs with the body inline, published to
 *      `mail.inbound.<partition>.<spoolId>` as smtp-inbound publishes them, consumed in batches by
 *      storage's per-partition consumers. Publishing stays at most `--window` jobs ahead of
 *      delivery, so the stream stays small and the figures are storage's, not a backlog's;
 *   3. (before the load, every empty INBOX is selected once, so deliveries patch indexes already
 *      loaded, as for users with a client connected), then makes every mailbox hot as an IMAP client would through the owner: SELECT (GetMailboxStatus
 *      claiming \Recent + the UID list) and `FETCH 1:* (FLAGS)` (FetchMessages), checking counts;
 *   4. stops storage (SIGTERM), starts it again on the same data, and measures the time to ready,
 *      the time to make every mailbox hot again, and the memory after both.
 *
 * Memory figures at each point: VmRSS (/proc/<pid>/status), V8 heap used, and the same after a
 * forced full GC; "per message" divides the growth over the baseline (storage ready with the
 * users created, after GC) by N.
 *
 *   npm run build && node tools/bench/memory/dist/main.js --users 100 --messages 100000
 *
 * Options: --order user|interleaved (user: each user's messages in a row, the default;
 * interleaved: round-robin over the users, every partition busy at once), --cold (no SELECT of the empty mailboxes before the load: the first SELECT after it builds
 * each index from the database), --logs DIR (storage logs there), --log-level L (warn),
 * --users U (100), --messages N (100000), --size BYTES (3072), --window W (3000 jobs
 * published ahead of delivery), --publishers P (16 concurrent publishes), --load-budget S (5400:
 * the load fails after S seconds), --restart-budget S (900: after the restart, the pass over every
 * mailbox is sampled at S seconds if it has not finished), --snapshot PATH (write a heap snapshot of storage to PATH
 * after the first warm-up; large), --storage-node-options "..." (extra node flags for storage,
 * e.g. --max-semi-space-size=2), --service storage|storage-imap (storage: the storage service
 * alone; storage-imap: the shipped shape of `npm start` and the chart, ADR 0010, with the IMAP
 * server in storage's process, listening on free ports of 127.0.0.1 but given no connection),
 * --json (the result as one JSON line too).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { ServiceError } from '@grpc/grpc-js';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import {
  PartitionedInbound,
  Streams,
  encodeInboundJob,
  partitionOf,
  publishDurable,
  type InboundJob,
} from '@postmesh/bus';
import {
  DirectoryServiceClient,
  MailstoreServiceClient,
  type directory as dir,
  type mailstore,
} from '@postmesh/contracts';
import {
  ManagedProcess,
  freePort,
  repoRoot,
  startTestEnvironment,
  type TestEnvironment,
} from '@postmesh/testing';

const { values: opts } = parseArgs({
  options: {
    users: { type: 'string', default: '100' },
    messages: { type: 'string', default: '100000' },
    size: { type: 'string', default: '3072' },
    window: { type: 'string', default: '3000' },
    publishers: { type: 'string', default: '16' },
    'load-budget': { type: 'string', default: '5400' },
    'restart-budget': { type: 'string', default: '900' },
    snapshot: { type: 'string' },
    'storage-node-options': { type: 'string', default: '' },
    logs: { type: 'string' },
    cold: { type: 'boolean', default: false },
    order: { type: 'string', default: 'user' },
    'log-level': { type: 'string', default: 'warn' },
    service: { type: 'string', default: 'storage' },
    json: { type: 'boolean', default: false },
  },
});
const USERS = Number(opts.users);
const MESSAGES = Number(opts.messages);
const SIZE = Number(opts.size);
const WINDOW = Number(opts.window);
const PUBLISHERS = Number(opts.publishers);
const LOAD_BUDGET_MS = Number(opts['load-budget']) * 1000;
const RESTART_BUDGET_MS = Number(opts['restart-budget']) * 1000;
const SERVICE = opts.service;
if (SERVICE !== 'storage' && SERVICE !== 'storage-imap') {
  throw new Error(`--service must be storage or storage-imap, not ${String(SERVICE)}`);
}
// The storage service's default (POSTMESH_STORAGE_PARTITIONS), which the publisher must match.
const PARTITIONS = 64;
const DOMAIN = 'memory.test';
const MiB = 1024 * 1024;

const log = (line: string): void => {
  process.stderr.write(`bench-memory ${new Date().toISOString().slice(11, 19)} | ${line}\n`);
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function unary<Req, Res>(
  fn: (req: Req, callback: (error: ServiceError | null, res: Res) => void) => unknown,
  req: Req,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    fn(req, (error, res) => (error ? reject(error) : resolve(res)));
  });
}

/** VmRSS and VmHWM of a process, in bytes (/proc/<pid>/status, proc(5)). */
function residentOf(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  return { rss: kb('VmRSS') * 1024, hwm: kb('VmHWM') * 1024 };
}

/** CPU seconds (user + system) a process has used (/proc/<pid>/stat fields 14 and 15). */
function cpuSecondsOf(pid: number | undefined): number {
  if (pid === undefined) return 0;
  const raw = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ
}

interface HookReply {
  readonly gcMs: number;
  readonly memory: NodeJS.MemoryUsage;
  readonly heap: { used_heap_size: number; total_heap_size: number };
}

/** One memory sample of the storage process: the kernel's view and V8's. */
interface Sample {
  readonly rssMiB: number;
  readonly hwmMiB: number;
  readonly heapUsedMiB: number;
  readonly heapTotalMiB: number;
  readonly externalMiB: number;
  readonly arrayBuffersMiB: number;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
}

const mib = (bytes: number): number => +(bytes / MiB).toFixed(1);

class StorageProcess {
  private requestId = 0;
  readonly grpcTarget: string;
  private constructor(
    readonly proc: ManagedProcess,
    readonly hookDir: string,
    grpcPort: number,
  ) {
    this.grpcTarget = `127.0.0.1:${grpcPort}`;
  }

  /** Starts storage and resolves once its readiness probe answers 200, with the time it took. */
  static async start(
    env: TestEnvironment,
    work: string,
    name: string,
  ): Promise<{ storage: StorageProcess; readyMs: number }> {
    const grpcPort = await freePort();
    const opsPort = await freePort();
    const hookDir = join(work, `hook-${name}`);
    rmSync(hookDir, { recursive: true, force: true });
    mkdirSync(hookDir, { recursive: true });
    const nodeFlags = (opts['storage-node-options'] ?? '').split(/\s+/).filter((f) => f !== '');
    // storage-imap: the IMAP half on free ports, plaintext allowed (no client connects).
    const imapVars: Record<string, string> =
      SERVICE === 'storage-imap'
        ? {
            POSTMESH_IMAP_PORT: String(await freePort()),
            POSTMESH_IMAPS_PORT: String(await freePort()),
            POSTMESH_IMAP_BACKEND_PORT: String(await freePort()),
            POSTMESH_MANAGESIEVE_ENABLED: 'false',
            POSTMESH_IMAP_DATA_DIR: join(work, 'imap'),
            POSTMESH_IMAP_ALLOW_PLAINTEXT: 'true',
          }
        : {};
    const proc = new ManagedProcess({
      name,
      command: process.execPath,
      args: [
        ...nodeFlags,
        '--import',
        join(repoRoot(), 'tools', 'bench', 'memory', 'memory-hook.mjs'),
        join(repoRoot(), 'services', SERVICE, 'dist', 'main.js'),
      ],
      env: {
        ...process.env,
        ...env.serviceEnv,
        POSTMESH_MEMORY_HOOK_DIR: hookDir,
        POSTMESH_STREAM_REPLICAS: '1',
        MONGODB_URI: env.mongoUri,
        POSTMESH_MONGODB_DB: env.database,
        POSTMESH_KEK_FILE: join(work, 'kek'),
        POSTMESH_BLOB_DIR: join(work, 'blobs'),
        POSTMESH_GRPC_PORT: String(grpcPort),
        POSTMESH_OPS_PORT: String(opsPort),
        // As `npm start` and the Helm chart run it (ADR 0007): the replica owns the partitions
        // of its users, consumes their jobs by partition and keeps their indexes in memory.
        POSTMESH_STORAGE_OWNERSHIP: 'true',
        POSTMESH_STORAGE_PARTITIONS: String(PARTITIONS),
        LOG_LEVEL: opts['log-level'],
        ...imapVars,
      },
      logFile: join(opts.logs ?? work, `${name}.log`),
    });
    const started = performance.now();
    proc.start();
    const deadline = Date.now() + 600_000;
    for (;;) {
      if (!proc.running) throw new Error(`${name} exited; see ${join(opts.logs ?? work, `${name}.log`)}`);
      const ok = await fetch(`http://127.0.0.1:${opsPort}/healthz/ready`, {
        signal: AbortSignal.timeout(2_000),
      })
        .then((res) => res.status === 200)
        .catch(() => false);
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`${name} not ready within 600 s`);
      await sleep(100);
    }
    return { storage: new StorageProcess(proc, hookDir, grpcPort), readyMs: performance.now() - started };
  }

  get pid(): number {
    const pid = this.proc.pid;
    if (pid === undefined) throw new Error('storage is not running');
    return pid;
  }

  /** Asks the preloaded hook for its figures (after a full GC if `gc`), with /proc's. */
  async sample(gc: boolean, snapshot?: string): Promise<Sample> {
    const id = ++this.requestId;
    writeFileSync(join(this.hookDir, 'command.json'), JSON.stringify({ id, gc, snapshot }));
    process.kill(this.pid, 'SIGUSR2');
    const file = join(this.hookDir, `reply-${id}.json`);
    const deadline = Date.now() + 600_000;
    while (!existsSync(file)) {
      if (Date.now() > deadline) throw new Error('the memory hook did not answer within 600 s');
      await sleep(50);
    }
    const reply = JSON.parse(readFileSync(file, 'utf8')) as HookReply;
    const { rss, hwm } = residentOf(this.pid);
    return {
      rssMiB: mib(rss),
      hwmMiB: mib(hwm),
      heapUsedMiB: mib(reply.memory.heapUsed),
      heapTotalMiB: mib(reply.memory.heapTotal),
      externalMiB: mib(reply.memory.external),
      arrayBuffersMiB: mib(reply.memory.arrayBuffers),
      rssBytes: rss,
      heapUsedBytes: reply.memory.heapUsed,
    };
  }

  async stop(): Promise<void> {
    await this.proc.stop(30_000);
  }
}

/** A message of about `size` octets with the headers a delivered message carries. */
function makeMessage(i: number, to: string, size: number): Buffer {
  const date = new Date(Date.UTC(2026, 11, 1) + i * 37_000).toUTCString().replace('GMT', '+0000');
  const id = randomBytes(6).toString('hex');
  const head =
    `Return-Path: <news${i % 97}@sender${i % 13}.example>\r\n` +
    `Received: from mx${i % 7}.sender${i % 13}.example (mx${i % 7}.sender${i % 13}.example [192.0.2.${1 + (i % 250)}])\r\n` +
    `\tby mail.${DOMAIN} with ESMTPS id ${id}\r\n\tfor <${to}>; ${date}\r\n` +
    `Received: from app${i % 5}.internal (app${i % 5}.internal [10.0.${i % 200}.${i % 250}])\r\n` +
    `\tby mx${i % 7}.sender${i % 13}.example with ESMTP id ${randomBytes(5).toString('hex')}; ${date}\r\n` +
    `DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=sender${i % 13}.example; s=s1;\r\n` +
    `\th=from:to:subject:date:message-id; bh=${randomBytes(32).toString('base64')};\r\n` +
    `\tb=${randomBytes(128).toString('base64')}\r\n` +
    `From: "Sender ${i % 97}" <news${i % 97}@sender${i % 13}.example>\r\n` +
    `To: <${to}>\r\n` +
    `Subject: Weekly report ${i}: figures for project ${(i * 7919) % 1000} and the ${['north', 'south', 'east', 'west'][i % 4]} office\r\n` +
    `Date: ${date}\r\n` +
    `Message-ID: <${id}.${i}@sender${i % 13}.example>\r\n` +
    'MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n';
  const words = [
    'report',
    'figures',
    'quarter',
    'meeting',
    'budget',
    'review',
    'schedule',
    'customer',
    'release',
  ];
  let body = '';
  for (let line = 0; head.length + body.length < size; line++) {
    body += `Line ${line} of message ${i}: the ${words[(i + line) % words.length]} for week ${(i + line) % 52} is attached below.\r\n`;
  }
  return Buffer.from((head + body).slice(0, Math.max(size, head.length + 2)), 'utf8');
}

interface User {
  readonly id: string;
  readonly address: string;
}

/** SELECT and `FETCH 1:* (FLAGS)` of every user's INBOX through the owner, as the imap service asks. */
async function warmAll(
  store: MailstoreServiceClient,
  users: readonly User[],
  expected: number,
): Promise<{ ms: number; statusMs: number[]; listMs: number[]; flagsMs: number[] }> {
  const started = performance.now();
  const statusMs: number[] = [];
  const listMs: number[] = [];
  const flagsMs: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (;;) {
        const user = users[next++];
        if (user === undefined) return;
        let t0 = performance.now();
        const selected = await unary<mailstore.GetMailboxStatusRequest, mailstore.GetMailboxStatusResponse>(
          store.getMailboxStatus.bind(store),
          { userId: user.id, mailbox: { selector: { $case: 'path', value: 'INBOX' } }, claimRecent: true },
        );
        statusMs.push(performance.now() - t0);
        const status = selected.status;
        if (status === undefined) throw new Error(`no status for ${user.address}`);
        if (status.messages !== expected) {
          throw new Error(`${user.address} has ${status.messages} messages, expected ${expected}`);
        }
        // SELECT's UID/MODSEQ list, then FETCH 1:* (FLAGS): the same call, flags come with every record.
        for (let round = 0; round < 2; round++) {
          t0 = performance.now();
          let count = 0;
          await new Promise<void>((resolve, reject) => {
            const stream = store.fetchMessages({
              userId: user.id,
              mailboxId: status.mailboxId,
              uids: { ranges: [{ first: 1, last: 0 }] },
              fields: [],
              maxBatch: 1024, // as the imap service asks
            });
            stream.on(
              'data',
              (r: mailstore.FetchMessagesResponse) => (count += r.messages.length + (r.message ? 1 : 0)),
            );
            stream.on('error', reject);
            stream.on('end', () => resolve());
          });
          if (count !== expected) throw new Error(`${user.address}: fetched ${count} of ${expected}`);
          (round === 0 ? listMs : flagsMs).push(performance.now() - t0);
        }
      }
    }),
  );
  return { ms: performance.now() - started, statusMs, listMs, flagsMs };
}

/** Median and maximum of per-mailbox call times, in ms. */
function spread(times: readonly number[]): { p50: number; max: number } {
  const sorted = [...times].sort((a, b) => a - b);
  return {
    p50: Math.round(sorted[Math.floor(sorted.length / 2)] ?? 0),
    max: Math.round(sorted.at(-1) ?? 0),
  };
}

/** One line of a warm-up pass's per-mailbox call times. */
function describeWarm(w: Awaited<ReturnType<typeof warmAll>>): string {
  const f = (t: readonly number[]): string => {
    const s = spread(t);
    return `p50 ${s.p50} / max ${s.max} ms`;
  };
  return (
    `${(w.ms / 1000).toFixed(1)} s; per mailbox: GetMailboxStatus ${f(w.statusMs)}, ` +
    `UID list ${f(w.listMs)}, FETCH FLAGS ${f(w.flagsMs)}`
  );
}

async function createUsers(directory: DirectoryServiceClient): Promise<User[]> {
  await unary(directory.createDomain.bind(directory), { name: DOMAIN, defaultQuotaBytes: 0 });
  const users: User[] = [];
  for (let i = 0; i < USERS; i++) {
    const created = await unary<dir.CreateUserRequest, dir.CreateUserResponse>(
      directory.createUser.bind(directory),
      {
        address: `user${i}@${DOMAIN}`,
        password: `Pw-${randomBytes(8).toString('hex')}-x`,
        displayName: `User ${i}`,
      },
    );
    if (created.user === undefined) throw new Error('CreateUser returned no user');
    users.push({ id: created.user.id, address: created.user.address });
  }
  return users;
}

interface LoadFigures {
  readonly seconds: number;
  readonly messagesPerSecond: number;
  readonly cpuMsPerMessage: { storage: number; ferretdb: number; natsServer: number };
}

/** Delivers MESSAGES messages through MAIL_INBOUND, at most WINDOW jobs ahead of storage. */
async function load(
  env: TestEnvironment,
  storage: StorageProcess,
  users: readonly User[],
): Promise<LoadFigures> {
  const nc = await connect(env.natsOptions('operator'));
  try {
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const outstanding = async (): Promise<number> =>
      (await jsm.streams.info(Streams.MAIL_INBOUND)).state.messages;
    const pids = { storage: storage.pid, ferretdb: env.ferret?.process.pid, nats: env.nats?.process.pid };
    const cpuBefore = {
      storage: cpuSecondsOf(pids.storage),
      ferretdb: cpuSecondsOf(pids.ferretdb),
      nats: cpuSecondsOf(pids.nats),
    };
    const started = performance.now();
    const deadline = Date.now() + LOAD_BUDGET_MS;
    let published = 0;
    // Jobs acknowledged by storage, at the last look: the stream is a work queue, so a job
    // leaves it once delivered; a publish not yet counted can only make this lower.
    let delivered = 0;
    let lastLook = 0;
    let lastReport = Date.now();
    let next = 0;
    const look = async (): Promise<void> => {
      const before = published;
      delivered = Math.max(delivered, before - (await outstanding()));
    };
    const report = (): void => {
      const seconds = (performance.now() - started) / 1000;
      const { rss } = residentOf(storage.pid);
      log(
        `  ${delivered}/${MESSAGES} delivered (${published} published) in ${seconds.toFixed(0)} s: ` +
          `${(delivered / seconds).toFixed(0)} msg/s; storage VmRSS ${mib(rss)} MiB`,
      );
    };
    await Promise.all(
      Array.from({ length: PUBLISHERS }, async () => {
        for (;;) {
          const i = next++;
          if (i >= MESSAGES) return;
          while (i - delivered >= WINDOW) {
            if (Date.now() - lastLook > 250) {
              lastLook = Date.now();
              await look();
            }
            if (i - delivered < WINDOW) break;
            if (Date.now() > deadline) throw new Error(`load not done within ${LOAD_BUDGET_MS / 1000} s`);
            await sleep(100);
          }
          // By user (all of a user's messages, then the next user's): a few partitions take
          // delivery batches at a time. Interleaved, every partition commits at once, which
          // FerretDB on SQLite answers with SQLITE_BUSY and the batches fall back to one commit
          // per message (docs/benchmarks.md, "Memory at 100,000 messages").
          const user =
            opts.order === 'interleaved'
              ? users[i % users.length]
              : users[Math.floor(i / (MESSAGES / users.length))];
          if (user === undefined) throw new Error('no users');
          const spoolId = `m${String(i).padStart(7, '0')}${randomBytes(4).toString('hex')}`;
          const raw = makeMessage(i, user.address, SIZE);
          const partition = partitionOf(user.id, PARTITIONS);
          const job: InboundJob = {
            version: 1,
            spoolId,
            envelope: {
              mailFrom: `news${i % 97}@sender${i % 13}.example`,
              rcptTo: [user.address],
              remoteIp: `192.0.2.${1 + (i % 250)}`,
              helo: `mx${i % 7}.sender${i % 13}.example`,
            },
            authResults: {
              spf: 'pass',
              dkim: 'pass',
              dmarc: 'pass',
              arc: 'none',
              dmarcPolicy: '',
              junk: false,
            },
            receivedAt: new Date().toISOString(),
            messageId: `${spoolId}@sender${i % 13}.example`,
            traceparent: '',
            body: { kind: 'inline', size: raw.length },
            users: [user.id],
          };
          await publishDurable(
            js,
            PartitionedInbound.subject(partition, spoolId),
            encodeInboundJob(job, raw),
            {
              msgId: PartitionedInbound.messageId(spoolId, partition),
            },
          );
          published++;
          if (Date.now() - lastReport > 10_000) {
            lastReport = Date.now();
            report();
          }
        }
      }),
    );
    log(`  all ${published} published; waiting for storage to drain the stream`);
    for (;;) {
      await look();
      if (delivered === MESSAGES) break;
      if (Date.now() > deadline) throw new Error(`load not done within ${LOAD_BUDGET_MS / 1000} s`);
      if (Date.now() - lastReport > 10_000) {
        lastReport = Date.now();
        report();
      }
      await sleep(250);
    }
    const seconds = (performance.now() - started) / 1000;
    const dead = (await jsm.streams.info(Streams.MAIL_DLQ)).state.messages;
    if (dead !== 0) throw new Error(`${dead} jobs were dead-lettered`);
    const perMessage = (pid: number | undefined, before: number): number =>
      +((1000 * (cpuSecondsOf(pid) - before)) / MESSAGES).toFixed(2);
    return {
      seconds: +seconds.toFixed(1),
      messagesPerSecond: Math.round(MESSAGES / seconds),
      cpuMsPerMessage: {
        storage: perMessage(pids.storage, cpuBefore.storage),
        ferretdb: perMessage(pids.ferretdb, cpuBefore.ferretdb),
        natsServer: perMessage(pids.nats, cpuBefore.nats),
      },
    };
  } finally {
    await nc.close();
  }
}

async function main(): Promise<void> {
  if (MESSAGES % USERS !== 0) throw new Error('--messages must be a multiple of --users');
  if (opts.order !== 'user' && opts.order !== 'interleaved')
    throw new Error('--order is user or interleaved');
  const perUser = MESSAGES / USERS;
  const env = await startTestEnvironment();
  const work = mkdtempSync(join(tmpdir(), 'postmesh-bench-memory-'));
  writeFileSync(join(work, 'kek'), randomBytes(32).toString('base64'), { mode: 0o600 });
  let storage: StorageProcess | undefined;
  // Ctrl-C or a `timeout`: stop what this bench started before leaving.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping storage, NATS and FerretDB`);
      void Promise.allSettled([storage?.stop()])
        .then(() => env.stop())
        .finally(() => {
          rmSync(work, { recursive: true, force: true });
          process.exit(1);
        });
    });
  }
  try {
    log(`starting ${SERVICE} (ownership on, ${PARTITIONS} partitions) in ${work}`);
    const first = await StorageProcess.start(env, work, 'storage');
    storage = first.storage;
    log(`  ready in ${(first.readyMs / 1000).toFixed(1)} s`);
    const directory = new DirectoryServiceClient(
      storage.grpcTarget,
      env.security('operator').grpcClientCredentials(),
    );
    log(`creating ${USERS} users`);
    const users = await createUsers(directory);
    directory.close();
    if (!opts.cold) {
      // Mailboxes of users with a client connected are indexed before mail arrives, and each
      // delivery batch patches their indexes; --cold leaves every index to be built from the
      // database by the first SELECT after the load instead.
      const store = new MailstoreServiceClient(
        storage.grpcTarget,
        env.security('operator').grpcClientCredentials(),
      );
      log(`SELECT of every user's empty INBOX: ${describeWarm(await warmAll(store, users, 0))}`);
      store.close();
    }
    const empty = await storage.sample(false);
    const baseline = await storage.sample(true);
    log(`  baseline: VmRSS ${baseline.rssMiB} MiB, heap used ${baseline.heapUsedMiB} MiB after GC`);

    log(`delivering ${MESSAGES} messages of ~${SIZE} B to ${USERS} users through MAIL_INBOUND`);
    const loaded = await load(env, storage, users);
    log(
      `  delivered in ${loaded.seconds} s (${loaded.messagesPerSecond} msg/s); CPU ms per message: ` +
        `storage ${loaded.cpuMsPerMessage.storage}, FerretDB ${loaded.cpuMsPerMessage.ferretdb}, ` +
        `nats-server ${loaded.cpuMsPerMessage.natsServer}`,
    );
    await sleep(3_000);
    const afterLoad = await storage.sample(false);
    const afterLoadGc = await storage.sample(true);

    let store = new MailstoreServiceClient(
      storage.grpcTarget,
      env.security('operator').grpcClientCredentials(),
    );
    log(`SELECT + FETCH 1:* (FLAGS) of every user's INBOX (${perUser} messages each)`);
    const warm = await warmAll(store, users, perUser);
    const warmMs = warm.ms;
    log(`  all ${USERS} mailboxes hot in ${describeWarm(warm)}`);
    const afterWarm = await storage.sample(false);
    const afterWarmGc = await storage.sample(true, opts.snapshot);
    // A second pass from the cache: what a hot mailbox costs to serve, and that it stays bounded.
    const warmAgain = await warmAll(store, users, perUser);
    const warmAgainMs = warmAgain.ms;
    log(`  again, from memory: ${describeWarm(warmAgain)}`);
    const afterSecondPassGc = await storage.sample(true);
    store.close();

    log('restarting storage (SIGTERM, then a new process on the same data)');
    await storage.stop();
    storage = undefined;
    const second = await StorageProcess.start(env, work, 'storage-restarted');
    storage = second.storage;
    log(`  ready in ${(second.readyMs / 1000).toFixed(1)} s`);
    const afterRestart = await storage.sample(false);
    store = new MailstoreServiceClient(storage.grpcTarget, env.security('operator').grpcClientCredentials());
    // Bounded: on FerretDB a restarted replica reads every index back through scans, which has
    // taken longer than the rest of the run (docs/benchmarks.md); the samples are taken either way.
    const rewarming = warmAll(store, users, perUser);
    rewarming.catch(() => undefined); // still running when storage stops: its failure is expected
    const rewarm = await Promise.race([rewarming, sleep(RESTART_BUDGET_MS).then(() => undefined)]);
    const rewarmMs = rewarm?.ms;
    log(
      rewarm === undefined
        ? `  NOT hot again within the restart budget of ${RESTART_BUDGET_MS / 1000} s (--restart-budget); sampling now`
        : `  all ${USERS} mailboxes hot again in ${describeWarm(rewarm)}`,
    );
    const afterRewarm = await storage.sample(false);
    const afterRewarmGc = await storage.sample(true);
    store.close();

    const perMessage = (s: Sample): { rssBytes: number; heapBytes: number } => ({
      rssBytes: Math.round((s.rssBytes - baseline.rssBytes) / MESSAGES),
      heapBytes: Math.round((s.heapUsedBytes - baseline.heapUsedBytes) / MESSAGES),
    });
    const samples = {
      'ready, users created': empty,
      'ready, users created, after GC (baseline)': baseline,
      'after load': afterLoad,
      'after load, after GC': afterLoadGc,
      'every mailbox hot': afterWarm,
      'every mailbox hot, after GC': afterWarmGc,
      'second hot pass, after GC': afterSecondPassGc,
      'restarted, ready': afterRestart,
      [rewarm === undefined ? 'restarted, at the restart budget' : 'restarted, every mailbox hot']:
        afterRewarm,
      [rewarm === undefined
        ? 'restarted, at the budget, after GC'
        : 'restarted, every mailbox hot, after GC']: afterRewarmGc,
    };
    const result = {
      service: SERVICE,
      users: USERS,
      messages: MESSAGES,
      sizeBytes: SIZE,
      load: loaded,
      warmSeconds: +(warmMs / 1000).toFixed(1),
      hotPassSeconds: +(warmAgainMs / 1000).toFixed(1),
      restart: {
        readySeconds: +(second.readyMs / 1000).toFixed(1),
        // null: not hot again within --restart-budget.
        warmSeconds: rewarmMs === undefined ? null : +(rewarmMs / 1000).toFixed(1),
      },
      samples: Object.fromEntries(
        Object.entries(samples).map(([k, s]) => [
          k,
          {
            rssMiB: s.rssMiB,
            hwmMiB: s.hwmMiB,
            heapUsedMiB: s.heapUsedMiB,
            heapTotalMiB: s.heapTotalMiB,
            externalMiB: s.externalMiB,
            arrayBuffersMiB: s.arrayBuffersMiB,
          },
        ]),
      ),
      perMessageAfterGc: {
        load: perMessage(afterLoadGc),
        hot: perMessage(afterWarmGc),
        restartedHot: perMessage(afterRewarmGc),
      },
    };
    const lines = [
      `${MESSAGES} messages of ~${SIZE} B over ${USERS} users, delivered through MAIL_INBOUND in ${loaded.seconds} s ` +
        `(${loaded.messagesPerSecond} msg/s; CPU ms/message storage ${loaded.cpuMsPerMessage.storage}, ` +
        `FerretDB ${loaded.cpuMsPerMessage.ferretdb}, nats-server ${loaded.cpuMsPerMessage.natsServer})`,
      `every mailbox hot (SELECT + FETCH 1:* (FLAGS)): ${result.warmSeconds} s; again from memory: ${result.hotPassSeconds} s`,
      `restart: ready in ${result.restart.readySeconds} s, ` +
        (result.restart.warmSeconds === null
          ? `not every mailbox hot again within ${RESTART_BUDGET_MS / 1000} s`
          : `every mailbox hot again in ${result.restart.warmSeconds} s`),
      '',
      `| ${(SERVICE + ' process').padEnd(40)} | VmRSS MiB | VmHWM MiB | heap used MiB | heap total MiB | external MiB |`,
      '| ---------------------------------------- | --------- | --------- | ------------- | -------------- | ------------ |',
      ...Object.entries(samples).map(
        ([k, s]) =>
          `| ${k.padEnd(40)} | ${String(s.rssMiB).padStart(9)} | ${String(s.hwmMiB).padStart(9)} | ` +
          `${String(s.heapUsedMiB).padStart(13)} | ${String(s.heapTotalMiB).padStart(14)} | ${String(s.externalMiB).padStart(12)} |`,
      ),
      '',
      `per message over the baseline, after GC: loaded ${result.perMessageAfterGc.load.rssBytes} B RSS / ` +
        `${result.perMessageAfterGc.load.heapBytes} B heap; hot ${result.perMessageAfterGc.hot.rssBytes} B RSS / ` +
        `${result.perMessageAfterGc.hot.heapBytes} B heap; restarted and hot ` +
        `${result.perMessageAfterGc.restartedHot.rssBytes} B RSS / ${result.perMessageAfterGc.restartedHot.heapBytes} B heap`,
      '',
    ];
    process.stdout.write(lines.join('\n'));
    if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  } catch (error) {
    const logs = ['storage', 'storage-restarted']
      .map((n) => join(opts.logs ?? work, `${n}.log`))
      .filter((f) => existsSync(f))
      .map((f) => `${f}:\n${readFileSync(f, 'utf8').split('\n').slice(-20).join('\n')}`);
    log(`failed; ${logs.join('\n')}`);
    throw error;
  } finally {
    await storage?.stop();
    await env.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
