/**
 * The inbound pipeline as separate real processes, as production runs it: nats-server and
 * FerretDB (from @postmesh/testing), the storage service (`services/storage/dist/main.js`, with
 * the dev seed) and smtp-inbound (`services/smtp-inbound/dist/main.js`). Mailboxes are read back
 * through storage's Mailstore gRPC API, as the imap service reads them.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, type CallOptions, type ServiceError } from '@grpc/grpc-js';
import { DirectoryServiceClient, MailstoreServiceClient, directory, mailstore } from '@postmesh/contracts';
import type { NodeConnectionOptions } from '@nats-io/transport-node';
import {
  freePort,
  startService,
  startTestEnvironment,
  type RunningService,
  type InternalPki,
  type TestEnvironment,
} from '@postmesh/testing';

export const DEMO = 'demo@example.test';
export const DEMO_PASSWORD = 'Correct-Horse-Battery-9';

type Unary<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: Res) => void,
) => unknown;

export function call<Req, Res>(method: Unary<Req, Res>, request: Req): Promise<Res> {
  return new Promise((resolve, reject) => {
    method(request, new Metadata(), { deadline: Date.now() + 10_000 }, (error, response) => {
      if (error === null) resolve(response);
      else reject(error);
    });
  });
}

export interface StoredMessage {
  readonly uid: number;
  readonly bytes: Buffer;
}

export interface PipelineOptions {
  /** Extra environment for smtp-inbound. */
  readonly smtpEnv?: Readonly<Record<string, string>>;
  readonly storageEnv?: Readonly<Record<string, string>>;
  /** A NATS URL to use instead of the environment's own (cluster tests). */
  readonly natsUrl?: string;
  readonly natsMonitorUrl?: string;
  /** The CA and NATS users that NATS at `natsUrl` was started with. */
  readonly pki?: InternalPki;
  readonly replicas?: number;
}

export class Pipeline {
  readonly directory: DirectoryServiceClient;
  readonly mailstore: MailstoreServiceClient;
  storage!: RunningService;
  smtp!: RunningService;
  smtpPort = 0;
  submissionPort = 0;
  submissionsPort = 0;

  private constructor(
    readonly env: TestEnvironment,
    readonly dir: string,
    readonly grpcPort: number,
    private readonly options: PipelineOptions,
  ) {
    const target = `127.0.0.1:${grpcPort}`;
    const credentials = env.security('operator').grpcClientCredentials();
    this.directory = new DirectoryServiceClient(target, credentials);
    this.mailstore = new MailstoreServiceClient(target, credentials);
  }

  static async start(options: PipelineOptions = {}): Promise<Pipeline> {
    const env = await startTestEnvironment({
      nats: options.natsUrl === undefined,
      ...(options.pki === undefined ? {} : { pki: options.pki }),
    });
    const dir = mkdtempSync(join(tmpdir(), 'postmesh-pipeline-'));
    const pipeline = new Pipeline(env, dir, await freePort(), options);
    pipeline.smtpPort = await freePort();
    pipeline.submissionPort = await freePort();
    pipeline.submissionsPort = await freePort();
    await pipeline.startStorage();
    await pipeline.startSmtp();
    return pipeline;
  }

  get natsUrl(): string {
    return this.options.natsUrl ?? this.env.natsUrl;
  }

  /** nats.js `connect()` options for the test itself (the all-permitted operator user). */
  natsOptions(): NodeConnectionOptions {
    return { ...this.env.natsOptions('operator'), servers: this.natsUrl.split(',') };
  }

  /** What every service of the pipeline runs with: this pipeline's NATS (maybe a cluster). */
  private commonEnv(): Record<string, string> {
    return {
      NATS_URL: this.natsUrl,
      NATS_MONITOR_URL: this.options.natsMonitorUrl ?? this.env.natsMonitorUrl ?? '',
      POSTMESH_STREAM_REPLICAS: String(this.options.replicas ?? 1),
      POSTMESH_SHUTDOWN_TIMEOUT_MS: '10000',
    };
  }

  /** A new process each time, on the same ports and data, with a log of its own. */
  private spawn(
    service: 'storage' | 'smtp-inbound',
    vars: Readonly<Record<string, string>>,
    opsPort?: number,
  ): Promise<RunningService> {
    return startService(service, {
      env: this.env,
      dir: this.dir,
      name: `${service}-${Date.now()}`,
      vars: { ...this.commonEnv(), ...vars },
      grpcPort: this.grpcPort,
      ...(opsPort === undefined ? {} : { opsPort }),
      readyTimeoutMs: 40_000,
    });
  }

  async startStorage(): Promise<void> {
    this.storage = await this.spawn('storage', {
      POSTMESH_DEV_SEED: 'true',
      POSTMESH_DEV_PASSWORD: DEMO_PASSWORD,
      ...this.options.storageEnv,
    });
  }

  async startSmtp(extra: Readonly<Record<string, string>> = {}): Promise<void> {
    this.smtp = await this.spawn('smtp-inbound', {
      POSTMESH_SMTP_PORT: String(this.smtpPort),
      POSTMESH_SUBMISSION_PORT: String(this.submissionPort),
      POSTMESH_SUBMISSIONS_PORT: String(this.submissionsPort),
      POSTMESH_STORAGE_GRPC: `127.0.0.1:${this.grpcPort}`,
      POSTMESH_SMTP_DATA_DIR: join(this.dir, 'smtp'),
      ...this.options.smtpEnv,
      ...extra,
    });
  }

  async userId(address: string): Promise<string> {
    const d = directory;
    const res = await call(
      this.directory.getUser.bind(this.directory),
      d.GetUserRequest.fromPartial({
        selector: { $case: 'address', value: address },
      }),
    );
    if (res.user === undefined) throw new Error(`no user ${address}`);
    return res.user.id;
  }

  /** A user; `limits` are their own sending limits (directory.proto, 0/unset = service default). */
  async createUser(
    address: string,
    limits: { messagesPerHour?: number; recipientsPerMessage?: number } = {},
  ): Promise<{ id: string; address: string; password: string }> {
    const password = `Pw-${randomBytes(8).toString('hex')}-x`;
    const res = await call(
      this.directory.createUser.bind(this.directory),
      directory.CreateUserRequest.fromPartial({ address, password, ...limits }),
    );
    if (res.user === undefined) throw new Error('CreateUser returned no user');
    return { id: res.user.id, address: res.user.address, password };
  }

  /** An app password for SMTP; returns its secret. */
  async createAppPassword(userId: string): Promise<string> {
    const res = await call(
      this.directory.createAppPassword.bind(this.directory),
      directory.CreateAppPasswordRequest.fromPartial({
        userId,
        label: 'test',
        protocols: [directory.Protocol.SMTP],
      }),
    );
    return res.secret;
  }

  async createAlias(address: string, userIds: readonly string[]): Promise<void> {
    await call(
      this.directory.createAlias.bind(this.directory),
      directory.CreateAliasRequest.fromPartial({ address, userIds: [...userIds] }),
    );
  }

  async mailboxId(userId: string, path: string): Promise<string> {
    const res = await call(
      this.mailstore.listMailboxes.bind(this.mailstore),
      mailstore.ListMailboxesRequest.fromPartial({ userId, pattern: '*' }),
    );
    const box = res.mailboxes.find((m) => m.path === path);
    if (box === undefined) throw new Error(`no mailbox ${path}`);
    return box.id;
  }

  /** Every message of a mailbox with its full stored bytes, in UID order. */
  async messages(address: string, path = 'INBOX', section = ''): Promise<StoredMessage[]> {
    const userId = await this.userId(address);
    const mailboxId = await this.mailboxId(userId, path);
    const uids: number[] = [];
    await new Promise<void>((resolve, reject) => {
      const stream = this.mailstore.fetchMessages(
        mailstore.FetchMessagesRequest.fromPartial({
          userId,
          mailboxId,
          uids: { ranges: [{ first: 1, last: 0 }] },
        }),
      );
      stream.on('data', (r: mailstore.FetchMessagesResponse) => {
        if (r.message) uids.push(r.message.uid);
      });
      stream.on('error', reject);
      stream.on('end', resolve);
    });
    const out: StoredMessage[] = [];
    for (const uid of uids) {
      const chunks: Buffer[] = [];
      await new Promise<void>((resolve, reject) => {
        const stream = this.mailstore.getMessageContent(
          mailstore.GetMessageContentRequest.fromPartial({ userId, mailboxId, uid, section }),
        );
        stream.on('data', (r: mailstore.GetMessageContentResponse) => {
          if (r.part?.$case === 'chunk') chunks.push(Buffer.from(r.part.value));
        });
        stream.on('error', reject);
        stream.on('end', resolve);
      });
      out.push({ uid, bytes: Buffer.concat(chunks) });
    }
    return out;
  }

  /** Messages in a mailbox (STATUS), cheap enough to poll. */
  async count(address: string, path = 'INBOX'): Promise<number> {
    const userId = await this.userId(address);
    const res = await call(
      this.mailstore.getMailboxStatus.bind(this.mailstore),
      mailstore.GetMailboxStatusRequest.fromPartial({
        userId,
        mailbox: { selector: { $case: 'path', value: path } },
      }),
    );
    return res.status?.messages ?? 0;
  }

  /** Polls STATUS until the mailbox holds at least `n` messages (bounded); returns the count. */
  async waitForCount(
    address: string,
    n: number,
    { path = 'INBOX', timeoutMs = 30_000 } = {},
  ): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    let last = 0;
    while (Date.now() < deadline) {
      last = await this.count(address, path);
      if (last >= n) return last;
      await new Promise((r) => setTimeout(r, 250));
    }
    return last;
  }

  /** Polls until `predicate` holds for the mailbox (bounded). */
  async waitForMessages(
    address: string,
    predicate: (messages: StoredMessage[]) => boolean,
    { path = 'INBOX', timeoutMs = 30_000, section = '' } = {},
  ): Promise<StoredMessage[]> {
    const deadline = Date.now() + timeoutMs;
    let last: StoredMessage[] = [];
    while (Date.now() < deadline) {
      last = await this.messages(address, path, section);
      if (predicate(last)) return last;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(
      `mailbox ${address}/${path} did not reach the expected state; has ${last.length} messages`,
    );
  }

  async stop(): Promise<void> {
    this.directory.close();
    this.mailstore.close();
    await Promise.all([this.smtp?.proc.kill(), this.storage?.proc.kill()]);
    await this.env.stop();
    if (process.env.POSTMESH_KEEP_TEST_LOGS === undefined) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Headers our pipeline adds in front of what the client sent: Authentication-Results, Received. */
export function splitAddedHeaders(stored: Buffer, sent: Buffer): { added: string; rest: Buffer } {
  const at = stored.indexOf(sent);
  if (at < 0) return { added: '', rest: stored };
  return { added: stored.subarray(0, at).toString('latin1'), rest: stored.subarray(at) };
}
