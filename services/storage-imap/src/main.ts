/**
 * storage and imap in one process (ADR 0010, imap at the owner): the storage service as main.ts of
 * storage runs it, and the IMAP server beside it, whose Mailstore and Directory calls of the users
 * this replica owns run storage's handlers in-process instead of crossing gRPC. Calls of other
 * users go over gRPC to their owner, as from a standalone imap. Each half keeps its own identity:
 * the process is `storage` (its gRPC server certificate, NATS user and consumers), and imap's
 * calls to other replicas and its NATS subscriptions use imap's certificate and NATS user.
 */
import { Bus, ownedConsumers } from '@postmesh/bus';
import { optionalString, port } from '@postmesh/config';
import { imapService } from '@postmesh/imap/dist/service.js';
import { loadInternalSecurity, readIdentityMaterial } from '@postmesh/identity';
import { runService, type RunningService, type ServiceDefinition } from '@postmesh/runtime';
import { advertisedAddress } from '@postmesh/storage/dist/ownership/partition-coordinator.js';
import { storageService } from '@postmesh/storage/dist/service.js';
import { colocatedStorage, connectStorage } from '@postmesh/storage-client';
import { Counter, HotCounter } from '@postmesh/telemetry';
import { hostname } from 'node:os';
import { createSecureContext, type SecureContext } from 'node:tls';

/** Both services' variables; storage's defaults win where they share one (the ops port). */
const schema = {
  ...imapService.schema,
  ...storageService.schema,
  /**
   * The listener for the IMAP proxy (services/imap-proxy): a PROXY protocol header with the
   * client's address, then TLS with the storage certificate, where the peer must present the
   * internal CA's certificate of the `imap` identity (the proxy's). 0 picks a free port (the
   * address is published for the proxy either way); the chart uses 10993.
   */
  POSTMESH_IMAP_BACKEND_PORT: port(0, { allowZero: true }),
  /**
   * The address the proxy reaches that listener at, published in this replica's record of the
   * `storage-replicas` bucket: `host:port`, or a bare host or IP (a pod's IP) joined with the
   * port; unset, POSTMESH_IMAP_HOST and the port.
   */
  POSTMESH_STORAGE_ADVERTISED_IMAP: optionalString(),
};

/** The identity whose certificate may claim client addresses on the proxy's listener. */
const PROXY_IDENTITY = 'imap';

const storageImap: ServiceDefinition<typeof schema> = {
  name: 'storage',
  schema,
  rules: storageService.rules,
  async start(context): Promise<RunningService> {
    const storage = await storageService.start(context);
    const { config, logger } = context;
    let imapBus: Bus | undefined;
    try {
      const security = loadInternalSecurity(config, 'imap');
      const imapLogger = logger.child({ service: 'imap' });
      imapBus = await Bus.connect({
        url: config.NATS_URL,
        name: `postmesh-imap@${hostname()}`,
        logger: imapLogger,
        replicas: config.POSTMESH_STREAM_REPLICAS,
        consumers: ownedConsumers('imap'),
        ...security.natsOptions(),
        dlq: { maxAgeMs: config.POSTMESH_DLQ_MAX_AGE_MS, maxBytes: config.POSTMESH_DLQ_MAX_BYTES },
      });
      const bus = imapBus;
      const calls = new HotCounter({
        name: 'postmesh_imap_storage_calls_total',
        help: "imap's Mailstore calls, by path: in-process (users this replica owns) or grpc (another replica)",
        labelNames: ['path'] as const,
        registers: [context.ops.registry],
      });
      const imap = await imapService.start({
        ...context,
        // Half the drain budget for the sessions (BYE, then wait for clients to close), so that
        // storage keeps the other half to hand its partitions over after them.
        config: {
          ...config,
          POSTMESH_SHUTDOWN_TIMEOUT_MS: Math.max(1_000, Math.floor(config.POSTMESH_SHUTDOWN_TIMEOUT_MS / 2)),
        },
        name: 'imap',
        logger: imapLogger,
        bus,
        security,
        connect: (options) =>
          colocatedStorage(connectStorage(options), storage.local, { onCall: (path) => calls.inc({ path }) }),
        ...(storage.mailboxChanges === undefined ? {} : { mailboxChanges: storage.mailboxChanges }),
        backend: {
          port: config.POSTMESH_IMAP_BACKEND_PORT,
          secureContext: backendContext(config),
          trustedIdentity: PROXY_IDENTITY,
        },
      });
      const ownership = storage.ownership;
      const handoffs = new Counter({
        name: 'postmesh_imap_handoff_closed_sessions_total',
        help: 'IMAP sessions ended with BYE [UNAVAILABLE] because their partition left this replica',
        registers: [context.ops.registry],
      });
      const unsubscribe = ownership?.subscribe((event) => {
        // `stopped`: imap has stopped first and said goodbye itself.
        if (event.type !== 'lost' || event.reason === 'stopped') return;
        const closed = imap.closeUsers(
          (userId) => ownership.partitionOf(userId) === event.partition,
          'Mailbox moved to another server; please reconnect',
        );
        handoffs.inc(closed);
        if (closed > 0)
          logger.info({ partition: event.partition, reason: event.reason, closed }, 'sessions sent away');
      });
      if (ownership !== undefined && imap.backendPort !== null) {
        const imapAddress = advertisedAddress(
          config.POSTMESH_STORAGE_ADVERTISED_IMAP,
          config.POSTMESH_IMAP_HOST,
          imap.backendPort,
        );
        ownership.advertiseImap(imapAddress);
        logger.info({ imapAddress }, 'IMAP proxy listener published');
      }
      logger.info('imap runs in this process; calls of the users this replica owns stay in-process');
      return {
        async stop() {
          unsubscribe?.();
          // Sessions first (they call storage), then storage hands its partitions over.
          await imap.stop();
          await bus.drain();
          imapLogger.info('IMAP sessions closed; storage hands its partitions over');
          await storage.stop();
        },
      };
    } catch (error) {
      // The IMAP half did not start: say so (the process exits), and let storage hand over.
      logger.fatal({ err: error }, 'imap did not start in this process; stopping storage');
      await imapBus?.drain().catch(() => undefined);
      await storage.stop();
      throw error;
    }
  },
};

/** TLS for the proxy's listener: the storage certificate, and the internal CA for the peer's. */
function backendContext(config: {
  readonly POSTMESH_IDENTITY_ROOT: string | undefined;
  readonly POSTMESH_INSECURE_INTERNAL: boolean;
}): SecureContext | null {
  if (config.POSTMESH_INSECURE_INTERNAL || config.POSTMESH_IDENTITY_ROOT === undefined) return null;
  const material = readIdentityMaterial(config.POSTMESH_IDENTITY_ROOT, 'storage');
  return createSecureContext({
    cert: material.cert,
    key: material.key,
    ca: material.ca,
    minVersion: 'TLSv1.2',
  });
}

await runService(storageImap);
