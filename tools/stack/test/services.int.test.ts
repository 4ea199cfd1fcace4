import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ManagedProcess,
  freePort,
  repoRoot,
  startTestEnvironment,
  type TestEnvironment,
} from '@postmesh/testing';

const root = repoRoot();
// storage-imap: storage and imap in one process (ADR 0010), what `npm start` runs by default.
const SERVICES = ['smtp-inbound', 'storage', 'imap', 'storage-imap', 'mta-delivery', 'admin'] as const;
/** The processes that run storage (and so serve their own gRPC port). */
const STORAGE = new Set<string>(['storage', 'storage-imap']);
const mainOf = (service: string): string => join(root, 'services', service, 'dist', 'main.js');

async function readyStatus(port: number): Promise<number> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/healthz/ready`, { signal: AbortSignal.timeout(3_000) }))
      .status;
  } catch {
    return 0;
  }
}

async function waitForStatus(port: number, status: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 0;
  while (Date.now() < deadline) {
    last = await readyStatus(port);
    if (last === status) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`/healthz/ready on ${port} stayed ${last}, expected ${status}`);
}

describe.each(SERVICES)('%s refuses a bad configuration', (service) => {
  it('exits non-zero and names the variable', () => {
    const result = spawnSync(process.execPath, [mainOf(service)], {
      env: { ...process.env, POSTMESH_OPS_PORT: 'ninety', NATS_URL: 'nats://127.0.0.1:1' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.status).toBe(78);
    expect(result.stderr).toContain('POSTMESH_OPS_PORT: expected an integer from 1 to 65535, got "ninety"');
  });
});

describe.each(['storage', 'storage-imap'])('%s refuses an unknown database', (service) => {
  it('exits 78 and names POSTMESH_STORAGE_DB and its choices', () => {
    const result = spawnSync(process.execPath, [mainOf(service)], {
      env: { ...process.env, POSTMESH_STORAGE_DB: 'postgres', NATS_URL: 'nats://127.0.0.1:1' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.status).toBe(78);
    expect(result.stderr).toContain('POSTMESH_STORAGE_DB: expected one of mongodb, sqlite, got "postgres"');
  });
});

describe('service lifecycle against real NATS and FerretDB', () => {
  let env: TestEnvironment;
  const logDir = mkdtempSync(join(tmpdir(), 'postmesh-services-'));
  const kekFile = join(logDir, 'kek.b64');
  writeFileSync(kekFile, randomBytes(32).toString('base64'));
  const running: ManagedProcess[] = [];
  /** A storage instance the other services depend on (their readiness includes the Directory). */
  let sharedStorageGrpc = '';

  beforeAll(async () => {
    env = await startTestEnvironment();
    const storage = await startService('storage');
    await waitForStatus(storage.opsPort, 200);
    sharedStorageGrpc = storage.grpc;
  });
  afterAll(async () => {
    await Promise.all(running.map((p) => p.kill()));
    await env?.stop();
    if (!process.env.POSTMESH_KEEP_TEST_LOGS) rmSync(logDir, { recursive: true, force: true });
  });

  async function startService(
    service: (typeof SERVICES)[number],
    vars: Readonly<Record<string, string>> = {},
  ): Promise<{ proc: ManagedProcess; opsPort: number; grpc: string }> {
    const opsPort = await freePort();
    // Every listener on a port of its own, so these processes never collide with a running
    // stack or with other suites.
    const listeners: Record<string, string> = {};
    for (const name of [
      'POSTMESH_SMTP_PORT',
      'POSTMESH_SUBMISSION_PORT',
      'POSTMESH_SUBMISSIONS_PORT',
      'POSTMESH_IMAP_PORT',
      'POSTMESH_IMAPS_PORT',
      'POSTMESH_HTTP_PORT',
      'POSTMESH_GRPC_PORT',
    ]) {
      listeners[name] = String(await freePort());
    }
    const proc = new ManagedProcess({
      name: service,
      command: process.execPath,
      args: [mainOf(service)],
      env: {
        ...process.env,
        ...env.serviceEnv,
        MONGODB_URI: env.mongoUri,
        POSTMESH_MONGODB_DB: env.database,
        POSTMESH_OPS_PORT: String(opsPort),
        POSTMESH_SHUTDOWN_TIMEOUT_MS: '5000',
        POSTMESH_KEK_FILE: kekFile,
        ...listeners,
        POSTMESH_STORAGE_GRPC:
          STORAGE.has(service) || !sharedStorageGrpc
            ? `127.0.0.1:${listeners.POSTMESH_GRPC_PORT}`
            : sharedStorageGrpc,
        POSTMESH_IMAP_DATA_DIR: join(logDir, `imap-${opsPort}`),
        POSTMESH_SMTP_DATA_DIR: join(logDir, `smtp-${opsPort}`),
        LOG_LEVEL: 'info',
        ...vars,
      },
      logFile: join(logDir, `${service}-${opsPort}.log`),
    });
    proc.start();
    running.push(proc);
    return { proc, opsPort, grpc: `127.0.0.1:${listeners.POSTMESH_GRPC_PORT}` };
  }

  it.each(SERVICES)('%s becomes ready and exits 0 on SIGTERM within the drain budget', async (service) => {
    const { proc, opsPort } = await startService(service);
    await waitForStatus(opsPort, 200);
    const started = Date.now();
    const code = await proc.stop(10_000);
    expect(code, `exit code; log:\n${readFileSync(proc.options.logFile, 'utf8').slice(-3_000)}`).toBe(0);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('storage-imap whose IMAP half cannot start says so, stops storage and exits non-zero', async () => {
    // The IMAP port is taken: storage starts, imap's listen fails.
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as AddressInfo).port;
    try {
      const { proc } = await startService('storage-imap', { POSTMESH_IMAP_PORT: String(port) });
      const code = await Promise.race([
        proc.exited,
        new Promise<'running'>((resolve) => setTimeout(() => resolve('running'), 60_000)),
      ]);
      // The log's last lines may reach the file just after the exit.
      await new Promise((r) => setTimeout(r, 300));
      const log = readFileSync(proc.options.logFile, 'utf8');
      expect(code, `still running after 60 s:\n${log.slice(-3_000)}`).not.toBe('running');
      expect(code, log.slice(-3_000)).not.toBe(0);
      expect(code).not.toBeNull();
      expect(log).toMatch(/"level":"fatal"[^\n]*imap did not start in this process; stopping storage/);
      expect(log).toContain('EADDRINUSE');
    } finally {
      taken.close();
    }
  });

  it('storage on its SQLite file becomes ready, checks it as `database`, and closes it on SIGTERM', async () => {
    const file = join(logDir, 'sqlite', 'postmesh.sqlite');
    const { proc, opsPort } = await startService('storage', {
      POSTMESH_STORAGE_DB: 'sqlite',
      POSTMESH_SQLITE_FILE: file,
    });
    await waitForStatus(opsPort, 200);
    const ready = (await (await fetch(`http://127.0.0.1:${opsPort}/healthz/ready`)).json()) as {
      checks: { name: string; ready: boolean }[];
    };
    expect(ready.checks).toContainEqual({ name: 'database', ready: true });
    expect(ready.checks.map((c) => c.name)).not.toContain('mongodb');
    expect(existsSync(file)).toBe(true);
    expect(readFileSync(proc.options.logFile, 'utf8')).toContain(`"msg":"database: SQLite file ${file}"`);
    const metrics = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
    expect(metrics).toMatch(
      /^postmesh_storage_db_operations_total\{command="createIndexes",outcome="ok"[^}]*\} [1-9]/m,
    );
    expect(await proc.stop(10_000)).toBe(0);
    // Closed, not cut off: SQLite folds the write-ahead log into the file at the last close.
    expect(existsSync(`${file}-wal`), 'the -wal file after a clean stop').toBe(false);
  });

  it.each([
    ['below a regular file', (junk: string) => join(junk, 'postmesh.sqlite'), 'unable to open database file'],
    ['not a SQLite database', (junk: string) => junk, 'not a database'],
  ])('storage refuses a SQLite file %s: exit 78, naming POSTMESH_SQLITE_FILE', async (_, fileOf, why) => {
    const junk = join(logDir, `junk-${randomBytes(4).toString('hex')}`);
    writeFileSync(junk, 'not a database, and never written to by storage\n'.repeat(200));
    const before = readFileSync(junk, 'utf8');
    const file = fileOf(junk);
    const { proc } = await startService('storage', {
      POSTMESH_STORAGE_DB: 'sqlite',
      POSTMESH_SQLITE_FILE: file,
    });
    const code = await Promise.race([
      proc.exited,
      new Promise<'running'>((resolve) => setTimeout(() => resolve('running'), 30_000)),
    ]);
    await new Promise((r) => setTimeout(r, 300));
    const log = readFileSync(proc.options.logFile, 'utf8');
    expect(code, log.slice(-3_000)).toBe(78);
    expect(log).toContain(`POSTMESH_SQLITE_FILE: cannot open ${file} as a SQLite database:`);
    expect(log).toContain(why);
    expect(readFileSync(junk, 'utf8')).toBe(before);
  });

  it('turns not-ready while NATS is down and ready again when it returns, without a restart', async () => {
    if (!env.nats) throw new Error('this test needs the local nats-server (unset NATS_URL)');
    const { proc, opsPort } = await startService('mta-delivery');
    await waitForStatus(opsPort, 200);
    const pid = proc.pid;
    await env.nats.process.kill();
    await waitForStatus(opsPort, 503, 10_000).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${readFileSync(proc.options.logFile, 'utf8')}`);
    });
    await env.nats.restart();
    await waitForStatus(opsPort, 200, 20_000);
    expect(proc.pid).toBe(pid);
    expect(proc.running).toBe(true);
    expect(await proc.stop()).toBe(0);
  });

  it('storage is not ready while its database is unreachable', async () => {
    if (!env.ferret) throw new Error('this test needs the local FerretDB (unset MONGODB_URI)');
    const { proc, opsPort } = await startService('storage');
    await waitForStatus(opsPort, 200);
    await env.ferret.process.kill();
    await waitForStatus(opsPort, 503, 15_000).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${readFileSync(proc.options.logFile, 'utf8')}`);
    });
    await env.ferret.restart();
    await waitForStatus(opsPort, 200, 30_000);
    expect(await proc.stop()).toBe(0);
  });
});
