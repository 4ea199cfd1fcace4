/**
 * Integration harness for the admin service: real NATS + FerretDB (@postmesh/testing), the real
 * storage process and the real admin process, each on free ports on 127.0.0.1, plus a small
 * HTTP client that signs in like the console does (cookie + CSRF token) or uses a bearer token.
 */
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  freePort,
  startService,
  startTestEnvironment,
  writeKekFile,
  type RunningService,
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

export async function startAdminHarness(options: AdminHarnessOptions = {}): Promise<AdminHarness> {
  const env = await startTestEnvironment();
  const dir = mkdtempSync(join(tmpdir(), 'postmesh-admin-test-'));
  const started: RunningService[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(started.map((s) => s.stop(10_000).catch(() => s.kill())));
    await env.stop();
    // POSTMESH_KEEP_TEST_LOGS=1 keeps the service logs for a failed run.
    if (process.env.POSTMESH_KEEP_TEST_LOGS === undefined) rmSync(dir, { recursive: true, force: true });
    else process.stderr.write(`admin test logs kept in ${dir}\n`);
  };
  const start = async (
    service: Parameters<typeof startService>[0],
    vars: Readonly<Record<string, string>>,
    opsPort?: number,
  ): Promise<RunningService> => {
    const running = await startService(service, {
      env,
      dir,
      vars,
      ...(opsPort === undefined ? {} : { opsPort }),
    });
    started.push(running);
    return running;
  };
  try {
    const storage = await start('storage', options.storageEnv ?? {});
    let smtpPort: number | undefined;
    if (options.smtp === true) {
      const [port, submission, submissions] = [await freePort(), await freePort(), await freePort()];
      smtpPort = port;
      await start('smtp-inbound', {
        POSTMESH_SMTP_PORT: String(port),
        POSTMESH_SUBMISSION_PORT: String(submission),
        POSTMESH_SUBMISSIONS_PORT: String(submissions),
        POSTMESH_STORAGE_GRPC: storage.address,
        POSTMESH_SMTP_DATA_DIR: join(dir, 'smtp'),
      });
    }
    const [adminOpsPort, httpPort] = [await freePort(), await freePort()];
    // Ready includes the bootstrap owner existing in storage.
    await start(
      'admin',
      {
        POSTMESH_HTTP_PORT: String(httpPort),
        POSTMESH_STORAGE_GRPC: storage.address,
        POSTMESH_OWNER_EMAIL: OWNER.email,
        POSTMESH_OWNER_PASSWORD: OWNER.password,
        POSTMESH_HEALTH_TARGETS: `storage=http://127.0.0.1:${storage.opsPort},admin=http://127.0.0.1:${adminOpsPort}`,
        POSTMESH_DNS_SERVERS: '127.0.0.1:9',
        ...options.adminEnv,
      },
      adminOpsPort,
    );
    return {
      env,
      baseUrl: `http://127.0.0.1:${httpPort}`,
      storageGrpc: storage.address,
      adminOpsPort,
      storageOpsPort: storage.opsPort,
      ...(smtpPort === undefined ? {} : { smtpPort }),
      kekFile: storage.vars.POSTMESH_KEK_FILE ?? '',
      restartStorage: (vars) => storage.restart(vars),
      newKekFile: (name) => writeKekFile(dir, name),
      logs: () => started.map((s) => `--- ${s.name}\n${s.log().slice(-4000)}`).join('\n'),
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
