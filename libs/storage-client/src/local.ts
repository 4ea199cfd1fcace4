/**
 * The storage client of a process that also runs storage (imap at the owner, ADR 0010): calls of
 * users this replica owns go straight to storage's Mailstore handlers in the same process — no
 * HTTP/2, no TLS, no protobuf — and every other call goes over gRPC to the owner, as `connectStorage`
 * sends it. What a caller sees stays the same either way:
 *
 * - the owner check happens before the handler runs (the gRPC owner gate's decision, asked of the
 *   same ownership), and a user of another replica is routed to it by the gRPC client;
 * - the handlers are the ones storage serves over gRPC (validation, access control, instrumentation),
 *   and their failures become `StorageError` / `StorageUnavailableError` exactly as after a call;
 * - answers are copied into fresh messages with every field set (`fromPartial`), as decoding would
 *   make them, so a caller never holds storage's cached objects;
 * - the same deadlines (a caller stops waiting; a stream's handler is cancelled), and reads are
 *   tried again on UNAVAILABLE under the same policy (policy.ts);
 * - the handler's span has the caller's span as its parent: the call hands over the caller's
 *   context itself (`CALLER_CONTEXT`), and builds the `traceparent` metadata a gRPC call would
 *   carry only if something reads `metadata`.
 */
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { context, propagation, type Context } from '@opentelemetry/api';
import {
  directory as directoryMessages,
  mailstore as mailstoreMessages,
  type DirectoryServiceServer,
  type MailstoreServiceServer,
  type directory,
  type mailstore,
} from '@postmesh/contracts';
import {
  appendHeaderPart,
  messagesOf,
  type AppendInput,
  type Mailstore,
  type StorageClient,
} from './client.js';
import { StorageError, storageErrorOf } from './errors.js';
import { DEFAULT_CALL_POLICY, backoffMs, isIdempotent, type CallPolicy } from './policy.js';

/**
 * Where an in-process call object carries the OpenTelemetry context of its caller, for storage's
 * instrumentation (grpc/instrument.ts) to start the handler's span under it, as it would under
 * the `traceparent` of a gRPC call's metadata.
 */
export const CALLER_CONTEXT: unique symbol = Symbol('postmesh.storage-client.caller-context');

/**
 * What a process running storage lends its own storage client (storage's `app.local`). Its
 * handlers are called as grpc-js calls them, with call objects that also carry `CALLER_CONTEXT`.
 */
export interface LocalStorage {
  /** Storage's Mailstore handlers, as its gRPC server runs them (instrumented). */
  readonly mailstore: MailstoreServiceServer;
  /** Storage's Directory handlers: LOGIN and AUTHENTICATE are served in-process too. */
  readonly directory: DirectoryServiceServer;
  /** Whether this replica serves the user now: the owner gate's answer (ADR 0007, Routing). */
  serves(userId: string): boolean;
}

/** Where a Mailstore call went: storage's handlers in this process, or gRPC to another replica. */
export type CallPath = 'in-process' | 'grpc';

export interface ColocatedOptions {
  readonly policy?: Partial<CallPolicy>;
  /** Told of every Mailstore call and where it went (a metric: how many calls cross the network). */
  readonly onCall?: (path: CallPath) => void;
}

/** `remote` with the calls of the users `local` serves answered in-process. */
export function colocatedStorage(
  remote: StorageClient,
  local: LocalStorage,
  options: ColocatedOptions = {},
): StorageClient {
  const policy: CallPolicy = { ...DEFAULT_CALL_POLICY, ...options.policy };
  const mailstore = localMailstore(remote.mailstore, local, policy, options.onCall ?? noop);
  const authenticate = unaryCall<directory.AuthenticateRequest, directory.AuthenticateResponse>(
    local.directory as unknown as Handlers,
    'postmesh.directory.v1.DirectoryService',
    'authenticate',
    directoryMessages.AuthenticateResponse,
    policy,
  );
  const getUser = unaryCall<directory.GetUserRequest, directory.GetUserResponse>(
    local.directory as unknown as Handlers,
    'postmesh.directory.v1.DirectoryService',
    'getUser',
    directoryMessages.GetUserResponse,
    policy,
  );
  return {
    ...remote,
    directory: { ...remote.directory, authenticate, getUser },
    mailstore,
    async accountOf(login) {
      try {
        return (await getUser({ selector: { $case: 'address', value: login } })).user?.id;
      } catch (error) {
        // NOT_FOUND, INVALID_ARGUMENT: the login names no account.
        if (error instanceof StorageError) return undefined;
        throw error;
      }
    },
  };
}

/** A generated message's copy-with-defaults, as ts-proto generates it. */
interface MessageCopy<T> {
  fromPartial(object: never): T;
}

/** No copy: the FetchMessages answers, which the handler builds afresh (fetchMessageBatches). */
const AS_SENT: MessageCopy<mailstore.FetchMessagesResponse> = {
  fromPartial: (object: never) => object,
};

type Handler = (call: unknown, callback?: (error: unknown, response?: unknown) => void) => unknown;
type Handlers = Record<string, Handler | undefined>;

/** Metadata carrying the caller's trace context, as the gRPC client sends it (`traceparent`). */
function traceMetadata(caller: Context): Metadata {
  const carrier: Record<string, string> = {};
  propagation.inject(caller, carrier);
  const metadata = new Metadata();
  for (const [key, value] of Object.entries(carrier)) metadata.set(key, value);
  return metadata;
}

/** What a grpc-js client would have received for the status a handler ended with. */
function asServiceError(error: unknown): ServiceError {
  if (typeof error === 'object' && error !== null && typeof (error as { code?: unknown }).code === 'number') {
    const e = error as Partial<ServiceError> & { message?: string };
    const metadata = e.metadata instanceof Metadata ? e.metadata : new Metadata();
    const details = e.details ?? e.message ?? '';
    return Object.assign(new Error(`${e.code}: ${details}`), { code: e.code as status, details, metadata });
  }
  const details = error instanceof Error ? error.message : String(error);
  return Object.assign(new Error(details), { code: status.UNKNOWN, details, metadata: new Metadata() });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** What a gRPC caller gets once its deadline passed: it stops waiting; the handler may still finish. */
function deadlineExceeded(): ServiceError {
  const details = 'Deadline exceeded';
  return Object.assign(new Error(details), {
    code: status.DEADLINE_EXCEEDED,
    details,
    metadata: new Metadata(),
  });
}

/** A handler's answer, or DEADLINE_EXCEEDED at `deadline` (epoch ms), as a gRPC call's deadline. */
function answerBy<T>(
  deadline: number,
  run: (resolve: (value: T) => void, reject: (error: unknown) => void) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(deadlineExceeded()), Math.max(0, deadline - Date.now()));
    timer.unref();
    run(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error) => {
        clearTimeout(timer);
        reject(asServiceError(error));
      },
    );
  });
}

/** Runs `attempt`, again on UNAVAILABLE when the call only reads (policy.ts, as over gRPC). */
async function withRetries<Res>(
  policy: CallPolicy,
  rpc: string,
  method: string,
  request: unknown,
  attempt: (deadline: number) => Promise<Res>,
): Promise<Res> {
  const retryable = isIdempotent(method, request);
  // One budget for the call, retries included (policy.ts).
  const deadline = Date.now() + policy.unaryDeadlineMs;
  for (let attempts = 1; ; attempts++) {
    try {
      return await attempt(deadline);
    } catch (error) {
      const failure = asServiceError(error);
      const wait = backoffMs(policy, attempts + 1);
      if (
        retryable &&
        failure.code === status.UNAVAILABLE &&
        attempts < policy.maxAttempts &&
        Date.now() + wait < deadline
      ) {
        await sleep(wait);
        continue;
      }
      throw storageErrorOf(rpc, failure);
    }
  }
}

/** One unary handler called in-process: the request object in, a fresh copy of the answer out. */
function unaryCall<Req, Res>(
  handlers: Handlers,
  service: string,
  method: string,
  messages: MessageCopy<Res>,
  policy: CallPolicy,
): (request: Req) => Promise<Res> {
  const handler = handlers[method];
  const rpc = `${service}/${method}`;
  return (request) =>
    withRetries(policy, rpc, method, request, (deadline) => {
      if (handler === undefined) return Promise.reject(unimplemented(method));
      return answerBy<Res>(deadline, (resolve, reject) => {
        const caller = context.active();
        const call = {
          request,
          on: noop,
          [CALLER_CONTEXT]: caller,
          get metadata(): Metadata {
            return traceMetadata(caller);
          },
        };
        handler(call, (error, response) => {
          if (error === null || error === undefined) resolve(messages.fromPartial(response as never));
          else reject(asServiceError(error));
        });
      });
    });
}

function unimplemented(method: string): ServiceError {
  const details = `no handler for ${method}`;
  return Object.assign(new Error(details), { code: status.UNIMPLEMENTED, details, metadata: new Metadata() });
}

function noop(): void {}

/** Messages per FetchMessages stream item, as the gRPC client asks (client.ts). */
const FETCH_BATCH = 1024;
/** Stream messages queued ahead of the reader before the handler waits for 'drain'. */
const HIGH_WATER = 16;

/**
 * The server side of a server-streaming call as the Mailstore handlers use it (`write`, `end`,
 * `emit('error')`, `cancelled`, 'drain'), read as an async iterator by the caller.
 */
class LocalServerStream<Req, Res> {
  cancelled = false;
  readonly [CALLER_CONTEXT]: Context = context.active();
  private readonly queue: Res[] = [];
  private finished = false;
  private failure: unknown;
  private wake: (() => void) | undefined;
  private readonly listeners = new Map<string, ((...args: unknown[]) => void)[]>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly request: Req,
    deadline: number,
  ) {
    // The deadline cancels the handler and fails the reader, as grpc-js does for a server stream.
    this.timer = setTimeout(() => this.cancel(deadlineExceeded()), Math.max(0, deadline - Date.now()));
    this.timer.unref();
  }

  /** The `traceparent` a gRPC call would carry, built only when read. */
  get metadata(): Metadata {
    return traceMetadata(this[CALLER_CONTEXT]);
  }

  write(item: Res): boolean {
    if (this.finished) return false;
    this.queue.push(item);
    this.notify();
    return this.queue.length < HIGH_WATER;
  }

  end(): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.timer);
    this.notify();
    this.emit('finish');
  }

  on(event: string, listener: (...args: unknown[]) => void): this {
    const list = this.listeners.get(event) ?? [];
    list.push(listener);
    this.listeners.set(event, list);
    return this;
  }

  once(event: string, listener: (...args: unknown[]) => void): this {
    const wrapped = (...args: unknown[]): void => {
      this.off(event, wrapped);
      listener(...args);
    };
    return this.on(event, wrapped);
  }

  off(event: string, listener: (...args: unknown[]) => void): this {
    const list = this.listeners.get(event);
    if (list !== undefined)
      this.listeners.set(
        event,
        list.filter((l) => l !== listener),
      );
    return this;
  }

  /** grpc-js ends a server stream with a status on 'error'; so does this one. */
  emit(event: string, ...args: unknown[]): boolean {
    if (event === 'error' && !this.finished) {
      this.finished = true;
      clearTimeout(this.timer);
      this.failure = args[0] ?? new Error('stream failed');
      this.notify();
    }
    const list = this.listeners.get(event);
    if (list === undefined || list.length === 0) return false;
    for (const listener of [...list]) listener(...args);
    return true;
  }

  async *read(): AsyncGenerator<Res, void, undefined> {
    try {
      for (;;) {
        const item = this.queue.shift();
        if (item !== undefined) {
          if (this.queue.length === 0) this.emit('drain');
          yield item;
          continue;
        }
        if (this.finished) {
          if (this.failure !== undefined) throw asServiceError(this.failure);
          return;
        }
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
    } finally {
      // The reader stopped early (a FETCH cut short): the handler stops at its next write.
      if (!this.finished) this.cancel(undefined);
    }
  }

  /** Ends the call from the caller's side; the reader gets `failure`, if any. */
  private cancel(failure: ServiceError | undefined): void {
    if (this.finished) return;
    this.cancelled = true;
    this.finished = true;
    clearTimeout(this.timer);
    this.failure = failure;
    this.notify();
    this.emit('cancelled');
    this.emit('drain');
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

function localMailstore(
  remote: Mailstore,
  local: LocalStorage,
  policy: CallPolicy,
  onCall: (path: CallPath) => void,
): Mailstore {
  const handlers = local.mailstore as unknown as Handlers;
  /** Whether this replica serves the user (counted either way). */
  const serves = (userId: string): boolean => {
    const here = local.serves(userId);
    onCall(here ? 'in-process' : 'grpc');
    return here;
  };
  const service = 'postmesh.mailstore.v1.MailstoreService';
  /** A user-scoped unary call: in-process for the users this replica serves, else over gRPC. */
  const scoped = <K extends keyof Mailstore>(
    method: K,
    messages: MessageCopy<Awaited<ReturnType<Mailstore[K]>>>,
  ): Mailstore[K] => {
    const call = unaryCall<{ readonly userId: string }, Awaited<ReturnType<Mailstore[K]>>>(
      handlers,
      service,
      method,
      messages,
      policy,
    );
    const over = remote[method] as unknown as (request: { readonly userId: string }) => Promise<unknown>;
    return ((request: { readonly userId: string }) =>
      serves(request.userId) ? call(request) : over.call(remote, request)) as unknown as Mailstore[K];
  };

  /** A server stream in-process; failures before and after the first message become typed errors. */
  async function* stream<Req extends { readonly userId: string }, Res>(
    method: 'fetchMessages' | 'getMessageContent',
    request: Req,
    messages: MessageCopy<Res>,
  ): AsyncGenerator<Res, void, undefined> {
    const rpc = `${service}/${method}`;
    const handler = handlers[method];
    if (handler === undefined) throw storageErrorOf(rpc, unimplemented(method));
    const call = new LocalServerStream<Req, Res>(request, Date.now() + policy.streamDeadlineMs);
    handler(call);
    try {
      for await (const item of call.read()) yield messages.fromPartial(item as never);
    } catch (error) {
      throw storageErrorOf(rpc, asServiceError(error));
    }
  }

  /**
   * FetchMessages in-process, batched as over gRPC (fewer stream items, fewer awaits). The
   * handler builds every MessageMetadata it sends afresh and complete (content-reader.ts), so
   * the batches are handed over as they are, without the copy-with-defaults other calls make:
   * a FETCH of many messages would otherwise copy each one, its flag arrays included.
   */
  async function* fetchMessageBatches(
    request: mailstore.FetchMessagesRequest,
  ): AsyncGenerator<readonly mailstore.MessageMetadata[], void> {
    if (!serves(request.userId)) {
      yield* remote.fetchMessageBatches(request);
      return;
    }
    const batched = { ...request, maxBatch: request.maxBatch ?? FETCH_BATCH };
    for await (const response of stream('fetchMessages', batched, AS_SENT)) {
      // As sent: a handler may leave out the empty `messages` of an unbatched answer.
      const sent = response as Partial<mailstore.FetchMessagesResponse>;
      const messages = messagesOf({ message: sent.message, messages: sent.messages ?? [] });
      if (messages.length > 0) yield messages;
    }
  }

  const m = mailstoreMessages;
  return {
    listMailboxes: scoped('listMailboxes', m.ListMailboxesResponse),
    createMailbox: scoped('createMailbox', m.CreateMailboxResponse),
    renameMailbox: scoped('renameMailbox', m.RenameMailboxResponse),
    deleteMailbox: scoped('deleteMailbox', m.DeleteMailboxResponse),
    setSubscribed: scoped('setSubscribed', m.SetSubscribedResponse),
    getMailboxStatus: scoped('getMailboxStatus', m.GetMailboxStatusResponse),
    storeFlags: scoped('storeFlags', m.StoreFlagsResponse),
    copyMessages: scoped('copyMessages', m.CopyMessagesResponse),
    moveMessages: scoped('moveMessages', m.MoveMessagesResponse),
    expunge: scoped('expunge', m.ExpungeResponse),
    search: scoped('search', m.SearchResponse),
    getQuota: scoped('getQuota', m.GetQuotaResponse),
    getChanges: scoped('getChanges', m.GetChangesResponse),
    setMailboxAcl: scoped('setMailboxAcl', m.SetMailboxAclResponse),
    deleteMailboxAcl: scoped('deleteMailboxAcl', m.DeleteMailboxAclResponse),
    getMailboxAcl: scoped('getMailboxAcl', m.GetMailboxAclResponse),
    listMailboxRights: scoped('listMailboxRights', m.ListMailboxRightsResponse),
    getMyRights: scoped('getMyRights', m.GetMyRightsResponse),
    listSharedMailboxes: scoped('listSharedMailboxes', m.ListSharedMailboxesResponse),
    createSharedMailbox: scoped('createSharedMailbox', m.CreateSharedMailboxResponse),
    putSieveScript: scoped('putSieveScript', m.PutSieveScriptResponse),
    getSieveScript: scoped('getSieveScript', m.GetSieveScriptResponse),
    listSieveScripts: scoped('listSieveScripts', m.ListSieveScriptsResponse),
    setActiveSieveScript: scoped('setActiveSieveScript', m.SetActiveSieveScriptResponse),
    deleteSieveScript: scoped('deleteSieveScript', m.DeleteSieveScriptResponse),
    async *fetchMessages(request) {
      for await (const messages of fetchMessageBatches(request)) yield* messages;
    },
    fetchMessageBatches,
    async getMessageContent(request) {
      if (!serves(request.userId)) return remote.getMessageContent(request);
      const rpc = `${service}/getMessageContent`;
      const iterator = stream('getMessageContent', request, m.GetMessageContentResponse);
      const first = await iterator.next();
      if (first.done === true || first.value.part?.$case !== 'info') {
        await iterator.return();
        throw storageErrorOf(
          rpc,
          asServiceError({ code: status.UNAVAILABLE, details: 'the answer did not start with info' }),
        );
      }
      const info = first.value.part.value;
      async function* chunks(): AsyncGenerator<Buffer, void> {
        for await (const response of iterator) {
          if (response.part?.$case === 'chunk') yield response.part.value;
        }
      }
      return { info, chunks: chunks() };
    },
    appendMessage: (input) =>
      serves(input.userId) ? append(handlers, service, input, policy) : remote.appendMessage(input),
  };
}

/** AppendMessage in-process: the header, then the message as one chunk (nothing to frame). */
function append(
  handlers: Handlers,
  service: string,
  input: AppendInput,
  policy: CallPolicy,
): Promise<mailstore.AppendMessageResponse> {
  const rpc = `${service}/appendMessage`;
  const handler = handlers.appendMessage;
  if (handler === undefined) return Promise.reject(storageErrorOf(rpc, unimplemented('appendMessage')));
  const parts: mailstore.AppendMessageRequest[] = [
    appendHeaderPart(input),
    { part: { $case: 'chunk', value: input.message } },
  ];
  const caller = context.active();
  const call = {
    [CALLER_CONTEXT]: caller,
    get metadata(): Metadata {
      return traceMetadata(caller);
    },
    on: noop,
    [Symbol.asyncIterator]: (): AsyncIterator<mailstore.AppendMessageRequest> => {
      let next = 0;
      return {
        next: () =>
          Promise.resolve(
            next < parts.length
              ? { value: parts[next++] as mailstore.AppendMessageRequest, done: false }
              : { value: undefined, done: true },
          ),
      };
    },
  };
  // Never retried: an append that failed midway may have stored the message (policy.ts).
  return answerBy<mailstore.AppendMessageResponse>(
    Date.now() + policy.uploadDeadlineMs,
    (resolve, reject) => {
      handler(call, (error, response) => {
        if (error === null || error === undefined)
          resolve(mailstoreMessages.AppendMessageResponse.fromPartial(response as never));
        else reject(error);
      });
    },
  ).catch((error: unknown) => Promise.reject(storageErrorOf(rpc, asServiceError(error))));
}
