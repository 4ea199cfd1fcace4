/**
 * Integration harness: the real storage service and the real imap service as child processes
 * (`node services/<name>/dist/main.js`) on a private nats-server and FerretDB
 * (`startTestEnvironment()`), every port from `freePort()`, plus gRPC clients to create users
 * and put mail in place.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import { DirectoryServiceClient, type directory } from '@postmesh/contracts';
import {
  freePort,
  startService,
  startTestEnvironment,
  type ManagedProcess,
  type RunningService,
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

export async function startImapStack(options: ImapStackOptions = {}): Promise<ImapStack> {
  const env = await startTestEnvironment();
  const logDir = mkdtempSync(join(tmpdir(), 'postmesh-imap-'));
  const storage = await startService('storage', { env, dir: logDir });
  const grpcAddress = storage.address;
  let stopping = false;
  void storage.proc.exited.then((code) => {
    if (!stopping)
      process.stderr.write(`storage exited unexpectedly (code ${String(code)}); log in ${logDir}\n`);
  });

  const started: RunningService[] = [];
  const startImap = async (
    extraEnv: Readonly<Record<string, string>> = {},
  ): Promise<{ proc: ManagedProcess; port: number; tlsPort: number; opsPort: number }> => {
    const [port, tlsPort] = [await freePort(), await freePort()];
    const imap = await startService('imap', {
      env,
      dir: logDir,
      name: `imap-${port}`,
      vars: {
        POSTMESH_STORAGE_GRPC: grpcAddress,
        POSTMESH_IMAP_PORT: String(port),
        POSTMESH_IMAPS_PORT: String(tlsPort),
        POSTMESH_IMAP_DATA_DIR: join(logDir, 'imap-data'),
        POSTMESH_IMAP_ALLOW_PLAINTEXT: 'true',
        POSTMESH_AUTH_BASE_DELAY_MS: '0',
        ...options.imapEnv,
        ...extraEnv,
      },
    });
    started.push(imap);
    return { proc: imap.proc, port, tlsPort, opsPort: imap.opsPort };
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
    storage: storage.proc,
    imap: first.proc,
    imapPort: first.port,
    imapsPort: first.tlsPort,
    opsPort: first.opsPort,
    storageOpsPort: storage.opsPort,
    grpc,
    logDir,
    startImap,
    log: (name) =>
      name === 'storage' ? storage.log() : readFileSync(join(logDir, `imap-${first.port}.log`), 'utf8'),
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

/** A small RFC 5322 message. */
export function message(subject: string, body = 'Hello there.\r\n', extraHeaders = ''): Buffer {
  return Buffer.from(
    `From: Alice <alice@example.org>\r\nTo: Bob <bob@example.test>\r\nSubject: ${subject}\r\n` +
      `Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nMessage-ID: <${subject.replace(/\W/g, '')}@example.org>\r\n` +
      `${extraHeaders}\r\n${body}`,
  );
}
