/**
 * A real PostgreSQL (Debian's `postgresql` package) as FerretDB's backend, for the local stack
 * and the test suites: a cluster of our own (initdb into our data directory, never the system's
 * `/var/lib/postgresql` cluster), fsync on, and no TCP listener at all — clients reach it only
 * through the Unix socket inside its data directory (mode 0700, so only its owner and root can).
 *
 * PostgreSQL refuses to run as root, and our machines and CI run as root: then the cluster belongs
 * to the package's `postgres` user and every PostgreSQL program runs as that user through
 * `setpriv` (it execs, so the server's pid is the child's and signals reach it directly).
 * Otherwise it runs as whoever runs the tests.
 */
import { execFile } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { ManagedProcess } from './process.js';

const run = promisify(execFile);

/** The database FerretDB keeps its data in (each MongoDB database is a schema inside it). */
export const FERRETDB_DATABASE = 'ferretdb';
const ROLE = 'postgres';
/** Only the socket's file name depends on it: the server listens on no TCP port. */
const SOCKET_PORT = 5432;
/** Linux's limit on a Unix socket path (sun_path), including the terminating NUL. */
const MAX_SOCKET_PATH = 107;

export interface PostgresOptions {
  /** Parent of the cluster (`<dataDir>/data`); a temporary directory when unset. */
  readonly dataDir?: string;
  readonly detached?: boolean;
}

/** Where Debian puts the server programs: the newest `/usr/lib/postgresql/<major>/bin`. */
export function postgresBinDir(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const majors = readdirSync(base)
    .filter((v) => /^\d+$/.test(v) && existsSync(join(base, v, 'bin', 'postgres')))
    .sort((a, b) => Number(b) - Number(a));
  return majors[0] === undefined ? undefined : join(base, majors[0], 'bin');
}

interface Owner {
  readonly user: string;
  readonly uid: number;
  readonly gid: number;
}

/** The unprivileged owner of the cluster when we are root (PostgreSQL refuses root). */
async function clusterOwner(): Promise<Owner | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number((await run('id', ['-u', ROLE])).stdout.trim());
    const gid = Number((await run('id', ['-g', ROLE])).stdout.trim());
    return { user: ROLE, uid, gid };
  } catch {
    throw new Error(
      `PostgreSQL refuses to run as root and there is no '${ROLE}' user to run it as: install Debian's postgresql package (apt-get install -y postgresql)`,
    );
  }
}

/** `argv` run as `owner` (dropping root), or as ourselves. */
function asOwner(owner: Owner | undefined, argv: readonly string[]): { command: string; args: string[] } {
  if (owner === undefined) return { command: argv[0] ?? '', args: argv.slice(1) };
  return {
    command: 'setpriv',
    args: [`--reuid=${owner.uid}`, `--regid=${owner.gid}`, '--init-groups', '--inh-caps=-all', ...argv],
  };
}

/** The unprivileged owner must be able to walk down to the cluster. */
function assertReachable(path: string): void {
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) {
      throw new Error(
        `${dir} is closed to other users (mode ${(statSync(dir).mode & 0o777).toString(8)}): PostgreSQL runs as '${ROLE}' and cannot reach ${path}; 'chmod o+x ${dir}' or choose another data directory`,
      );
    }
    if (dirname(dir) === dir) return;
  }
}

/** PostgreSQL for FerretDB's `postgresql` handler, on a Unix socket in its own data directory. */
export class PostgresServer {
  readonly process: ManagedProcess;

  private constructor(
    readonly dataDir: string,
    private readonly ownsDataDir: boolean,
    private readonly binDir: string,
    private readonly owner: Owner | undefined,
    detached: boolean,
  ) {
    const server = asOwner(owner, [
      join(binDir, 'postgres'),
      '-D',
      this.clusterDir,
      '-p',
      String(SOCKET_PORT),
      // No TCP listener; the socket lives in the cluster directory (0700).
      '-c',
      'listen_addresses=',
      '-c',
      `unix_socket_directories=${this.clusterDir}`,
      // Durable commits, stated rather than assumed (an acknowledged write survives a power cut).
      '-c',
      'fsync=on',
      '-c',
      'synchronous_commit=on',
      '-c',
      'full_page_writes=on',
      '-c',
      'logging_collector=off',
    ]);
    this.process = new ManagedProcess({
      name: 'postgresql',
      command: server.command,
      args: server.args,
      logFile: join(dataDir, 'postgresql.log'),
      detached,
      // SIGINT is PostgreSQL's "fast" shutdown (disconnect clients, checkpoint, exit); SIGTERM's
      // "smart" shutdown would wait for FerretDB's pooled connections to go away.
      stopSignal: 'SIGINT',
    });
  }

  /** The cluster itself (PGDATA). */
  get clusterDir(): string {
    return join(this.dataDir, 'data');
  }

  /** A libpq URL for FerretDB's `--postgresql-url`: the socket directory as `host`. */
  get url(): string {
    return `postgres://${ROLE}@/${FERRETDB_DATABASE}?host=${encodeURIComponent(this.clusterDir)}`;
  }

  static installed(): boolean {
    return postgresBinDir() !== undefined;
  }

  static async start(options: PostgresOptions = {}): Promise<PostgresServer> {
    const server = await PostgresServer.create(options);
    try {
      await server.restart();
    } catch (error) {
      await server.stop();
      throw error;
    }
    return server;
  }

  /** Initialise the cluster on first use (initdb and the FerretDB database) without starting it. */
  static async create(options: PostgresOptions = {}): Promise<PostgresServer> {
    const binDir = postgresBinDir();
    if (binDir === undefined) {
      throw new Error(
        "PostgreSQL is not installed (no /usr/lib/postgresql/<version>/bin/postgres): run 'apt-get install -y postgresql', or use POSTMESH_DB_BACKEND=sqlite",
      );
    }
    const owner = await clusterOwner();
    const ownsDataDir = options.dataDir === undefined;
    const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'postmesh-postgresql-'));
    mkdirSync(dataDir, { recursive: true, mode: 0o711 });
    // mkdtemp makes it 0700: the cluster's owner must be able to pass through it.
    if (ownsDataDir) chmodSync(dataDir, 0o711);
    const server = new PostgresServer(dataDir, ownsDataDir, binDir, owner, options.detached ?? false);
    const socket = join(server.clusterDir, `.s.PGSQL.${SOCKET_PORT}`);
    if (socket.length >= MAX_SOCKET_PATH) {
      throw new Error(
        `PostgreSQL's socket path ${socket} is longer than Linux allows (${MAX_SOCKET_PATH - 1} bytes): choose a shorter data directory`,
      );
    }
    if (!existsSync(join(server.clusterDir, 'PG_VERSION'))) await server.initdb();
    return server;
  }

  private async initdb(): Promise<void> {
    rmSync(this.clusterDir, { recursive: true, force: true });
    mkdirSync(this.clusterDir, { mode: 0o700 });
    if (this.owner !== undefined) {
      assertReachable(this.clusterDir);
      chownSync(this.clusterDir, this.owner.uid, this.owner.gid);
    }
    const initdb = asOwner(this.owner, [
      join(this.binDir, 'initdb'),
      '-D',
      this.clusterDir,
      '-U',
      ROLE,
      '-E',
      'UTF8',
      '--locale=C.UTF-8',
      // Local (socket) connections are trusted: the socket sits in the 0700 cluster directory,
      // so only the cluster's owner and root can reach it. Nothing listens on TCP; refuse it anyway.
      '--auth-local=trust',
      '--auth-host=reject',
    ]);
    try {
      await run(initdb.command, initdb.args, { timeout: 120_000, maxBuffer: 1 << 22 });
    } catch (error) {
      throw new Error(`initdb failed for ${this.clusterDir}: ${(error as Error).message}`, { cause: error });
    }
    // FerretDB's database is made once, in single-user mode, so no server start is needed here.
    const single = asOwner(this.owner, [
      join(this.binDir, 'postgres'),
      '--single',
      '-D',
      this.clusterDir,
      'postgres',
    ]);
    await new Promise<void>((resolve, reject) => {
      const child = execFile(single.command, single.args, { timeout: 60_000 }, (error, _stdout, stderr) => {
        if (error)
          reject(new Error(`creating the ${FERRETDB_DATABASE} database failed: ${stderr || error.message}`));
        else resolve();
      });
      child.stdin?.end(`CREATE DATABASE ${FERRETDB_DATABASE};\n`);
    });
  }

  /** (Re)start the server; resolves once its socket accepts connections. */
  async restart(timeoutMs = 60_000): Promise<void> {
    if (this.process.running) await this.process.stop();
    this.process.start();
    const isready = join(this.binDir, 'pg_isready');
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ready = await run(isready, [
        '-q',
        '-h',
        this.clusterDir,
        '-p',
        String(SOCKET_PORT),
        '-U',
        ROLE,
      ]).then(
        () => true,
        () => false,
      );
      if (ready) return;
      if (!this.process.running) {
        throw new Error(
          `PostgreSQL exited before it accepted connections; see ${this.process.options.logFile}`,
        );
      }
      if (Date.now() > deadline) {
        throw new Error(`PostgreSQL did not accept connections within ${timeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop(): Promise<void> {
    await this.process.stop(30_000);
    if (this.ownsDataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }
}
