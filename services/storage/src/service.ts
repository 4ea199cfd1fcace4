import { resolve } from 'node:path';
import { ConfigError } from '@postmesh/config';
import type { RunningService, ServiceContext, ServiceDefinition } from '@postmesh/runtime';
import type { LocalStorage } from '@postmesh/storage-client';
import type { Registry } from '@postmesh/telemetry';
import { MongoClient, type Db } from 'mongodb';
import { createStorageApp } from './app.js';
import { sharedMailboxIndex } from './mailstore/mailbox-index.js';
import { mailboxRecords } from './mailstore/mailboxes.js';
import { MailstoreRuntime } from './mailstore/runtime.js';
import { sharedMessageCache } from './mailstore/message-cache.js';
import { rules, schema, webhookAllowList, type StorageConfig } from './config.js';
import { kmsClient, loadKmsKeyProvider } from './crypto/kms-key-provider.js';
import type { LocalKeyProvider } from './crypto/local-key-provider.js';
import { loadLocalKeyProvider } from './crypto/local-key-provider.js';
import { rotateKek } from './crypto/user-keyring.js';
import { DevSeedError, seedDevData } from './seed.js';
import { DatabaseCommitPointers, PartitionCoordinator, advertisedAddress } from './ownership/index.js';
import type { LocalMailboxChanges, PartitionOwnership } from '@postmesh/bus';
import { OwnerGate } from './grpc/owner-gate.js';
import {
  databaseMetrics,
  instrumentDatabase,
  instrumentKeyProvider,
  type CommandsInFlight,
} from './db/metrics.js';
import { openSqliteDatabase, type SqliteDatabase } from './db/sqlite/index.js';
import { watchStalls } from './db/stall-watch.js';

/** Exit code for a configuration error (sysexits EX_CONFIG), as runService uses. */
const EXIT_CONFIG = 78;

/** A running storage, with what a process that also runs imap calls in-process (ADR 0010). */
export interface RunningStorage extends RunningService {
  readonly local: LocalStorage;
  /** This replica's partition ownership, with POSTMESH_STORAGE_OWNERSHIP (storage-imap uses it). */
  readonly ownership: PartitionOwnership | undefined;
  /** `mailbox.changed` for IMAP sessions in this process (storage-imap), with a bus. */
  readonly mailboxChanges: LocalMailboxChanges | undefined;
}

/**
 * storage: the only service that talks to the database (DESIGN §1; MongoDB, or SQLite in this
 * process, ADR 0011). Serves Directory, Mailstore and
 * Trace over gRPC, consumes MAIL_EVENTS into the trace store, and reports ready only when the
 * database, NATS and the gRPC server all answer. main.ts runs it; so does storage-imap.
 */
export const storageService = {
  name: 'storage',
  schema,
  rules,
  async start({
    config,
    logger,
    ops,
    bus,
    security,
  }: ServiceContext<typeof schema>): Promise<RunningStorage> {
    let keyProvider: LocalKeyProvider | undefined;
    try {
      // With KMS the KEK is read once the database (which holds its KMS-encrypted copy) is up.
      if (config.POSTMESH_KEY_PROVIDER === 'file') {
        keyProvider = loadLocalKeyProvider({
          kekFile: config.POSTMESH_KEK_FILE,
          previousKekFile: config.POSTMESH_KEK_PREVIOUS_FILE,
        });
      } else {
        kmsClient({ keyId: config.POSTMESH_KMS_KEY_ID ?? '', region: config.POSTMESH_KMS_REGION });
      }
    } catch (error) {
      if (error instanceof ConfigError) {
        process.stderr.write(`storage: ${error.message}\n`);
        process.exit(EXIT_CONFIG);
      }
      throw error;
    }
    if (config.POSTMESH_DEV_SEED && (config.POSTMESH_DEV_PASSWORD ?? '') === '') {
      process.stderr.write(
        'storage: Invalid configuration:\n  POSTMESH_DEV_PASSWORD: required when POSTMESH_DEV_SEED=true\n',
      );
      process.exit(EXIT_CONFIG);
    }

    sharedMailboxIndex.maxMessages = config.POSTMESH_MAILBOX_INDEX_MESSAGES;
    sharedMailboxIndex.maxSummaryBytes = config.POSTMESH_MAILBOX_INDEX_SUMMARY_BYTES;
    sharedMessageCache.maxBytes = config.POSTMESH_MESSAGE_CACHE_BYTES;
    // The database (ADR 0011): a MongoDB replica set, or one SQLite file inside this process.
    // A SQLite file that cannot be opened is a configuration error (named, exit 78), as a bad KEK file is.
    const refuse = (error: unknown): never => {
      if (error instanceof ConfigError) {
        process.stderr.write(`storage: ${error.message}\n`);
        process.exit(EXIT_CONFIG);
      }
      throw error;
    };
    let database: OpenDatabase;
    try {
      database = openDatabase(config, ops.registry);
    } catch (error) {
      database = refuse(error);
    }
    const { db } = database;
    // Shared by every Mailstore of this process (mailstore/runtime.ts).
    const mailstoreRuntime = new MailstoreRuntime(db);
    // A database that stops answering or a lock never released is logged, not silent.
    const stopStallWatch = watchStalls({
      logger,
      ...(database.commandsInFlight === undefined ? {} : { commands: database.commandsInFlight }),
      locks: mailstoreRuntime.locksByRole,
    });
    await database.connect().catch(refuse);
    logger.info(database.describe, `database: ${database.summary}`);
    keyProvider ??= await loadKmsKeyProvider({
      db,
      keyId: config.POSTMESH_KMS_KEY_ID ?? '',
      region: config.POSTMESH_KMS_REGION,
      endpoint: config.POSTMESH_KMS_ENDPOINT,
      previousKekFile: config.POSTMESH_KEK_PREVIOUS_FILE,
    });
    logger.info(
      {
        provider: config.POSTMESH_KEY_PROVIDER,
        kekId: keyProvider.currentKekId,
        knownKeks: keyProvider.knownKekIds.length,
      },
      'KEK loaded',
    );
    ops.addCheck({
      name: 'database',
      async check(): Promise<true> {
        await database.ping();
        return true;
      },
    });

    // Counted where every user key, DKIM key and TOTP seed is wrapped or unwrapped.
    instrumentKeyProvider(keyProvider, ops.registry);
    const ownerGate = new OwnerGate();
    const app = await createStorageApp({
      db,
      mailstoreRuntime,
      keyProvider,
      logger,
      bus,
      grpcHost: config.POSTMESH_GRPC_HOST,
      grpcPort: config.POSTMESH_GRPC_PORT,
      grpcCredentials: { insecure: security.insecure, server: security.grpcServerCredentials() },
      ownerGate,
      testHoldWritesMs: config.POSTMESH_STORAGE_TEST_HOLD_WRITES_MS,
      traceRetentionDays: config.POSTMESH_TRACE_RETENTION_DAYS,
      authCacheTtlMs: config.POSTMESH_AUTH_CACHE_TTL_MS,
      registry: ops.registry,
      alerts: {
        postmaster: config.POSTMESH_POSTMASTER,
        perHour: config.POSTMESH_ALERT_MAILS_PER_HOUR,
        deliveryFailures: {
          threshold: config.POSTMESH_ALERT_DELIVERY_FAILURES,
          windowMs: config.POSTMESH_ALERT_DELIVERY_FAILURES_WINDOW_MS,
        },
        writeErrors: {
          threshold: config.POSTMESH_ALERT_STORAGE_WRITE_ERRORS,
          windowMs: config.POSTMESH_ALERT_STORAGE_WRITE_ERRORS_WINDOW_MS,
        },
      },
      deliveryConcurrency: config.POSTMESH_DELIVERY_CONCURRENCY,
      deliveryBatch: config.POSTMESH_DELIVERY_BATCH,
      deliveryBatchWaitMs: config.POSTMESH_DELIVERY_BATCH_WAIT_MS,
      ...(config.POSTMESH_RSPAMD_CONTROLLER_URL === undefined
        ? {}
        : { rspamdControllerUrl: config.POSTMESH_RSPAMD_CONTROLLER_URL }),
      webhooks: {
        allowAddresses: webhookAllowList(config.POSTMESH_WEBHOOK_ALLOW_ADDRESSES),
        maxAttempts: config.POSTMESH_WEBHOOK_MAX_ATTEMPTS,
        retryBaseMs: config.POSTMESH_WEBHOOK_RETRY_BASE_MS,
        timeoutMs: config.POSTMESH_WEBHOOK_TIMEOUT_MS,
      },
      blobStore: {
        kind: config.POSTMESH_BLOB_STORE,
        dir: resolve(config.POSTMESH_BLOB_DIR),
        readCacheBytes: config.POSTMESH_BLOB_READ_CACHE_BYTES,
        fsWriterThread: config.POSTMESH_BLOB_FS_WRITER === 'thread',
        ...(config.POSTMESH_BLOB_S3_BUCKET === undefined || config.POSTMESH_BLOB_S3_BUCKET === ''
          ? {}
          : {
              s3: {
                bucket: config.POSTMESH_BLOB_S3_BUCKET,
                prefix: config.POSTMESH_BLOB_S3_PREFIX,
                forcePathStyle: config.POSTMESH_BLOB_S3_FORCE_PATH_STYLE,
                ...(config.POSTMESH_BLOB_S3_REGION === undefined
                  ? {}
                  : { region: config.POSTMESH_BLOB_S3_REGION }),
                ...(config.POSTMESH_BLOB_S3_ENDPOINT === undefined
                  ? {}
                  : { endpoint: config.POSTMESH_BLOB_S3_ENDPOINT }),
              },
            }),
      },
      blobSweep: {
        intervalMs: config.POSTMESH_BLOB_SWEEP_INTERVAL_MS,
        minAgeMs: config.POSTMESH_BLOB_SWEEP_MIN_AGE_MS,
      },
      sieveLedgerSweepMs: config.POSTMESH_SIEVE_LEDGER_SWEEP_INTERVAL_MS,
    });
    ops.addCheck({ name: 'grpc', check: () => app.check() });
    // Flag and expunge records follow ownership too; until the coordinator has started, this
    // replica serves every user (the gate is open), so it keeps every record.
    const started: { coordinator?: PartitionCoordinator } = {};
    const records = config.POSTMESH_STORAGE_OWNERSHIP
      ? mailstoreRuntime.followRecordOwnership((userId) => started.coordinator?.owns(userId) ?? true)
      : undefined;
    const coordinator = config.POSTMESH_STORAGE_OWNERSHIP
      ? await PartitionCoordinator.start({
          nc: bus.nc,
          logger: logger.child({ component: 'ownership' }),
          address: advertisedAddress(
            config.POSTMESH_STORAGE_ADVERTISED_GRPC,
            config.POSTMESH_GRPC_HOST,
            app.port,
          ),
          partitions: config.POSTMESH_STORAGE_PARTITIONS,
          leaseTtlMs: config.POSTMESH_STORAGE_LEASE_TTL_MS,
          replicas: config.POSTMESH_STREAM_REPLICAS,
          caches: [sharedMailboxIndex, mailboxRecords, ...(records === undefined ? [] : [records])],
          registry: ops.registry,
          ...(commitPointersIn(config) === 'database' ? { pointers: new DatabaseCommitPointers(db) } : {}),
        })
      : undefined;
    if (coordinator !== undefined) {
      started.coordinator = coordinator;
      records?.dropUsersWhere(() => true);
      ownerGate.attach(coordinator);
      await app.startOwnership(coordinator, { ackWaitMs: config.POSTMESH_STORAGE_DELIVERY_ACK_WAIT_MS });
    }
    // In the background: until a mailbox is warm, its first large read builds its entry itself.
    app.warmMailboxIndex().catch((error: unknown) => {
      logger.warn({ err: error }, 'warming the mailbox index failed; mailboxes are indexed on first use');
    });

    if (config.POSTMESH_KEK_ROTATE_AT_START) {
      // In the background: serving continues; both KEKs unwrap until it finishes.
      rotateKek({ db, keyProvider, logger }).catch((error: unknown) => {
        logger.error({ err: error }, 'KEK rotation failed; it resumes at the next start');
      });
    }
    if (config.POSTMESH_DEV_SEED) {
      try {
        await seedDevData(app.directory, config.POSTMESH_DEV_PASSWORD, logger);
      } catch (error) {
        if (!(error instanceof DevSeedError)) throw error;
        process.stderr.write(`storage: ${error.message}\n`);
        await app.stop(0);
        await database.close();
        process.exit(EXIT_CONFIG);
      }
    }

    return {
      local: {
        ...app.handlers,
        // The owner gate's decision, asked before a call runs in-process as before it runs over gRPC.
        serves: (userId) => ownerGate.mayServe(userId),
      },
      ownership: coordinator?.ownership,
      mailboxChanges: app.mailboxChanges,
      async stop() {
        stopStallWatch();
        // Hand the partitions over first, so the next owners take them at once, not after the TTL.
        await coordinator?.stop();
        await app.stop(config.POSTMESH_GRPC_SHUTDOWN_MS);
        // The hand-over above re-reads the flag and expunge records in the background: let that
        // (and any compaction) end before the database closes under it (SQLite: its pending group
        // commits are flushed first).
        await mailstoreRuntime.quiesce();
        await database.close();
      },
    };
  },
} satisfies ServiceDefinition<typeof schema>;

/** Storage's database, whichever it is: what service.ts needs beyond the `Db` itself. */
interface OpenDatabase {
  readonly db: Db;
  /** What the start log says: the backend and where it is. */
  readonly summary: string;
  readonly describe: Readonly<Record<string, string>>;
  /** MongoDB: commands sent and not answered (the stall watch reports long ones). */
  /** Operations sent and not answered (the stall watch reports long ones). */
  readonly commandsInFlight?: Pick<CommandsInFlight, 'longerThan'>;
  connect(): Promise<void>;
  /** Throws when the database does not answer (the readiness check `database`). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Where the partitions' commit pointers live (POSTMESH_STORAGE_COMMIT_POINTERS, ADR 0012). */
export function commitPointersIn(config: StorageConfig): 'kv' | 'database' {
  const chosen = config.POSTMESH_STORAGE_COMMIT_POINTERS;
  if (chosen !== 'auto') return chosen;
  return config.POSTMESH_STORAGE_DB === 'sqlite' ? 'database' : 'kv';
}

/**
 * POSTMESH_STORAGE_DB's database, its commands counted in the database metrics (db/metrics.ts):
 * from the driver's command events for MongoDB, from `observe` for SQLite.
 */
function openDatabase(config: StorageConfig, registry: Registry): OpenDatabase {
  if (config.POSTMESH_STORAGE_DB === 'sqlite') {
    const record = databaseMetrics(registry);
    const file = resolve(config.POSTMESH_SQLITE_FILE);
    let sqlite: SqliteDatabase;
    try {
      sqlite = openSqliteDatabase({
        file,
        name: config.POSTMESH_MONGODB_DB,
        writer: config.POSTMESH_SQLITE_WRITER,
        observe: ({ command, durationMs, failed }) => record({ command, durationMs, failed }),
      });
    } catch (error) {
      throw unusableFile(file, error);
    }
    return {
      db: sqlite.db,
      summary: `SQLite file ${sqlite.file}`,
      describe: { backend: 'sqlite', file: sqlite.file, database: config.POSTMESH_MONGODB_DB },
      // Opened already; the first ping says whether the file is usable.
      connect: async () => {
        try {
          await sqlite.ping();
        } catch (error) {
          throw unusableFile(file, error);
        }
      },
      // Writes waiting on the writer thread: a stuck thread or a file lock held by another
      // process shows in the log, as an unanswered MongoDB command does.
      commandsInFlight: { longerThan: (minMs) => sqlite.writesLongerThan(minMs) },
      ping: () => sqlite.ping(),
      close: () => sqlite.close(),
    };
  }
  const client = new MongoClient(config.MONGODB_URI, {
    appName: 'postmesh-storage',
    serverSelectionTimeoutMS: 5_000,
    // DESIGN §2 step 6: every write is majority-acknowledged and journaled.
    writeConcern: { w: 'majority', journal: true },
    // Command events feed the database metrics (db/metrics.ts).
    monitorCommands: true,
  });
  const commandsInFlight = instrumentDatabase(client, registry);
  const db = client.db(config.POSTMESH_MONGODB_DB);
  return {
    db,
    summary: `MongoDB database ${config.POSTMESH_MONGODB_DB}`,
    // The hosts only: the connection string may hold a password.
    describe: {
      backend: 'mongodb',
      hosts: mongoHosts(config.MONGODB_URI),
      database: config.POSTMESH_MONGODB_DB,
    },
    commandsInFlight,
    connect: async () => {
      await client.connect();
    },
    ping: async () => {
      await db.command({ ping: 1 }, { timeoutMS: 1_500 });
    },
    close: () => client.close(),
  };
}

/**
 * Errors that say the path itself is wrong (no such directory, not a directory, no permission, a
 * read-only filesystem, not a SQLite file): a configuration error naming the variable (exit 78).
 * Anything else (a disk error, say) is thrown as it is.
 */
const PATH_ERRORS = new Set([
  'ENOENT',
  'ENOTDIR',
  'EACCES',
  'EPERM',
  'EROFS',
  'EISDIR',
  'SQLITE_CANTOPEN',
  'SQLITE_NOTADB',
  'SQLITE_READONLY',
  'SQLITE_PERM',
]);

function unusableFile(file: string, error: unknown): Error {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !PATH_ERRORS.has(code))
    return error instanceof Error ? error : new Error(String(error));
  const message = error instanceof Error ? error.message : String(error);
  return new ConfigError([
    { variable: 'POSTMESH_SQLITE_FILE', problem: `cannot open ${file} as a SQLite database: ${message}` },
  ]);
}

/** The host list of a MongoDB connection string, without credentials or options. */
function mongoHosts(uri: string): string {
  const rest = uri.replace(/^mongodb(\+srv)?:\/\//, '');
  const authority = rest.split(/[/?]/, 1)[0] ?? '';
  return authority.slice(authority.lastIndexOf('@') + 1);
}
