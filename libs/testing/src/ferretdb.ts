import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool } from './binaries.js';
import { ManagedProcess, freePort, waitForPort } from './process.js';

export interface FerretDbOptions {
  readonly dataDir?: string;
  readonly port?: number;
  readonly detached?: boolean;
}

/** A real FerretDB (MongoDB wire protocol) on SQLite, listening on 127.0.0.1 only. */
export class FerretDb {
  readonly process: ManagedProcess;
  private constructor(
    readonly port: number,
    readonly dataDir: string,
    private readonly ownsDataDir: boolean,
    command: string,
    detached: boolean,
  ) {
    const sqliteDir = join(dataDir, 'sqlite');
    mkdirSync(sqliteDir, { recursive: true });
    this.process = new ManagedProcess({
      name: 'ferretdb',
      command,
      args: [
        '--handler=sqlite',
        `--sqlite-url=file:${sqliteDir}/`,
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
    await db.restart();
    return db;
  }

  /** Pick the port and data directory without starting the process (see `restart()`). */
  static async create(options: FerretDbOptions = {}): Promise<FerretDb> {
    const command = requireTool('ferretdb');
    const ownsDataDir = options.dataDir === undefined;
    const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'postmesh-ferretdb-'));
    const port = options.port ?? (await freePort());
    return new FerretDb(port, dataDir, ownsDataDir, command, options.detached ?? false);
  }

  /** (Re)start on the same port and data; resolves once it accepts connections. */
  async restart(): Promise<void> {
    if (this.process.running) await this.process.stop();
    this.process.start();
    await waitForPort(this.port, '127.0.0.1', 30_000, () => this.process.running);
  }

  async stop(): Promise<void> {
    await this.process.stop();
    if (this.ownsDataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }
}
