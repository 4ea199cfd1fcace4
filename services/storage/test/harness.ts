/**
 * Shared integration harness for the storage service: a real FerretDB (and NATS, when asked)
 * from @postmesh/testing, the real storage app built in-process on 127.0.0.1 with a free port
 * and a temporary KEK, and typed gRPC clients from @postmesh/contracts. No database mocks.
 *
 *   const h = await startStorageHarness();            // in beforeAll
 *   const { domain } = await call(h.directory.createDomain.bind(h.directory), { name: 'a.test', defaultQuotaBytes: 0 });
 *   await h.stop();                                   // in afterAll
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Metadata,
  type CallOptions,
  type ChannelCredentials,
  type ClientUnaryCall,
  type ServiceError,
} from '@grpc/grpc-js';
import { Bus } from '@postmesh/bus';
import {
  DirectoryServiceClient,
  MailstoreServiceClient,
  TraceServiceClient,
  directory,
  isServiceError,
  trace,
} from '@postmesh/contracts';
import { createLogger, type Logger } from '@postmesh/telemetry';
import { startTestEnvironment, type TestEnvironment } from '@postmesh/testing';
import { MongoClient, type CommandStartedEvent, type Db } from 'mongodb';
import { openSqliteDatabase } from '../src/db/sqlite/index.js';
import { createStorageApp, type StorageApp, type StorageAppOptions } from '../src/app.js';
import type { BlobStoreKind, BlobStoreSettings } from '../src/blob/index.js';
import { loadLocalKeyProvider, type LocalKeyProvider } from '../src/crypto/index.js';

export interface StorageHarnessOptions {
  /** Also start NATS and connect the app to it (trace consumer, mailbox.changed). Default false. */
  readonly nats?: boolean;
  readonly traceRetentionDays?: number;
  readonly logLevel?: 'silent' | 'error' | 'warn' | 'info' | 'debug';
  /**
   * Where bodies go: a kind (`fs` under the harness's temporary directory, the default as in the
   * local stack; `gridfs` in the suite's database), or full settings (S3).
   */
  readonly blobStore?: BlobStoreKind | BlobStoreSettings;
  /** Alerts mailed to a postmaster (with `nats`). */
  readonly alerts?: StorageAppOptions['alerts'];
  /** The in-process SQLite database whatever POSTMESH_TEST_DB says (a suite of its write path). */
  readonly sqlite?: boolean;
}

export interface StorageHarness {
  readonly env: TestEnvironment;
  readonly db: Db;
  readonly mongo: MongoClient;
  readonly app: StorageApp;
  readonly keyProvider: LocalKeyProvider;
  /** Path of the temporary KEK file (base64). */
  readonly kekFile: string;
  /** Root of the filesystem blob store (used when the blob store is `fs`). */
  readonly blobDir: string;
  readonly bus: Bus | undefined;
  readonly logger: Logger;
  readonly directory: DirectoryServiceClient;
  readonly mailstore: MailstoreServiceClient;
  readonly trace: TraceServiceClient;
  /** `127.0.0.1:<port>` of the gRPC server. */
  readonly target: string;
  /** Mutual TLS as the all-permitted `operator` identity, for clients a test makes itself. */
  readonly clientCredentials: ChannelCredentials;
  stop(): Promise<void>;
}

export async function startStorageHarness(options: StorageHarnessOptions = {}): Promise<StorageHarness> {
  const env = await startTestEnvironment({ nats: options.nats ?? false });
  try {
    return await buildHarness(env, options);
  } catch (error) {
    await env.stop();
    throw error;
  }
}

async function buildHarness(env: TestEnvironment, options: StorageHarnessOptions): Promise<StorageHarness> {
  const dir = mkdtempSync(join(tmpdir(), 'postmesh-storage-test-'));
  const kekFile = join(dir, 'kek');
  writeFileSync(kekFile, randomBytes(32).toString('base64'), { mode: 0o600 });
  const keyProvider = loadLocalKeyProvider({ kekFile });
  const logger = createLogger('storage-test', options.logLevel ?? 'silent');
  // Command events let a test see which collections a call touched (`h.mongo.on('commandStarted')`).
  const mongo = new MongoClient(env.mongoUri, { serverSelectionTimeoutMS: 10_000, monitorCommands: true });
  await mongo.connect();
  // POSTMESH_TEST_DB=sqlite runs the suite on the in-process SQLite database (ADR 0011) instead.
  const sqlite =
    options.sqlite === true || process.env.POSTMESH_TEST_DB === 'sqlite'
      ? openSqliteDatabase({
          file: join(dir, 'postmesh.sqlite'),
          name: env.database,
          // The suites that count database commands (`h.mongo.on('commandStarted')`) see these.
          observe: (e) =>
            mongo.emit('commandStarted', {
              commandName: e.command,
              databaseName: env.database,
              command: { [e.command]: e.collection },
            } as unknown as CommandStartedEvent),
        })
      : undefined;
  const db = sqlite?.db ?? mongo.db(env.database);
  const bus =
    options.nats === true
      ? await Bus.connect({ ...env.busOptions('operator'), name: 'storage-test', logger, replicas: 1 })
      : undefined;
  const blobDir = join(dir, 'blobs');
  const blobStore =
    typeof options.blobStore === 'object'
      ? options.blobStore
      : { kind: options.blobStore ?? 'fs', dir: blobDir };
  const app = await createStorageApp({
    db,
    keyProvider,
    logger,
    grpcPort: 0,
    grpcCredentials: { insecure: false, server: env.security('storage').grpcServerCredentials() },
    blobStore,
    ...(bus === undefined ? {} : { bus }),
    ...(options.traceRetentionDays === undefined ? {} : { traceRetentionDays: options.traceRetentionDays }),
    ...(options.alerts === undefined ? {} : { alerts: options.alerts }),
  });
  const target = `127.0.0.1:${app.port}`;
  const clientCredentials = env.security('operator').grpcClientCredentials();
  const directory = new DirectoryServiceClient(target, clientCredentials);
  const mailstore = new MailstoreServiceClient(target, clientCredentials);
  const trace = new TraceServiceClient(target, clientCredentials);
  return {
    env,
    db,
    mongo,
    app,
    keyProvider,
    kekFile,
    blobDir,
    bus,
    logger,
    directory,
    mailstore,
    trace,
    target,
    clientCredentials,
    async stop() {
      directory.close();
      mailstore.close();
      trace.close();
      await app.stop(2_000);
      await bus?.drain();
      // An external MongoDB (MONGODB_URI) keeps its data: drop this suite's database.
      if (sqlite !== undefined) await sqlite.close();
      else if (env.ferret === undefined) await db.dropDatabase();
      await mongo.close();
      await env.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Ids of every body in the harness's blob store (where new bodies go). */
/** A second storage replica in this process: the harness's database and NATS, its own body store. */
export interface SecondReplica {
  readonly app: StorageApp;
  stop(): Promise<void>;
}

/**
 * Starts a second storage app beside the harness's (started with `nats: true`), as another
 * replica would run: the same database and NATS, connected as the `storage` identity with the
 * storage service's own NATS permissions.
 */
export async function startSecondReplica(h: StorageHarness): Promise<SecondReplica> {
  const logger = createLogger('storage-test-b', 'silent');
  const bus = await Bus.connect({
    ...h.env.busOptions('storage'),
    name: 'storage-b',
    logger,
    replicas: 1,
    // The harness's bus (the operator) made the streams; storage may not.
    ensureTopology: false,
  });
  const blobDir = mkdtempSync(join(tmpdir(), 'postmesh-storage-b-'));
  try {
    const app = await createStorageApp({
      db: h.db,
      // One process: both apps' Mailstores share the locks and records, as they always have.
      mailstoreRuntime: h.app.mailstoreRuntime,
      keyProvider: h.keyProvider,
      logger,
      grpcPort: 0,
      grpcCredentials: { insecure: false, server: h.env.security('storage').grpcServerCredentials() },
      blobStore: { kind: 'fs', dir: blobDir },
      bus,
    });
    return {
      app,
      async stop() {
        await app.stop(2_000);
        await bus.drain();
        rmSync(blobDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await bus.drain();
    rmSync(blobDir, { recursive: true, force: true });
    throw error;
  }
}

export async function storedBlobIds(h: StorageHarness): Promise<string[]> {
  const ids: string[] = [];
  for await (const id of h.app.blobs.primary.list({ before: 'f'.repeat(24) })) ids.push(id);
  return ids;
}

/** Deadline for harness calls, so a hung server fails the test instead of hanging it. */
export const callOptions = (): Partial<CallOptions> => ({ deadline: Date.now() + 30_000 });

type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: Res) => void,
) => ClientUnaryCall;

/** Calls a unary RPC and answers its response (rejects with the ServiceError on failure). */
export function call<Req, Res>(method: UnaryMethod<Req, Res>, request: Req): Promise<Res> {
  return new Promise((resolve, reject) => {
    method(request, new Metadata(), callOptions(), (error, response) => {
      if (error === null) resolve(response);
      else reject(error);
    });
  });
}

/** The ServiceError a call failed with (fails the test when it succeeded). */
export async function callError(promise: Promise<unknown>): Promise<ServiceError> {
  try {
    await promise;
  } catch (error) {
    if (isServiceError(error)) return error;
    throw error;
  }
  throw new Error('expected the call to fail');
}

/** Unary call with every unset request field at its proto default. */
function partialCall<Req extends object, Res>(
  empty: Req,
  method: UnaryMethod<Req, Res>,
): (request?: Partial<Req>) => Promise<Res> {
  return (request = {}) => call(method, { ...empty, ...request });
}

/** The Directory RPCs as promise-returning functions taking partial requests. */
export function directoryApi(c: DirectoryServiceClient) {
  const d = directory;
  return {
    createDomain: partialCall(d.CreateDomainRequest.fromPartial({}), c.createDomain.bind(c)),
    listDomains: partialCall(d.ListDomainsRequest.fromPartial({}), c.listDomains.bind(c)),
    getDomain: partialCall(d.GetDomainRequest.fromPartial({}), c.getDomain.bind(c)),
    setDomainStatus: partialCall(d.SetDomainStatusRequest.fromPartial({}), c.setDomainStatus.bind(c)),
    deleteDomain: partialCall(d.DeleteDomainRequest.fromPartial({}), c.deleteDomain.bind(c)),
    createUser: partialCall(d.CreateUserRequest.fromPartial({}), c.createUser.bind(c)),
    getUser: partialCall(d.GetUserRequest.fromPartial({}), c.getUser.bind(c)),
    listUsers: partialCall(d.ListUsersRequest.fromPartial({}), c.listUsers.bind(c)),
    updateUser: partialCall(d.UpdateUserRequest.fromPartial({}), c.updateUser.bind(c)),
    setPassword: partialCall(d.SetPasswordRequest.fromPartial({}), c.setPassword.bind(c)),
    createAppPassword: partialCall(d.CreateAppPasswordRequest.fromPartial({}), c.createAppPassword.bind(c)),
    listAppPasswords: partialCall(d.ListAppPasswordsRequest.fromPartial({}), c.listAppPasswords.bind(c)),
    deleteAppPassword: partialCall(d.DeleteAppPasswordRequest.fromPartial({}), c.deleteAppPassword.bind(c)),
    deleteUser: partialCall(d.DeleteUserRequest.fromPartial({}), c.deleteUser.bind(c)),
    createAlias: partialCall(d.CreateAliasRequest.fromPartial({}), c.createAlias.bind(c)),
    createForward: partialCall(d.CreateForwardRequest.fromPartial({}), c.createForward.bind(c)),
    setCatchAll: partialCall(d.SetCatchAllRequest.fromPartial({}), c.setCatchAll.bind(c)),
    listAddresses: partialCall(d.ListAddressesRequest.fromPartial({}), c.listAddresses.bind(c)),
    deleteAddress: partialCall(d.DeleteAddressRequest.fromPartial({}), c.deleteAddress.bind(c)),
    authenticate: partialCall(d.AuthenticateRequest.fromPartial({}), c.authenticate.bind(c)),
    resolveRecipient: partialCall(d.ResolveRecipientRequest.fromPartial({}), c.resolveRecipient.bind(c)),
    generateDkimKey: partialCall(d.GenerateDkimKeyRequest.fromPartial({}), c.generateDkimKey.bind(c)),
    listDkimKeys: partialCall(d.ListDkimKeysRequest.fromPartial({}), c.listDkimKeys.bind(c)),
    activateDkimKey: partialCall(d.ActivateDkimKeyRequest.fromPartial({}), c.activateDkimKey.bind(c)),
    retireDkimKey: partialCall(d.RetireDkimKeyRequest.fromPartial({}), c.retireDkimKey.bind(c)),
    getSigningKey: partialCall(d.GetSigningKeyRequest.fromPartial({}), c.getSigningKey.bind(c)),
    beginUserTotpEnrollment: partialCall(
      d.BeginUserTotpEnrollmentRequest.fromPartial({}),
      c.beginUserTotpEnrollment.bind(c),
    ),
    confirmUserTotpEnrollment: partialCall(
      d.ConfirmUserTotpEnrollmentRequest.fromPartial({}),
      c.confirmUserTotpEnrollment.bind(c),
    ),
    disableUserTotp: partialCall(d.DisableUserTotpRequest.fromPartial({}), c.disableUserTotp.bind(c)),
  };
}
export type DirectoryApi = ReturnType<typeof directoryApi>;

/** Trace.QueryEvents and RecentEvents taking a partial request. */
export function traceApi(c: TraceServiceClient) {
  return {
    queryEvents: partialCall(trace.QueryEventsRequest.fromPartial({}), c.queryEvents.bind(c)),
    recentEvents: partialCall(trace.RecentEventsRequest.fromPartial({}), c.recentEvents.bind(c)),
  };
}
