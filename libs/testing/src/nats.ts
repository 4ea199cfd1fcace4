import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OPERATOR_IDENTITY } from '@postmesh/identity';
import { requireTool } from './binaries.js';
import type { InternalPki } from './internal-pki.js';
import { repoRoot } from './repo.js';
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
  /**
   * TLS on the client port with the internal CA's server certificate, and one NATS user per
   * identity with its permissions (libs/bus `natsPermissions`); no anonymous clients. Without it
   * the server is open (only for tests of the development opt-out and external tooling).
   */
  readonly pki?: InternalPki;
  /**
   * JetStream encryption at rest (ChaCha20-Poly1305) with a key kept in `<dataDir>/jetstream.key`
   * (0600, made on first start). On by default, as in the local stack and the chart.
   */
  readonly encryptAtRest?: boolean;
}

interface NatsPermissions {
  readonly publish: readonly string[];
  readonly subscribe: readonly string[];
  readonly allowResponses: boolean;
}

/**
 * Each service's allow-lists as the Helm chart ships them (generated from libs/bus
 * `natsPermissions` and kept equal to it by a test), so what is tested is what is deployed;
 * the operator identity may do anything.
 */
function servicePermissions(): Record<string, NatsPermissions> {
  const file = join(repoRoot(), 'charts', 'postmesh', 'files', 'nats-permissions.json');
  return {
    ...(JSON.parse(readFileSync(file, 'utf8')) as Record<string, NatsPermissions>),
    [OPERATOR_IDENTITY]: { publish: ['>'], subscribe: ['>'], allowResponses: true },
  };
}

/** The nats-server `authorization` block: each identity's NKey with its allow-lists. */
function authorizationBlock(pki: InternalPki): string[] {
  const users = Object.entries(servicePermissions()).map(([identity, permissions]) => {
    return `    { nkey: ${JSON.stringify(pki.identity(identity).nkeyPublic)}, permissions: ${JSON.stringify({
      publish: { allow: permissions.publish },
      subscribe: { allow: permissions.subscribe },
      ...(permissions.allowResponses ? { allow_responses: true } : {}),
    })} }`;
  });
  return ['authorization {', '  users: [', users.join(',\n'), '  ]', '}'];
}

/** The JetStream encryption key of a data directory, made once (32 random bytes, hex). */
function jetStreamKey(dataDir: string): string {
  const file = join(dataDir, 'jetstream.key');
  if (!existsSync(file)) writeFileSync(file, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  return readFileSync(file, 'utf8').trim();
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
    /** The internal CA and users this server requires, when it requires them. */
    readonly pki: InternalPki | undefined,
    encryptionKey: string | undefined,
  ) {
    this.process = new ManagedProcess({
      name: 'nats-server',
      command,
      args: ['-c', configFile],
      logFile: join(dataDir, 'nats-server.log'),
      detached,
      // The key reaches the server through its environment, so the config file never holds it.
      ...(encryptionKey === undefined
        ? {}
        : { env: { ...process.env, POSTMESH_JETSTREAM_KEY: encryptionKey } }),
    });
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** The JetStream store (what encryption at rest protects). */
  get storeDir(): string {
    return join(this.dataDir, 'jetstream');
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
    const encryptionKey = (options.encryptAtRest ?? true) ? jetStreamKey(dataDir) : undefined;
    const lines = [
      `server_name: ${JSON.stringify(options.serverName ?? `postmesh-${port}`)}`,
      `listen: "127.0.0.1:${port}"`,
      `http: "127.0.0.1:${monitorPort}"`,
      'max_payload: 8MB',
      'jetstream {',
      `  store_dir: ${JSON.stringify(join(dataDir, 'jetstream'))}`,
      // DESIGN §2: fsync before every ack, on one node and in a cluster.
      (options.syncAlways ?? true) ? '  sync_interval: always' : '',
      encryptionKey === undefined ? '' : '  cipher: chacha',
      // Resolved by nats-server from its environment (see the constructor).
      encryptionKey === undefined ? '' : '  key: $POSTMESH_JETSTREAM_KEY',
      '}',
    ];
    if (options.pki) {
      const tls = options.pki.natsServer;
      lines.push(
        'tls {',
        `  cert_file: ${JSON.stringify(tls.certFile)}`,
        `  key_file: ${JSON.stringify(tls.keyFile)}`,
        `  ca_file: ${JSON.stringify(tls.caFile)}`,
        '  timeout: 5',
        '}',
        ...authorizationBlock(options.pki),
      );
    }
    if (options.cluster) {
      lines.push(
        'cluster {',
        `  name: ${JSON.stringify(options.cluster.name)}`,
        `  listen: "127.0.0.1:${options.cluster.port}"`,
        `  routes: [${options.cluster.routes.map((r) => JSON.stringify(`nats-route://127.0.0.1:${r}`)).join(', ')}]`,
        '}',
      );
    }
    writeFileSync(configFile, `${lines.filter(Boolean).join('\n')}\n`, { mode: 0o600 });
    return new NatsServer(
      port,
      monitorPort,
      dataDir,
      ownsDataDir,
      command,
      configFile,
      options.detached ?? false,
      options.pki,
      encryptionKey,
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
