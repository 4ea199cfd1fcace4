/**
 * The imap service's only way to mail data (DESIGN §1): the storage service's Mailstore and
 * Directory gRPC APIs, wrapped as promises and async iterators. Expected failures arrive as
 * `StorageError` with the `ErrorDetail` reason (libs/contracts error-detail convention); anything
 * else is an infrastructure failure the caller reports as `NO [UNAVAILABLE]`.
 */
import {
  Metadata,
  type ChannelCredentials,
  type CallOptions,
  type ClientReadableStream,
  type ServiceError,
} from '@grpc/grpc-js';
import {
  DirectoryServiceClient,
  ErrorReason,
  MailstoreServiceClient,
  errorDetailOf,
  isServiceError,
  type directory,
  type mailstore,
} from '@postmesh/contracts';

/** A gRPC failure that carries an `ErrorDetail` (an expected failure such as NOT_FOUND). */
export class StorageError extends Error {
  override readonly name = 'StorageError';
  constructor(
    readonly reason: ErrorReason,
    message: string,
    options?: { readonly cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Storage could not be reached or failed unexpectedly (answer `NO [UNAVAILABLE]`). */
export class StorageUnavailableError extends Error {
  override readonly name = 'StorageUnavailableError';
}

function translate(error: unknown): Error {
  const detail = errorDetailOf(error);
  if (detail !== undefined) return new StorageError(detail.reason, detail.message, { cause: error });
  if (isServiceError(error)) return new StorageUnavailableError(error.message, { cause: error });
  return error instanceof Error ? error : new Error(String(error));
}

type Callback<Res> = (error: ServiceError | null, response: Res) => void;

const UNARY_DEADLINE_MS = 30_000;

/** One unary call with a deadline; failures translated (see `translate`). */
function unary<Res>(
  invoke: (metadata: Metadata, options: Partial<CallOptions>, callback: Callback<Res>) => unknown,
): Promise<Res> {
  return new Promise<Res>((resolve, reject) => {
    invoke(new Metadata(), { deadline: Date.now() + UNARY_DEADLINE_MS }, (error, response) => {
      if (error) reject(translate(error));
      else resolve(response);
    });
  });
}

async function* streamed<T>(stream: ClientReadableStream<T>): AsyncGenerator<T, void, undefined> {
  try {
    for await (const item of stream as AsyncIterable<T>) yield item;
  } catch (error) {
    throw translate(error);
  } finally {
    stream.cancel();
  }
}

export interface AppendInput {
  readonly userId: string;
  readonly mailbox: mailstore.MailboxSelector;
  readonly flags: readonly mailstore.Flag[];
  readonly keywords: readonly string[];
  readonly internalDate: Date | undefined;
  readonly message: Buffer;
}

/** The Mailstore calls the IMAP commands make (proto/postmesh/mailstore/v1/mailstore.proto). */
export interface Mailstore {
  listMailboxes(request: mailstore.ListMailboxesRequest): Promise<mailstore.ListMailboxesResponse>;
  createMailbox(request: mailstore.CreateMailboxRequest): Promise<mailstore.CreateMailboxResponse>;
  renameMailbox(request: mailstore.RenameMailboxRequest): Promise<mailstore.RenameMailboxResponse>;
  deleteMailbox(request: mailstore.DeleteMailboxRequest): Promise<mailstore.DeleteMailboxResponse>;
  setSubscribed(request: mailstore.SetSubscribedRequest): Promise<mailstore.SetSubscribedResponse>;
  getMailboxStatus(request: mailstore.GetMailboxStatusRequest): Promise<mailstore.GetMailboxStatusResponse>;
  appendMessage(input: AppendInput): Promise<mailstore.AppendMessageResponse>;
  fetchMessages(request: mailstore.FetchMessagesRequest): AsyncGenerator<mailstore.MessageMetadata, void>;
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
}

export interface Directory {
  authenticate(request: directory.AuthenticateRequest): Promise<directory.AuthenticateResponse>;
}

const APPEND_CHUNK = 64 * 1024;
/** Messages per FetchMessages response asked of storage (it also bounds them to ~1 MiB). */
const FETCH_BATCH = 1024;

export interface StorageClients {
  readonly mailstore: Mailstore;
  readonly directory: Directory;
  /** The id of the user a login names (address or alias), or undefined: the auth throttle's key. */
  accountOf(login: string): Promise<string | undefined>;
  close(): void;
}

/**
 * Connects (lazily, as grpc-js does) to the storage service at `host:port`, as the identity of
 * `credentials` (`InternalSecurity.grpcClientCredentials()`: mutual TLS).
 */
export function connectStorage(address: string, credentials: ChannelCredentials): StorageClients {
  const options = {
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.keepalive_time_ms': 30_000,
  };
  const ms = new MailstoreServiceClient(address, credentials, options);
  const dir = new DirectoryServiceClient(address, credentials, options);
  const mailstoreApi: Mailstore = {
    listMailboxes: (r) => unary((md, o, cb) => ms.listMailboxes(r, md, o, cb)),
    createMailbox: (r) => unary((md, o, cb) => ms.createMailbox(r, md, o, cb)),
    renameMailbox: (r) => unary((md, o, cb) => ms.renameMailbox(r, md, o, cb)),
    deleteMailbox: (r) => unary((md, o, cb) => ms.deleteMailbox(r, md, o, cb)),
    setSubscribed: (r) => unary((md, o, cb) => ms.setSubscribed(r, md, o, cb)),
    getMailboxStatus: (r) => unary((md, o, cb) => ms.getMailboxStatus(r, md, o, cb)),
    storeFlags: (r) => unary((md, o, cb) => ms.storeFlags(r, md, o, cb)),
    copyMessages: (r) => unary((md, o, cb) => ms.copyMessages(r, md, o, cb)),
    moveMessages: (r) => unary((md, o, cb) => ms.moveMessages(r, md, o, cb)),
    expunge: (r) => unary((md, o, cb) => ms.expunge(r, md, o, cb)),
    search: (r) => unary((md, o, cb) => ms.search(r, md, o, cb)),
    getQuota: (r) => unary((md, o, cb) => ms.getQuota(r, md, o, cb)),
    getChanges: (r) => unary((md, o, cb) => ms.getChanges(r, md, o, cb)),
    async *fetchMessages(request) {
      // Batched responses: SELECT of a 100,000-message mailbox is a few hundred stream messages.
      const batched = { ...request, maxBatch: request.maxBatch ?? FETCH_BATCH };
      for await (const response of streamed(ms.fetchMessages(batched, new Metadata()))) {
        if (response.message !== undefined) yield response.message;
        yield* response.messages;
      }
    },
    async getMessageContent(request) {
      const iterator = streamed(ms.getMessageContent(request, new Metadata()));
      const first = await iterator.next();
      if (first.done === true || first.value.part?.$case !== 'info') {
        await iterator.return();
        throw new StorageUnavailableError('GetMessageContent did not start with info');
      }
      const info = first.value.part.value;
      async function* chunks(): AsyncGenerator<Buffer, void> {
        for await (const response of iterator) {
          if (response.part?.$case === 'chunk') yield response.part.value;
        }
      }
      return { info, chunks: chunks() };
    },
    appendMessage(input) {
      return new Promise((resolve, reject) => {
        const call = ms.appendMessage(
          new Metadata(),
          { deadline: Date.now() + 5 * 60_000 },
          (error: ServiceError | null, response: mailstore.AppendMessageResponse) => {
            if (error) reject(translate(error));
            else resolve(response);
          },
        );
        call.write({
          part: {
            $case: 'header',
            value: {
              userId: input.userId,
              mailbox: input.mailbox,
              flags: [...input.flags],
              keywords: [...input.keywords],
              internalDate: input.internalDate,
              size: input.message.length,
            },
          },
        });
        for (let offset = 0; offset < input.message.length; offset += APPEND_CHUNK) {
          call.write({
            part: { $case: 'chunk', value: input.message.subarray(offset, offset + APPEND_CHUNK) },
          });
        }
        call.end();
      });
    },
  };
  const directoryApi: Directory = {
    authenticate: (r) => unary((md, o, cb) => dir.authenticate(r, md, o, cb)),
  };
  return {
    mailstore: mailstoreApi,
    directory: directoryApi,
    async accountOf(login) {
      try {
        const found = await unary<directory.GetUserResponse>((md, o, cb) =>
          dir.getUser({ selector: { $case: 'address', value: login } }, md, o, cb),
        );
        return found.user?.id;
      } catch (error) {
        // NOT_FOUND, INVALID_ARGUMENT: the login names no account.
        if (error instanceof StorageError) return undefined;
        throw error;
      }
    },
    close() {
      ms.close();
      dir.close();
    },
  };
}

export { ErrorReason };
