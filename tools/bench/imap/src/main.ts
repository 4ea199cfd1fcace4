#!/usr/bin/env node
/**
 * IMAP benchmark, against the real storage-imap (or storage and imap, `--shape grpc`) and
 * smtp-inbound service processes on a private FerretDB and NATS (libs/testing), so a run needs nothing else and leaves
 * nothing:
 *
 *   1. mix: C concurrent logged-in clients on one N-message mailbox, each running for D seconds a
 *      mix of SELECT INBOX, FETCH 1:* (FLAGS ENVELOPE), FETCH n BODY[], STORE n ±FLAGS and
 *      SEARCH; reports commands/s and p50/p99 latency per command and overall;
 *   2. latency: W clients IDLE on the INBOX of a second user while M messages are sent to that
 *      user, one after the other, over SMTP to the real smtp-inbound service; for each message and
 *      watcher, the time from the SMTP `250` reply to the `* n EXISTS` line on the idling
 *      connection (both seen by this process); reports p50/p99/max;
 *   3. idle: K authenticated connections in IDLE; reports the IMAP-serving process's resident memory
 *      growth per connection (VmRSS from /proc) 3 s after the last one started idling and once
 *      settled (lowest sample over the next 12 s, after V8's idle-time garbage collection), and
 *      the growth of the V8 heap in use (from the service's /metrics).
 *
 *   npm run build && node tools/bench/imap/dist/main.js --messages 10000 --clients 10 --seconds 30 \
 *     --latency 200 --idle 5000
 *
 * Options: --messages N (10000), --clients C (10), --seconds D (30; 0 skips the mix), --latency M
 * (200; 0 skips), --watchers W (1), --idle K (2000; 0 skips), --idle-budget S (900: the idle
 * phase stops opening connections after S seconds and reports how many it reached), --json (print
 * the result as JSON too), --hold S (keep the idle connections open S more seconds, to profile),
 * --imap-node-options "…" (NODE_OPTIONS for the imap process only, e.g. --max-semi-space-size=2),
 * --imap-main PATH (another build of the imap service, or of storage-imap, for before/after
 * comparisons), --shape storage-imap|grpc (storage-imap, the default: storage and imap in one
 * process as `npm start` runs them, ADR 0010, and the idle phase measures that process; grpc: a
 * separate imap process calling storage over gRPC, DESIGN §1).
 * Every request goes to 127.0.0.1 only; every loop is bounded by a count and a deadline. K
 * connections need K + some file descriptors on both sides (`ulimit -n`).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import {
  DirectoryServiceClient,
  MailstoreServiceClient,
  mailstore,
  type directory as dir,
} from '@postmesh/contracts';
import { connect as natsConnect, type NodeConnectionOptions } from '@nats-io/transport-node';
import { ManagedProcess, freePort, repoRoot, startTestEnvironment, waitForPort } from '@postmesh/testing';

const { values: opts } = parseArgs({
  options: {
    messages: { type: 'string', default: '10000' },
    clients: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '30' },
    idle: { type: 'string', default: '2000' },
    'idle-budget': { type: 'string', default: '900' },
    hold: { type: 'string', default: '0' },
    'imap-node-options': { type: 'string', default: '' },
    'imap-main': { type: 'string', default: '' },
    shape: { type: 'string', default: 'storage-imap' },
    latency: { type: 'string', default: '200' },
    watchers: { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
  },
});
const MESSAGES = Number(opts.messages);
const CLIENTS = Number(opts.clients);
const SECONDS = Number(opts.seconds);
const IDLE = Number(opts.idle);
const IDLE_BUDGET_MS = Number(opts['idle-budget']) * 1000;
const LATENCY = Number(opts.latency);
const HOLD_MS = Number(opts.hold) * 1000;
const WATCHERS = Number(opts.watchers);
if (opts.shape !== 'storage-imap' && opts.shape !== 'grpc') {
  process.stderr.write(`bench-imap | --shape ${opts.shape}: expected storage-imap or grpc\n`);
  process.exit(2);
}
/** imap inside storage's process (ADR 0010), as `npm start` runs it. */
const COLOCATED = opts.shape === 'storage-imap';

const log = (line: string): void => {
  process.stderr.write(`bench-imap | ${line}\n`);
};

function unary<Res>(
  run: (callback: (error: ServiceError | null, res: Res) => void) => unknown,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    run((error, res) => (error ? reject(error) : resolve(res)));
  });
}

function sampleMessage(i: number): Buffer {
  const body = `Message number ${i}.\r\n${'Lorem ipsum dolor sit amet, consectetur adipiscing elit. '.repeat(30)}\r\n`;
  return Buffer.from(
    `From: Sender ${i % 50} <sender${i % 50}@example.org>\r\nTo: bench@example.test\r\n` +
      `Subject: Benchmark message ${i}\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n` +
      `Message-ID: <bench-${i}@example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}`,
  );
}

/** A minimal pipelining-free IMAP client: one command at a time, response read to its tag. */
class Connection {
  #buffer = '';
  #waiter: (() => void) | null = null;
  #tag = 0;
  private constructor(private readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.#buffer += d;
      this.#waiter?.();
    });
    socket.on('error', () => undefined);
  }

  static async open(port: number): Promise<Connection> {
    const socket = connect({ port, host: '127.0.0.1' });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const c = new Connection(socket);
    await c.#until((b) => b.indexOf('\r\n'));
    return c;
  }

  async #until(end: (buffer: string) => number): Promise<string> {
    for (;;) {
      const at = end(this.#buffer);
      if (at >= 0) {
        const out = this.#buffer.slice(0, at + 2);
        this.#buffer = this.#buffer.slice(at + 2);
        return out;
      }
      await new Promise<void>((r) => (this.#waiter = r));
      this.#waiter = null;
    }
  }

  async command(text: string): Promise<string> {
    const tag = `b${++this.#tag}`;
    this.socket.write(`${tag} ${text}\r\n`);
    const response = await this.#until((b) => {
      const at = b.startsWith(`${tag} `) ? 0 : b.indexOf(`\r\n${tag} `);
      if (at < 0) return -1;
      return b.indexOf('\r\n', at === 0 ? 0 : at + 2);
    });
    const last = response.slice(response.lastIndexOf(`${tag} `));
    if (!last.startsWith(`${tag} OK`)) throw new Error(`${text.slice(0, 40)} failed: ${last.trim()}`);
    return response;
  }

  async idle(): Promise<void> {
    this.socket.write(`i IDLE\r\n`);
    await this.#until((b) => (b.startsWith('+') ? b.indexOf('\r\n') : -1));
  }

  close(): void {
    this.socket.destroy();
  }
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function rssKb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

const OPS = ['SELECT', 'FETCH 1:* (FLAGS ENVELOPE)', 'FETCH n BODY[]', 'STORE', 'SEARCH'] as const;
type Op = (typeof OPS)[number];
/** Relative weights: full-mailbox fetches are rarer than per-message work, as with real clients. */
const WEIGHTS: Record<Op, number> = {
  SELECT: 1,
  'FETCH 1:* (FLAGS ENVELOPE)': 1,
  'FETCH n BODY[]': 10,
  STORE: 10,
  SEARCH: 3,
};

/** CPU time (user + system) a process has used so far, in seconds (/proc/<pid>/stat, proc(5)). */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start at field 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return 0;
  }
}

/** Where the CPU went during a phase: seconds per process and share of the wall time. */
function cpuMeter(pids: Readonly<Record<string, number | undefined>>): () => Record<string, unknown> {
  const start = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSeconds(pid)]));
  const t0 = Date.now();
  return () => {
    const wall = (Date.now() - t0) / 1000;
    return Object.fromEntries(
      Object.entries(pids).map(([name, pid]) => {
        const used = cpuSeconds(pid) - (start[name] ?? 0);
        return [
          name,
          { cpuSeconds: Number(used.toFixed(1)), ofWallPercent: Number(((100 * used) / wall).toFixed(0)) },
        ];
      }),
    );
  };
}

/** The V8 heap in use of a service, from its Prometheus endpoint (prom-client default metrics). */
async function heapUsedKb(opsPort: number): Promise<number | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${opsPort}/metrics`, { signal: AbortSignal.timeout(5_000) });
    const text = await res.text();
    const value = /^nodejs_heap_size_used_bytes(?:\{[^}]*\})?\s+([0-9.e+]+)/m.exec(text)?.[1];
    return value === undefined ? null : Math.round(Number(value) / 1024);
  } catch {
    return null;
  }
}

async function waitReady(opsPort: number, running: () => boolean, logFile: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline && running()) {
    try {
      const res = await fetch(`http://127.0.0.1:${opsPort}/healthz/ready`, {
        signal: AbortSignal.timeout(2_000),
      });
      if (res.status === 200) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`service on ops port ${opsPort} never became ready\n${readFileSync(logFile, 'utf8')}`);
}

/**
 * An IMAP connection idling on INBOX that timestamps each `* n EXISTS` line the moment its bytes
 * arrive (no awaiting in between), so the figure is not inflated by this process's scheduling.
 */
class ExistsWatcher {
  #buffer = '';
  readonly #seen = new Map<number, number>();
  /** Lines before IDLE, for the login steps. */
  readonly #lines: string[] = [];
  #idling = false;
  #waiter: (() => void) | null = null;
  private constructor(private readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      const now = performance.now();
      this.#buffer += d;
      let end: number;
      while ((end = this.#buffer.indexOf('\r\n')) >= 0) {
        const line = this.#buffer.slice(0, end);
        this.#buffer = this.#buffer.slice(end + 2);
        const exists = /^\* (\d+) EXISTS$/.exec(line);
        if (exists !== null) this.#seen.set(Number(exists[1]), now);
        if (!this.#idling) this.#lines.push(line);
      }
      this.#waiter?.();
    });
    socket.on('error', () => undefined);
  }

  /** Logs in through a Connection, selects INBOX, enters IDLE and hands the socket over. */
  static async open(port: number, user: string, password: string): Promise<ExistsWatcher> {
    const socket = connect({ port, host: '127.0.0.1' });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const w = new ExistsWatcher(socket);
    await w.#line((l) => l.startsWith('* OK'));
    socket.write(`a LOGIN ${user} "${password}"\r\n`);
    await w.#line((l) => l.startsWith('a OK'));
    socket.write('b SELECT INBOX\r\n');
    await w.#line((l) => l.startsWith('b OK'));
    socket.write('c IDLE\r\n');
    await w.#line((l) => l.startsWith('+'));
    w.#idling = true;
    return w;
  }

  async #line(match: (line: string) => boolean): Promise<void> {
    // Only used before IDLE, on the lines the data handler queued.
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      for (let line = this.#lines.shift(); line !== undefined; line = this.#lines.shift()) {
        if (/^[abc] (NO|BAD)/.test(line)) throw new Error(`watcher: ${line}`);
        if (match(line)) return;
      }
      await new Promise<void>((r) => {
        const timer = setTimeout(r, 1_000);
        this.#waiter = () => {
          clearTimeout(timer);
          r();
        };
      });
      this.#waiter = null;
    }
    throw new Error('watcher: no answer in 60 s');
  }

  /** When `* n EXISTS` arrived, waiting at most `timeoutMs`; null on timeout. */
  async existsAt(n: number, timeoutMs: number): Promise<number | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const at = [...this.#seen].find(([count]) => count >= n)?.[1];
      if (at !== undefined) return at;
      const left = deadline - Date.now();
      if (left <= 0) return null;
      await new Promise<void>((r) => {
        const timer = setTimeout(r, left);
        this.#waiter = () => {
          clearTimeout(timer);
          r();
        };
      });
      this.#waiter = null;
    }
  }

  close(): void {
    this.socket.write('DONE\r\n');
    this.socket.destroy();
  }
}

/** One SMTP connection (RFC 5321) that timestamps each reply line as its bytes arrive. */
class SmtpClient {
  #buffer = '';
  readonly #replies: { line: string; at: number }[] = [];
  #waiter: (() => void) | null = null;
  private constructor(private readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.setNoDelay(true);
    socket.on('data', (d: string) => {
      const now = performance.now();
      this.#buffer += d;
      let end: number;
      while ((end = this.#buffer.indexOf('\r\n')) >= 0) {
        const line = this.#buffer.slice(0, end);
        this.#buffer = this.#buffer.slice(end + 2);
        if (/^\d{3} /.test(line)) this.#replies.push({ line, at: now });
      }
      this.#waiter?.();
    });
    socket.on('error', () => undefined);
  }

  static async open(port: number): Promise<SmtpClient> {
    const socket = connect({ port, host: '127.0.0.1' });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const c = new SmtpClient(socket);
    await c.reply();
    return c;
  }

  async reply(): Promise<{ line: string; at: number }> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const next = this.#replies.shift();
      if (next !== undefined) return next;
      if (Date.now() > deadline) throw new Error('SMTP: no reply in 60 s');
      await new Promise<void>((r) => {
        const timer = setTimeout(r, 1_000);
        this.#waiter = () => {
          clearTimeout(timer);
          r();
        };
      });
      this.#waiter = null;
    }
  }

  write(data: string): void {
    this.socket.write(data);
  }

  close(): void {
    this.socket.end('QUIT\r\n');
  }
}

function summary(values: readonly number[]): { count: number; p50Ms: number; p99Ms: number; maxMs: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    count: sorted.length,
    p50Ms: Number(percentile(sorted, 50).toFixed(1)),
    p99Ms: Number(percentile(sorted, 99).toFixed(1)),
    maxMs: Number((sorted.at(-1) ?? 0).toFixed(1)),
  };
}

async function main(): Promise<void> {
  const root = repoRoot();
  const work = mkdtempSync(join(tmpdir(), 'postmesh-bench-imap-'));
  const env = await startTestEnvironment();
  const procs: ManagedProcess[] = [];
  let failed = true;
  try {
    const kek = join(work, 'kek.b64');
    writeFileSync(kek, randomBytes(32).toString('base64'));
    const [grpcPort, storageOps, imapPort, imapsPort, imapOps] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const common = {
      ...process.env,
      ...env.serviceEnv,
      LOG_LEVEL: 'warn',
    };
    const storageEnv = {
      MONGODB_URI: env.mongoUri,
      POSTMESH_MONGODB_DB: env.database,
      POSTMESH_KEK_FILE: kek,
      POSTMESH_BLOB_DIR: join(work, 'blobs'),
      POSTMESH_GRPC_PORT: String(grpcPort),
      POSTMESH_OPS_PORT: String(storageOps),
    };
    const imapEnv = {
      POSTMESH_STORAGE_GRPC: `127.0.0.1:${grpcPort}`,
      POSTMESH_IMAP_PORT: String(imapPort),
      POSTMESH_IMAPS_PORT: String(imapsPort),
      POSTMESH_IMAP_DATA_DIR: join(work, 'imap'),
      POSTMESH_IMAP_ALLOW_PLAINTEXT: 'true',
      POSTMESH_IMAP_COMMAND_RATE: '100000',
      // Every client of the bench connects from 127.0.0.1 as one account: the per-address
      // connection cap (50 by default) would refuse all but the first idle connections, and
      // the login throttle counts each attempt until it succeeds, so 20 concurrent logins
      // of one account on a loaded machine reach its lockout (10).
      POSTMESH_IMAP_MAX_CONNECTIONS_PER_IP: String(IDLE + 100),
      POSTMESH_AUTH_LOCKOUT_ACCOUNT: String(IDLE + 100),
      POSTMESH_AUTH_LOCKOUT_IP: String(IDLE + 100),
      ...(opts['imap-node-options'] === '' ? {} : { NODE_OPTIONS: opts['imap-node-options'] }),
    };
    const imapMain = (pkg: string): string =>
      opts['imap-main'] === '' ? join(root, 'services', pkg, 'dist', 'main.js') : opts['imap-main'];
    // storage-imap: one process, storage's ops port; grpc: storage, then imap on its own.
    const storage = new ManagedProcess({
      name: COLOCATED ? 'storage-imap' : 'storage',
      command: process.execPath,
      args: [COLOCATED ? imapMain('storage-imap') : join(root, 'services', 'storage', 'dist', 'main.js')],
      env: { ...common, ...(COLOCATED ? imapEnv : {}), ...storageEnv },
      logFile: join(work, 'storage.log'),
    });
    storage.start();
    procs.push(storage);
    await waitForPort(grpcPort, '127.0.0.1', 120_000, () => storage.running).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${readFileSync(join(work, 'storage.log'), 'utf8')}`);
    });
    const imap = COLOCATED
      ? storage
      : new ManagedProcess({
          name: 'imap',
          command: process.execPath,
          args: [imapMain('imap')],
          env: { ...common, ...imapEnv, POSTMESH_OPS_PORT: String(imapOps) },
          logFile: join(work, 'imap.log'),
        });
    if (!COLOCATED) {
      imap.start();
      procs.push(imap);
    }
    const imapOpsPort = COLOCATED ? storageOps : imapOps;
    await waitForPort(imapPort, '127.0.0.1', 120_000, () => imap.running).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${readFileSync(imap.options.logFile, 'utf8')}`);
    });
    log(`shape: ${COLOCATED ? "storage-imap (imap in storage's process)" : 'imap + storage over gRPC'}`);
    const processes = (): Record<string, number | undefined> =>
      COLOCATED
        ? { 'storage-imap': storage.pid, ferretdb: env.ferret?.process.pid }
        : { imap: imap.pid, storage: storage.pid, ferretdb: env.ferret?.process.pid };

    const address = `127.0.0.1:${grpcPort}`;
    const directory = new DirectoryServiceClient(address, env.security('operator').grpcClientCredentials());
    const store = new MailstoreServiceClient(address, env.security('operator').grpcClientCredentials());
    await unary<dir.CreateDomainResponse>((cb) =>
      directory.createDomain({ name: 'example.test', defaultQuotaBytes: 0 }, new Metadata(), cb),
    );
    const createUser = async (local: string): Promise<{ id: string; address: string; password: string }> => {
      const password = `Pw-${randomBytes(9).toString('base64url')}`;
      const created = await unary<dir.CreateUserResponse>((cb) =>
        directory.createUser(
          { address: `${local}@example.test`, password, displayName: local, quotaBytes: undefined },
          new Metadata(),
          cb,
        ),
      );
      return { id: created.user?.id ?? '', address: `${local}@example.test`, password };
    };
    const bench = await createUser('bench');
    const password = bench.password;
    const userId = bench.id;

    // 1. The mix (skipped with --seconds 0, and so is the fill).
    let mix: Record<string, unknown> | null = null;
    if (SECONDS > 0 && MESSAGES > 0) {
      log(`appending ${MESSAGES} messages…`);
      const fillStarted = Date.now();
      let nextMessage = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (nextMessage < MESSAGES) {
            const i = nextMessage++;
            const data = sampleMessage(i);
            await new Promise<void>((resolve, reject) => {
              const call = store.appendMessage(new Metadata(), (error) =>
                error ? reject(error) : resolve(),
              );
              call.write({
                part: {
                  $case: 'header',
                  value: {
                    userId,
                    mailbox: { selector: { $case: 'path', value: 'INBOX' } },
                    flags: i % 3 === 0 ? [mailstore.Flag.SEEN] : [],
                    keywords: [],
                    internalDate: undefined,
                    size: data.length,
                  },
                },
              });
              call.write({ part: { $case: 'chunk', value: data } });
              call.end();
            });
          }
        }),
      );
      const fillSeconds = (Date.now() - fillStarted) / 1000;
      log(`filled in ${fillSeconds.toFixed(1)} s (${(MESSAGES / fillSeconds).toFixed(1)} appends/s)`);
      const meter = cpuMeter(processes());
      mix = {
        ...(await runMix(imapPort, password)),
        fillSeconds: Number(fillSeconds.toFixed(1)),
        cpu: meter(),
      };
      log(`mix: CPU ${JSON.stringify(mix.cpu)}`);
    }

    // 2. SMTP 250 → * n EXISTS on idling clients.
    let latency: Record<string, unknown> | null = null;
    if (LATENCY > 0) {
      const meter = cpuMeter(processes());
      latency = await runLatency(
        work,
        common,
        env.natsOptions('operator'),
        grpcPort,
        imapPort,
        createUser,
        procs,
      );
      latency = { ...latency, cpu: meter() };
      log(`latency: CPU ${JSON.stringify(latency.cpu)} (smtp-inbound not counted)`);
    }

    // 3. Memory per idling connection.
    let idle: Record<string, unknown> | null = null;
    const pid = imap.pid;
    if (IDLE > 0 && pid !== undefined) idle = await runIdle(pid, imapPort, imapOpsPort, password);

    directory.close();
    store.close();
    if (opts.json) process.stdout.write(`${JSON.stringify({ mix, latency, idle }, null, 2)}\n`);
    failed = false;
  } finally {
    await Promise.all(procs.map((p) => p.stop(10_000)));
    await env.stop();
    if (failed) log(`failed; service logs kept in ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
}

async function runMix(imapPort: number, password: string): Promise<Record<string, unknown>> {
  const latencies = new Map<Op, number[]>(OPS.map((op) => [op, []]));
  const failures: string[] = [];
  const table = OPS.flatMap((op) => Array<Op>(WEIGHTS[op]).fill(op));
  // Log every client in first (password hashing dominates logins), then measure the mix only.
  const clients = await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      const c = await Connection.open(imapPort);
      await c.command(`LOGIN bench@example.test "${password}"`);
      await c.command('SELECT INBOX');
      return c;
    }),
  );
  const deadline = Date.now() + SECONDS * 1000;
  const started = Date.now();
  await Promise.all(
    clients.map(async (c, client) => {
      let k = client;
      while (Date.now() < deadline) {
        const op = table[(k * 7919 + client) % table.length]!;
        const n = 1 + ((k * 104729) % MESSAGES);
        k++;
        const t0 = performance.now();
        try {
          await run(c, op, n, k);
        } catch (error) {
          // A refused command (e.g. NO [UNAVAILABLE] when storage is overloaded) is counted,
          // not fatal: the figure says how many failed.
          failures.push(`${op}: ${error instanceof Error ? error.message : String(error)}`);
          continue;
        }
        latencies.get(op)!.push(performance.now() - t0);
      }
      await c.command('LOGOUT').catch(() => undefined);
      c.close();
    }),
  );
  async function run(c: Connection, op: Op, n: number, k: number): Promise<void> {
    switch (op) {
      case 'SELECT':
        await c.command('SELECT INBOX');
        break;
      case 'FETCH 1:* (FLAGS ENVELOPE)':
        await c.command('FETCH 1:* (FLAGS ENVELOPE)');
        break;
      case 'FETCH n BODY[]':
        await c.command(`FETCH ${n} BODY.PEEK[]`);
        break;
      case 'STORE':
        await c.command(`STORE ${n} ${k % 2 === 0 ? '+' : '-'}FLAGS.SILENT (\\Flagged)`);
        break;
      case 'SEARCH':
        await c.command(k % 2 === 0 ? 'SEARCH UNSEEN' : `SEARCH FROM sender${k % 50}@`);
        break;
    }
  }
  const elapsed = (Date.now() - started) / 1000;
  const all = [...latencies.values()].flat().sort((a, b) => a - b);
  const mix = {
    clients: CLIENTS,
    messages: MESSAGES,
    seconds: Number(elapsed.toFixed(1)),
    commandsPerSecond: Number((all.length / elapsed).toFixed(1)),
    p50Ms: Number(percentile(all, 50).toFixed(1)),
    p99Ms: Number(percentile(all, 99).toFixed(1)),
    failedCommands: failures.length,
    firstFailure: failures[0] ?? null,
    perCommand: Object.fromEntries(
      OPS.map((op) => {
        const sorted = latencies.get(op)!.sort((a, b) => a - b);
        return [
          op,
          {
            count: sorted.length,
            p50Ms: Number(percentile(sorted, 50).toFixed(1)),
            p99Ms: Number(percentile(sorted, 99).toFixed(1)),
          },
        ];
      }),
    ),
  };
  log(
    `mix: ${mix.commandsPerSecond} commands/s, p50 ${mix.p50Ms} ms, p99 ${mix.p99Ms} ms, ${failures.length} failed`,
  );
  for (const [op, s] of Object.entries(mix.perCommand)) {
    log(`  ${op.padEnd(28)} n=${String(s.count).padStart(6)} p50 ${s.p50Ms} ms p99 ${s.p99Ms} ms`);
  }
  return mix;
}

/**
 * Starts the real smtp-inbound (MX listener) on the same NATS and storage, puts W clients in IDLE
 * on a fresh user's INBOX, and sends M messages one after the other, each after the previous one
 * was announced. Sender verification (SPF/DKIM/DMARC) is off: it happens before the `250`, so it
 * is outside the measured interval, and the bench has no DNS to ask.
 */
async function runLatency(
  work: string,
  common: NodeJS.ProcessEnv,
  natsOptions: NodeConnectionOptions,
  grpcPort: number,
  imapPort: number,
  createUser: (local: string) => Promise<{ id: string; address: string; password: string }>,
  procs: ManagedProcess[],
): Promise<Record<string, unknown>> {
  const [smtpPort, smtpOps] = [await freePort(), await freePort()];
  const logFile = join(work, 'smtp-inbound.log');
  const smtp = new ManagedProcess({
    name: 'smtp-inbound',
    command: process.execPath,
    args: [join(repoRoot(), 'services', 'smtp-inbound', 'dist', 'main.js')],
    env: {
      ...common,
      POSTMESH_OPS_PORT: String(smtpOps),
      POSTMESH_SMTP_PORT: String(smtpPort),
      POSTMESH_SUBMISSION_PORT: '0',
      POSTMESH_SUBMISSIONS_PORT: '0',
      POSTMESH_STORAGE_GRPC: `127.0.0.1:${grpcPort}`,
      POSTMESH_SMTP_DATA_DIR: join(work, 'smtp'),
      POSTMESH_SMTP_VERIFY_SENDERS: 'false',
      POSTMESH_SMTP_CONNECTIONS_PER_MINUTE: '0',
      POSTMESH_SMTP_MESSAGES_PER_MINUTE: '0',
    },
    logFile,
  });
  smtp.start();
  procs.push(smtp);
  await waitReady(smtpOps, () => smtp.running, logFile);
  const user = await createUser('watch');
  // The storage service's `mailbox.changed.<userId>` event (DESIGN §3), timestamped as it arrives,
  // splits each sample into the delivery part (250 → event) and the imap part (event → EXISTS).
  const nc = await natsConnect(natsOptions);
  const events: number[] = [];
  nc.subscribe(`mailbox.changed.${user.id}`, { callback: () => void events.push(performance.now()) });
  await nc.flush();
  const watchers = await Promise.all(
    Array.from({ length: WATCHERS }, () => ExistsWatcher.open(imapPort, user.address, user.password)),
  );
  const client = await SmtpClient.open(smtpPort);
  client.write('EHLO bench.example.org\r\n');
  await client.reply();
  const samples: number[] = [];
  const deliveryPart: number[] = [];
  const imapPart: number[] = [];
  let early = 0;
  let missed = 0;
  let refused = 0;
  const started = Date.now();
  log(`latency: ${LATENCY} messages to ${user.address}, ${WATCHERS} watcher(s) in IDLE…`);
  // Bounded: at most 5 minutes of sending (a slow store would otherwise take 10 s per miss).
  const phaseEnds = Date.now() + 300_000;
  let sent = 0;
  for (let i = 1; i <= LATENCY && Date.now() < phaseEnds; i++) {
    sent = i;
    if (i % 50 === 0) log(`latency: ${i} messages sent, ${samples.length} samples, ${missed} missed`);
    client.write(`MAIL FROM:<sender@bench.example.org>\r\nRCPT TO:<${user.address}>\r\nDATA\r\n`);
    const [mail, rcpt, data] = [await client.reply(), await client.reply(), await client.reply()];
    if (!mail.line.startsWith('250') || !rcpt.line.startsWith('250') || !data.line.startsWith('354')) {
      refused++;
      client.write('RSET\r\n');
      await client.reply();
      continue;
    }
    events.length = 0;
    client.write(
      `From: <sender@bench.example.org>\r\nTo: <${user.address}>\r\nSubject: latency ${i}\r\n` +
        `Message-ID: <latency-${i}-${Date.now()}@bench.example.org>\r\nDate: ${new Date().toUTCString()}\r\n\r\n` +
        `Message ${i}.\r\n.\r\n`,
    );
    const done = await client.reply();
    if (!done.line.startsWith('250')) {
      refused++;
      continue;
    }
    const n = i - refused;
    for (const w of watchers) {
      const at = await w.existsAt(n, 10_000);
      if (at === null) missed++;
      else if (at < done.at) {
        early++;
        samples.push(0);
      } else samples.push(at - done.at);
      const event = events[0];
      if (at !== null && event !== undefined) {
        deliveryPart.push(Math.max(0, event - done.at));
        imapPart.push(Math.max(0, at - event));
      }
    }
  }
  const seconds = (Date.now() - started) / 1000;
  client.close();
  for (const w of watchers) w.close();
  const result = {
    messages: LATENCY,
    sent,
    watchers: WATCHERS,
    seconds: Number(seconds.toFixed(1)),
    ...summary(samples),
    deliveryTo: summary(deliveryPart),
    eventToExists: summary(imapPart),
    refused,
    missed,
    existsBefore250: early,
  };
  log(
    `latency: 250 → EXISTS p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, max ${result.maxMs} ms ` +
      `(${result.count} samples, ${missed} missed, ${refused} refused); 250 → mailbox.changed p50 ` +
      `${result.deliveryTo.p50Ms} ms p99 ${result.deliveryTo.p99Ms} ms; mailbox.changed → EXISTS p50 ` +
      `${result.eventToExists.p50Ms} ms p99 ${result.eventToExists.p99Ms} ms`,
  );
  await nc.drain();
  await smtp.stop(10_000);
  return result;
}

async function openIdling(imapPort: number, password: string): Promise<Connection> {
  const c = await Connection.open(imapPort);
  try {
    await c.command(`LOGIN bench@example.test "${password}"`);
    await c.idle();
  } catch (error) {
    c.close();
    throw error;
  }
  return c;
}

async function runIdle(
  pid: number,
  imapPort: number,
  imapOps: number,
  password: string,
): Promise<Record<string, unknown>> {
  // Warm-up: the first logins open the KV bucket, the gRPC channel and compile the code paths;
  // that one-time growth is not per connection.
  const warm = await Promise.all(Array.from({ length: 20 }, () => openIdling(imapPort, password)));
  for (const c of warm) c.close();
  await new Promise((r) => setTimeout(r, 3000));
  const before = rssKb(pid);
  const heapBefore = await heapUsedKb(imapOps);
  const conns: Connection[] = [];
  const budgetEnds = Date.now() + IDLE_BUDGET_MS;
  const started = Date.now();
  let failures = 0;
  let firstFailure: string | null = null;
  // The marginal cost: RSS once a fifth of the connections idle (V8 has grown its young
  // generation for the login burst by then, a one-time cost) against RSS at the end.
  const markAt = Math.floor(IDLE / 5);
  let mark: { connections: number; rssKb: number } | null = null;
  // Authenticated connections in IDLE (allowed without a selected mailbox, RFC 9051 §6.3.13);
  // logins go 20 at a time, as password hashing (argon2id in storage) dominates them.
  try {
    for (let i = 0; i < IDLE && Date.now() < budgetEnds; i += 20) {
      const batch = await Promise.allSettled(
        Array.from({ length: Math.min(20, IDLE - i) }, () => openIdling(imapPort, password)),
      );
      for (const r of batch) {
        if (r.status === 'fulfilled') conns.push(r.value);
        else {
          failures++;
          firstFailure ??= r.reason instanceof Error ? r.reason.message : String(r.reason);
        }
      }
      if (failures > 100) break;
      if (mark === null && conns.length >= markAt) {
        await new Promise((r) => setTimeout(r, 2000));
        mark = { connections: conns.length, rssKb: rssKb(pid) };
      }
      if (i % 1000 === 0 && i > 0)
        log(`idle: ${conns.length} connections idling (${((Date.now() - started) / 1000).toFixed(0)} s)`);
    }
    const openSeconds = (Date.now() - started) / 1000;
    const k = conns.length;
    await new Promise((r) => setTimeout(r, 3000));
    const after = rssKb(pid);
    // Settled: the lowest RSS over the next 12 s, once V8's memory reducer has collected the
    // garbage of the logins.
    let settled = after;
    for (let s = 0; s < 12; s++) {
      await new Promise((r) => setTimeout(r, 1000));
      settled = Math.min(settled, rssKb(pid));
    }
    const heapAfter = await heapUsedKb(imapOps);
    const idle = {
      requested: IDLE,
      connections: k,
      failedLogins: failures,
      firstFailure,
      openSeconds: Number(openSeconds.toFixed(1)),
      rssBeforeKb: before,
      rssAfterKb: after,
      rssSettledKb: settled,
      perConnectionKb: Number(((after - before) / Math.max(1, k)).toFixed(1)),
      perConnectionSettledKb: Number(((settled - before) / Math.max(1, k)).toFixed(1)),
      rssAtMarkKb: mark?.rssKb ?? null,
      connectionsAtMark: mark?.connections ?? null,
      marginalPerConnectionKb:
        mark === null || k <= mark.connections
          ? null
          : Number(((settled - mark.rssKb) / (k - mark.connections)).toFixed(1)),
      heapUsedBeforeKb: heapBefore,
      heapUsedAfterKb: heapAfter,
      heapPerConnectionKb:
        heapBefore === null || heapAfter === null
          ? null
          : Number(((heapAfter - heapBefore) / Math.max(1, k)).toFixed(1)),
    };
    log(
      `idle: ${k} of ${IDLE} connections in IDLE after ${idle.openSeconds} s; RSS ${before} → ${after} KB ` +
        `(${idle.perConnectionKb} KB per connection), settled ${settled} KB (${idle.perConnectionSettledKb} KB); ` +
        `marginal from ${String(idle.connectionsAtMark)} to ${k} connections ${String(idle.marginalPerConnectionKb)} KB; ` +
        `V8 heap ${String(heapBefore)} → ${String(heapAfter)} KB (${String(idle.heapPerConnectionKb)} KB)`,
    );
    if (HOLD_MS > 0) {
      // For profiling by hand (e.g. a heap snapshot of the imap process, started with
      // NODE_OPTIONS=--heapsnapshot-signal=SIGUSR2): keep the connections idling a while.
      log(`idle: holding the connections for ${HOLD_MS / 1000} s; imap pid ${pid}`);
      await new Promise((r) => setTimeout(r, HOLD_MS));
    }
    return idle;
  } finally {
    for (const c of conns) c.close();
  }
}

await main();
