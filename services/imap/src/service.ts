import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { Kvm } from '@nats-io/kv';
import { DEFAULT_LIMITS as SIEVE_LIMITS, DEFAULT_MAX_SCRIPT_BYTES } from '@postmesh/sieve';
import {
  Buckets,
  authFailuresCounter,
  throttlePolicyOf,
  KvAuthThrottle,
  OwnershipView,
  type LocalMailboxChanges,
} from '@postmesh/bus';
import { Counter, Gauge, HotCounter, HotHistogram } from '@postmesh/telemetry';
import {
  loadListenerTls,
  watchServedCertificate,
  type ServiceContext,
  type ServiceDefinition,
} from '@postmesh/runtime';
import type { StorageClient, StorageClientOptions } from '@postmesh/storage-client';
import { ChangeFeed } from './change-feed.js';
import { schema } from './config.js';
import { LiteralBudget } from './literal-budget.js';
import { ManageSieveServer } from './managesieve/server.js';
import { ImapServer, type ImapServerOptions } from './server.js';
import { connectStorage } from './storage.js';

const VERSION = '0.1.0';
/** Storage's Sieve limits (docs/sieve.md), for HAVESPACE and literals; storage enforces them. */
const SIEVE_MAX_SCRIPTS = 16;

/**
 * What imap starts with; `connect` is how it reaches storage: over gRPC (`connectStorage`), or,
 * run beside storage in one process, in-process for the users that replica owns (ADR 0010).
 */
export type ImapContext = ServiceContext<typeof schema> & {
  readonly connect?: (options: StorageClientOptions) => StorageClient;
  /** The listener for the IMAP proxy (storage-imap only): see `ImapServerOptions.backend`. */
  readonly backend?: ImapServerOptions['backend'];
  /** Beside storage in one process: the changes it makes, heard without NATS (libs/bus). */
  readonly mailboxChanges?: LocalMailboxChanges;
};

/**
 * imap: the IMAP4rev2/IMAP4rev1 server (DESIGN §1). Reads and writes mail only through the
 * storage service's gRPC API, learns about changes from `mailbox.changed.<userId>`, and counts
 * failed logins in the shared `auth-failures` KV bucket. main.ts runs it; so does storage-imap.
 */
export const imapService = {
  name: 'imap',
  schema,
  async start({
    config,
    logger,
    ops,
    bus,
    security,
    connect = connectStorage,
    backend,
    mailboxChanges,
  }: ImapContext) {
    const tls = loadListenerTls({
      name: 'imap',
      certFile: config.POSTMESH_TLS_CERT_FILE,
      keyFile: config.POSTMESH_TLS_KEY_FILE,
      dataDir: resolve(config.POSTMESH_IMAP_DATA_DIR),
      hostname: config.POSTMESH_HOSTNAME ?? hostname(),
    });
    if (tls.generated)
      logger.warn({ cert: tls.certFile, key: tls.keyFile }, 'generated a self-signed TLS certificate');
    else logger.info({ cert: tls.certFile }, 'TLS certificate loaded');
    if (config.POSTMESH_IMAP_ALLOW_PLAINTEXT) {
      logger.warn('POSTMESH_IMAP_ALLOW_PLAINTEXT=true: passwords are accepted without TLS');
    }

    // With ownership on, a user's calls go to the storage replica that owns the user (ADR 0007).
    const routes = config.POSTMESH_STORAGE_OWNERSHIP
      ? await OwnershipView.open(bus.nc, { partitions: config.POSTMESH_STORAGE_PARTITIONS })
      : undefined;
    const storage = connect({
      address: config.POSTMESH_STORAGE_GRPC,
      security,
      ...(routes === undefined ? {} : { routes }),
    });
    let kvPromise: ReturnType<Kvm['open']> | null = null;
    const kv = (): ReturnType<Kvm['open']> => {
      kvPromise ??= new Kvm(bus.nc).open(Buckets.AUTH_FAILURES);
      kvPromise.catch(() => (kvPromise = null));
      return kvPromise;
    };
    const throttle = new KvAuthThrottle(
      kv,
      throttlePolicyOf(config),
      (error, what) => logger.warn({ err: error, component: 'auth-throttle' }, what),
      { resolveAccount: (login) => storage.accountOf(login) },
    );
    const changes = new ChangeFeed(bus.nc, mailboxChanges);
    const literalBudget = new LiteralBudget(
      Math.max(config.POSTMESH_IMAP_LITERAL_MEMORY, config.POSTMESH_IMAP_APPEND_LIMIT),
    );
    new Gauge({
      name: 'postmesh_imap_literal_bytes',
      help: 'Literal octets (APPEND messages) reserved by sessions being received or stored',
      registers: [ops.registry],
      collect() {
        this.set(literalBudget.used);
      },
    });
    const refused = new Counter({
      name: 'postmesh_imap_connections_refused_total',
      help: 'IMAP connections refused over a connection cap',
      labelNames: ['cap'],
      registers: [ops.registry],
    });
    // Counted on every command: the hot-path kinds (hot-metrics.ts).
    const commands = new HotCounter({
      name: 'postmesh_imap_commands_total',
      help: 'IMAP commands answered, by command and result (OK, NO, BAD)',
      labelNames: ['command', 'result'],
      registers: [ops.registry],
    });
    const commandSeconds = new HotHistogram({
      name: 'postmesh_imap_command_seconds',
      help: 'Time from reading an IMAP command to its tagged response, by command',
      labelNames: ['command'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30],
      registers: [ops.registry],
    });
    const authFailures = authFailuresCounter(ops.registry);
    const server = new ImapServer({
      host: config.POSTMESH_IMAP_HOST,
      port: config.POSTMESH_IMAP_PORT,
      tlsPort: config.POSTMESH_IMAPS_PORT,
      secureContext: tls.context,
      proxyProtocol: config.POSTMESH_PROXY_PROTOCOL,
      maxConnections: config.POSTMESH_IMAP_MAX_CONNECTIONS,
      maxConnectionsPerAddress: config.POSTMESH_IMAP_MAX_CONNECTIONS_PER_IP,
      onRefused: (cap) => refused.inc({ cap }),
      ...(backend === undefined ? {} : { backend }),
      changes,
      services: {
        literalMemory: { budget: literalBudget, waitMs: config.POSTMESH_IMAP_LITERAL_WAIT_MS },
        mailstore: storage.mailstore,
        directory: storage.directory,
        throttle,
        logger,
        allowPlaintext: config.POSTMESH_IMAP_ALLOW_PLAINTEXT,
        starttls: true,
        serverName: 'Postmesh IMAP',
        version: VERSION,
        onCommand(name, condition, seconds) {
          commands.inc({ command: name, result: condition });
          commandSeconds.observe({ command: name }, seconds);
          // A refused LOGIN/AUTHENTICATE (RFC 9051 §6.2.2, §6.2.3: tagged NO).
          if ((name === 'LOGIN' || name === 'AUTHENTICATE') && condition === 'NO') {
            authFailures.inc({ protocol: 'imap' });
          }
        },
        limits: {
          appendLimit: config.POSTMESH_IMAP_APPEND_LIMIT,
          preAuthLiteralLimit: 8 * 1024,
          maxLineLength: config.POSTMESH_IMAP_MAX_LINE,
          idleTimeoutMs: config.POSTMESH_IMAP_IDLE_TIMEOUT_MS,
          preAuthTimeoutMs: config.POSTMESH_IMAP_PREAUTH_TIMEOUT_MS,
          commandRate: config.POSTMESH_IMAP_COMMAND_RATE,
          commandBurst: config.POSTMESH_IMAP_COMMAND_RATE * 4,
          idlePollMs: config.POSTMESH_IMAP_IDLE_POLL_MS,
          maxAuthFailuresPerConnection: 5,
        },
      },
    });
    const { port, tlsPort, backendPort } = await server.listen();
    logger.info({ host: config.POSTMESH_IMAP_HOST, port, tlsPort, backendPort }, 'IMAP listening');
    // ManageSieve beside IMAP: same certificate, Directory, throttle and storage client.
    const sieveServer = config.POSTMESH_MANAGESIEVE_ENABLED
      ? new ManageSieveServer({
          host: config.POSTMESH_IMAP_HOST,
          port: config.POSTMESH_MANAGESIEVE_PORT,
          secureContext: tls.context,
          maxConnections: config.POSTMESH_IMAP_MAX_CONNECTIONS,
          maxConnectionsPerAddress: config.POSTMESH_IMAP_MAX_CONNECTIONS_PER_IP,
          services: {
            mailstore: storage.mailstore,
            directory: storage.directory,
            throttle,
            logger,
            allowPlaintext: config.POSTMESH_IMAP_ALLOW_PLAINTEXT,
            implementation: `Postmesh ManageSieve ${VERSION}`,
            onCommand(name, condition) {
              if (name === 'AUTHENTICATE' && condition !== 'OK')
                authFailures.inc({ protocol: 'managesieve' });
            },
            limits: {
              maxScriptBytes: DEFAULT_MAX_SCRIPT_BYTES,
              maxScripts: SIEVE_MAX_SCRIPTS,
              maxRedirects: SIEVE_LIMITS.maxRedirects,
              maxLine: 8 * 1024,
              preAuthTimeoutMs: config.POSTMESH_IMAP_PREAUTH_TIMEOUT_MS,
              idleTimeoutMs: config.POSTMESH_IMAP_IDLE_TIMEOUT_MS,
              maxAuthFailures: 5,
              maxBadCommands: 20,
            },
          },
        })
      : null;
    if (sieveServer !== null) {
      const sievePort = await sieveServer.listen();
      logger.info({ host: config.POSTMESH_IMAP_HOST, port: sievePort }, 'ManageSieve listening');
    }
    const gauge = new Gauge({
      name: 'postmesh_imap_connections',
      help: 'Open IMAP connections',
      registers: [ops.registry],
      collect() {
        this.set(server.connections);
      },
    });
    void gauge;
    const certificate = watchServedCertificate({
      service: 'imap',
      tls,
      config,
      js: () => bus.js,
      logger,
      onReload(context) {
        server.setSecureContext(context);
        sieveServer?.setSecureContext(context);
      },
    });
    return {
      /** The proxy's listener port (with `backend`), else null. */
      backendPort,
      closeUsers: (which: (userId: string) => boolean, reason: string): number =>
        server.closeUsers(which, reason),
      async stop() {
        certificate.close();
        await Promise.all([
          server.stop(Math.max(1_000, config.POSTMESH_SHUTDOWN_TIMEOUT_MS - 1_000)),
          sieveServer?.stop(Math.max(1_000, config.POSTMESH_SHUTDOWN_TIMEOUT_MS - 1_000)),
        ]);
        storage.close();
        routes?.stop();
      },
    };
  },
} satisfies ServiceDefinition<typeof schema>;
