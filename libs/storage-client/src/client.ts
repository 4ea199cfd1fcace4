/**
 * The storage service's gRPC client, the only one services use (DESIGN §1: storage alone owns the
 * data). Every call gets, in one place: a deadline (policy.ts), the caller's mutual-TLS identity
 * (libs/identity), the active trace context in its metadata (W3C `traceparent` through
 * `@opentelemetry/api`), retries of reads on UNAVAILABLE, typed errors (errors.ts), and — when
 * an ownership map is given — the address of the storage replica that owns the user (ADR 0007,
 * Routing).
 *
 * Routing: a user-scoped call (every Mailstore RPC, keyed by its `user_id`) goes to the owner of
 * the user's partition as the local copy of the ownership map names it. A replica that does not
 * own the user answers UNAVAILABLE with reason NOT_OWNER before running anything; the client then
 * reads the partition's record again and sends the call to the owner once more, so a stale map
 * costs one round trip. Without a map, every call goes to the configured address.
 */
import {
  Channel,
  Metadata,
  type CallOptions,
  type ChannelCredentials,
  type ChannelOptions,
  type ClientReadableStream,
  type ClientUnaryCall,
  type ClientWritableStream,
  type ServiceError,
} from '@grpc/grpc-js';
import { context, propagation, type Context, type TextMapSetter } from '@opentelemetry/api';
import {
  AdminServiceClient,
  DirectoryServiceClient,
  MailstoreServiceClient,
  TraceServiceClient,
  isServiceError,
  type directory,
  type mailstore,
} from '@postmesh/contracts';
import type { InternalSecurity } from '@postmesh/identity';
import { StorageError, StorageUnavailableError, isNotOwner, storageErrorOf, unavailable } from './errors.js';
import { DEFAULT_CALL_POLICY, backoffMs, isIdempotent, isRetryableCode, type CallPolicy } from './policy.js';

/** Where a user's calls go (the shape of `@postmesh/bus`'s `Route`). */
export interface OwnerRoute {
  readonly partition: number;
  readonly owner: string;
  /** The owner's gRPC address, `host:port`. */
  readonly address: string;
}

/**
 * The ownership map as the client reads it: `OwnershipView` from `@postmesh/bus` (one KV watch of
 * `storage-partitions`) satisfies it.
 */
export interface OwnerRoutes {
  /** From the local copy; undefined when the partition has no owner right now. */
  routeOf(userId: string): OwnerRoute | undefined;
  /** Reads the partition's record again (after a "not owner" answer). */
  lookup(userId: string): Promise<OwnerRoute | undefined>;
}

export interface StorageClientOptions {
  /** The configured storage address (`POSTMESH_STORAGE_GRPC`): every call without routing. */
  readonly address: string;
  /** This service's internal identity: mutual TLS as it, checked by storage's caller policy. */
  readonly security: Pick<InternalSecurity, 'grpcClientCredentials'>;
  /** With ownership on (POSTMESH_STORAGE_OWNERSHIP), user-scoped calls go to the owner. */
  readonly routes?: OwnerRoutes;
  readonly policy?: Partial<CallPolicy>;
}

type Callback<Res> = (error: ServiceError | null, response: Res) => void;
type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: Callback<Res>,
) => ClientUnaryCall;

/** The unary RPCs of a generated client, as promise-returning functions. */
export type UnaryApi<C> = {
  [K in keyof C as C[K] extends UnaryMethod<infer _Q, infer _S> ? K : never]: C[K] extends UnaryMethod<
    infer Q,
    infer S
  >
    ? (request: Q) => Promise<S>
    : never;
};

export interface AppendInput {
  readonly userId: string;
  /** A grantee appending into the owner's (`userId`'s) shared mailbox (RFC 4314 "i"). */
  readonly actingUserId?: string;
  readonly mailbox: mailstore.MailboxSelector;
  readonly flags: readonly mailstore.Flag[];
  readonly keywords: readonly string[];
  readonly internalDate: Date | undefined;
  readonly message: Buffer;
}

/** The first message of an AppendMessage stream, the same over gRPC and in-process. */
export function appendHeaderPart(input: AppendInput): mailstore.AppendMessageRequest {
  return {
    part: {
      $case: 'header',
      value: {
        userId: input.userId,
        ...(input.actingUserId === undefined ? {} : { actingUserId: input.actingUserId }),
        mailbox: input.mailbox,
        flags: [...input.flags],
        keywords: [...input.keywords],
        internalDate: input.internalDate,
        size: input.message.length,
      },
    },
  };
}

/** The Mailstore RPCs (proto/postmesh/mailstore/v1/mailstore.proto), streams as async iterators. */
export interface Mailstore {
  listMailboxes(request: mailstore.ListMailboxesRequest): Promise<mailstore.ListMailboxesResponse>;
  createMailbox(request: mailstore.CreateMailboxRequest): Promise<mailstore.CreateMailboxResponse>;
  renameMailbox(request: mailstore.RenameMailboxRequest): Promise<mailstore.RenameMailboxResponse>;
  deleteMailbox(request: mailstore.DeleteMailboxRequest): Promise<mailstore.DeleteMailboxResponse>;
  setSubscribed(request: mailstore.SetSubscribedRequest): Promise<mailstore.SetSubscribedResponse>;
  getMailboxStatus(request: mailstore.GetMailboxStatusRequest): Promise<mailstore.GetMailboxStatusResponse>;
  appendMessage(input: AppendInput): Promise<mailstore.AppendMessageResponse>;
  /** Messages one by one, however storage batched them. */
  fetchMessages(request: mailstore.FetchMessagesRequest): AsyncGenerator<mailstore.MessageMetadata, void>;
  /**
   * The same messages in the batches storage sent them in (never empty): one step of the caller's
   * loop per batch rather than per message, which is what a FETCH or SELECT of many messages wants.
   */
  fetchMessageBatches(
    request: mailstore.FetchMessagesRequest,
  ): AsyncGenerator<readonly mailstore.MessageMetadata[], void>;
  getMessageContent(
    request: mailstore.GetMessageContentRequest,
  ): Promise<{ info: mailstore.ContentInfo; chunks: AsyncGenerator<Buffer, void> }>;
  storeFlags(request: mailstore.StoreFlagsRequest): Promise<mailstore.StoreFlagsResponse>;
  copyMessages(request: mailstore.CopyMessagesRequest): Promise<mailstore.CopyMessagesResponse>;
  moveMessages(request: mailstore.MoveMessagesRequest): Promise<mailstore.MoveMessagesResponse>;
  expunge(request: mailstore.ExpungeRequest): Promise<mailstore.ExpungeResponse>;
  search(request: mailstore.SearchRequest): Promise<mailstore.SearchResponse>;
  getQuota(request: mailstore.GetQuotaRequest): Promise<mailstore.GetQuotaResponse>;
  getChanges(request: mailstore.GetChangesRequest): Promise<mailstore.GetChangesResponse>;
  // RFC 4314 access control; the owner's partition serves them, like every call on a mailbox.
  setMailboxAcl(request: mailstore.SetMailboxAclRequest): Promise<mailstore.SetMailboxAclResponse>;
  deleteMailboxAcl(request: mailstore.DeleteMailboxAclRequest): Promise<mailstore.DeleteMailboxAclResponse>;
  getMailboxAcl(request: mailstore.GetMailboxAclRequest): Promise<mailstore.GetMailboxAclResponse>;
  listMailboxRights(
    request: mailstore.ListMailboxRightsRequest,
  ): Promise<mailstore.ListMailboxRightsResponse>;
  getMyRights(request: mailstore.GetMyRightsRequest): Promise<mailstore.GetMyRightsResponse>;
  /** Routed by the grantee (`user_id`): the mailboxes others share with them. */
  listSharedMailboxes(
    request: mailstore.ListSharedMailboxesRequest,
  ): Promise<mailstore.ListSharedMailboxesResponse>;
  /** A team mailbox of `user_id` shared with its members (docs/shared-mailboxes.md). */
  createSharedMailbox(
    request: mailstore.CreateSharedMailboxRequest,
  ): Promise<mailstore.CreateSharedMailboxResponse>;
  /** A user's Sieve scripts (docs/sieve.md): ManageSieve and the console are thin clients. */
  putSieveScript(request: mailstore.PutSieveScriptRequest): Promise<mailstore.PutSieveScriptResponse>;
  getSieveScript(request: mailstore.GetSieveScriptRequest): Promise<mailstore.GetSieveScriptResponse>;
  listSieveScripts(request: mailstore.ListSieveScriptsRequest): Promise<mailstore.ListSieveScriptsResponse>;
  setActiveSieveScript(
    request: mailstore.SetActiveSieveScriptRequest,
  ): Promise<mailstore.SetActiveSieveScriptResponse>;
  deleteSieveScript(
    request: mailstore.DeleteSieveScriptRequest,
  ): Promise<mailstore.DeleteSieveScriptResponse>;
}

export interface StorageClient {
  readonly directory: UnaryApi<DirectoryServiceClient>;
  readonly trace: UnaryApi<TraceServiceClient>;
  readonly admin: UnaryApi<AdminServiceClient>;
  readonly mailstore: Mailstore;
  /** The id of the user a login names (address or alias), or undefined: login throttles' key. */
  accountOf(login: string): Promise<string | undefined>;
  /** Readiness: the configured address accepts a connection within `timeoutMs`. */
  check(timeoutMs?: number): Promise<true | string>;
  close(): void;
}

const SERVICES = {
  directory: { name: 'postmesh.directory.v1.DirectoryService', Client: DirectoryServiceClient },
  mailstore: { name: 'postmesh.mailstore.v1.MailstoreService', Client: MailstoreServiceClient },
  trace: { name: 'postmesh.trace.v1.TraceService', Client: TraceServiceClient },
  admin: { name: 'postmesh.admin.v1.AdminService', Client: AdminServiceClient },
} as const;
type ServiceKey = keyof typeof SERVICES;

/** One HTTP/2 channel per replica address, shared by the four service stubs. */
interface Stubs {
  readonly channel: Channel;
  readonly directory: DirectoryServiceClient;
  readonly mailstore: MailstoreServiceClient;
  readonly trace: TraceServiceClient;
  readonly admin: AdminServiceClient;
}

const CHANNEL_OPTIONS: ChannelOptions = {
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
  'grpc.keepalive_time_ms': 30_000,
};
/** Channels kept to replicas other than the configured address (replicas come and go). */
const MAX_ROUTED_CHANNELS = 32;
const APPEND_CHUNK = 64 * 1024;
/** Messages per FetchMessages response asked of storage (it also bounds them to ~1 MiB). */
const FETCH_BATCH = 1024;

/** The host of a `host:port` (or `[v6]:port`) address. */
function hostOf(address: string): string {
  const bracketed = /^\[([^\]]*)\](?::\d+)?$/.exec(address);
  if (bracketed !== null) return bracketed[1] ?? '';
  const colon = address.lastIndexOf(':');
  return colon < 0 || address.indexOf(':') !== colon ? address : address.slice(0, colon);
}

/** Writes propagated fields (`traceparent`, …) straight into a call's metadata. */
const METADATA_SETTER: TextMapSetter<Metadata> = {
  set: (metadata, key, value) => metadata.set(key, value),
};

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Server stream messages waiting to be read before the call is paused (HTTP/2 flow control). */
const READ_AHEAD = 16;

/**
 * A server stream's messages one at a time, from the call's events: a promise per message at most,
 * where the Readable's async iterator (an async generator waiting for events) costs several. The
 * call is paused while READ_AHEAD messages wait, so a slow reader still holds the stream back.
 * Messages that arrived before a failure are read first, then the failure.
 */
class CallReader<Res> {
  readonly #call: ClientReadableStream<Res>;
  readonly #queue: Res[] = [];
  #ended = false;
  #failure: { readonly error: Error } | null = null;
  #waiting: { resolve(result: IteratorResult<Res, void>): void; reject(error: Error): void } | null = null;

  constructor(call: ClientReadableStream<Res>) {
    this.#call = call;
    call.on('data', (message: Res) => {
      const waiting = this.#waiting;
      if (waiting !== null) {
        this.#waiting = null;
        waiting.resolve({ value: message, done: false });
        return;
      }
      this.#queue.push(message);
      if (this.#queue.length >= READ_AHEAD) call.pause();
    });
    call.on('end', () => {
      this.#ended = true;
      this.#settle();
    });
    call.on('error', (error: Error) => {
      this.#failure ??= { error };
      if (!call.isPaused()) this.#settle();
    });
    call.on('close', () => {
      this.#ended = true;
      this.#settle();
    });
  }

  next(): Promise<IteratorResult<Res, void>> {
    if (this.#queue.length > 0) return Promise.resolve({ value: this.#queue.shift() as Res, done: false });
    if (this.#call.isPaused() && !this.#ended) {
      // Messages the call holds come before its end or failure (settled by 'end' or 'close').
      this.#call.resume();
    } else {
      if (this.#failure !== null) return Promise.reject(this.#failure.error);
      if (this.#ended) return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
    });
  }

  #settle(): void {
    const waiting = this.#waiting;
    if (waiting === null) return;
    this.#waiting = null;
    if (this.#failure !== null) waiting.reject(this.#failure.error);
    else waiting.resolve({ value: undefined, done: true });
  }
}

interface OpenStream<Res> {
  readonly call: ClientReadableStream<Res>;
  readonly reader: CallReader<Res>;
  readonly first: IteratorResult<Res, void>;
}

/** Connects lazily, as grpc-js does: nothing is dialled before the first call. */
export function connectStorage(options: StorageClientOptions): StorageClient {
  return new GrpcStorageClient(options).api();
}

class GrpcStorageClient {
  private readonly policy: CallPolicy;
  private readonly credentials: ChannelCredentials;
  private readonly channels = new Map<string, Stubs>();
  /** The channel used last (most calls go to the same replica): found without the LRU reordering. */
  private lastAddress: string | undefined;
  private lastStubs: Stubs | undefined;

  constructor(private readonly options: StorageClientOptions) {
    this.policy = { ...DEFAULT_CALL_POLICY, ...options.policy };
    // One credentials object: grpc-js shares connections only between equal credentials.
    this.credentials = options.security.grpcClientCredentials();
  }

  api(): StorageClient {
    const mailstoreApi = this.mailstoreApi();
    return {
      directory: this.unaryApi('directory'),
      trace: this.unaryApi('trace'),
      admin: this.unaryApi('admin'),
      mailstore: mailstoreApi,
      accountOf: async (login) => {
        try {
          const found = await this.unary<directory.GetUserResponse>('directory', 'getUser', {
            selector: { $case: 'address', value: login },
          });
          return found.user?.id;
        } catch (error) {
          // NOT_FOUND, INVALID_ARGUMENT: the login names no account.
          if (error instanceof StorageError) return undefined;
          throw error;
        }
      },
      check: (timeoutMs = 1_500) =>
        new Promise((resolve) => {
          this.stubs(this.options.address).directory.waitForReady(Date.now() + timeoutMs, (error) => {
            resolve(error ? `storage gRPC (${this.options.address}) unreachable: ${error.message}` : true);
          });
        }),
      close: () => {
        for (const stubs of this.channels.values()) stubs.channel.close();
        this.channels.clear();
        this.lastAddress = undefined;
        this.lastStubs = undefined;
      },
    };
  }

  /**
   * A routed call goes to a replica's own address (a pod IP), which its certificate does not
   * name: every replica holds storage's one identity, issued for the configured address's host
   * (the Service name), so the TLS handshake checks that name rather than the IP dialled.
   */
  private channelOptions(address: string): ChannelOptions {
    const configuredHost = hostOf(this.options.address);
    if (address === this.options.address || hostOf(address) === configuredHost) return CHANNEL_OPTIONS;
    return {
      ...CHANNEL_OPTIONS,
      'grpc.ssl_target_name_override': configuredHost,
      'grpc.default_authority': configuredHost,
    };
  }

  private stubs(address: string): Stubs {
    if (address === this.lastAddress && this.lastStubs !== undefined) return this.lastStubs;
    const known = this.channels.get(address);
    if (known !== undefined) {
      // Most recently used last, so the oldest routed channel is the one closed below.
      this.channels.delete(address);
      this.channels.set(address, known);
      this.lastAddress = address;
      this.lastStubs = known;
      return known;
    }
    const channel = new Channel(address, this.credentials, this.channelOptions(address));
    const shared = { channelOverride: channel };
    const stubs: Stubs = {
      channel,
      directory: new SERVICES.directory.Client(address, this.credentials, shared),
      mailstore: new SERVICES.mailstore.Client(address, this.credentials, shared),
      trace: new SERVICES.trace.Client(address, this.credentials, shared),
      admin: new SERVICES.admin.Client(address, this.credentials, shared),
    };
    this.channels.set(address, stubs);
    this.lastAddress = address;
    this.lastStubs = stubs;
    if (this.channels.size > MAX_ROUTED_CHANNELS + 1) {
      for (const [other, old] of this.channels) {
        if (other === this.options.address) continue;
        old.channel.close();
        this.channels.delete(other);
        break;
      }
    }
    return stubs;
  }

  /** Metadata of one attempt: the trace context of the caller (W3C `traceparent`, `tracestate`). */
  private metadata(traceContext: Context): Metadata {
    const metadata = new Metadata();
    propagation.inject(traceContext, metadata, METADATA_SETTER);
    return metadata;
  }

  /**
   * The address for `userId` when known without waiting (no routing, or the local copy of the
   * map names an owner): most calls, answered without the promises of `ownerAddress`.
   */
  private knownAddress(userId: string | undefined): string | undefined {
    const routes = this.options.routes;
    if (routes === undefined || userId === undefined || userId === '') return this.options.address;
    try {
      return routes.routeOf(userId)?.address;
    } catch {
      return undefined; // `ownerAddress` reads the record again and reports the failure
    }
  }

  /** The address of the replica to call for `userId`; `fresh` reads the record again. */
  private async addressFor(rpc: string, userId: string | undefined, fresh: boolean): Promise<string> {
    const routes = this.options.routes;
    if (routes === undefined || userId === undefined || userId === '') return this.options.address;
    let route: OwnerRoute | undefined;
    try {
      route = (fresh ? undefined : routes.routeOf(userId)) ?? (await routes.lookup(userId));
    } catch (error) {
      throw Object.assign(unavailable(rpc, 'the storage ownership map could not be read'), { cause: error });
    }
    // During a hand-off (a crashed owner's lease has not expired yet) nobody serves the user.
    if (route === undefined) throw unavailable(rpc, "no storage replica owns the user's partition now");
    return route.address;
  }

  /**
   * `addressFor`, waiting (with backoff, until `until`) while the partition has no owner: a
   * graceful hand-off releases the partition a moment before the next owner takes it.
   */
  private async ownerAddress(
    rpc: string,
    userId: string | undefined,
    fresh: boolean,
    until: number,
  ): Promise<string> {
    for (let attempt = 2; ; attempt++) {
      try {
        return await this.addressFor(rpc, userId, fresh);
      } catch (error) {
        const wait = backoffMs(this.policy, attempt);
        if (!(error instanceof StorageUnavailableError) || Date.now() + wait >= until) throw error;
        await sleep(wait);
        fresh = true;
      }
    }
  }

  /**
   * Runs `attempt` against the right replica until it succeeds, under the policy: re-routes
   * after "not owner" (at once, then while a hand-off lasts, up to `ownerWaitMs`), and for reads up to `maxAttempts` on UNAVAILABLE with backoff,
   * never past `deadline`. Failures come out typed (errors.ts).
   */
  private async withPolicy<T>(
    service: ServiceKey,
    method: string,
    request: unknown,
    userId: string | undefined,
    deadline: number,
    attempt: (address: string) => Promise<T>,
  ): Promise<T> {
    const rpc = `${SERVICES[service].name}/${method}`;
    const idempotent = isIdempotent(method, request);
    const ownerDeadline = Math.min(deadline, Date.now() + this.policy.ownerWaitMs);
    let reroutes = 0;
    let address = this.knownAddress(userId) ?? (await this.ownerAddress(rpc, userId, false, ownerDeadline));
    for (let attempts = 1; ;) {
      try {
        return await attempt(address);
      } catch (error) {
        // Nothing ran on the replica: safe for every call, and not counted as an attempt. The
        // first re-route is at once (a stale map); later ones wait for a hand-off to finish.
        if (
          isNotOwner(error) &&
          this.options.routes !== undefined &&
          (reroutes === 0 || Date.now() + backoffMs(this.policy, reroutes + 1) < ownerDeadline)
        ) {
          if (reroutes > 0) await sleep(backoffMs(this.policy, reroutes + 1));
          reroutes += 1;
          address = await this.ownerAddress(rpc, userId, true, ownerDeadline);
          continue;
        }
        const wait = backoffMs(this.policy, attempts + 1);
        if (
          idempotent &&
          attempts < this.policy.maxAttempts &&
          isServiceError(error) &&
          isRetryableCode(error.code) &&
          Date.now() + wait < deadline
        ) {
          attempts += 1;
          await sleep(wait);
          // The owner may have changed meanwhile (a crashed owner's partitions move).
          address = await this.ownerAddress(rpc, userId, false, ownerDeadline);
          continue;
        }
        throw storageErrorOf(rpc, error);
      }
    }
  }

  unary<Res>(service: ServiceKey, method: string, request: unknown, userId?: string): Promise<Res> {
    const deadline = Date.now() + this.policy.unaryDeadlineMs;
    const traceContext = context.active();
    return this.withPolicy(service, method, request, userId, deadline, (address) => {
      const stub = this.stubs(address)[service] as unknown as Record<string, UnaryMethod<unknown, Res>>;
      const invoke = stub[method];
      if (invoke === undefined) return Promise.reject(new TypeError(`no RPC ${method} on ${service}`));
      return new Promise<Res>((resolve, reject) => {
        invoke.call(stub, request, this.metadata(traceContext), { deadline }, (error, response) => {
          if (error === null) resolve(response);
          else reject(error);
        });
      });
    });
  }

  /** Opens a server stream and reads its first message; retried (or re-routed) until that arrived. */
  private openStream<Res>(
    method: 'fetchMessages' | 'getMessageContent',
    request: { readonly userId: string },
  ): Promise<OpenStream<Res>> {
    const deadline = Date.now() + this.policy.streamDeadlineMs;
    const traceContext = context.active();
    return this.withPolicy('mailstore', method, request, request.userId, deadline, async (address) => {
      const stub = this.stubs(address).mailstore;
      const call = (
        stub[method] as unknown as (
          r: unknown,
          m: Metadata,
          o: Partial<CallOptions>,
        ) => ClientReadableStream<Res>
      ).call(stub, request, this.metadata(traceContext), { deadline });
      const reader = new CallReader(call);
      try {
        return { call, reader, first: await reader.next() };
      } catch (error) {
        call.cancel();
        throw error;
      }
    });
  }

  /** A server stream's messages; the call is cancelled when the consumer stops early. */
  async *serverStream<Res>(
    method: 'fetchMessages' | 'getMessageContent',
    request: { readonly userId: string },
  ): AsyncGenerator<Res, void, undefined> {
    const opened = await this.openStream<Res>(method, request);
    try {
      let next = opened.first;
      while (next.done !== true) {
        yield next.value;
        next = await opened.reader.next();
      }
    } catch (error) {
      throw storageErrorOf(`${SERVICES.mailstore.name}/${method}`, error);
    } finally {
      opened.call.cancel();
    }
  }

  private unaryApi<K extends 'directory' | 'trace' | 'admin'>(service: K): UnaryApi<Stubs[K]> {
    const api: Record<string, (request: unknown) => Promise<unknown>> = {};
    // The definition's keys are the generated clients' (camelCase) method names.
    const definition = SERVICES[service].Client.service as Record<
      string,
      { readonly requestStream: boolean; readonly responseStream: boolean }
    >;
    for (const [name, rpc] of Object.entries(definition)) {
      if (rpc.requestStream || rpc.responseStream) continue;
      api[name] = (request) => this.unary(service, name, request);
    }
    return api as UnaryApi<Stubs[K]>;
  }

  private mailstoreApi(): Mailstore {
    const scoped =
      <Req extends { readonly userId: string }, Res>(method: string) =>
      (request: Req): Promise<Res> =>
        this.unary<Res>('mailstore', method, request, request.userId);
    const serverStream = <Res>(
      method: 'fetchMessages' | 'getMessageContent',
      request: { readonly userId: string },
    ): AsyncGenerator<Res, void, undefined> => this.serverStream<Res>(method, request);
    async function* fetchMessageBatches(
      request: mailstore.FetchMessagesRequest,
    ): AsyncGenerator<readonly mailstore.MessageMetadata[], void> {
      // Batched responses: SELECT of a 100,000-message mailbox is a few hundred stream messages.
      const batched = { ...request, maxBatch: request.maxBatch ?? FETCH_BATCH };
      for await (const response of serverStream<mailstore.FetchMessagesResponse>('fetchMessages', batched)) {
        const messages = messagesOf(response);
        if (messages.length > 0) yield messages;
      }
    }
    return {
      listMailboxes: scoped('listMailboxes'),
      createMailbox: scoped('createMailbox'),
      renameMailbox: scoped('renameMailbox'),
      deleteMailbox: scoped('deleteMailbox'),
      setSubscribed: scoped('setSubscribed'),
      getMailboxStatus: scoped('getMailboxStatus'),
      storeFlags: scoped('storeFlags'),
      copyMessages: scoped('copyMessages'),
      moveMessages: scoped('moveMessages'),
      expunge: scoped('expunge'),
      search: scoped('search'),
      getQuota: scoped('getQuota'),
      getChanges: scoped('getChanges'),
      setMailboxAcl: scoped('setMailboxAcl'),
      deleteMailboxAcl: scoped('deleteMailboxAcl'),
      getMailboxAcl: scoped('getMailboxAcl'),
      listMailboxRights: scoped('listMailboxRights'),
      getMyRights: scoped('getMyRights'),
      listSharedMailboxes: scoped('listSharedMailboxes'),
      createSharedMailbox: scoped('createSharedMailbox'),
      putSieveScript: scoped('putSieveScript'),
      getSieveScript: scoped('getSieveScript'),
      listSieveScripts: scoped('listSieveScripts'),
      setActiveSieveScript: scoped('setActiveSieveScript'),
      deleteSieveScript: scoped('deleteSieveScript'),
      async *fetchMessages(request) {
        for await (const messages of fetchMessageBatches(request)) yield* messages;
      },
      fetchMessageBatches,
      getMessageContent: async (request) => {
        const rpc = `${SERVICES.mailstore.name}/getMessageContent`;
        // A small section then comes whole in `info` (one stream message instead of two); a
        // storage that predates the field ignores it and streams chunks, read below alike.
        const accepting: mailstore.GetMessageContentRequest = { ...request, acceptContentInInfo: true };
        const opened = await this.openStream<mailstore.GetMessageContentResponse>(
          'getMessageContent',
          accepting,
        );
        const first = opened.first;
        if (first.done === true || first.value.part?.$case !== 'info') {
          opened.call.cancel();
          throw unavailable(rpc, 'the answer did not start with info');
        }
        const { content, ...info } = first.value.part.value;
        // One generator straight over the call (a FETCH of a body reads it message by message).
        async function* chunks(): AsyncGenerator<Buffer, void> {
          try {
            if (content !== undefined && content.length > 0) yield content;
            for (
              let next = await opened.reader.next();
              next.done !== true;
              next = await opened.reader.next()
            ) {
              if (next.value.part?.$case === 'chunk') yield next.value.part.value;
            }
          } catch (error) {
            throw storageErrorOf(rpc, error);
          } finally {
            opened.call.cancel();
          }
        }
        return { info, chunks: chunks() };
      },
      appendMessage: (input) => this.append(input),
    };
  }

  /** AppendMessage: header, then the message in chunks; sent again whole after "not owner". */
  private append(input: AppendInput): Promise<mailstore.AppendMessageResponse> {
    const deadline = Date.now() + this.policy.uploadDeadlineMs;
    const traceContext = context.active();
    return this.withPolicy('mailstore', 'appendMessage', input, input.userId, deadline, (address) => {
      const stub = this.stubs(address).mailstore;
      return new Promise<mailstore.AppendMessageResponse>((resolve, reject) => {
        const call: ClientWritableStream<mailstore.AppendMessageRequest> = stub.appendMessage(
          this.metadata(traceContext),
          { deadline },
          (error: ServiceError | null, response: mailstore.AppendMessageResponse) => {
            if (error) reject(error);
            else resolve(response);
          },
        );
        call.write(appendHeaderPart(input));
        for (let offset = 0; offset < input.message.length; offset += APPEND_CHUNK) {
          call.write({
            part: { $case: 'chunk', value: input.message.subarray(offset, offset + APPEND_CHUNK) },
          });
        }
        call.end();
      });
    });
  }
}

/** A FetchMessages stream message's messages: the single `message` (unbatched) or the batch. */
export function messagesOf(response: mailstore.FetchMessagesResponse): readonly mailstore.MessageMetadata[] {
  return response.message === undefined ? response.messages : [response.message, ...response.messages];
}
