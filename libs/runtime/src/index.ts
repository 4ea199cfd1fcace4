import { hostname } from 'node:os';
import {
  Bus,
  Streams,
  checkJetStreamDurability,
  checkStreamReplicas,
  consumerDefinitions,
  ownedConsumers,
  registerJetStreamMetrics,
} from '@postmesh/bus';
import {
  ConfigError,
  loadConfig,
  unknownVariables,
  type ConfigOf,
  type ConfigRule,
  type Schema,
  type commonSchema,
  type port,
} from '@postmesh/config';
import { OpsServer, createLogger, startTracing, type Logger } from '@postmesh/telemetry';
import { loadInternalSecurity, type InternalIdentity, type InternalSecurity } from '@postmesh/identity';
import { watchQueues } from './alert-watch.js';

export {
  PROXY_V2_SIGNATURE,
  parseProxyHeader,
  proxyV1Line,
  readProxyHeader,
  type ProxiedConnection,
  type ProxyHeader,
  type ProxyParse,
} from './proxy-protocol.js';
export {
  loadCertificate,
  watchCertificate,
  type CertificateFiles,
  type CertificatePair,
  type CertificateWatch,
  type CertificateWatchOptions,
} from './tls-reload.js';
export {
  ensureSelfSignedCertificate,
  loadListenerTls,
  type ListenerTls,
  type SelfSignedOptions,
} from './self-signed.js';
export {
  checkQueues,
  readCertificate,
  watchCertificateExpiry,
  watchQueues,
  watchServedCertificate,
  type CertificateExpiryOptions,
  type QueueWatchOptions,
  type ServedCertificateOptions,
} from './alert-watch.js';

/** Every service's schema carries the common variables and its own ops port. */
export type ServiceSchema = typeof commonSchema & { POSTMESH_OPS_PORT: ReturnType<typeof port> } & Schema;

export interface ServiceContext<S extends ServiceSchema> {
  readonly name: string;
  readonly config: ConfigOf<S>;
  readonly logger: Logger;
  readonly ops: OpsServer;
  readonly bus: Bus;
  /** Credentials for gRPC (mutual TLS) and NATS, from POSTMESH_IDENTITY_ROOT. */
  readonly security: InternalSecurity;
}

/** What a started service hands back: how to stop accepting work and drain what is in flight. */
export interface RunningService {
  stop(): Promise<void>;
}

interface ServiceDefinitionBase<S extends ServiceSchema> {
  readonly schema: S;
  /** Rules across several variables, checked with the schema before anything starts. */
  readonly rules?: readonly ConfigRule<S>[];
  readonly start: (context: ServiceContext<S>) => Promise<RunningService>;
}

export type ServiceDefinition<S extends ServiceSchema> = ServiceDefinitionBase<S> &
  (
    | {
        /** Also the service's internal identity (certificate and NATS user). */
        readonly name: InternalIdentity;
        readonly identity?: undefined;
      }
    | {
        /** The service's name (logs, traces, NATS client name). */
        readonly name: string;
        /** The internal identity it runs as, when its name is none (imap-proxy runs as `imap`). */
        readonly identity: InternalIdentity;
      }
  );

/** Exit code for a configuration error (sysexits EX_CONFIG). */
export const EXIT_CONFIG = 78;

/**
 * The lifecycle every Postmesh service shares (DESIGN §1):
 * 1. validate configuration (a bad variable stops the process, named, exit 78);
 * 2. serve `/healthz/live` at once, `/healthz/ready` only when every dependency check passes;
 * 3. connect to NATS (retrying forever) and create the JetStream topology;
 * 4. start the service; on SIGTERM/SIGINT report draining, stop accepting, finish or hand back
 *    work in flight (unacked jobs are redelivered), drain NATS and exit 0 — or exit 1 if that
 *    took longer than POSTMESH_SHUTDOWN_TIMEOUT_MS.
 */
export async function runService<S extends ServiceSchema>(definition: ServiceDefinition<S>): Promise<void> {
  let config: ConfigOf<S>;
  let security: InternalSecurity;
  const identity: InternalIdentity = definition.identity ?? definition.name;
  const unknown = unknownVariables(definition.schema, process.env);
  try {
    config = loadConfig(definition.schema, process.env, definition.rules);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${definition.name}: ${error.message}\n`);
      if (unknown.length > 0) {
        process.stderr.write(
          `${definition.name}: variables this service does not read: ${unknown.join(', ')}\n`,
        );
      }
      process.exit(EXIT_CONFIG);
    }
    throw error;
  }
  // `<service> --check-config`: validate the environment as a pod would get it, start nothing.
  // Strict: a variable this service does not read fails too (a typo would be ignored otherwise).
  if (process.argv.includes('--check-config')) {
    if (unknown.length > 0) {
      process.stderr.write(
        `${definition.name}: variables this service does not read: ${unknown.join(', ')}\n`,
      );
      process.exit(EXIT_CONFIG);
    }
    process.stdout.write(`${definition.name}: configuration valid\n`);
    process.exit(0);
  }
  // The identity's files exist only where the service runs (a mounted Secret), so they are read
  // here, after --check-config.
  try {
    security = loadInternalSecurity(config as unknown as ConfigOf<typeof commonSchema>, identity);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${definition.name}: ${error.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    throw error;
  }
  // The generic schema hides the common fields' types; every ServiceSchema has them.
  const common = config as unknown as ConfigOf<typeof commonSchema> & { readonly POSTMESH_OPS_PORT: number };
  const logger = createLogger(definition.name, common.LOG_LEVEL);
  if (security.insecure) {
    logger.warn(
      'POSTMESH_INSECURE_INTERNAL=true: gRPC and NATS run without TLS and without caller identities; for development only',
    );
  }
  if (unknown.length > 0)
    logger.warn({ variables: unknown }, 'environment variables this service does not read');
  const tracing = startTracing(`postmesh-${definition.name}`);
  process.on('uncaughtException', (error) => {
    logger.fatal({ err: error }, 'uncaught exception; exiting');
    process.exit(1);
  });
  process.on('unhandledRejection', (error) => {
    logger.fatal({ err: error }, 'unhandled promise rejection; exiting');
    process.exit(1);
  });

  const ops = new OpsServer({
    service: definition.name,
    host: common.POSTMESH_OPS_HOST,
    port: common.POSTMESH_OPS_PORT,
    logger,
    eventLoopStallMs: common.POSTMESH_EVENT_LOOP_STALL_MS,
  });
  const opsAddress = await ops.listen();
  logger.info(
    { ops: `http://${opsAddress.address}:${opsAddress.port}` },
    'ops endpoints up (live; not ready yet)',
  );

  // Filled in as start-up proceeds; shutdown may begin at any point of it.
  const state: { running?: RunningService; bus?: Bus } = {};
  let shuttingDown = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (shuttingDown) return;
    shuttingDown = true;
    ops.setDraining();
    logger.info({ signal, timeoutMs: common.POSTMESH_SHUTDOWN_TIMEOUT_MS }, 'shutting down: draining');
    const timer = setTimeout(() => {
      logger.error(
        { timeoutMs: common.POSTMESH_SHUTDOWN_TIMEOUT_MS },
        'drain did not finish in time; exiting',
      );
      process.exit(1);
    }, common.POSTMESH_SHUTDOWN_TIMEOUT_MS);
    timer.unref();
    try {
      await state.running?.stop();
      await state.bus?.drain();
      await tracing.shutdown();
      await ops.close();
      logger.info('stopped cleanly');
      clearTimeout(timer);
      process.exit(0);
    } catch (error) {
      logger.error({ err: error }, 'error while shutting down');
      process.exit(1);
    }
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));

  logger.info({ url: common.NATS_URL }, 'connecting to NATS');
  const bus = await Bus.connect({
    url: common.NATS_URL,
    name: `postmesh-${definition.name}@${hostname()}`,
    logger,
    replicas: common.POSTMESH_STREAM_REPLICAS,
    consumers: ownedConsumers(identity),
    ...security.natsOptions(),
    dlq: { maxAgeMs: common.POSTMESH_DLQ_MAX_AGE_MS, maxBytes: common.POSTMESH_DLQ_MAX_BYTES },
  });
  state.bus = bus;
  ops.addCheck({ name: 'nats', check: () => bus.check() });
  const owned: readonly string[] = ownedConsumers(identity);
  const ownedWithStreams = consumerDefinitions()
    .filter((d) => owned.includes(d.config.durable_name))
    .map((d) => ({ stream: d.stream, consumer: d.config.durable_name }));
  registerJetStreamMetrics({
    jsm: () => bus.jsm,
    registry: ops.registry,
    streams: Object.values(Streams),
    consumers: ownedWithStreams,
    logger,
  });
  // Alerts for the queues this service consumes (alert-watch.ts, docs/alerts.md).
  watchQueues({
    service: definition.name,
    jsm: () => bus.jsm,
    js: () => bus.js,
    consumers: ownedWithStreams,
    queues: [Streams.MAIL_INBOUND, Streams.MAIL_OUTBOUND],
    queueDepth: common.POSTMESH_ALERT_QUEUE_DEPTH,
    consumerLag: common.POSTMESH_ALERT_CONSUMER_LAG,
    intervalMs: common.POSTMESH_ALERT_CHECK_INTERVAL_MS,
    logger: logger.child({ component: 'alerts' }),
  });
  // Verified like sync_always: what the servers hold, not what this process asked for.
  ops.addCheck({
    name: 'jetstream-replicas',
    check: () => checkStreamReplicas(bus.jsm, common.POSTMESH_STREAM_REPLICAS),
  });
  if (!common.POSTMESH_ALLOW_WEAK_DURABILITY) {
    const monitorUrl = common.NATS_MONITOR_URL;
    ops.addCheck({
      name: 'jetstream-durability',
      check: () =>
        monitorUrl === undefined
          ? 'NATS_MONITOR_URL is not set, so JetStream fsync-before-ack cannot be verified (or set POSTMESH_ALLOW_WEAK_DURABILITY=true)'
          : checkJetStreamDurability(monitorUrl),
    });
  } else {
    logger.warn(
      'POSTMESH_ALLOW_WEAK_DURABILITY=true: not verifying that JetStream fsyncs before acknowledging',
    );
  }
  if (shuttingDown) return;
  state.running = await definition.start({
    name: definition.name,
    config,
    logger,
    ops,
    bus,
    security,
  });
  ops.markStarted();
  logger.info('started');
}
