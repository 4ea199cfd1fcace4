/**
 * Integration harness for the admin service: real NATS + FerretDB (@postmesh/testing), the real
 * storage process and the real admin process, each on free ports on 127.0.0.1, plus a small
 * HTTP client that signs in like the console does (cookie + CSRF token) or uses a bearer token.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ManagedProcess,
  freePort,
  repoRoot,
  startTestEnvironment,
  type TestEnvironment,
} from '@postmesh/testing';

/** RFC 6238 TOTP (SHA-1, 30 s, 6 digits), as an authenticator app computes it. */
export function totp(base32: string, at = Date.now()): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of base32) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from((bits.match(/.{8}/g) ?? []).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 30_000)));
  const mac = createHmac('sha1', key).update(counter).digest();
  const offset = (mac[mac.length - 1] ?? 0) & 15;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

export const OWNER = { email: 'admin@example.test', password: 'owner password 2026!' } as const;

export interface AdminHarness {
  readonly env: TestEnvironment;
  readonly baseUrl: string;
  readonly storageGrpc: string;
  readonly adminOpsPort: number;
  readonly storageOpsPort: number;
  readonly smtpPort?: number;
  /** The KEK file storage was started with (base64). */
  readonly kekFile: string;
  /**
   * Stops storage and starts it again on the same ports and database with extra environment
   * (e.g. another `POSTMESH_KEK_FILE` and `POSTMESH_KEK_PREVIOUS_FILE`); resolves when it is ready.
   */
  restartStorage(env: Readonly<Record<string, string>>): Promise<void>;
  /** A new temporary file holding a random 256-bit KEK (removed with the harness). */
  newKekFile(name: string): string;
  logs(): string;
  stop(): Promise<void>;
}

export interface AdminHarnessOptions {
  readonly adminEnv?: Readonly<Record<string, string>>;
  /** Extra environment for storage (e.g. POSTMESH_POSTMASTER). */
  readonly storageEnv?: Readonly<Record<string, string>>;
  /** Also run smtp-inbound (for end-to-end mail flow). */
  readonly smtp?: boolean;
}

async function waitReady(port: number, proc: ManagedProcess, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!proc.running)
      throw new Error(
        `${proc.options.name} exited:\n${readFileSync(proc.options.logFile, 'utf8').slice(-3000)}`,
      );
    try {
      const r = await fetch(`http://127.0.0.1:${port}/healthz/ready`, { signal: AbortSignal.timeout(2_000) });
      if (r.status === 200) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(
    `${proc.options.name} not ready:\n${readFileSync(proc.options.logFile, 'utf8').slice(-3000)}`,
  );
}

export async function startAdminHarness(options: AdminHarnessOptions = {}): Promise<AdminHarness> {
  const root = repoRoot();
  const env = await startTestEnvironment();
  const dir = mkdtempSync(join(tmpdir(), 'postmesh-admin-test-'));
  const kekFile = join(dir, 'kek.b64');
  writeFileSync(kekFile, randomBytes(32).toString('base64'), { mode: 0o600 });
  const [storageOpsPort, grpcPort, adminOpsPort, httpPort] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const storageGrpc = `127.0.0.1:${grpcPort}`;
  const common = {
    ...process.env,
    ...env.serviceEnv,
    LOG_LEVEL: 'info',
    POSTMESH_SHUTDOWN_TIMEOUT_MS: '5000',
  };
  const storageProcess = (extra: Readonly<Record<string, string>>): ManagedProcess =>
    new ManagedProcess({
      name: 'storage',
      command: process.execPath,
      args: [join(root, 'services/storage/dist/main.js')],
      env: {
        ...common,
        MONGODB_URI: env.mongoUri,
        POSTMESH_MONGODB_DB: env.database,
        POSTMESH_OPS_PORT: String(storageOpsPort),
        POSTMESH_GRPC_PORT: String(grpcPort),
        POSTMESH_KEK_FILE: kekFile,
        POSTMESH_BLOB_DIR: join(dir, 'blobs'),
        ...extra,
      },
      logFile: join(dir, 'storage.log'),
    });
  let storage = storageProcess(options.storageEnv ?? {});
  const adminProc = new ManagedProcess({
    name: 'admin',
    command: process.execPath,
    args: [join(root, 'services/admin/dist/main.js')],
    env: {
      ...common,
      POSTMESH_OPS_PORT: String(adminOpsPort),
      POSTMESH_HTTP_PORT: String(httpPort),
      POSTMESH_STORAGE_GRPC: storageGrpc,
      POSTMESH_OWNER_EMAIL: OWNER.email,
      POSTMESH_OWNER_PASSWORD: OWNER.password,
      POSTMESH_HEALTH_TARGETS: `storage=http://127.0.0.1:${storageOpsPort},admin=http://127.0.0.1:${adminOpsPort}`,
      POSTMESH_DNS_SERVERS: '127.0.0.1:9',
      ...options.adminEnv,
    },
    logFile: join(dir, 'admin.log'),
  });
  const procs = [storage, adminProc];
  let smtpPort: number | undefined;
  let smtp: ManagedProcess | undefined;
  let smtpOpsPort = 0;
  if (options.smtp === true) {
    const [port, submission, submissions, ops] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ]);
    smtpPort = port;
    smtpOpsPort = ops;
    smtp = new ManagedProcess({
      name: 'smtp-inbound',
      command: process.execPath,
      args: [join(root, 'services/smtp-inbound/dist/main.js')],
      env: {
        ...common,
        POSTMESH_OPS_PORT: String(ops),
        POSTMESH_SMTP_PORT: String(port),
        POSTMESH_SUBMISSION_PORT: String(submission),
        POSTMESH_SUBMISSIONS_PORT: String(submissions),
        POSTMESH_STORAGE_GRPC: storageGrpc,
        POSTMESH_SMTP_DATA_DIR: join(dir, 'smtp'),
      },
      logFile: join(dir, 'smtp-inbound.log'),
    });
    procs.push(smtp);
  }
  const stop = async (): Promise<void> => {
    await Promise.all(procs.map((p) => p.stop(10_000).catch(() => p.kill())));
    await env.stop();
    // POSTMESH_KEEP_TEST_LOGS=1 keeps the service logs for a failed run.
    if (process.env.POSTMESH_KEEP_TEST_LOGS === undefined) rmSync(dir, { recursive: true, force: true });
    else process.stderr.write(`admin test logs kept in ${dir}\n`);
  };
  try {
    storage.start();
    await waitReady(storageOpsPort, storage);
    if (smtp !== undefined) {
      smtp.start();
      await waitReady(smtpOpsPort, smtp);
    }
    adminProc.start();
    // Ready includes the bootstrap owner existing in storage.
    await waitReady(adminOpsPort, adminProc);
    const baseUrl = `http://127.0.0.1:${httpPort}`;
    return {
      env,
      baseUrl,
      storageGrpc,
      adminOpsPort,
      storageOpsPort,
      ...(smtpPort === undefined ? {} : { smtpPort }),
      kekFile,
      async restartStorage(extra) {
        await storage.stop(10_000).catch(() => storage.kill());
        storage = storageProcess(extra);
        procs[0] = storage;
        storage.start();
        await waitReady(storageOpsPort, storage);
      },
      newKekFile(name) {
        const file = join(dir, name);
        writeFileSync(file, randomBytes(32).toString('base64'), { mode: 0o600 });
        return file;
      },
      logs: () =>
        procs
          .map((p) => `--- ${p.options.name}\n${readFileSync(p.options.logFile, 'utf8').slice(-4000)}`)
          .join('\n'),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

export interface ApiResponse {
  readonly status: number;
  readonly body: unknown;
  readonly text: string;
  readonly headers: Headers;
}

/** A client as the console or the CLI would be: cookie session + CSRF token, or a bearer token. */
export class ApiClient {
  cookie: string | undefined;
  csrf: string | undefined;
  constructor(
    readonly baseUrl: string,
    readonly bearer?: string,
  ) {}

  async login(email: string, password: string, totp?: string): Promise<ApiResponse> {
    const r = await this.request('POST', '/api/v1/auth/login', {
      email,
      password,
      ...(totp === undefined ? {} : { totp }),
    });
    const setCookie = r.headers.get('set-cookie');
    if (r.status === 200 && setCookie !== null) {
      this.cookie = setCookie.split(';')[0];
      this.csrf = (r.body as { csrfToken?: string }).csrfToken;
    }
    return r;
  }

  async request(
    method: string,
    path: string,
    body?: unknown,
    options: { csrf?: boolean; rawBody?: string; headers?: Record<string, string> } = {},
  ): Promise<ApiResponse> {
    const headers: Record<string, string> = { ...options.headers };
    if (body !== undefined || options.rawBody !== undefined) headers['content-type'] ??= 'application/json';
    if (this.cookie !== undefined) headers.cookie = this.cookie;
    if (this.bearer !== undefined) headers.authorization = `Bearer ${this.bearer}`;
    if ((options.csrf ?? true) && this.csrf !== undefined) headers['x-csrf-token'] = this.csrf;
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers,
      ...(options.rawBody !== undefined
        ? { body: options.rawBody }
        : body === undefined
          ? {}
          : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    let parsed: unknown = undefined;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    return { status: response.status, body: parsed, text, headers: response.headers };
  }

  get = (path: string): Promise<ApiResponse> => this.request('GET', path);
  post = (path: string, body?: unknown): Promise<ApiResponse> => this.request('POST', path, body ?? {});
  patch = (path: string, body: unknown): Promise<ApiResponse> => this.request('PATCH', path, body);
  delete = (path: string): Promise<ApiResponse> => this.request('DELETE', path);
}
