import { boolean, integer, loadConfig, oneOf, optionalString, port, string } from '@postmesh/config';
import { DB_BACKENDS, DEFAULT_DB_BACKEND } from '@postmesh/testing';

/**
 * Ports and paths of the local stack. Every one can be overridden by env, so two stacks (or a
 * stack and a test run) can share a machine.
 */
export const stackSchema = {
  POSTMESH_DATA_DIR: string('.data'),
  POSTMESH_NATS_PORT: port(4222),
  POSTMESH_NATS_MONITOR_PORT: port(8222),
  POSTMESH_MONGO_PORT: port(27017),
  /**
   * What FerretDB keeps its data in: `sqlite` (files under `<data dir>/ferretdb/sqlite`) or
   * `postgresql` (Debian's PostgreSQL, a cluster of the stack's own under
   * `<data dir>/ferretdb/postgresql`, on a Unix socket only). docs/adr/0008-embedded-database.md.
   */
  POSTMESH_DB_BACKEND: oneOf(DB_BACKENDS, DEFAULT_DB_BACKEND),
  POSTMESH_SMTP_PORT: port(2525),
  POSTMESH_SUBMISSION_PORT: port(2587),
  POSTMESH_SUBMISSIONS_PORT: port(2465),
  POSTMESH_IMAP_PORT: port(1143),
  POSTMESH_IMAPS_PORT: port(1993),
  POSTMESH_MANAGESIEVE_PORT: port(4190),
  POSTMESH_HTTP_PORT: port(8080),
  POSTMESH_GRPC_PORT: port(7001),
  POSTMESH_SMTP_INBOUND_OPS_PORT: port(9101),
  POSTMESH_STORAGE_OPS_PORT: port(9102),
  POSTMESH_IMAP_OPS_PORT: port(9103),
  POSTMESH_MTA_DELIVERY_OPS_PORT: port(9104),
  POSTMESH_ADMIN_OPS_PORT: port(9105),
  /**
   * Content filtering: a local rspamd (with its Redis) scanning every message smtp-inbound
   * receives. Off: no filtering (for example to benchmark the bare mail path).
   */
  POSTMESH_STACK_RSPAMD: boolean(true),
  POSTMESH_RSPAMD_PORT: port(11333),
  POSTMESH_RSPAMD_CONTROLLER_PORT: port(11334),
  POSTMESH_RSPAMD_REDIS_PORT: port(11379),
  /** rspamd's compiled rules (Hyperscan); default `<data dir>/rspamd/cache`. */
  POSTMESH_RSPAMD_CACHE_DIR: optionalString(),
  /**
   * imap at the owner (ADR 0010), the default: one `storage-imap` process runs storage and the
   * IMAP server, whose calls of the users it owns (here all of them: the one replica owns every
   * partition) stay in-process. `false`: storage and a separate imap process, imap calling storage
   * over gRPC (DESIGN §1's shape, for comparisons and for deployments without the IMAP proxy).
   */
  POSTMESH_STACK_IMAP_AT_STORAGE: boolean(true),
  /** How long to wait for every service to report ready. */
  POSTMESH_STACK_READY_TIMEOUT_MS: integer(120_000, { min: 1_000 }),
} as const;

export type StackConfig = ReturnType<typeof loadStackConfig>;
export const loadStackConfig = (env: NodeJS.ProcessEnv = process.env) => loadConfig(stackSchema, env);

export const SERVICES = ['storage', 'smtp-inbound', 'imap', 'mta-delivery', 'admin'] as const;
export type ServiceName = (typeof SERVICES)[number];

/** One process the stack runs: its name (supervisor, log file, status), package and services. */
export interface StackProcess {
  readonly name: string;
  /** The directory under services/ whose dist/main.js it runs. */
  readonly pkg: string;
  /** The services it serves: one, or storage and imap for storage-imap. */
  readonly services: readonly ServiceName[];
  /** Its ops port (/healthz/*, /metrics): the first service's. */
  readonly opsPort: number;
}

/**
 * The processes the stack runs, in start order: by default imap runs inside storage's process
 * (`storage-imap`, ADR 0010); with POSTMESH_STACK_IMAP_AT_STORAGE=false each service has its own.
 */
export function stackProcesses(config: StackConfig): readonly StackProcess[] {
  const combined = config.POSTMESH_STACK_IMAP_AT_STORAGE;
  return SERVICES.filter((s) => !(combined && s === 'imap')).map((service) =>
    combined && service === 'storage'
      ? {
          name: 'storage-imap',
          pkg: 'storage-imap',
          services: ['storage', 'imap'],
          opsPort: opsPort(config, 'storage'),
        }
      : { name: service, pkg: service, services: [service], opsPort: opsPort(config, service) },
  );
}

/** The name of the process that serves `service`. */
export function processOf(config: StackConfig, service: ServiceName): string {
  const found = stackProcesses(config).find((p) => p.services.includes(service));
  return found?.name ?? service;
}

/** The environment of one of the stack's processes (storage-imap: both services' variables). */
export function processEnv(
  config: StackConfig,
  proc: StackProcess,
  dataDir: string,
  identityDir: string | undefined,
): NodeJS.ProcessEnv {
  const [first, ...rest] = proc.services;
  if (first === undefined) throw new Error(`${proc.name} serves nothing`);
  const env = serviceEnv(config, first, dataDir, identityDir);
  // The first service's variables win where they share one (the ops port: storage's).
  let merged: NodeJS.ProcessEnv = env;
  for (const service of rest) {
    const { POSTMESH_OPS_PORT: _ops, ...other } = serviceEnv(config, service, dataDir, identityDir);
    merged = { ...other, ...merged };
  }
  return merged;
}

export function opsPort(config: StackConfig, service: ServiceName): number {
  switch (service) {
    case 'smtp-inbound':
      return config.POSTMESH_SMTP_INBOUND_OPS_PORT;
    case 'storage':
      return config.POSTMESH_STORAGE_OPS_PORT;
    case 'imap':
      return config.POSTMESH_IMAP_OPS_PORT;
    case 'mta-delivery':
      return config.POSTMESH_MTA_DELIVERY_OPS_PORT;
    case 'admin':
      return config.POSTMESH_ADMIN_OPS_PORT;
  }
}

export interface Endpoint {
  readonly name: string;
  readonly url: string;
  readonly port: number;
  /** The process that listens on it (a stack process's name, nats-server or ferretdb). */
  readonly process: string;
}

/** What a user connects to, in the order it is printed. */
export function endpoints(config: StackConfig): Endpoint[] {
  const host = '127.0.0.1';
  return [
    {
      name: 'SMTP (MX)',
      url: `smtp://${host}:${config.POSTMESH_SMTP_PORT}`,
      port: config.POSTMESH_SMTP_PORT,
      process: processOf(config, 'smtp-inbound'),
    },
    {
      name: 'Submission (STARTTLS)',
      url: `smtp://${host}:${config.POSTMESH_SUBMISSION_PORT}`,
      port: config.POSTMESH_SUBMISSION_PORT,
      process: processOf(config, 'smtp-inbound'),
    },
    {
      name: 'Submissions (TLS)',
      url: `smtps://${host}:${config.POSTMESH_SUBMISSIONS_PORT}`,
      port: config.POSTMESH_SUBMISSIONS_PORT,
      process: processOf(config, 'smtp-inbound'),
    },
    {
      name: 'IMAP (STARTTLS)',
      url: `imap://${host}:${config.POSTMESH_IMAP_PORT}`,
      port: config.POSTMESH_IMAP_PORT,
      process: processOf(config, 'imap'),
    },
    {
      name: 'IMAPS (TLS)',
      url: `imaps://${host}:${config.POSTMESH_IMAPS_PORT}`,
      port: config.POSTMESH_IMAPS_PORT,
      process: processOf(config, 'imap'),
    },
    {
      name: 'ManageSieve (STARTTLS)',
      url: `sieve://${host}:${config.POSTMESH_MANAGESIEVE_PORT}`,
      port: config.POSTMESH_MANAGESIEVE_PORT,
      process: processOf(config, 'imap'),
    },
    {
      name: 'Admin console',
      url: `http://${host}:${config.POSTMESH_HTTP_PORT}`,
      port: config.POSTMESH_HTTP_PORT,
      process: processOf(config, 'admin'),
    },
    {
      name: 'Storage gRPC',
      url: `grpc://${host}:${config.POSTMESH_GRPC_PORT}`,
      port: config.POSTMESH_GRPC_PORT,
      process: processOf(config, 'storage'),
    },
    {
      name: 'NATS',
      url: `nats://${host}:${config.POSTMESH_NATS_PORT}`,
      port: config.POSTMESH_NATS_PORT,
      process: 'nats-server',
    },
    {
      name: 'NATS monitoring',
      url: `http://${host}:${config.POSTMESH_NATS_MONITOR_PORT}`,
      port: config.POSTMESH_NATS_MONITOR_PORT,
      process: 'nats-server',
    },
    {
      name: 'MongoDB (FerretDB)',
      url: `mongodb://${host}:${config.POSTMESH_MONGO_PORT}/`,
      port: config.POSTMESH_MONGO_PORT,
      process: 'ferretdb',
    },
  ];
}

/** Environment for one service process: where NATS and MongoDB are, and its ports. */
export function serviceEnv(
  config: StackConfig,
  service: ServiceName,
  dataDir: string,
  identityDir: string | undefined,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    // Each service's certificate and NATS user (made by the stack; see ensureInternalPki).
    ...(identityDir === undefined ? {} : { POSTMESH_IDENTITY_ROOT: identityDir }),
    NATS_URL: `nats://127.0.0.1:${config.POSTMESH_NATS_PORT}`,
    NATS_MONITOR_URL: `http://127.0.0.1:${config.POSTMESH_NATS_MONITOR_PORT}`,
    POSTMESH_OPS_PORT: String(opsPort(config, service)),
    POSTMESH_STORAGE_GRPC: `127.0.0.1:${config.POSTMESH_GRPC_PORT}`,
    // A local stack stops quickly; production budgets are set by the chart.
    POSTMESH_SHUTDOWN_TIMEOUT_MS: process.env.POSTMESH_SHUTDOWN_TIMEOUT_MS ?? '10000',
  };
  // One owner per mailbox (ADR 0007), as the chart runs it: storage takes the partition leases
  // (one replica here owns them all), smtp-inbound queues each job on its users' partitions and
  // imap and admin send each user's calls to the partition's owner.
  if (service === 'storage' || service === 'smtp-inbound' || service === 'imap' || service === 'admin') {
    env.POSTMESH_STORAGE_OWNERSHIP = process.env.POSTMESH_STORAGE_OWNERSHIP ?? 'true';
  }
  switch (service) {
    case 'storage':
      env.MONGODB_URI = `mongodb://127.0.0.1:${config.POSTMESH_MONGO_PORT}/`;
      env.POSTMESH_GRPC_PORT = String(config.POSTMESH_GRPC_PORT);
      env.POSTMESH_DELIVERY_CONCURRENCY = process.env.POSTMESH_DELIVERY_CONCURRENCY ?? '4';
      // Message bodies as files (the filesystem blob store), beside the database's data.
      env.POSTMESH_BLOB_DIR = `${dataDir}/storage/blobs`;
      // Users' Junk moves teach the local rspamd (its controller).
      if (config.POSTMESH_STACK_RSPAMD) {
        env.POSTMESH_RSPAMD_CONTROLLER_URL = `http://127.0.0.1:${config.POSTMESH_RSPAMD_CONTROLLER_PORT}`;
      }
      break;
    case 'smtp-inbound':
      env.POSTMESH_SMTP_DATA_DIR = `${dataDir}/smtp-inbound`;
      env.POSTMESH_SMTP_PORT = String(config.POSTMESH_SMTP_PORT);
      env.POSTMESH_SUBMISSION_PORT = String(config.POSTMESH_SUBMISSION_PORT);
      env.POSTMESH_SUBMISSIONS_PORT = String(config.POSTMESH_SUBMISSIONS_PORT);
      if (config.POSTMESH_STACK_RSPAMD)
        env.POSTMESH_RSPAMD_URL = `http://127.0.0.1:${config.POSTMESH_RSPAMD_PORT}`;
      break;
    case 'imap':
      env.POSTMESH_IMAP_DATA_DIR = `${dataDir}/imap`;
      // Everything listens on 127.0.0.1 only, so the local stack lets clients log in without
      // STARTTLS too (IMAPS and STARTTLS work as in production, with a self-signed certificate).
      env.POSTMESH_IMAP_ALLOW_PLAINTEXT = process.env.POSTMESH_IMAP_ALLOW_PLAINTEXT ?? 'true';
      env.POSTMESH_IMAP_PORT = String(config.POSTMESH_IMAP_PORT);
      env.POSTMESH_IMAPS_PORT = String(config.POSTMESH_IMAPS_PORT);
      env.POSTMESH_MANAGESIEVE_PORT = String(config.POSTMESH_MANAGESIEVE_PORT);
      break;
    case 'admin':
      env.POSTMESH_HTTP_PORT = String(config.POSTMESH_HTTP_PORT);
      // The console's health page: one row per process (storage-imap is one, ADR 0010).
      env.POSTMESH_HEALTH_TARGETS = stackProcesses(config)
        .map((p) => `${p.name}=http://127.0.0.1:${p.opsPort}`)
        .join(',');
      break;
    case 'mta-delivery':
      break;
  }
  return env;
}
