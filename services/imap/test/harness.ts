/**
 * Integration harness: the real storage service and the real imap service as child processes
 * (`node services/<name>/dist/main.js`) on a private nats-server and FerretDB
 * (`startTestEnvironment()`), every port from `freePort()`, plus gRPC clients to create users
 * and put mail in place.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import { DirectoryServiceClient, type directory } from '@postmesh/contracts';
import {
  ManagedProcess,
  freePort,
  repoRoot,
  startTestEnvironment,
  waitForPort,
  type TestEnvironment,
} from '@postmesh/testing';
import { connectStorage, type StorageClient } from '@postmesh/storage-client';

export interface ImapStackOptions {
  /** Extra environment for the imap service. */
  readonly imapEnv?: Readonly<Record<string, string>>;
}

export interface ImapStack {
  readonly env: TestEnvironment;
  readonly storage: ManagedProcess;
  readonly imap: ManagedProcess;
  readonly imapPort: number;
  readonly imapsPort: number;
  readonly opsPort: number;
  /** The storage service's ops port (health, metrics). */
  readonly storageOpsPort: number;
  readonly grpc: StorageClient;
  readonly logDir: string;
  /**
   * A new user of example.test; `quotaBytes` sets a storage quota, `quotaMessages` a message
   * count quota (default: none).
   */
  createUser(local?: string, quotaBytes?: number, quotaMessages?: number): Promise<TestUser>;
  /** Starts another imap process on the same storage (restart / shutdown tests). */
  startImap(extraEnv?: Readonly<Record<string, string>>): Promise<{
    proc: ManagedProcess;
    port: number;
    tlsPort: number;
    opsPort: number;
  }>;
  log(name: 'imap' | 'storage'): string;
  stop(): Promise<void>;
}

export interface TestUser {
  readonly id: string;
  readonly address: string;
  readonly password: string;
}

const root = repoRoot();

export async function startImapStack(options: ImapStackOptions = {}): Promise<ImapStack> {
  const env = await startTestEnvironment();
  const logDir = mkdtempSync(join(tmpdir(), 'postmesh-imap-'));
  const kekFile = join(logDir, 'kek.b64');
  writeFileSync(kekFile, randomBytes(32).toString('base64'));
  const grpcPort = await freePort();
  const storageOps = await freePort();
  const common = {
    ...process.env,
    ...env.serviceEnv,
    POSTMESH_SHUTDOWN_TIMEOUT_MS: '5000',
    LOG_LEVEL: 'info',
  };
  const storage = new ManagedProcess({
    name: 'storage',
    command: process.execPath,
    args: [join(root, 'services', 'storage', 'dist', 'main.js')],
    env: {
      ...common,
      MONGODB_URI: env.mongoUri,
      POSTMESH_MONGODB_DB: env.database,
      POSTMESH_KEK_FILE: kekFile,
      POSTMESH_BLOB_DIR: join(logDir, 'blobs'),
      POSTMESH_GRPC_PORT: String(grpcPort),
      POSTMESH_OPS_PORT: String(storageOps),
    },
    logFile: join(logDir, 'storage.log'),
  });
  storage.start();
  let stopping = false;
  void storage.exited.then((code) => {
    if (!stopping)
      process.stderr.write(`storage exited unexpectedly (code ${String(code)}); log in ${logDir}\n`);
  });
  await waitForPort(grpcPort, '127.0.0.1', 60_000, () => storage.running).catch((error: unknown) => {
    throw new Error(`${String(error)}\n${readFileSync(join(logDir, 'storage.log'), 'utf8')}`);
  });
  await waitReady(storageOps, join(logDir, 'storage.log'));
  const grpcAddress = `127.0.0.1:${grpcPort}`;

  const started: ManagedProcess[] = [];
  const startImap = async (
    extraEnv: Readonly<Record<string, string>> = {},
  ): Promise<{ proc: ManagedProcess; port: number; tlsPort: number; opsPort: number }> => {
    const [port, tlsPort, opsPort] = [await freePort(), await freePort(), await freePort()];
    const name = `imap-${port}`;
    const proc = new ManagedProcess({
      name,
      command: process.execPath,
      args: [join(root, 'services', 'imap', 'dist', 'main.js')],
      env: {
        ...common,
        POSTMESH_STORAGE_GRPC: grpcAddress,
        POSTMESH_IMAP_PORT: String(port),
        POSTMESH_IMAPS_PORT: String(tlsPort),
        POSTMESH_OPS_PORT: String(opsPort),
        POSTMESH_IMAP_DATA_DIR: join(logDir, 'imap-data'),
        POSTMESH_IMAP_ALLOW_PLAINTEXT: 'true',
        POSTMESH_AUTH_BASE_DELAY_MS: '0',
        ...options.imapEnv,
        ...extraEnv,
      },
      logFile: join(logDir, `${name}.log`),
    });
    proc.start();
    started.push(proc);
    await waitReady(opsPort, join(logDir, `${name}.log`));
    return { proc, port, tlsPort, opsPort };
  };
  const first = await startImap();
  // The test plays the operator (it creates users); imap itself connects as `imap`.
  const operatorCredentials = env.security('operator').grpcClientCredentials();
  const grpc = connectStorage({ address: grpcAddress, security: env.security('operator') });
  const dir = new DirectoryServiceClient(grpcAddress, operatorCredentials);
  await call<directory.CreateDomainResponse>((cb) =>
    dir.createDomain({ name: 'example.test', defaultQuotaBytes: 0 }, new Metadata(), cb),
  );
  let users = 0;
  return {
    env,
    storage,
    imap: first.proc,
    imapPort: first.port,
    imapsPort: first.tlsPort,
    opsPort: first.opsPort,
    storageOpsPort: storageOps,
    grpc,
    logDir,
    startImap,
    log: (name) =>
      readFileSync(join(logDir, name === 'storage' ? 'storage.log' : `imap-${first.port}.log`), 'utf8'),
    async createUser(local = `user${++users}`, quotaBytes?: number, quotaMessages?: number) {
      const address = `${local}@example.test`;
      const password = `Pw-${randomBytes(9).toString('base64url')}`;
      const response = await call<directory.CreateUserResponse>((cb) =>
        dir.createUser(
          { address, password, displayName: local, quotaBytes, quotaMessages },
          new Metadata(),
          cb,
        ),
      );
      const id = response.user?.id;
      if (id === undefined) throw new Error('CreateUser returned no user');
      return { id, address, password };
    },
    async stop() {
      stopping = true;
      dir.close();
      grpc.close();
      await Promise.all(started.map((p) => p.stop(10_000)));
      await storage.stop(10_000);
      await env.stop();
      // POSTMESH_KEEP_TEST_LOGS=1 keeps the service logs for a post-mortem.
      if (process.env.POSTMESH_KEEP_TEST_LOGS === undefined) rmSync(logDir, { recursive: true, force: true });
      else process.stderr.write(`imap test logs kept in ${logDir}\n`);
    },
  };
}

function call<T>(run: (cb: (error: ServiceError | null, value: T) => void) => unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    run((error, value) => (error ? reject(error) : resolve(value)));
  });
}

async function waitReady(opsPort: number, logFile: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`http://127.0.0.1:${opsPort}/healthz/ready`, {
        signal: AbortSignal.timeout(2_000),
      });
      if (res.status === 200) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`service on ops port ${opsPort} never became ready\n${readFileSync(logFile, 'utf8')}`);
}

/** A small RFC 5322 message. */
export function message(subject: string, body = 'Hello there.\r\n', extraHeaders = ''): Buffer {
  return Buffer.from(
    `From: Alice <alice@example.org>\r\nTo: Bob <bob@example.test>\r\nSubject: ${subject}\r\n` +
      `Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nMessage-ID: <${subject.replace(/\W/g, '')}@example.org>\r\n` +
      `${extraHeaders}\r\n${body}`,
  );
}
