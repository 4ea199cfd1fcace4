// The generated service definitions and clients over a real grpc-js HTTP/2 connection on
// 127.0.0.1: a unary call (Directory.ResolveRecipient), a server stream
// (Mailstore.GetMessageContent), a client stream (Mailstore.AppendMessage), and typed failures
// travelling as ErrorDetail in status metadata, as storage and its callers will use them.
import { credentials, Metadata, Server, ServerCredentials, status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DirectoryServiceClient,
  DirectoryServiceDefinition,
  ErrorReason,
  MailstoreServiceClient,
  MailstoreServiceDefinition,
  errorDetailOf,
  isServiceError,
  toGrpcError,
  type DirectoryServiceServer,
  type MailstoreServiceServer,
  type directory,
  type mailstore,
} from '../src/index.js';

/** A 200 KiB message body so the stream needs several chunks. */
const MESSAGE = Buffer.from(
  'From: a@example.com\r\nSubject: hi\r\n\r\n' + 'x'.repeat(200 * 1024 - 36) + '\r\n',
  'latin1',
);
const CHUNK = 64 * 1024;
/** Every call gets a deadline, so a server that never answers fails the test quickly. */
const callOptions = (): { deadline: number } => ({ deadline: Date.now() + 10_000 });

const resolveRecipient: DirectoryServiceServer['resolveRecipient'] = (call, callback) => {
  const { address } = call.request;
  if (!address.includes('@')) {
    callback(
      toGrpcError(status.INVALID_ARGUMENT, {
        reason: ErrorReason.INVALID_NAME,
        message: 'address has no domain',
        field: 'address',
      }),
    );
    return;
  }
  if (address.toLowerCase() === 'bob@example.com') {
    callback(null, {
      canonicalAddress: 'bob@example.com',
      match: 'MATCH_KIND_EXACT',
      result: {
        $case: 'users',
        value: { users: [{ userId: 'u-bob', address: 'bob@example.com', overQuota: false }], detail: '' },
      },
    });
    return;
  }
  callback(null, {
    canonicalAddress: '',
    match: 'MATCH_KIND_UNSPECIFIED',
    result: { $case: 'notFound', value: {} },
  });
};

const getMessageContent: MailstoreServiceServer['getMessageContent'] = (call) => {
  const { uid, partial } = call.request;
  if (uid !== 7) {
    call.emit(
      'error',
      toGrpcError(status.NOT_FOUND, {
        reason: ErrorReason.NOT_FOUND,
        message: `no UID ${uid}`,
        field: 'uid',
      }),
    );
    return;
  }
  const start = Math.min(partial?.offset ?? 0, MESSAGE.length);
  const end = partial ? Math.min(start + partial.length, MESSAGE.length) : MESSAGE.length;
  call.write({
    part: {
      $case: 'info',
      value: { size: end - start, sectionSize: MESSAGE.length, modseq: 2 ** 40, containsNul: false },
    },
  });
  for (let at = start; at < end; at += CHUNK) {
    call.write({ part: { $case: 'chunk', value: MESSAGE.subarray(at, Math.min(at + CHUNK, end)) } });
  }
  call.end();
};

const appendMessage: MailstoreServiceServer['appendMessage'] = (call, callback) => {
  let header: mailstore.AppendHeader | undefined;
  const chunks: Buffer[] = [];
  let failed = false;
  call.on('data', (request: mailstore.AppendMessageRequest) => {
    const part = request.part;
    if (failed || part === undefined) return;
    switch (part.$case) {
      case 'header':
        header = part.value;
        if (header.size > 1024 * 1024) {
          failed = true;
          callback(
            toGrpcError(status.RESOURCE_EXHAUSTED, { reason: ErrorReason.OVER_QUOTA, message: 'full' }),
          );
        }
        break;
      case 'chunk':
        chunks.push(part.value);
        break;
    }
  });
  call.on('end', () => {
    if (failed) return;
    const body = Buffer.concat(chunks);
    if (header === undefined || body.length !== header.size) {
      callback(
        toGrpcError(status.INVALID_ARGUMENT, {
          reason: ErrorReason.INVALID_ARGUMENT,
          message: `expected ${header?.size ?? '?'} octets, got ${body.length}`,
          field: 'header.size',
        }),
      );
      return;
    }
    callback(null, { mailboxId: 'm-inbox', uidValidity: 1700000000, uid: 42, modseq: 9 });
  });
};

let server: Server;
let directoryClient: DirectoryServiceClient;
let mailstoreClient: MailstoreServiceClient;

beforeAll(async () => {
  server = new Server();
  // Only the methods under test; grpc-js answers UNIMPLEMENTED for the others.
  server.addService(DirectoryServiceDefinition, { resolveRecipient });
  server.addService(MailstoreServiceDefinition, { getMessageContent, appendMessage });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, boundPort) =>
      err ? reject(err) : resolve(boundPort),
    );
  });
  directoryClient = new DirectoryServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
  mailstoreClient = new MailstoreServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
});

afterAll(async () => {
  directoryClient.close();
  mailstoreClient.close();
  // Bounded: a graceful shutdown that has not finished in 5 s is forced.
  const timer = setTimeout(() => server.forceShutdown(), 5_000);
  await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  clearTimeout(timer);
});

function resolve(address: string): Promise<directory.ResolveRecipientResponse> {
  return new Promise((ok, fail) => {
    directoryClient.resolveRecipient(
      { address, messageSize: 0 },
      new Metadata(),
      callOptions(),
      (err, res) => (err ? fail(err) : ok(res)),
    );
  });
}

async function caught(promise: Promise<unknown>): Promise<ServiceError> {
  try {
    await promise;
  } catch (err) {
    if (isServiceError(err)) return err;
    throw err;
  }
  throw new Error('expected the call to fail');
}

async function readContent(
  request: mailstore.GetMessageContentRequest,
): Promise<{ info: mailstore.ContentInfo | undefined; body: Buffer; chunks: number }> {
  let info: mailstore.ContentInfo | undefined;
  const parts: Buffer[] = [];
  for await (const response of mailstoreClient.getMessageContent(request, new Metadata(), callOptions())) {
    const part = (response as mailstore.GetMessageContentResponse).part;
    if (part?.$case === 'info') {
      expect(parts).toHaveLength(0); // info comes first
      info = part.value;
    } else if (part?.$case === 'chunk') {
      parts.push(part.value);
    }
  }
  return { info, body: Buffer.concat(parts), chunks: parts.length };
}

describe('DirectoryService over grpc-js', () => {
  it('resolves a known recipient to its user', async () => {
    const res = await resolve('Bob@example.com');
    expect(res.match).toBe('MATCH_KIND_EXACT');
    expect(res.result).toEqual({
      $case: 'users',
      value: { users: [{ userId: 'u-bob', address: 'bob@example.com', overQuota: false }], detail: '' },
    });
  });

  it('answers not_found as a value, not an error', async () => {
    expect((await resolve('nobody@example.com')).result).toEqual({ $case: 'notFound', value: {} });
  });

  it('delivers a typed failure through status metadata', async () => {
    const err = await caught(resolve('no-at-sign'));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toBe('address has no domain');
    expect(errorDetailOf(err)).toEqual({
      reason: ErrorReason.INVALID_NAME,
      message: 'address has no domain',
      field: 'address',
    });
  });

  it('reports an unimplemented method without an ErrorDetail', async () => {
    const err = await caught(
      new Promise((ok, fail) => {
        directoryClient.getDomain(
          { selector: { $case: 'name', value: 'example.com' } },
          new Metadata(),
          callOptions(),
          (e, r) => (e ? fail(e) : ok(r)),
        );
      }),
    );
    expect(err.code).toBe(status.UNIMPLEMENTED);
    expect(errorDetailOf(err)).toBeUndefined();
  });
});

describe('MailstoreService over grpc-js', () => {
  const base = { userId: 'u-bob', mailboxId: 'm-inbox', section: '', decodeTransferEncoding: false };

  it('streams a whole message in chunks after its size', async () => {
    const { info, body, chunks } = await readContent({ ...base, uid: 7 });
    expect(info).toEqual({
      size: MESSAGE.length,
      sectionSize: MESSAGE.length,
      modseq: 2 ** 40,
      containsNul: false,
    });
    expect(chunks).toBe(Math.ceil(MESSAGE.length / CHUNK));
    expect(body.equals(MESSAGE)).toBe(true);
  });

  it('streams a partial range', async () => {
    const { info, body } = await readContent({ ...base, uid: 7, partial: { offset: 100, length: 70_000 } });
    expect(info?.size).toBe(70_000);
    expect(body.equals(MESSAGE.subarray(100, 70_100))).toBe(true);
  });

  it('ends a stream with a typed failure', async () => {
    const err = await caught(readContent({ ...base, uid: 8 }));
    expect(err.code).toBe(status.NOT_FOUND);
    expect(errorDetailOf(err)).toEqual({ reason: ErrorReason.NOT_FOUND, message: 'no UID 8', field: 'uid' });
  });

  function append(parts: mailstore.AppendMessageRequest[]): Promise<mailstore.AppendMessageResponse> {
    return new Promise((ok, fail) => {
      const call = mailstoreClient.appendMessage(new Metadata(), callOptions(), (err, res) =>
        err ? fail(err) : ok(res),
      );
      for (const part of parts) call.write(part);
      call.end();
    });
  }

  const header = (size: number): mailstore.AppendMessageRequest => ({
    part: {
      $case: 'header',
      value: {
        userId: 'u-bob',
        mailbox: { selector: { $case: 'path', value: 'INBOX' } },
        flags: ['FLAG_SEEN'],
        keywords: [],
        internalDate: new Date('2026-01-01T00:00:00Z'),
        size,
      },
    },
  });

  it('appends a message sent as a header and chunks', async () => {
    const chunks: mailstore.AppendMessageRequest[] = [];
    for (let at = 0; at < MESSAGE.length; at += CHUNK) {
      chunks.push({ part: { $case: 'chunk', value: MESSAGE.subarray(at, at + CHUNK) } });
    }
    const res = await append([header(MESSAGE.length), ...chunks]);
    expect(res).toEqual({ mailboxId: 'm-inbox', uidValidity: 1700000000, uid: 42, modseq: 9 });
  });

  it('refuses an over-quota append before reading the content', async () => {
    const err = await caught(append([header(5 * 1024 * 1024)]));
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(errorDetailOf(err)?.reason).toBe(ErrorReason.OVER_QUOTA);
  });
});
