/**
 * storage and imap in one process (ADR 0010, imap at the owner): the storage service as main.ts of
 * storage runs it, and the IMAP server beside it, whose Mailstore and Directory calls of the users
 * this replica owns run storage's handlers in-process instead of crossing gRPC. Calls of other
 * users go over gRPC to their owner, as from a standalone imap. Each half keeps its own identity:
 * the process is `storage` (its gRPC server certificate, NATS user and consumers), and imap's
 * calls to other replicas and its NATS subscriptions use imap's certificate and NATS user.
 */
import { Bus, ownedConsumers } from '@postmesh/bus';
import { imapService } from '@postmesh/imap/dist/service.js';
import { loadInternalSecurity } from '@postmesh/identity';
import { runService, type RunningService, type ServiceDefinition } from '@postmesh/runtime';
import { storageService } from '@postmesh/storage/dist/service.js';
import { colocatedStorage, connectStorage } from '@postmesh/storage-client';
import { Counter } from '@postmesh/telemetry';
import { hostname } from 'node:os';

/** Both services' variables; storage's defaults win where they share one (the ops port). */
const schema = { ...imapService.schema, ...storageService.schema };

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
      const calls = new Counter({
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
      });
      logger.info('imap runs in this process; calls of the users this replica owns stay in-process');
      return {
        async stop() {
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

await runService(storageImap);
