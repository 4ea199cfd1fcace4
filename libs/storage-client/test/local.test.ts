/**
 * `colocatedStorage`: the calls of served users run the handlers in-process with what a gRPC
 * caller would see (fresh answers with every field, typed errors, retries of reads only, streams
 * with back-pressure and cancellation); the others go over gRPC to a real grpc-js server. The
 * whole path against storage's real handlers is services/storage-imap/test.
 */
import { status, type Metadata } from '@grpc/grpc-js';
import { context, propagation, trace, TraceFlags, type Context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  ErrorReason,
  mailstore,
  toGrpcError,
  type DirectoryServiceServer,
  type MailstoreServiceServer,
} from '@postmesh/contracts';
import { insecureInternal } from '@postmesh/identity';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  CALLER_CONTEXT,
  StorageError,
  StorageUnavailableError,
  colocatedStorage,
  connectStorage,
  type CallPath,
  type CallPolicy,
  type StorageClient,
} from '../src/index.js';
import { FakeStorage } from './grpc-server.js';

let remote: FakeStorage;
const clients: StorageClient[] = [];

beforeAll(async () => {
  remote = await FakeStorage.start();
});
afterAll(async () => {
  await remote.stop();
});
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  remote.calls.length = 0;
});

type Callback = (error: unknown, response?: unknown) => void;
/** Handlers by method name, as storage's gRPC server holds them. */
type Handlers = Record<string, (call: never, callback: Callback) => void>;

interface StreamCall {
  readonly request: unknown;
  cancelled: boolean;
  write(item: unknown): boolean;
  end(): void;
  emit(event: string, value?: unknown): boolean;
  once(event: string, listener: () => void): unknown;
}

/** storage's server-stream loop (mailstore/service.ts `streamOut`): writes, waits for 'drain'. */
async function streamOut(call: StreamCall, items: Iterable<unknown>, seen: { written: number }) {
  try {
    for (const item of items) {
      if (call.cancelled) return;
      seen.written += 1;
      if (!call.write(item)) await new Promise<void>((resolve) => call.once('drain', resolve));
    }
    call.end();
  } catch (error) {
    call.emit('error', error);
  }
}

function colocated(
  handlers: Handlers,
  served = (userId: string) => userId === 'mine',
  policy: Partial<CallPolicy> = {},
) {
  const paths: CallPath[] = [];
  const grpc = connectStorage({
    address: remote.address,
    security: insecureInternal,
    policy: { initialBackoffMs: 5, maxBackoffMs: 10 },
  });
  clients.push(grpc);
  const client = colocatedStorage(
    grpc,
    {
      mailstore: handlers as unknown as MailstoreServiceServer,
      directory: handlers as unknown as DirectoryServiceServer,
      serves: served,
    },
    { policy: { initialBackoffMs: 5, maxBackoffMs: 10, ...policy }, onCall: (path) => paths.push(path) },
  );
  return { client, paths };
}

const listRequest = { userId: 'mine', reference: '', pattern: '*', subscribedOnly: false } as const;

describe('unary calls', () => {
  it('a served user runs the handler with the request; the answer is a fresh, complete message', async () => {
    const answer = { mailboxes: [{ id: 'm1', path: 'INBOX' }] };
    let received: unknown;
    const { client, paths } = colocated({
      listMailboxes: (call: { request: unknown }, callback: Callback) => {
        received = call.request;
        callback(null, answer);
      },
    });
    const request = mailstore.ListMailboxesRequest.fromPartial(listRequest);
    const response = await client.mailstore.listMailboxes(request);
    expect(received).toBe(request);
    expect(response.mailboxes[0]).toEqual(mailstore.Mailbox.fromPartial({ id: 'm1', path: 'INBOX' }));
    expect(response.mailboxes[0]?.delimiter).toBe('');
    expect(response.mailboxes[0]).not.toBe(answer.mailboxes[0]);
    expect(paths).toEqual(['in-process']);
    expect(remote.calls).toHaveLength(0);
  });

  it('a user another replica owns goes over gRPC', async () => {
    remote.on('listMailboxes', () => ({
      ok: mailstore.ListMailboxesResponse.fromPartial({ mailboxes: [{ id: 'theirs', path: 'INBOX' }] }),
    }));
    const { client, paths } = colocated({
      listMailboxes: () => {
        throw new Error('must not run in-process');
      },
    });
    const response = await client.mailstore.listMailboxes(
      mailstore.ListMailboxesRequest.fromPartial({ ...listRequest, userId: 'theirs' }),
    );
    expect(response.mailboxes.map((m) => m.id)).toEqual(['theirs']);
    expect(paths).toEqual(['grpc']);
    expect(remote.callsOf('listMailboxes')).toHaveLength(1);
  });

  it('a refusal with an ErrorDetail is a StorageError; a bare status is StorageUnavailableError', async () => {
    const { client } = colocated({
      getMailboxStatus: (_call, callback) =>
        callback(
          toGrpcError(status.NOT_FOUND, { reason: ErrorReason.NOT_FOUND, message: 'no such mailbox' }),
        ),
      getQuota: (_call, callback) =>
        callback(
          Object.assign(new Error('stored message failed an integrity check'), { code: status.DATA_LOSS }),
        ),
    });
    const refused = await client.mailstore
      .getMailboxStatus(
        mailstore.GetMailboxStatusRequest.fromPartial({
          userId: 'mine',
          mailbox: { selector: { $case: 'path', value: 'Nope' } },
        }),
      )
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(StorageError);
    expect(refused).toMatchObject({ reason: ErrorReason.NOT_FOUND, code: status.NOT_FOUND });
    const failed = await client.mailstore.getQuota({ userId: 'mine' }).catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(StorageUnavailableError);
    expect(failed).toMatchObject({ code: status.DATA_LOSS });
  });

  it('a read is tried again on UNAVAILABLE; a write is not', async () => {
    let reads = 0;
    let writes = 0;
    const unavailable = () =>
      toGrpcError(status.UNAVAILABLE, { reason: ErrorReason.UNSPECIFIED, message: 'database unreachable' });
    const { client } = colocated({
      getQuota: (_call, callback) => (++reads < 3 ? callback(unavailable()) : callback(null, {})),
      storeFlags: (_call, callback) => {
        writes += 1;
        callback(unavailable());
      },
    });
    await expect(client.mailstore.getQuota({ userId: 'mine' })).resolves.toBeDefined();
    expect(reads).toBe(3);
    await expect(
      client.mailstore.storeFlags(mailstore.StoreFlagsRequest.fromPartial({ userId: 'mine' })),
    ).rejects.toBeInstanceOf(StorageUnavailableError);
    expect(writes).toBe(1);
  });

  it('a handler that does not answer in time fails the call with DEADLINE_EXCEEDED', async () => {
    const { client } = colocated(
      {
        getQuota: () => undefined,
        appendMessage: () => undefined,
      },
      undefined,
      { unaryDeadlineMs: 50, uploadDeadlineMs: 50 },
    );
    await expect(client.mailstore.getQuota({ userId: 'mine' })).rejects.toMatchObject({
      name: 'StorageUnavailableError',
      code: status.DEADLINE_EXCEEDED,
    });
    await expect(
      client.mailstore.appendMessage({
        userId: 'mine',
        mailbox: { selector: { $case: 'path', value: 'INBOX' } },
        flags: [],
        keywords: [],
        internalDate: undefined,
        message: Buffer.from('x'),
      }),
    ).rejects.toMatchObject({ name: 'StorageUnavailableError', code: status.DEADLINE_EXCEEDED });
  });

  it('LOGIN is answered in-process; an unknown login names no account', async () => {
    const { client } = colocated({
      getUser: (_call, callback) =>
        callback(toGrpcError(status.NOT_FOUND, { reason: ErrorReason.NOT_FOUND, message: 'no such user' })),
    });
    expect(await client.accountOf('nobody@example.test')).toBeUndefined();
    expect(remote.calls).toHaveLength(0);
  });
});

describe('streams', () => {
  const fetchRequest = mailstore.FetchMessagesRequest.fromPartial({ userId: 'mine', mailboxId: 'm1' });

  it('every message arrives in order through the back-pressure of a slow reader', async () => {
    const seen = { written: 0 };
    const { client } = colocated({
      fetchMessages: (call: StreamCall) => {
        void streamOut(
          call,
          (function* () {
            for (let uid = 1; uid <= 100; uid++) yield { messages: [{ uid }] };
          })(),
          seen,
        );
      },
    });
    const uids: number[] = [];
    for await (const message of client.mailstore.fetchMessages(fetchRequest)) {
      uids.push(message.uid);
      // The handler is held back: it never runs far ahead of the reader.
      expect(seen.written - uids.length).toBeLessThanOrEqual(32);
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(uids).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
  });

  it('hands over the batches the handler sent, as sent, unbatched answers included', async () => {
    const sent = [
      { messages: [{ uid: 1, flags: [1] }, { uid: 2 }] },
      { message: { uid: 3 } },
      { messages: [] },
      { message: { uid: 4 }, messages: [{ uid: 5 }] },
    ];
    const handler = {
      fetchMessages: (call: StreamCall) => {
        void streamOut(call, sent.values(), { written: 0 });
      },
    };
    const { client } = colocated(handler);
    const batches: number[][] = [];
    let first: unknown;
    for await (const batch of client.mailstore.fetchMessageBatches(fetchRequest)) {
      first ??= batch[0];
      batches.push(batch.map((m) => m.uid));
    }
    // Empty stream messages are skipped; the objects are the handler's own (no copy per message).
    expect(batches).toEqual([[1, 2], [3], [4, 5]]);
    expect(first).toBe(sent[0]?.messages?.[0]);
    const one: number[] = [];
    for await (const message of colocated(handler).client.mailstore.fetchMessages(fetchRequest))
      one.push(message.uid);
    expect(one).toEqual([1, 2, 3, 4, 5]);
  });

  it('a reader that stops early cancels the handler', async () => {
    const seen = { written: 0 };
    let handlerCall: StreamCall | undefined;
    const { client } = colocated({
      fetchMessages: (call: StreamCall) => {
        handlerCall = call;
        void streamOut(
          call,
          (function* () {
            for (let uid = 1; uid <= 10_000; uid++) yield { messages: [{ uid }] };
          })(),
          seen,
        );
      },
    });
    for await (const message of client.mailstore.fetchMessages(fetchRequest)) if (message.uid === 2) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(handlerCall?.cancelled).toBe(true);
    expect(seen.written).toBeLessThan(100);
  });

  it('a stream past its deadline cancels the handler and fails the reader', async () => {
    let handlerCall: StreamCall | undefined;
    const { client } = colocated(
      {
        fetchMessages: (call: StreamCall) => {
          handlerCall = call;
          call.write({ messages: [{ uid: 1 }] });
        },
      },
      undefined,
      { streamDeadlineMs: 50 },
    );
    const uids: number[] = [];
    const failure = await (async () => {
      for await (const message of client.mailstore.fetchMessages(fetchRequest)) uids.push(message.uid);
    })().catch((error: unknown) => error);
    expect(uids).toEqual([1]);
    expect(failure).toBeInstanceOf(StorageUnavailableError);
    expect(failure).toMatchObject({ code: status.DEADLINE_EXCEEDED });
    expect(handlerCall?.cancelled).toBe(true);
  });

  it('a failure after the first message is a typed error', async () => {
    const { client } = colocated({
      fetchMessages: (call: StreamCall) => {
        void streamOut(
          call,
          (function* () {
            yield { messages: [{ uid: 1 }] };
            throw toGrpcError(status.NOT_FOUND, {
              reason: ErrorReason.NOT_FOUND,
              message: 'mailbox deleted',
            });
          })(),
          { written: 0 },
        );
      },
    });
    const uids: number[] = [];
    const failure = await (async () => {
      for await (const message of client.mailstore.fetchMessages(fetchRequest)) uids.push(message.uid);
    })().catch((error: unknown) => error);
    expect(uids).toEqual([1]);
    expect(failure).toBeInstanceOf(StorageError);
    expect(failure).toMatchObject({ reason: ErrorReason.NOT_FOUND });
  });

  it('a body is its info, then its chunks; an append sends the header, then the message', async () => {
    let appended: unknown[] = [];
    const { client } = colocated({
      getMessageContent: (call: StreamCall) => {
        void streamOut(
          call,
          (function* () {
            yield { part: { $case: 'info', value: { size: 6 } } };
            yield { part: { $case: 'chunk', value: Buffer.from('abc') } };
            yield { part: { $case: 'chunk', value: Buffer.from('def') } };
          })(),
          { written: 0 },
        );
      },
      appendMessage: (call: AsyncIterable<unknown>, callback: Callback) => {
        void (async () => {
          appended = [];
          for await (const part of call) appended.push(part);
          callback(null, { uid: 7, uidValidity: 1 });
        })();
      },
    });
    const content = await client.mailstore.getMessageContent(
      mailstore.GetMessageContentRequest.fromPartial({ userId: 'mine', mailboxId: 'm1', uid: 1 }),
    );
    expect(content.info.size).toBe(6);
    const chunks: Buffer[] = [];
    for await (const chunk of content.chunks) chunks.push(chunk);
    expect(Buffer.concat(chunks).toString()).toBe('abcdef');
    const response = await client.mailstore.appendMessage({
      userId: 'mine',
      mailbox: { selector: { $case: 'path', value: 'INBOX' } },
      flags: [],
      keywords: [],
      internalDate: undefined,
      message: Buffer.from('Subject: x\r\n\r\nbody\r\n'),
    });
    expect(response).toMatchObject({ uid: 7, uidValidity: 1 });
    expect(appended).toHaveLength(2);
    expect(appended[0]).toMatchObject({ part: { $case: 'header', value: { userId: 'mine', size: 20 } } });
    expect(appended[1]).toMatchObject({ part: { $case: 'chunk' } });
  });
});

describe('trace context', () => {
  /** What storage's instrumentation reads of a call: the caller's context, or the metadata. */
  interface TracedCall {
    readonly [CALLER_CONTEXT]?: Context;
    readonly metadata: Metadata;
  }
  const spanContext = {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    traceFlags: TraceFlags.SAMPLED,
  };
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

  it("each in-process call hands over the caller's context, and its metadata carries it as traceparent", async () => {
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    const manager = new AsyncLocalStorageContextManager().enable();
    context.setGlobalContextManager(manager);
    try {
      const calls: TracedCall[] = [];
      const { client } = colocated({
        getQuota: (call: TracedCall, callback: Callback) => {
          calls.push(call);
          callback(null, {});
        },
        fetchMessages: (call: TracedCall & StreamCall) => {
          calls.push(call);
          call.end();
        },
        appendMessage: (call: TracedCall, callback: Callback) => {
          calls.push(call);
          callback(null, { uid: 1, uidValidity: 1 });
        },
      });
      await context.with(trace.setSpanContext(context.active(), spanContext), async () => {
        await client.mailstore.getQuota({ userId: 'mine' });
        const fetched: unknown[] = [];
        for await (const message of client.mailstore.fetchMessages(
          mailstore.FetchMessagesRequest.fromPartial({ userId: 'mine', mailboxId: 'm1' }),
        ))
          fetched.push(message);
        expect(fetched).toEqual([]);
        await client.mailstore.appendMessage({
          userId: 'mine',
          mailbox: { selector: { $case: 'path', value: 'INBOX' } },
          flags: [],
          keywords: [],
          internalDate: undefined,
          message: Buffer.from('Subject: x\r\n\r\nbody\r\n'),
        });
      });
      expect(calls).toHaveLength(3);
      for (const call of calls) {
        const caller = call[CALLER_CONTEXT];
        expect(caller === undefined ? undefined : trace.getSpanContext(caller)).toEqual(spanContext);
        expect(call.metadata.get('traceparent')).toEqual([traceparent]);
      }
    } finally {
      context.disable();
      propagation.disable();
    }
  });
});
