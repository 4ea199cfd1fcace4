import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { natsPermissions, type NatsPermissions } from '@postmesh/bus';
import { SERVICE_IDENTITIES } from '@postmesh/identity';
import { ConfigError } from '@postmesh/config';
import {
  FerretDb,
  InternalPki,
  ManagedProcess,
  NatsServer,
  RspamdServer,
  installPythonTools,
  installTools,
  repoRoot,
  waitForPort,
} from '@postmesh/testing';
import {
  endpoints,
  loadStackConfig,
  nodeArgsOf,
  sqliteFile,
  stackDatabase,
  processEnv,
  processOf,
  stackProcesses,
  storageReplicas,
  type StackConfig,
} from './layout.js';
import { Supervised } from './supervisor.js';
import { databasePackages, ensureAptPackages, runtimePackages, testPackages } from './apt.js';

const say = (line: string): void => {
  process.stdout.write(`postmesh | ${line}\n`);
};

/** `postmesh-stack <start|deps|test>`; returns the process exit code. */
export async function main(command: string, args: readonly string[]): Promise<number> {
  try {
    switch (command) {
      case 'start':
        return await start();
      case 'deps':
        await deps();
        return 0;
      case 'test':
        return await test(args);
      case 'nats-permissions':
        process.stdout.write(natsPermissionsJson());
        return 0;
      default:
        say(`unknown command '${command}' (start, deps, test, reset)`);
        return 2;
    }
  } catch (error) {
    if (error instanceof ConfigError) {
      say(error.message);
      return 78;
    }
    say(error instanceof Error ? error.message : String(error));
    return 1;
  }
}

/**
 * Every service's NATS allow-lists (libs/bus `natsPermissions`) as the Helm chart carries them in
 * `charts/postmesh/files/nats-permissions.json` (regenerate with
 * `POSTMESH_SKIP_BUILD=1 node tools/stack/bin/postmesh-stack.mjs nats-permissions`).
 */
export function natsPermissionsJson(): string {
  const out: Record<string, NatsPermissions> = {};
  for (const identity of SERVICE_IDENTITIES) out[identity] = natsPermissions(identity);
  return `${JSON.stringify(out, null, 2)}\n`;
}

/** Build the pinned native tools into .bin/ (nats-server, FerretDB, helm). */
async function deps(): Promise<void> {
  const started = Date.now();
  await installTools(['nats-server', 'ferretdb', 'helm'], say);
  await installPythonTools(say);
  say(`native tools ready in .bin/ (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

/** `npm test`: the whole check a fresh clone must pass, in order, stopping at the first failure. */
async function test(args: readonly string[]): Promise<number> {
  await deps();
  await ensureAptPackages(testPackages(), say);
  const resultsFile = join(repoRoot(), '.tmp', 'vitest-results.json');
  const steps: [string, string, string[]][] = [
    ['type-check (sources and tests)', 'npx', ['nx', 'run-many', '-t', 'typecheck', '--outputStyle=static']],
    ['lint', 'npm', ['run', 'lint']],
    ['generated contracts are current', 'npm', ['run', 'proto:check']],
    [
      'unit and integration tests',
      'npx',
      ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${resultsFile}`, ...args],
    ],
  ];
  for (const [what, cmd, cmdArgs] of steps) {
    say(`${what}…`);
    const started = Date.now();
    const code = await new Promise<number>((done) => {
      const child = spawn(cmd, cmdArgs, {
        cwd: repoRoot(),
        stdio: 'inherit',
        env: { ...process.env, NX_DAEMON: 'false' },
      });
      child.once('exit', (c) => done(c ?? 1));
    });
    if (cmd === 'npx' && cmdArgs[0] === 'vitest') printTotals(resultsFile);
    if (code !== 0) {
      say(`${what} failed (exit ${code})`);
      return code;
    }
    say(`${what}: passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  return 0;
}

/**
 * Local-only secrets, made on first start and kept in the data directory: the key-encryption key
 * (DESIGN §5; production takes it from a Kubernetes Secret or a KMS) and the demo users' password
 * (POSTMESH_DEV_PASSWORD, else generated and printed once).
 */
function ensureDevSecrets(dataDir: string): { env: NodeJS.ProcessEnv; generatedPassword?: string } {
  const secretsDir = join(dataDir, 'secrets');
  mkdirSync(secretsDir, { recursive: true, mode: 0o700 });
  const kekFile = join(secretsDir, 'kek.b64');
  if (!existsSync(kekFile))
    writeFileSync(kekFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  let password = process.env.POSTMESH_DEV_PASSWORD;
  let generatedPassword: string | undefined;
  const passwordFile = join(secretsDir, 'dev-password');
  if (!password) {
    if (existsSync(passwordFile)) {
      password = readFileSync(passwordFile, 'utf8').trim();
    } else {
      password = randomBytes(12).toString('base64url');
      generatedPassword = password;
      writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
    }
  }
  return {
    env: {
      POSTMESH_KEK_FILE: kekFile,
      POSTMESH_DEV_SEED: 'true',
      POSTMESH_DEV_PASSWORD: password,
      // The admin console's bootstrap owner (DESIGN §6), with the same local password.
      POSTMESH_OWNER_EMAIL: 'admin@example.test',
      POSTMESH_OWNER_PASSWORD: password,
    },
    ...(generatedPassword ? { generatedPassword } : {}),
  };
}

/** One plain closing line, `N passed, N failed`, that any CI reader understands. */
function printTotals(resultsFile: string): void {
  try {
    const results = JSON.parse(readFileSync(resultsFile, 'utf8')) as {
      numPassedTests: number;
      numFailedTests: number;
      numPendingTests: number;
    };
    process.stdout.write(
      `tests: ${results.numPassedTests} passed, ${results.numFailedTests} failed, ${results.numPendingTests} skipped\n`,
    );
  } catch {
    say('no test results were written');
  }
}

async function start(): Promise<number> {
  const config = loadStackConfig();
  const root = repoRoot();
  const dataDir = resolve(root, config.POSTMESH_DATA_DIR);
  const logDir = join(dataDir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const ferretdb = config.POSTMESH_STACK_DB === 'ferretdb';
  await installTools(ferretdb ? ['nats-server', 'ferretdb'] : ['nats-server'], say);

  say(`data in ${dataDir} (wipe with 'npm run stack:reset'); logs in ${logDir}`);
  const secrets = ensureDevSecrets(dataDir);
  // Internal identities (docs/operations.md): a local CA, a certificate per service for mutual
  // TLS to storage, and a NATS user per service over TLS; the secure path is the everyday path.
  const insecure = ['1', 'true', 'yes', 'on'].includes(
    (process.env.POSTMESH_INSECURE_INTERNAL ?? '').trim().toLowerCase(),
  );
  const pki = insecure ? undefined : InternalPki.ensure(join(dataDir, 'secrets', 'identity'));
  if (insecure) {
    say('WARNING: POSTMESH_INSECURE_INTERNAL is set: NATS and gRPC run without TLS or identities');
  }
  const supervised: Supervised[] = [];
  const processes: ManagedProcess[] = [];
  let stopping = false;
  const stopAll = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    for (const s of supervised) s.markStopping();
    say(`${signal}: stopping services, then ${ferretdb ? 'FerretDB, its database and ' : ''}NATS…`);
    // Services first (they drain into NATS), servers last.
    for (const s of [...supervised].reverse()) await s.stop();
    say('stopped; nothing left running');
  };
  const stopped = new Promise<void>((resolveStopped) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => void stopAll(signal).then(resolveStopped));
    }
  });

  const nats = await NatsServer.create({
    dataDir: join(dataDir, 'nats'),
    port: config.POSTMESH_NATS_PORT,
    monitorPort: config.POSTMESH_NATS_MONITOR_PORT,
    serverName: 'postmesh-local',
    detached: true,
    ...(pki === undefined ? {} : { pki }),
  });
  const natsSupervised = new Supervised({
    name: 'nats-server',
    process: nats.process,
    start: () => nats.restart(),
    log: say,
  });
  await natsSupervised.start();
  processes.push(nats.process);
  supervised.push(natsSupervised);
  say(
    `nats-server up on ${nats.url} (JetStream, fsync before every ack, encrypted at rest${pki === undefined ? '' : ', TLS and a user per service'})`,
  );

  if (ferretdb) {
    // Into the stack's lists as each starts, so Ctrl-C stops what did start.
    await startFerretDb(config, dataDir, { supervised, processes });
  } else {
    say(
      `database: SQLite file ${sqliteFile(dataDir)}, inside storage's process (POSTMESH_STACK_DB=ferretdb runs FerretDB instead)`,
    );
  }

  if (config.POSTMESH_STACK_RSPAMD) {
    const filter = await startContentFilter(config, dataDir);
    if (filter !== undefined) {
      supervised.push(...filter.supervised);
      processes.push(filter.server.redis, filter.server.process);
    }
  }

  for (const stackProcess of stackProcesses(config)) {
    const { name, pkg, opsPort } = stackProcess;
    const proc = new ManagedProcess({
      name,
      command: process.execPath,
      args: [...nodeArgsOf(config, stackProcess), join(root, 'services', pkg, 'dist', 'main.js')],
      // POSTMESH_STACK_PROCESS: its name, for tools that tell processes apart (bench CPU figures).
      env: {
        ...processEnv(config, stackProcess, dataDir, pki?.dir),
        ...secrets.env,
        // The demo users are made once, by the first replica (the others share its database).
        ...(stackProcess.replica !== undefined && stackProcess.replica > 1
          ? { POSTMESH_DEV_SEED: 'false' }
          : {}),
        POSTMESH_STACK_PROCESS: name,
      },
      logFile: join(logDir, `${name}.log`),
      detached: true,
    });
    const s = new Supervised({
      name,
      process: proc,
      start: async () => {
        proc.start();
        await waitForPort(opsPort, '127.0.0.1', 30_000, () => proc.running);
      },
      log: say,
    });
    await s.start();
    supervised.push(s);
    processes.push(proc);
    say(
      `${name} started (pid ${proc.pid ?? '?'}${stackProcess.services.length > 1 ? `; serves ${stackProcess.services.join(' and ')}` : ''}), waiting for it to be ready`,
    );
  }

  const ready = await waitUntilReady(config, () => stopping);
  if (stopping) {
    await stopped;
    return 0;
  }
  if (!ready) {
    say(
      `not every service became ready within ${config.POSTMESH_STACK_READY_TIMEOUT_MS / 1000} s; see ${logDir}`,
    );
    await stopAll('not ready');
    return 1;
  }
  const partitions = storageReplicas(config) > 1 ? await waitForSplit(config, () => stopping) : undefined;
  await report(config, dataDir, processes, partitions);
  if (secrets.generatedPassword) {
    say(
      `demo users (demo@example.test, admin@example.test) have the generated password: ${secrets.generatedPassword}`,
    );
    say(
      'it is shown only this once; set POSTMESH_DEV_PASSWORD to choose your own, or run npm run stack:reset',
    );
  }
  await stopped;
  return 0;
}

/** FerretDB (POSTMESH_STACK_DB=ferretdb) on SQLite or on a PostgreSQL cluster of its own. */
async function startFerretDb(
  config: StackConfig,
  dataDir: string,
  out: { supervised: Supervised[]; processes: ManagedProcess[] },
): Promise<void> {
  const backend = config.POSTMESH_DB_BACKEND;
  if (backend === 'postgresql') await ensureAptPackages(databasePackages(), say);
  const ferret = await FerretDb.create({
    dataDir: join(dataDir, 'ferretdb'),
    port: config.POSTMESH_MONGO_PORT,
    detached: true,
    backend,
  });
  const postgres = ferret.postgres;
  if (postgres !== undefined) {
    const postgresSupervised = new Supervised({
      name: 'postgresql',
      process: postgres.process,
      start: () => postgres.restart(),
      log: say,
    });
    await postgresSupervised.start();
    out.processes.push(postgres.process);
    out.supervised.push(postgresSupervised);
    say(`PostgreSQL up for FerretDB (cluster ${postgres.clusterDir}, Unix socket only, fsync on)`);
  }
  const ferretSupervised = new Supervised({
    name: 'ferretdb',
    process: ferret.process,
    start: () => ferret.restart(),
    log: say,
  });
  await ferretSupervised.start();
  out.processes.push(ferret.process);
  out.supervised.push(ferretSupervised);
  say(`FerretDB up on ${ferret.uri} (${backend === 'postgresql' ? 'on PostgreSQL' : 'on SQLite'})`);
}

/**
 * rspamd and its Redis for content filtering. rspamd's first start compiles its rules (a minute
 * or two on a small machine; cached in the data dir afterwards): the services do not wait for it,
 * and smtp-inbound accepts mail marked "not scanned" until it answers.
 */
async function startContentFilter(
  config: StackConfig,
  dataDir: string,
): Promise<{ server: RspamdServer; supervised: Supervised[] } | undefined> {
  try {
    await ensureAptPackages(runtimePackages(), say);
  } catch (error) {
    say(`content filtering off: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  }
  let server: RspamdServer;
  try {
    server = await RspamdServer.create({
      dataDir: join(dataDir, 'rspamd'),
      cacheDir: config.POSTMESH_RSPAMD_CACHE_DIR ?? join(dataDir, 'rspamd', 'cache'),
      port: config.POSTMESH_RSPAMD_PORT,
      controllerPort: config.POSTMESH_RSPAMD_CONTROLLER_PORT,
      redisPort: config.POSTMESH_RSPAMD_REDIS_PORT,
      detached: true,
    });
  } catch (error) {
    say(`content filtering off: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  }
  const redis = new Supervised({
    name: 'redis',
    process: server.redis,
    start: () => server.startRedis(),
    log: say,
  });
  const rspamd = new Supervised({
    name: 'rspamd',
    process: server.process,
    start: () => server.restart(),
    log: say,
  });
  await redis.start();
  const started = Date.now();
  say(
    `rspamd starting on ${server.url} (controller ${server.controllerUrl}); mail is accepted unscanned until it answers`,
  );
  void rspamd.start().then(
    () =>
      say(
        `rspamd up on ${server.url} after ${((Date.now() - started) / 1000).toFixed(1)} s (content filtering on)`,
      ),
    (error: unknown) =>
      say(
        `rspamd did not start (${error instanceof Error ? error.message : String(error)}); see ${server.dataDir}/rspamd.log`,
      ),
  );
  return { server, supervised: [redis, rspamd] };
}

async function readiness(port: number): Promise<{ ready: boolean; detail: string }> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/healthz/ready`, {
      signal: AbortSignal.timeout(3_000),
    });
    const body = (await response.json()) as { checks?: { name: string; ready: boolean; reason?: string }[] };
    const failing = (body.checks ?? [])
      .filter((c) => !c.ready)
      .map((c) => `${c.name}: ${c.reason ?? 'not ready'}`);
    return { ready: response.status === 200, detail: failing.join('; ') || `HTTP ${response.status}` };
  } catch (error) {
    return { ready: false, detail: error instanceof Error ? error.message : String(error) };
  }
}

async function waitUntilReady(config: StackConfig, cancelled: () => boolean): Promise<boolean> {
  const deadline = Date.now() + config.POSTMESH_STACK_READY_TIMEOUT_MS;
  const readySet = new Set<string>();
  const processes = stackProcesses(config);
  let lastProgress = 0;
  while (Date.now() < deadline && !cancelled()) {
    for (const { name, opsPort } of processes) {
      if (readySet.has(name)) continue;
      const { ready, detail } = await readiness(opsPort);
      if (ready) {
        readySet.add(name);
        say(`${name} ready (${readySet.size}/${processes.length})`);
      } else if (Date.now() - lastProgress > 5_000) {
        say(`still waiting for ${name}: ${detail}`);
        lastProgress = Date.now();
      }
    }
    if (readySet.size === processes.length) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return readySet.size === processes.length;
}

/** Partitions a storage process owns now (`postmesh_storage_partitions_owned`), or undefined. */
async function partitionsOwned(port: number): Promise<number | undefined> {
  try {
    const text = await (
      await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(3_000) })
    ).text();
    const match = /^postmesh_storage_partitions_owned(?:\{[^}]*\})? (\d+)$/m.exec(text);
    return match === null ? undefined : Number(match[1]);
  } catch {
    return undefined;
  }
}

/**
 * Several replicas: wait (up to 60 s) until every one owns partitions and together they own all
 * of them (a replica that joins takes its share from the others, ADR 0007 "Rebalancing"); the
 * split, by process name, as it stands then.
 */
async function waitForSplit(config: StackConfig, cancelled: () => boolean): Promise<Record<string, number>> {
  const replicas = stackProcesses(config).filter((p) => p.replica !== undefined);
  const deadline = Date.now() + 60_000;
  let split: Record<string, number> = {};
  while (!cancelled()) {
    split = {};
    for (const p of replicas) split[p.name] = (await partitionsOwned(p.opsPort)) ?? 0;
    const counts = Object.values(split);
    const total = counts.reduce((a, b) => a + b, 0);
    if ((counts.every((n) => n > 0) && total === config.POSTMESH_STORAGE_PARTITIONS) || Date.now() > deadline)
      break;
    await new Promise((r) => setTimeout(r, 500));
  }
  say(
    `partitions: ${Object.entries(split)
      .map(([name, n]) => `${name} owns ${n}`)
      .join(', ')} (of ${config.POSTMESH_STORAGE_PARTITIONS})`,
  );
  return split;
}

async function listening(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
}

/** Print where to connect and write the same, machine-readable, to .data/stack.json. */
async function report(
  config: StackConfig,
  dataDir: string,
  processes: readonly ManagedProcess[],
  partitions: Record<string, number> | undefined,
): Promise<void> {
  const list = await Promise.all(
    endpoints(config).map(async (e) => ({ ...e, listening: await listening(e.port) })),
  );
  const ops = stackProcesses(config).map((p) => ({
    process: p.name,
    services: p.services,
    port: p.opsPort,
    ready: `http://127.0.0.1:${p.opsPort}/healthz/ready`,
    metrics: `http://127.0.0.1:${p.opsPort}/metrics`,
  }));
  const database = stackDatabase(config, dataDir);
  const stackFile = join(dataDir, 'stack.json');
  writeFileSync(
    stackFile,
    `${JSON.stringify(
      {
        startedAt: new Date().toISOString(),
        pid: process.pid,
        dataDir,
        endpoints: list,
        database,
        ops,
        processes: processes.map((p) => ({ name: p.options.name, pid: p.pid })),
        ...(partitions === undefined ? {} : { partitions }),
      },
      null,
      2,
    )}\n`,
  );
  const width = Math.max(...list.map((e) => e.name.length));
  const lines = [
    '',
    'Postmesh is running. Connect to:',
    ...list.map(
      (e) =>
        `  ${e.name.padEnd(width)}  ${e.url}${e.listening ? '' : `   (not served yet: ${e.process} has no listener on this port)`}`,
    ),
    '',
    database.kind === 'sqlite'
      ? `Database: SQLite file ${database.file} (inside ${database.process}; POSTMESH_STACK_DB=ferretdb runs FerretDB instead)`
      : `Database: FerretDB on ${database.backend === 'postgresql' ? 'PostgreSQL' : 'SQLite'} at ${database.url} (POSTMESH_STACK_DB=ferretdb)`,
    '',
    'Ops endpoints (GET /healthz/live, /healthz/ready, /metrics):',
    ...ops.map(
      (o) =>
        `  ${o.process.padEnd(width)}  http://127.0.0.1:${o.port}${o.services.length > 1 ? `   (${o.services.join(' and ')} in one process)` : ''}`,
    ),
    '',
    storageReplicas(config) > 1
      ? `IMAP is served by ${storageReplicas(config)} storage-imap replicas behind imap-proxy (the public IMAP ports), each user at the replica that owns its partition; ManageSieve by ${processOf(config, 'managesieve')}.`
      : config.POSTMESH_STACK_IMAP_AT_STORAGE
        ? `IMAP and ManageSieve are served by ${processOf(config, 'imap')}, in storage's process (docs/adr/0010-imap-at-the-owner.md); POSTMESH_STACK_IMAP_AT_STORAGE=false runs a separate imap.`
        : 'IMAP and ManageSieve are served by a separate imap process, over gRPC to storage (POSTMESH_STACK_IMAP_AT_STORAGE=false).',
    '',
    `Machine-readable: ${stackFile}`,
    'Press Ctrl-C to stop everything.',
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
