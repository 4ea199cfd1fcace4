import { boolean, integer, loadConfig, oneOf, optionalString, port, string } from '@postmesh/config';
import { DB_BACKENDS, DEFAULT_DB_BACKEND } from '@postmesh/testing';

/** The stack's databases (POSTMESH_STACK_DB). */
export const STACK_DATABASES = ['sqlite', 'ferretdb'] as const;
export type StackDatabase = (typeof STACK_DATABASES)[number];
export const DEFAULT_STACK_DB: StackDatabase = 'sqlite';

/**
 * Ports and paths of the local stack. Every one can be overridden by env, so two stacks (or a
 * stack and a test run) can share a machine.
 */
export const stackSchema = {
  POSTMESH_DATA_DIR: string('.data'),
  POSTMESH_NATS_PORT: port(4222),
  POSTMESH_NATS_MONITOR_PORT: port(8222),
  /**
   * Storage's database (docs/adr/0011-one-machine-command-budget.md): `sqlite`, one SQLite file
   * (`<data dir>/storage/postmesh.sqlite`) inside the storage process, shared by every replica on
   * this machine; `ferretdb`, a FerretDB process speaking MongoDB's wire protocol on
   * POSTMESH_MONGO_PORT, storage reaching it with the MongoDB driver as it reaches production's
   * replica set.
   */
  POSTMESH_STACK_DB: oneOf(STACK_DATABASES, DEFAULT_STACK_DB),
  /** FerretDB's port (POSTMESH_STACK_DB=ferretdb). */
  POSTMESH_MONGO_PORT: port(27017),
  /**
   * With POSTMESH_STACK_DB=ferretdb: what FerretDB keeps its data in, `sqlite` (files under
   * `<data dir>/ferretdb/sqlite`) or `postgresql` (Debian's PostgreSQL, a cluster of the stack's
   * own under `<data dir>/ferretdb/postgresql`, on a Unix socket only). docs/adr/0008-embedded-database.md.
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
  /**
   * storage-imap replicas (ADR 0007/0010, the chart's `imap.mode: owner` on one machine). 1, the
   * default: one process owns every partition and serves IMAP on the public ports. 2..8: that many
   * storage-imap processes (`storage-imap-1`…), one Node event loop each, sharing the data (KEK,
   * body store, database) as replicas of one cluster and splitting the partitions between them;
   * imap-proxy takes the public IMAP and IMAPS ports and splices each login to its user's owner.
   * Needs POSTMESH_STACK_IMAP_AT_STORAGE=true.
   */
  POSTMESH_STACK_STORAGE_REPLICAS: integer(1, { min: 1, max: 8 }),
  /**
   * With several replicas: replica k (2..N) takes gRPC port BASE+10(k-1) and ops port
   * BASE+10(k-1)+1; every replica takes its proxy listener (POSTMESH_IMAP_BACKEND_PORT) at
   * BASE+10(k-1)+2. Replica 1 keeps POSTMESH_GRPC_PORT and POSTMESH_STORAGE_OPS_PORT, the
   * addresses the other services are given.
   */
  POSTMESH_STACK_REPLICA_PORT_BASE: port(7100),
  /** Storage's partition count (passed to the services as it is); the replicas split these. */
  POSTMESH_STORAGE_PARTITIONS: integer(64, { min: 1, max: 4_096 }),
  /** imap-proxy's ops port, with several replicas. */
  POSTMESH_IMAP_PROXY_OPS_PORT: port(9106),
  /**
   * V8's semi-space for storage and storage-imap, in MiB (`--max-semi-space-size`; 0: V8's own,
   * 16 on 64-bit). Their young generation fills at about 150 MB/s under IMAP load, so with the
   * default it is scavenged several times a second; 64 made the long-lived IMAP phase 5–15 %
   * faster (docs/benchmarks.md, ADR 0014), for up to 3 × (64 − 16) = 144 MiB more memory under load.
   */
  POSTMESH_STACK_STORAGE_SEMI_SPACE_MB: integer(64, { min: 0, max: 1_024 }),
  /** How long to wait for every service to report ready. */
  POSTMESH_STACK_READY_TIMEOUT_MS: integer(120_000, { min: 1_000 }),
} as const;

export type StackConfig = ReturnType<typeof loadStackConfig>;
export const loadStackConfig = (env: NodeJS.ProcessEnv = process.env) =>
  loadConfig(stackSchema, env, [
    // FerretDB's backend asked for by name, with no FerretDB to run it: say so rather than run
    // SQLite in storage's process while PostgreSQL was meant.
    (c) =>
      c.POSTMESH_STACK_DB !== 'ferretdb' && (env.POSTMESH_DB_BACKEND ?? '').trim() === 'postgresql'
        ? [
            {
              variable: 'POSTMESH_DB_BACKEND',
              problem: `postgresql is FerretDB's backend: it needs POSTMESH_STACK_DB=ferretdb (POSTMESH_STACK_DB is ${c.POSTMESH_STACK_DB})`,
            },
          ]
        : [],
    (c) =>
      c.POSTMESH_STACK_STORAGE_REPLICAS > 1 && !c.POSTMESH_STACK_IMAP_AT_STORAGE
        ? [
            {
              variable: 'POSTMESH_STACK_STORAGE_REPLICAS',
              problem:
                'above 1 runs storage-imap replicas behind imap-proxy: it needs POSTMESH_STACK_IMAP_AT_STORAGE=true',
            },
          ]
        : [],
  ]);

/** Where the stack's database is: storage's SQLite file, or FerretDB's port. */
export type StackDatabaseInfo =
  | { readonly kind: 'sqlite'; readonly file: string; readonly process: string }
  | {
      readonly kind: 'ferretdb';
      readonly backend: string;
      readonly url: string;
      readonly port: number;
      readonly process: 'ferretdb';
    };

/** The SQLite file of the stack's storage (every replica shares it). */
export const sqliteFile = (dataDir: string): string => `${dataDir}/storage/postmesh.sqlite`;

/** The stack's database, as the status and stack.json report it. */
export function stackDatabase(config: StackConfig, dataDir: string): StackDatabaseInfo {
  if (config.POSTMESH_STACK_DB === 'sqlite') {
    const storage = stackProcesses(config).filter((p) => p.services.includes('storage'));
    return { kind: 'sqlite', file: sqliteFile(dataDir), process: storage.map((p) => p.name).join(', ') };
  }
  return {
    kind: 'ferretdb',
    backend: config.POSTMESH_DB_BACKEND,
    url: `mongodb://127.0.0.1:${config.POSTMESH_MONGO_PORT}/`,
    port: config.POSTMESH_MONGO_PORT,
    process: 'ferretdb',
  };
}

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
  /** With several storage-imap replicas: which one (1..N). */
  readonly replica?: number;
  /** imap-proxy (several replicas): it serves the public IMAP ports for imap, in front of them. */
  readonly proxy?: true;
}

/** The number of storage-imap replicas the stack runs (1 unless asked for more). */
export const storageReplicas = (config: StackConfig): number =>
  config.POSTMESH_STACK_IMAP_AT_STORAGE ? config.POSTMESH_STACK_STORAGE_REPLICAS : 1;

/** Replica k's ports (1..N); replica 1 keeps the configured gRPC and ops ports. */
export function replicaPorts(
  config: StackConfig,
  replica: number,
): { grpc: number; ops: number; backend: number } {
  const block = config.POSTMESH_STACK_REPLICA_PORT_BASE + 10 * (replica - 1);
  return {
    grpc: replica === 1 ? config.POSTMESH_GRPC_PORT : block,
    ops: replica === 1 ? config.POSTMESH_STORAGE_OPS_PORT : block + 1,
    backend: block + 2,
  };
}

/**
 * The processes the stack runs, in start order: by default imap runs inside storage's process
 * (`storage-imap`, ADR 0010); with POSTMESH_STACK_IMAP_AT_STORAGE=false each service has its own.
 */
export function stackProcesses(config: StackConfig): readonly StackProcess[] {
  const combined = config.POSTMESH_STACK_IMAP_AT_STORAGE;
  const replicas = storageReplicas(config);
  return SERVICES.filter((s) => !(combined && s === 'imap')).flatMap((service): StackProcess[] => {
    if (!combined || service !== 'storage')
      return [{ name: service, pkg: service, services: [service], opsPort: opsPort(config, service) }];
    if (replicas === 1)
      return [
        {
          name: 'storage-imap',
          pkg: 'storage-imap',
          services: ['storage', 'imap'],
          opsPort: opsPort(config, service),
        },
      ];
    // Several replicas, then the proxy in front of them (it is ready once one publishes IMAP).
    return [
      ...Array.from({ length: replicas }, (_, i) => ({
        name: `storage-imap-${i + 1}`,
        pkg: 'storage-imap',
        services: ['storage', 'imap'] as const,
        opsPort: replicaPorts(config, i + 1).ops,
        replica: i + 1,
      })),
      {
        name: 'imap-proxy',
        pkg: 'imap-proxy',
        services: ['imap'],
        opsPort: config.POSTMESH_IMAP_PROXY_OPS_PORT,
        proxy: true,
      },
    ];
  });
}

/** Node's own options for one of the stack's processes, before its script. */
export function nodeArgsOf(config: StackConfig, stackProcess: StackProcess): string[] {
  const mb = config.POSTMESH_STACK_STORAGE_SEMI_SPACE_MB;
  const storage = stackProcess.services.includes('storage');
  return storage && mb > 0 ? [`--max-semi-space-size=${mb}`] : [];
}

/**
 * The name of the process that serves `service` (with several replicas: imap's public ports are
 * the proxy's, storage's configured gRPC address and ManageSieve are replica 1's).
 */
export function processOf(config: StackConfig, service: ServiceName | 'managesieve'): string {
  if (service === 'managesieve') return processOf(config, 'storage');
  const processes = stackProcesses(config);
  const found =
    (service === 'imap' ? processes.find((p) => p.proxy === true) : undefined) ??
    processes.find((p) => p.services.includes(service));
  return found?.name ?? service;
}

/** The environment of one of the stack's processes (storage-imap: both services' variables). */
export function processEnv(
  config: StackConfig,
  proc: StackProcess,
  dataDir: string,
  identityDir: string | undefined,
): NodeJS.ProcessEnv {
  if (proc.proxy === true) return proxyEnv(config, dataDir, identityDir);
  const [first, ...rest] = proc.services;
  if (first === undefined) throw new Error(`${proc.name} serves nothing`);
  const env = serviceEnv(config, first, dataDir, identityDir);
  // The first service's variables win where they share one (the ops port: storage's).
  let merged: NodeJS.ProcessEnv = env;
  for (const service of rest) {
    const { POSTMESH_OPS_PORT: _ops, ...other } = serviceEnv(config, service, dataDir, identityDir);
    merged = { ...other, ...merged };
  }
  return proc.replica === undefined ? merged : { ...merged, ...replicaEnv(config, proc.replica, dataDir) };
}

/**
 * One of several storage-imap replicas: its own gRPC, ops and proxy-listener ports (the address
 * it publishes for routing is its gRPC port on 127.0.0.1), its own IMAP data directory; its
 * client-facing IMAP ports are free ones (clients come through imap-proxy), and only replica 1
 * serves ManageSieve, on the public port (calls of users it does not own go to their owner over
 * gRPC, as IMAP's do). The data (KEK, body store, database) is shared.
 */
function replicaEnv(config: StackConfig, replica: number, dataDir: string): NodeJS.ProcessEnv {
  const ports = replicaPorts(config, replica);
  return {
    POSTMESH_OPS_PORT: String(ports.ops),
    POSTMESH_GRPC_PORT: String(ports.grpc),
    POSTMESH_STORAGE_GRPC: `127.0.0.1:${ports.grpc}`,
    POSTMESH_IMAP_BACKEND_PORT: String(ports.backend),
    POSTMESH_IMAP_PORT: '0',
    POSTMESH_IMAPS_PORT: '0',
    POSTMESH_MANAGESIEVE_ENABLED: replica === 1 ? 'true' : 'false',
    POSTMESH_IMAP_DATA_DIR: replica === 1 ? `${dataDir}/imap` : `${dataDir}/imap-${replica}`,
  };
}

/** imap-proxy on the public IMAP and IMAPS ports, resolving logins at replica 1's gRPC. */
function proxyEnv(config: StackConfig, dataDir: string, identityDir: string | undefined): NodeJS.ProcessEnv {
  return {
    ...process.env,
    // The backends' storage certificate names `storage` (as the chart verifies it), not only an IP.
    ...(identityDir === undefined
      ? {}
      : { POSTMESH_IDENTITY_ROOT: identityDir, POSTMESH_IMAP_PROXY_BACKEND_SERVERNAME: 'storage' }),
    NATS_URL: `nats://127.0.0.1:${config.POSTMESH_NATS_PORT}`,
    NATS_MONITOR_URL: `http://127.0.0.1:${config.POSTMESH_NATS_MONITOR_PORT}`,
    POSTMESH_OPS_PORT: String(config.POSTMESH_IMAP_PROXY_OPS_PORT),
    POSTMESH_STORAGE_GRPC: `127.0.0.1:${config.POSTMESH_GRPC_PORT}`,
    POSTMESH_IMAP_PORT: String(config.POSTMESH_IMAP_PORT),
    POSTMESH_IMAPS_PORT: String(config.POSTMESH_IMAPS_PORT),
    POSTMESH_IMAP_PROXY_DATA_DIR: `${dataDir}/imap-proxy`,
    POSTMESH_IMAP_ALLOW_PLAINTEXT: process.env.POSTMESH_IMAP_ALLOW_PLAINTEXT ?? 'true',
    POSTMESH_SHUTDOWN_TIMEOUT_MS: process.env.POSTMESH_SHUTDOWN_TIMEOUT_MS ?? '10000',
  };
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
      process: processOf(config, 'managesieve'),
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
    ...stackProcesses(config)
      .filter((p) => p.replica !== undefined && p.replica > 1)
      .map((p) => {
        const grpc = replicaPorts(config, p.replica ?? 1).grpc;
        return {
          name: `Storage gRPC (${p.name})`,
          url: `grpc://${host}:${grpc}`,
          port: grpc,
          process: p.name,
        };
      }),
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
    // The database's port, when it has one (with SQLite it is a file in storage's process).
    ...(config.POSTMESH_STACK_DB === 'ferretdb'
      ? [
          {
            name: 'MongoDB (FerretDB)',
            url: `mongodb://${host}:${config.POSTMESH_MONGO_PORT}/`,
            port: config.POSTMESH_MONGO_PORT,
            process: 'ferretdb',
          },
        ]
      : []),
  ];
}

/** Environment for one service process: where NATS and the database are, and its ports. */
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
      // Set either way, so a POSTMESH_STORAGE_DB in the shell cannot contradict the stack's choice.
      if (config.POSTMESH_STACK_DB === 'sqlite') {
        // One file for every replica: SQLite locks it across processes (ADR 0011).
        env.POSTMESH_STORAGE_DB = 'sqlite';
        env.POSTMESH_SQLITE_FILE = sqliteFile(dataDir);
        delete env.MONGODB_URI;
      } else {
        env.POSTMESH_STORAGE_DB = 'mongodb';
        env.MONGODB_URI = `mongodb://127.0.0.1:${config.POSTMESH_MONGO_PORT}/`;
      }
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
