import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool } from './binaries.js';
import { ManagedProcess, freePort, waitForPort } from './process.js';

export interface NatsServerOptions {
  /** Data directory (JetStream store, config, log). A temporary one is made and removed when absent. */
  readonly dataDir?: string;
  readonly port?: number;
  readonly monitorPort?: number;
  /** fsync before every acknowledgement (DESIGN §2). On unless a test measures the difference. */
  readonly syncAlways?: boolean;
  /** Cluster membership for multi-node tests on loopback. */
  readonly cluster?: { readonly name: string; readonly port: number; readonly routes: readonly number[] };
  readonly serverName?: string;
  readonly detached?: boolean;
}

/** A real nats-server with JetStream, listening on 127.0.0.1 only. */
export class NatsServer {
  readonly process: ManagedProcess;
  private constructor(
    readonly port: number,
    readonly monitorPort: number,
    readonly dataDir: string,
    private readonly ownsDataDir: boolean,
    command: string,
    configFile: string,
    detached: boolean,
  ) {
    this.process = new ManagedProcess({
      name: 'nats-server',
      command,
      args: ['-c', configFile],
      logFile: join(dataDir, 'nats-server.log'),
      detached,
    });
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get monitorUrl(): string {
    return `http://127.0.0.1:${this.monitorPort}`;
  }

  static async start(options: NatsServerOptions = {}): Promise<NatsServer> {
    const server = await NatsServer.create(options);
    await server.restart();
    return server;
  }

  /** Write the configuration and pick ports, without starting the process (see `restart()`). */
  static async create(options: NatsServerOptions = {}): Promise<NatsServer> {
    const command = requireTool('nats-server');
    const ownsDataDir = options.dataDir === undefined;
    const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'postmesh-nats-'));
    mkdirSync(dataDir, { recursive: true });
    const port = options.port ?? (await freePort());
    const monitorPort = options.monitorPort ?? (await freePort());
    const configFile = join(dataDir, 'nats-server.conf');
    const lines = [
      `server_name: ${JSON.stringify(options.serverName ?? `postmesh-${port}`)}`,
      `listen: "127.0.0.1:${port}"`,
      `http: "127.0.0.1:${monitorPort}"`,
      'max_payload: 8MB',
      'jetstream {',
      `  store_dir: ${JSON.stringify(join(dataDir, 'jetstream'))}`,
      // DESIGN §2: fsync before every ack, on one node and in a cluster.
      (options.syncAlways ?? true) ? '  sync_interval: always' : '',
      '}',
    ];
    if (options.cluster) {
      lines.push(
        'cluster {',
        `  name: ${JSON.stringify(options.cluster.name)}`,
        `  listen: "127.0.0.1:${options.cluster.port}"`,
        `  routes: [${options.cluster.routes.map((r) => JSON.stringify(`nats-route://127.0.0.1:${r}`)).join(', ')}]`,
        '}',
      );
    }
    writeFileSync(configFile, `${lines.filter(Boolean).join('\n')}\n`);
    return new NatsServer(
      port,
      monitorPort,
      dataDir,
      ownsDataDir,
      command,
      configFile,
      options.detached ?? false,
    );
  }

  /** (Re)start on the same ports and data, e.g. after stop() or kill(); resolves once it listens. */
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
