import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestEnvironment } from './environment.js';
import { ManagedProcess, freePort } from './process.js';
import { repoRoot } from './repo.js';

/** The deployable services, each run as `node services/<name>/dist/main.js`. */
export type ServiceName =
  'storage' | 'imap' | 'smtp-inbound' | 'mta-delivery' | 'admin' | 'storage-imap' | 'imap-proxy';

/** Services that run storage (storage-imap: storage with the IMAP server in its process). */
const runsStorage = (service: ServiceName): boolean => service === 'storage' || service === 'storage-imap';

export interface StartServiceOptions {
  /** NATS, the database and the internal identities the service uses. */
  readonly env: TestEnvironment;
  /** Where the log (`<name>.log`) and, for storage, the KEK and the body store go. */
  readonly dir: string;
  /** The process's name and log file name (default: the service's); two replicas need two. */
  readonly name?: string;
  /** Environment on top of the defaults (a value here wins over every default). */
  readonly vars?: Readonly<Record<string, string>>;
  /** Variables to leave out (a test of what the service does without one, e.g. its KEK). */
  readonly unset?: readonly string[];
  /**
   * Start from this environment instead of this process's own (`process.env`), e.g. a pod's
   * bare one; the test environment's and the service's own variables are still added.
   */
  readonly baseEnv?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** The ops port (health, metrics); default a free one. */
  readonly opsPort?: number;
  /** For storage: the gRPC port; default a free one. */
  readonly grpcPort?: number;
  /**
   * Wait until `GET /healthz/ready` answers 200 (default); `false` returns once the process is
   * spawned (a test that expects it to refuse to start, or that starts several at once).
   */
  readonly waitReady?: boolean;
  readonly readyTimeoutMs?: number;
}

/** One service process, started on free ports and ready to serve. */
export interface RunningService {
  readonly service: ServiceName;
  readonly name: string;
  /** The current process (a new one after `restart`). */
  readonly proc: ManagedProcess;
  readonly opsPort: number;
  /** Storage's gRPC port (0 for the other services). */
  readonly grpcPort: number;
  /** `127.0.0.1:<grpcPort>`: what the other services' `POSTMESH_STORAGE_GRPC` names. */
  readonly address: string;
  readonly logFile: string;
  /** The environment the process runs with (for a test that reads its settings). */
  readonly vars: Readonly<Record<string, string>>;
  readonly running: boolean;
  /** The log so far. */
  log(): string;
  /** Resolves once `GET /healthz/ready` answers 200; rejects with the log's tail if it exits. */
  ready(timeoutMs?: number): Promise<void>;
  /**
   * Stops the process and starts a new one on the same ports and data, with the environment it
   * was first started with plus `vars` (another KEK, a changed limit: what one restart adds, the
   * next does not keep); resolves when it is ready.
   */
  restart(vars?: Readonly<Record<string, string>>): Promise<void>;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<number | null>;
  /** SIGKILL: a crash. */
  kill(): Promise<void>;
}

/** A new file under `dir` holding a random 256-bit key-encryption key, base64 (storage's KEK). */
export function writeKekFile(dir: string, name = 'kek.b64'): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, name);
  writeFileSync(file, randomBytes(32).toString('base64'), { mode: 0o600 });
  return file;
}

const tail = (file: string): string => (existsSync(file) ? readFileSync(file, 'utf8').slice(-4000) : '');

/**
 * Starts one service as production runs it (its built `dist/main.js` as a child process) on
 * free ports of 127.0.0.1, with the suite's NATS and identity, and waits until it is ready.
 * Storage also gets the suite's database, a gRPC port, a KEK file (unless `vars` names one) and
 * a filesystem body store under `dir`. The defaults are those every integration suite used:
 * `LOG_LEVEL=info` and a 5 s shutdown budget.
 */
export async function startService(
  service: ServiceName,
  options: StartServiceOptions,
): Promise<RunningService> {
  const { env, dir } = options;
  const name = options.name ?? service;
  const opsPort = options.opsPort ?? (await freePort());
  const grpcPort = runsStorage(service) ? (options.grpcPort ?? (await freePort())) : 0;
  const own: Record<string, string> = { POSTMESH_OPS_PORT: String(opsPort) };
  if (runsStorage(service)) {
    own.MONGODB_URI = env.mongoUri;
    own.POSTMESH_MONGODB_DB = env.database;
    own.POSTMESH_GRPC_PORT = String(grpcPort);
    own.POSTMESH_BLOB_DIR = join(dir, 'blobs');
    const kek = join(dir, 'kek.b64');
    const ownKek =
      options.vars?.POSTMESH_KEK_FILE === undefined && !options.unset?.includes('POSTMESH_KEK_FILE');
    if (ownKek && !existsSync(kek)) writeKekFile(dir);
    own.POSTMESH_KEK_FILE = kek;
  }
  const initial: Record<string, string> = {
    ...definedOnly(options.baseEnv ?? process.env),
    ...env.serviceEnv,
    LOG_LEVEL: 'info',
    POSTMESH_SHUTDOWN_TIMEOUT_MS: '5000',
    ...own,
    ...options.vars,
  };
  for (const variable of options.unset ?? []) delete initial[variable];
  let vars = initial;
  const logFile = join(dir, `${name}.log`);
  const main = join(repoRoot(), 'services', service, 'dist', 'main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: build first (npx nx run-many -t build)`);
  const spawn = (): ManagedProcess => {
    const proc = new ManagedProcess({
      name,
      command: process.execPath,
      args: [main],
      env: vars,
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      logFile,
    });
    proc.start();
    return proc;
  };
  let proc = spawn();
  const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;
  const ready = async (timeoutMs = readyTimeoutMs): Promise<void> => {
    const current = proc;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!current.running) throw new Error(`${name} exited before it was ready:\n${tail(logFile)}`);
      const answered = await fetch(`http://127.0.0.1:${opsPort}/healthz/ready`, {
        signal: AbortSignal.timeout(2_000),
      }).then(
        (response) => response.status === 200,
        () => false,
      );
      if (answered) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`${name} was not ready within ${timeoutMs} ms:\n${tail(logFile)}`);
  };
  const running: RunningService = {
    service,
    name,
    get proc() {
      return proc;
    },
    opsPort,
    grpcPort,
    address: `127.0.0.1:${grpcPort}`,
    logFile,
    get vars() {
      return vars;
    },
    get running() {
      return proc.running;
    },
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    ready,
    async restart(extra = {}) {
      await proc.stop(10_000).catch(() => proc.kill());
      vars = { ...initial, ...extra };
      proc = spawn();
      await ready();
    },
    stop: (graceMs = 10_000) => proc.stop(graceMs),
    kill: () => proc.kill(),
  };
  if (options.waitReady === false) return running;
  try {
    await ready();
  } catch (error) {
    await proc.kill();
    throw error;
  }
  return running;
}

function definedOnly(source: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(source)) if (value !== undefined) out[key] = value;
  return out;
}
