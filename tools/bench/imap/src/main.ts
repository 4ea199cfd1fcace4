#!/usr/bin/env node
/**
 * IMAP benchmark (issue 5, "Benchmarks"), against the real storage and imap service processes on
 * a private FerretDB and NATS (libs/testing), so a run needs nothing else and leaves nothing:
 *
 *   1. mix: C concurrent logged-in clients on one N-message mailbox, each running for D seconds a
 *      mix of SELECT INBOX, FETCH 1:* (FLAGS ENVELOPE), FETCH n BODY[], STORE n ±FLAGS and
 *      SEARCH; reports commands/s and p50/p99 latency per command and overall;
 *   2. idle: K authenticated connections in IDLE; reports the imap process's resident memory
 *      growth per connection (VmRSS from /proc, 3 s after the last one started idling).
 *
 *   npm run build && node tools/bench/imap/dist/main.js --messages 10000 --clients 10 --seconds 30 --idle 2000
 *
 * Options: --messages N (10000), --clients C (10), --seconds D (30), --idle K (2000; 0 skips),
 * --json (print the result as JSON too). Every request goes to 127.0.0.1 only; loops are bounded
 * by --seconds and --idle.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Metadata, credentials, type ServiceError } from '@grpc/grpc-js';
import {
  DirectoryServiceClient,
  MailstoreServiceClient,
  mailstore,
  type directory as dir,
} from '@postmesh/contracts';
import { ManagedProcess, freePort, repoRoot, startTestEnvironment, waitForPort } from '@postmesh/testing';

const { values: opts } = parseArgs({
  options: {
    messages: { type: 'string', default: '10000' },
    clients: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '30' },
    idle: { type: 'string', default: '2000' },
    json: { type: 'boolean', default: false },
  },
});
const MESSAGES = Number(opts.messages);
const CLIENTS = Number(opts.clients);
const SECONDS = Number(opts.seconds);
const IDLE = Number(opts.idle);

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
      NATS_URL: env.natsUrl,
      NATS_MONITOR_URL: env.natsMonitorUrl ?? '',
      LOG_LEVEL: 'warn',
    };
    const storage = new ManagedProcess({
      name: 'storage',
      command: process.execPath,
      args: [join(root, 'services', 'storage', 'dist', 'main.js')],
      env: {
        ...common,
        MONGODB_URI: env.mongoUri,
        POSTMESH_MONGODB_DB: env.database,
        POSTMESH_KEK_FILE: kek,
        POSTMESH_GRPC_PORT: String(grpcPort),
        POSTMESH_OPS_PORT: String(storageOps),
      },
      logFile: join(work, 'storage.log'),
    });
    storage.start();
    procs.push(storage);
    await waitForPort(grpcPort, '127.0.0.1', 120_000, () => storage.running).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${readFileSync(join(work, 'storage.log'), 'utf8')}`);
    });
    const imap = new ManagedProcess({
      name: 'imap',
      command: process.execPath,
      args: [join(root, 'services', 'imap', 'dist', 'main.js')],
      env: {
        ...common,
        POSTMESH_STORAGE_GRPC: `127.0.0.1:${grpcPort}`,
        POSTMESH_IMAP_PORT: String(imapPort),
        POSTMESH_IMAPS_PORT: String(imapsPort),
        POSTMESH_OPS_PORT: String(imapOps),
        POSTMESH_IMAP_DATA_DIR: join(work, 'imap'),
        POSTMESH_IMAP_ALLOW_PLAINTEXT: 'true',
        POSTMESH_IMAP_COMMAND_RATE: '100000',
      },
      logFile: join(work, 'imap.log'),
    });
    imap.start();
    procs.push(imap);
    await waitForPort(imapPort, '127.0.0.1', 120_000, () => imap.running).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${readFileSync(join(work, 'imap.log'), 'utf8')}`);
    });

    const address = `127.0.0.1:${grpcPort}`;
    const directory = new DirectoryServiceClient(address, credentials.createInsecure());
    const store = new MailstoreServiceClient(address, credentials.createInsecure());
    await unary<dir.CreateDomainResponse>((cb) =>
      directory.createDomain({ name: 'example.test', defaultQuotaBytes: 0 }, new Metadata(), cb),
    );
    const password = `Pw-${randomBytes(9).toString('base64url')}`;
    const created = await unary<dir.CreateUserResponse>((cb) =>
      directory.createUser(
        { address: 'bench@example.test', password, displayName: 'bench', quotaBytes: undefined },
        new Metadata(),
        cb,
      ),
    );
    const userId = created.user?.id ?? '';

    log(`appending ${MESSAGES} messages…`);
    const fillStarted = Date.now();
    let nextMessage = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (nextMessage < MESSAGES) {
          const i = nextMessage++;
          const data = sampleMessage(i);
          await new Promise<void>((resolve, reject) => {
            const call = store.appendMessage(new Metadata(), (error) => (error ? reject(error) : resolve()));
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
    log(`filled in ${((Date.now() - fillStarted) / 1000).toFixed(1)} s`);

    // 1. The mix.
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

    // 2. Memory per idling connection.
    let idle: {
      connections: number;
      rssBeforeKb: number;
      rssAfterKb: number;
      perConnectionKb: number;
    } | null = null;
    const pid = imap.pid;
    if (IDLE > 0 && pid !== undefined) {
      await new Promise((r) => setTimeout(r, 1000));
      const before = rssKb(pid);
      const conns: Connection[] = [];
      // Authenticated connections in IDLE (allowed without a selected mailbox, RFC 9051 §6.3.13);
      // logins go 10 at a time, as password hashing dominates them.
      for (let i = 0; i < IDLE; i += 10) {
        const batch = await Promise.all(
          Array.from({ length: Math.min(10, IDLE - i) }, async () => {
            const c = await Connection.open(imapPort);
            await c.command(`LOGIN bench@example.test "${password}"`);
            await c.idle();
            return c;
          }),
        );
        conns.push(...batch);
      }
      await new Promise((r) => setTimeout(r, 3000));
      const after = rssKb(pid);
      idle = {
        connections: IDLE,
        rssBeforeKb: before,
        rssAfterKb: after,
        perConnectionKb: Number(((after - before) / IDLE).toFixed(1)),
      };
      log(
        `idle: ${IDLE} connections in IDLE, RSS ${before} → ${after} KB, ${idle.perConnectionKb} KB per connection`,
      );
      for (const c of conns) c.close();
    }
    directory.close();
    store.close();
    if (opts.json) process.stdout.write(`${JSON.stringify({ mix, idle }, null, 2)}\n`);
    failed = false;
  } finally {
    await Promise.all(procs.map((p) => p.stop(10_000)));
    await env.stop();
    if (failed) log(`failed; service logs kept in ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
}

await main();
