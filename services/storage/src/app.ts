/**
 * The storage application without process concerns: indexes, key handling, the gRPC server with
 * Directory, Trace (and Mailstore) services, and the trace-event consumer. `main.ts` wires it to
 * configuration and signals; the integration tests build the same thing in-process.
 */
import { Server, type ServerCredentials } from '@grpc/grpc-js';
import { headers as natsHeaders } from '@nats-io/transport-node';
import {
  CHANGE_ORIGIN_HEADER,
  LocalMailboxChanges,
  MailEventOutbox,
  Subjects,
  encodeMailboxChange,
  type MailboxChange,
  type BatchConsumerLoop,
  type Bus,
  type ConsumerLoop,
  type PartitionWorkers,
} from '@postmesh/bus';
import {
  DirectoryServiceDefinition,
  MailstoreServiceDefinition,
  TraceServiceDefinition,
  type DirectoryServiceServer,
  type MailstoreServiceServer,
} from '@postmesh/contracts';
import { Counter, type Logger, type Registry } from '@postmesh/telemetry';
import type { Db } from 'mongodb';
import { createAdminService } from './administrators/index.js';
import { BlobSweeper, openBlobStores, type BlobStoreSettings, type BlobStores } from './blob/index.js';
import type { KeyProvider } from './crypto/types.js';
import { MongoUserKeyring } from './crypto/user-keyring.js';
import { ensureIndexes } from './db/indexes.js';
import { Collections } from './db/schema.js';
import { InboundDelivery, createDeliveryConsumer, startPartitionedDelivery } from './delivery/index.js';
import { DirectoryCache, DirectoryChangeFeed } from './directory/cache.js';
import { CredentialCache } from './directory/credential-cache.js';
import { DirectoryService, type VerifiedCredentials } from './directory/directory-service.js';
import { callerPolicyInterceptor } from './grpc/caller-policy.js';
import { GrpcInstrumentation } from './grpc/instrument.js';
import { directoryHandlers } from './grpc/directory.js';
import type { OwnerGate } from './grpc/owner-gate.js';
import { traceHandlers } from './grpc/trace.js';
import {
  Mailstore,
  MailstoreRuntime,
  createDefaultMailboxes,
  createMailstoreService,
  purgeUserMail,
} from './mailstore/index.js';
import { setRecordJudge } from './mailstore/pending-changes.js';
import { DeliveryMetrics } from './delivery/metrics.js';
import { ImapWriteFence, WriteConfirmation, type PartitionCoordinator } from './ownership/index.js';
import { AlertMailer } from './trace/alert-mail.js';
import { StorageAlertRules, type AlertThreshold } from './trace/alert-rules.js';
import { createEventsConsumer } from './trace/events-consumer.js';
import { createSpamLearner, withJunkLearning } from './spam-learning/junk-learning.js';
import { TraceStore } from './trace/trace-store.js';
import { DestinationPolicy } from './webhooks/destination.js';
import { WebhookSender } from './webhooks/sender.js';
import { WebhookStore } from './webhooks/webhook-store.js';
import { SieveDelivery, SieveLedgerSweep } from './sieve/index.js';
import { hostname } from 'node:os';

export interface StorageAppOptions {
  readonly db: Db;
  /**
   * What the Mailstores over `db` share in this process (mailstore/runtime.ts); a new one by
   * default. Another app in the same process on the same database passes the first one's.
   */
  readonly mailstoreRuntime?: MailstoreRuntime;
  readonly keyProvider: KeyProvider;
  readonly logger: Logger;
  /** With a bus, trace events are consumed from MAIL_EVENTS and mailbox changes are published. */
  readonly bus?: Bus;
  /** Default 127.0.0.1: the gRPC API is internal (mTLS / network policy in a cluster). */
  readonly grpcHost?: string;
  /** 0 picks a free port (tests). */
  readonly grpcPort: number;
  /**
   * Mutual TLS with the internal CA (`InternalSecurity.grpcServerCredentials()`): callers are
   * identified by their certificate and held to the caller allow-list. `insecure` (the
   * development opt-out) serves plaintext to anyone.
   */
  readonly grpcCredentials: { readonly insecure: boolean; readonly server: ServerCredentials };
  /** With ownership on: refuses Mailstore calls of users another replica owns (ADR 0007, Routing). */
  readonly ownerGate?: OwnerGate;
  /** Testing only: fenced IMAP writes wait this long before writing (`POSTMESH_STORAGE_TEST_HOLD_WRITES_MS`). */
  readonly testHoldWritesMs?: number;
  readonly traceRetentionDays?: number;
  /** How long successful logins are remembered (POSTMESH_AUTH_CACHE_TTL_MS; default 60 s, 0 = never). */
  readonly authCacheTtlMs?: number;
  /** Where the service's metrics go (the ops server's registry). */
  readonly registry?: Registry;
  /** Alerts mailed to the postmaster (POSTMESH_POSTMASTER, POSTMESH_ALERT_MAILS_PER_HOUR). */
  readonly alerts?: {
    readonly postmaster: string | undefined;
    readonly perHour: number;
    /** The rules storage evaluates (alert-rules.ts); defaults in config.ts. */
    readonly deliveryFailures?: AlertThreshold;
    readonly writeErrors?: AlertThreshold;
  };
  /** Jobs of a batch parsed at once in `storage-deliver` (POSTMESH_DELIVERY_CONCURRENCY). */
  readonly deliveryConcurrency?: number;
  /** Where message bodies are written (POSTMESH_BLOB_STORE and its settings). */
  readonly blobStore: BlobStoreSettings;
  /**
   * The sweep of bodies no message refers to: every `intervalMs` (0: never), bodies older than
   * `minAgeMs` (POSTMESH_BLOB_SWEEP_INTERVAL_MS, POSTMESH_BLOB_SWEEP_MIN_AGE_MS).
   */
  readonly blobSweep?: { readonly intervalMs: number; readonly minAgeMs: number };
  /** How often `sieve_ledger` records past their use are deleted (0: never; sieve/ledger-sweep.ts). */
  readonly sieveLedgerSweepMs?: number;
  /** Jobs committed together by `storage-deliver` (POSTMESH_DELIVERY_BATCH). */
  readonly deliveryBatch?: number;
  /** How long a delivery batch waits for more jobs (POSTMESH_DELIVERY_BATCH_WAIT_MS). */
  readonly deliveryBatchWaitMs?: number;
  /** rspamd's controller: learn from COPY/MOVE into and out of Junk (POSTMESH_RSPAMD_CONTROLLER_URL). */
  readonly rspamdControllerUrl?: string;
  /** Webhooks (docs/webhooks.md): internal addresses allowed as destinations, attempts, timing. */
  readonly webhooks?: {
    readonly allowAddresses?: readonly string[];
    readonly maxAttempts?: number;
    readonly retryBaseMs?: number;
    readonly timeoutMs?: number;
  };
}

export interface StorageApp {
  /** The port the gRPC server listens on. */
  readonly port: number;
  readonly keyring: MongoUserKeyring;
  /** What every Mailstore of this app shares: its locks, pending records, settings (runtime.ts). */
  readonly mailstoreRuntime: MailstoreRuntime;
  /** The handlers the gRPC server runs, for a caller in this process (imap at the owner, ADR 0010). */
  readonly handlers: {
    readonly mailstore: MailstoreServiceServer;
    readonly directory: DirectoryServiceServer;
  };
  readonly directory: DirectoryService;
  /** `mailbox.changed` for the IMAP sessions of this process, with a bus (libs/bus). */
  readonly mailboxChanges: LocalMailboxChanges | undefined;
  /** The Directory's answers kept in memory (directory/cache.ts). */
  readonly directoryCache: DirectoryCache;
  /** Successful logins kept briefly (directory/credential-cache.ts). */
  readonly credentials: VerifiedCredentials;
  readonly traceStore: TraceStore;
  /** The blob stores bodies are written to and read from. */
  readonly blobs: BlobStores;
  readonly blobSweeper: BlobSweeper;
  /** Readiness: the gRPC server is bound and not shutting down. */
  check(): true | string;
  /**
   * Fills the in-memory mailbox index (ADR 0006) with the largest mailboxes, in the background of
   * a start; resolves with the number of mailboxes indexed. Stopped by `stop()`.
   */
  warmMailboxIndex(): Promise<number>;
  /**
   * One owner per mailbox (ADR 0007): from now on deliver the jobs of the partitions the
   * coordinator owns (commit-then-confirm) and judge tagged writes by its leases.
   */
  startOwnership(coordinator: PartitionCoordinator, options?: { readonly ackWaitMs?: number }): Promise<void>;
  /** Stop accepting calls, let in-flight ones finish within `graceMs`, then cut the rest. */
  stop(graceMs?: number): Promise<void>;
}

export async function createStorageApp(options: StorageAppOptions): Promise<StorageApp> {
  const { db, keyProvider, logger, bus } = options;
  const indexes = await ensureIndexes(db);
  const writes = new WriteConfirmation();
  // Flag and expunge records of writes never confirmed are not folded either (ADR 0007, Rebuild).
  setRecordJudge(db, writes.counts);
  // The IMAP writes of the gRPC service are fenced once ownership starts (commit-then-confirm).
  const fence = new ImapWriteFence(logger.child({ component: 'ownership' }), options.testHoldWritesMs ?? 0);
  const keyring = new MongoUserKeyring({ db, keyProvider });
  const blobs = await openBlobStores(db, options.blobStore);
  const runtime = options.mailstoreRuntime ?? new MailstoreRuntime(db);
  logger.info({ blobStore: blobs.primary.kind }, 'blob store open');
  if (options.registry !== undefined) blobs.readCache.instrument(options.registry);
  // Best effort (DESIGN §3): an IMAP session that misses a change catches up from its modseq. The
  // sessions of this process (storage-imap) hear of it at once, other processes over NATS.
  const mailboxChanges =
    bus === undefined
      ? undefined
      : new LocalMailboxChanges((userId, change, origin) => {
          if (bus.nc.isClosed()) return;
          const headers = natsHeaders();
          headers.set(CHANGE_ORIGIN_HEADER, origin);
          bus.nc.publish(
            Subjects.mailboxChanged(userId),
            change === undefined ? '' : encodeMailboxChange(change),
            { headers },
          );
        });
  const onMailboxChanged = (userId: string, change?: MailboxChange): void => {
    mailboxChanges?.changed(userId, change);
  };
  // Recipient resolution from memory, kept coherent across replicas by the change feed.
  const directoryCache = new DirectoryCache();
  const directoryFeed =
    bus === undefined
      ? undefined
      : new DirectoryChangeFeed(bus.nc, directoryCache, logger.child({ component: 'directory' }));
  await directoryFeed?.start();
  // Successful logins, dropped with every Directory answer (both caches follow the same feed).
  const credentials: VerifiedCredentials = new CredentialCache({
    ttlMs: options.authCacheTtlMs ?? 60_000,
  });
  directoryCache.onInvalidate(() => credentials.invalidate());
  const sieveLedgerSweep = new SieveLedgerSweep(db, logger.child({ component: 'sieve-ledger' }));
  const directory = new DirectoryService({
    db,
    keyProvider,
    cache: directoryCache,
    credentials,
    ...(directoryFeed === undefined ? {} : { onDirectoryChanged: () => directoryFeed.announce() }),
    logger: logger.child({ component: 'directory' }),
    createDefaultMailboxes,
    // Releases blob references and search entries too, so shared bodies are freed (ADR 0003).
    purgeUserData: (_db, userId) =>
      purgeUserMail(
        { db, runtime, blobs, keyring, logger: logger.child({ component: 'mailstore' }) },
        userId,
      ),
    onUserDeleted: (userId) => keyring.forget(userId),
    removeUserFilters: (userId) => sieveLedgerSweep.removeUser(userId),
  });
  const traceStore = new TraceStore(db, options.traceRetentionDays ?? 30);
  const destinations = new DestinationPolicy(options.webhooks?.allowAddresses ?? []);
  const webhookStore = new WebhookStore({
    db,
    keyProvider,
    destinations,
    logger: logger.child({ component: 'webhooks' }),
  });

  const adminService = await createAdminService({
    db,
    keyProvider,
    logger: logger.child({ component: 'admin' }),
  });
  const server = new Server({
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    interceptors: [
      ...(options.grpcCredentials.insecure
        ? []
        : [callerPolicyInterceptor(logger.child({ component: 'grpc' }))]),
      ...(options.ownerGate === undefined ? [] : [options.ownerGate.interceptor()]),
    ],
  });
  const grpc = new GrpcInstrumentation(options.registry);
  server.addService(adminService.definition, grpc.wrap(adminService.definition, adminService.handlers));
  const directoryServer = grpc.wrap(
    DirectoryServiceDefinition,
    directoryHandlers(directory, webhookStore, logger.child({ component: 'grpc' })),
  );
  server.addService(DirectoryServiceDefinition, directoryServer);
  server.addService(
    TraceServiceDefinition,
    grpc.wrap(TraceServiceDefinition, traceHandlers(traceStore, logger.child({ component: 'grpc' }))),
  );
  const mailstoreService = createMailstoreService({
    db,
    runtime,
    blobs,
    keyring,
    logger: logger.child({ component: 'mailstore' }),
    onMailboxChanged,
    writeCounts: writes.counts,
    fence,
  });
  const learning = bus !== undefined && options.rspamdControllerUrl !== undefined;
  const mailstoreServer = grpc.wrap(
    MailstoreServiceDefinition,
    learning
      ? withJunkLearning(mailstoreService, {
          db,
          bus,
          logger: logger.child({ component: 'spam-learning' }),
        })
      : mailstoreService,
  );
  server.addService(MailstoreServiceDefinition, mailstoreServer);

  const host = options.grpcHost ?? '127.0.0.1';
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:${options.grpcPort}`, options.grpcCredentials.server, (error, bound) =>
      error === null ? resolve(bound) : reject(error),
    );
  });
  logger.info(
    { grpc: `${host}:${port}`, mutualTls: !options.grpcCredentials.insecure },
    'gRPC server listening',
  );

  // Without TTL indexes (FerretDB), expire trace events ourselves.
  let sweeper: NodeJS.Timeout | undefined;
  if (!indexes.ttl) {
    logger.info('database has no TTL indexes; trace events are expired by a periodic sweep');
    const sweep = (): void => {
      traceStore.sweepExpired().catch((error: unknown) => {
        logger.warn({ err: error }, 'trace sweep failed; it runs again later');
      });
    };
    sweep();
    sweeper = setInterval(sweep, 10 * 60_000);
    sweeper.unref();
  }

  let consumer: BatchConsumerLoop | undefined;
  let alertRules: StorageAlertRules | undefined;
  let alertOutbox: MailEventOutbox | undefined;
  if (bus !== undefined) {
    const alertLogger = logger.child({ component: 'alerts' });
    alertOutbox = new MailEventOutbox({ js: () => bus.js, logger: alertLogger });
    alertRules = new StorageAlertRules({
      outbox: alertOutbox,
      logger: alertLogger,
      deliveryFailures: options.alerts?.deliveryFailures ?? { threshold: 10, windowMs: 15 * 60_000 },
      writeErrors: options.alerts?.writeErrors ?? { threshold: 5, windowMs: 5 * 60_000 },
    });
    const alertMailer = new AlertMailer({
      js: bus.js,
      logger: alertLogger,
      postmaster: options.alerts?.postmaster,
      perHour: options.alerts?.perHour ?? 10,
      domainRecipients: (domain) => alertRecipientsOf(db, directory, domain),
      ...(options.registry === undefined
        ? {}
        : {
            counter: new Counter({
              name: 'postmesh_alerts_total',
              help: 'Alerts raised (stored on MAIL_EVENTS), by alert name and whether they were mailed',
              labelNames: ['alert', 'mailed'] as const,
              registers: [options.registry],
            }),
          }),
    });
    consumer = createEventsConsumer(
      bus,
      traceStore,
      logger.child({ component: 'trace-events' }),
      alertMailer,
      alertRules,
    );
    consumer.start();
  }
  // DESIGN §2 steps 5–8: deliver MAIL_INBOUND jobs into mailboxes.
  let delivery: BatchConsumerLoop | undefined;
  const deliveryLogger = logger.child({ component: 'delivery' });
  const deliveryMailstore = new Mailstore({
    db,
    runtime,
    blobs,
    keyring,
    logger: deliveryLogger,
    onMailboxChanged,
    writeCounts: writes.counts,
  });
  const deliveryDeps = {
    mailstore: deliveryMailstore,
    directory,
    logger: deliveryLogger,
    traceStore,
    ...(options.registry === undefined ? {} : { metrics: new DeliveryMetrics(options.registry) }),
    ...(options.deliveryConcurrency === undefined ? {} : { concurrency: options.deliveryConcurrency }),
    ...(options.deliveryBatch === undefined ? {} : { maxBatch: options.deliveryBatch }),
    ...(options.deliveryBatchWaitMs === undefined ? {} : { batchWaitMs: options.deliveryBatchWaitMs }),
    ...(alertRules === undefined ? {} : { onWriteError: (reason: string) => alertRules.writeFailed(reason) }),
    // Users' Sieve scripts run at delivery (docs/sieve.md); their replies need the bus.
    ...(bus === undefined
      ? {}
      : {
          sieve: new SieveDelivery({
            db,
            bus,
            directory,
            logger: deliveryLogger.child({ component: 'sieve' }),
            reportingMta: hostname(),
          }),
        }),
  };
  if (bus !== undefined) {
    // Unpartitioned jobs (`mail.inbound.<spoolId>`: queued before partitioning, or by publishers
    // without it) are delivered by every replica, as before.
    delivery = createDeliveryConsumer({ bus, ...deliveryDeps });
    delivery.start();
  }
  let partitioned: PartitionWorkers | undefined;

  let learner: ConsumerLoop | undefined;
  if (bus !== undefined && options.rspamdControllerUrl !== undefined) {
    const learnLogger = logger.child({ component: 'spam-learning' });
    learner = createSpamLearner({
      bus,
      mailstore: new Mailstore({ db, runtime, blobs, keyring, logger: learnLogger }),
      controllerUrl: options.rspamdControllerUrl,
      logger: learnLogger,
    });
    learner.start();
  }

  let webhookSender: WebhookSender | undefined;
  if (bus !== undefined) {
    webhookSender = new WebhookSender({
      bus,
      db,
      store: webhookStore,
      destinations,
      logger: logger.child({ component: 'webhooks' }),
      ...(options.webhooks?.maxAttempts === undefined ? {} : { maxAttempts: options.webhooks.maxAttempts }),
      ...(options.webhooks?.retryBaseMs === undefined ? {} : { retryBaseMs: options.webhooks.retryBaseMs }),
      ...(options.webhooks?.timeoutMs === undefined ? {} : { timeoutMs: options.webhooks.timeoutMs }),
    });
    webhookSender.start();
  }

  const blobSweeper = new BlobSweeper({
    db,
    stores: blobs,
    logger: logger.child({ component: 'blob-sweeper' }),
    minAgeMs: options.blobSweep?.minAgeMs ?? 60 * 60_000,
  });
  blobSweeper.start(options.blobSweep?.intervalMs ?? 0);
  sieveLedgerSweep.start(options.sieveLedgerSweepMs ?? 0);

  let stopping = false;
  const warming = new AbortController();
  return {
    port,
    keyring,
    mailstoreRuntime: runtime,
    handlers: { mailstore: mailstoreServer, directory: directoryServer },
    warmMailboxIndex: () =>
      new Mailstore({
        db,
        runtime,
        blobs,
        keyring,
        logger: logger.child({ component: 'mailstore' }),
        writeCounts: writes.counts,
      }).warmIndex({ signal: warming.signal }),
    async startOwnership(coordinator, ownershipOptions = {}) {
      if (bus === undefined) throw new Error('delivery by partition needs the bus');
      writes.use(coordinator.ownership);
      fence.use(coordinator);
      partitioned = await startPartitionedDelivery({
        bus,
        ownership: coordinator.ownership,
        delivery: new InboundDelivery({ bus, ...deliveryDeps, coordinator }),
        mailstore: deliveryMailstore,
        logger: deliveryLogger,
        ...(options.deliveryBatch === undefined ? {} : { maxBatch: options.deliveryBatch }),
        ...(options.deliveryBatchWaitMs === undefined ? {} : { batchWaitMs: options.deliveryBatchWaitMs }),
        ...(ownershipOptions.ackWaitMs === undefined ? {} : { ackWaitMs: ownershipOptions.ackWaitMs }),
      });
    },
    directory,
    mailboxChanges,
    directoryCache,
    credentials,
    traceStore,
    blobs,
    blobSweeper,
    check: () => (stopping ? 'gRPC server is shutting down' : true),
    async stop(graceMs = 5_000) {
      stopping = true;
      warming.abort();
      clearInterval(sweeper);
      // Unacked jobs are redelivered; let those in flight finish before the database closes.
      await partitioned?.stop();
      await delivery?.stop();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          logger.warn({ graceMs }, 'gRPC calls still running after the grace period; cutting them');
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      await consumer?.stop();
      await alertOutbox?.drain();
      await learner?.stop();
      await webhookSender?.stop();
      directoryFeed?.stop();
      await blobSweeper.stop();
      await sieveLedgerSweep.stop();
      // Mailbox counters moved in memory, and their marks taken off (ADR 0007); a partition
      // handed over dropped its own and left its marks (its next owner recounts).
      await deliveryMailstore.releaseCounters().catch((error: unknown) => {
        logger.warn(
          { err: error },
          'could not write the mailbox counters; the next index build recounts them',
        );
      });
      await blobs.close();
      mailboxChanges?.flush();
    },
  };
}

/**
 * Who besides the postmaster is told of an alert about `domain`: the active domain-admins of the
 * domain and the owners, whose address is a mailbox here (notices are delivered locally).
 */
async function alertRecipientsOf(db: Db, directory: DirectoryService, domain: string): Promise<string[]> {
  const admins = await db
    .collection<{ email: string; role: string; domains: string[]; status: string }>(Collections.admins)
    .find(
      { status: 'active', $or: [{ role: 'owner' }, { role: 'domain-admin', domains: domain }] },
      { projection: { email: 1 }, limit: 50 },
    )
    .toArray();
  const local: string[] = [];
  for (const { email } of admins) {
    const answer = await directory.resolveRecipient({ address: email, messageSize: 0 });
    const found = answer.ok ? answer.value.result?.$case : undefined;
    if (found === 'users' || found === 'overQuota') local.push(email);
  }
  return local;
}
