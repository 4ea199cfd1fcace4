import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool } from './binaries.js';
import { PostgresServer } from './postgres.js';
import { ManagedProcess, freePort, waitForPort } from './process.js';

/** What FerretDB keeps its data in (its `--handler`); docs/adr/0008-embedded-database.md. */
export type DbBackend = 'sqlite' | 'postgresql';
export const DB_BACKENDS: readonly DbBackend[] = ['sqlite', 'postgresql'];
/** The backend when POSTMESH_DB_BACKEND is unset, chosen by measurement (ADR 0008). */
export const DEFAULT_DB_BACKEND: DbBackend = 'sqlite';

/** POSTMESH_DB_BACKEND (`sqlite` or `postgresql`), the default when unset; throws on any other value. */
export function dbBackendFromEnv(env: NodeJS.ProcessEnv = process.env): DbBackend {
  // Exact names, as the stack's configuration (tools/stack, `oneOf`) takes them.
  const raw = (env.POSTMESH_DB_BACKEND ?? '').trim();
  if (raw === '') return DEFAULT_DB_BACKEND;
  const backend = DB_BACKENDS.find((b) => b === raw);
  if (backend === undefined) {
    throw new Error(`POSTMESH_DB_BACKEND must be one of ${DB_BACKENDS.join(', ')}, not '${raw}'`);
  }
  return backend;
}

export interface FerretDbOptions {
  readonly dataDir?: string;
  readonly port?: number;
  readonly detached?: boolean;
  /** Default: POSTMESH_DB_BACKEND, else DEFAULT_DB_BACKEND. */
  readonly backend?: DbBackend;
}

/**
 * A real FerretDB (MongoDB wire protocol) listening on 127.0.0.1 only, on SQLite (files under
 * `<dataDir>/sqlite`) or on a PostgreSQL cluster of its own (`<dataDir>/postgresql`, reached over
 * a Unix socket; see PostgresServer), which it then starts before itself and stops after itself.
 */
export class FerretDb {
  readonly process: ManagedProcess;
  private constructor(
    readonly port: number,
    readonly dataDir: string,
    private readonly ownsDataDir: boolean,
    command: string,
    detached: boolean,
    readonly backend: DbBackend,
    /** The PostgreSQL cluster behind a `postgresql` FerretDB (its process is supervised apart). */
    readonly postgres: PostgresServer | undefined,
  ) {
    let handler: string[];
    if (postgres === undefined) {
      const sqliteDir = join(dataDir, 'sqlite');
      mkdirSync(sqliteDir, { recursive: true });
      handler = ['--handler=sqlite', `--sqlite-url=file:${sqliteDir}/`];
    } else {
      handler = ['--handler=postgresql', `--postgresql-url=${postgres.url}`];
    }
    this.process = new ManagedProcess({
      name: 'ferretdb',
      command,
      args: [
        ...handler,
        `--listen-addr=127.0.0.1:${port}`,
        `--state-dir=${dataDir}`,
        '--debug-addr=-',
        '--telemetry=disable',
        '--log-level=warn',
      ],
      logFile: join(dataDir, 'ferretdb.log'),
      detached,
    });
  }

  get uri(): string {
    return `mongodb://127.0.0.1:${this.port}/`;
  }

  static async start(options: FerretDbOptions = {}): Promise<FerretDb> {
    const db = await FerretDb.create(options);
    try {
      await db.restart();
    } catch (error) {
      await db.stop();
      throw error;
    }
    return db;
  }

  /**
   * Pick the port and data directory without starting the process (see `restart()`); with the
   * `postgresql` backend, initialise its cluster on first use.
   */
  static async create(options: FerretDbOptions = {}): Promise<FerretDb> {
    const command = requireTool('ferretdb');
    const backend = options.backend ?? dbBackendFromEnv();
    const ownsDataDir = options.dataDir === undefined;
    const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'postmesh-ferretdb-'));
    try {
      // mkdtemp makes it 0700; PostgreSQL's unprivileged owner must pass through to its cluster.
      if (ownsDataDir && backend === 'postgresql') chmodSync(dataDir, 0o711);
      const postgres =
        backend === 'postgresql'
          ? await PostgresServer.create({
              dataDir: join(dataDir, 'postgresql'),
              ...(options.detached === undefined ? {} : { detached: options.detached }),
            })
          : undefined;
      const port = options.port ?? (await freePort());
      return new FerretDb(port, dataDir, ownsDataDir, command, options.detached ?? false, backend, postgres);
    } catch (error) {
      if (ownsDataDir) rmSync(dataDir, { recursive: true, force: true });
      throw error;
    }
  }

  /**
   * (Re)start FerretDB on the same port and data (starting its PostgreSQL first when that is not
   * running); resolves once it accepts connections.
   */
  async restart(): Promise<void> {
    if (this.process.running) await this.process.stop();
    if (this.postgres !== undefined && !this.postgres.process.running) await this.postgres.restart();
    this.process.start();
    await waitForPort(this.port, '127.0.0.1', 30_000, () => this.process.running);
  }

  /** Stops FerretDB, then its PostgreSQL; removes the data when it was a temporary directory. */
  async stop(): Promise<void> {
    await this.process.stop();
    await this.postgres?.stop();
    if (this.ownsDataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }
}
