/**
 * The storage client against a real grpc-js server in this process: typed errors from
 * ErrorDetail, bounded retries of reads only, the call deadline, trace context in metadata, and
 * re-routing after "not owner".
 */
import { status } from '@grpc/grpc-js';
import { context, propagation, trace, TraceFlags } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { ErrorReason, directory, errorDetailOf, isServiceError, mailstore } from '@postmesh/contracts';
import { insecureInternal } from '@postmesh/identity';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  StorageError,
  StorageUnavailableError,
  connectStorage,
  type CallPolicy,
  type OwnerRoute,
  type OwnerRoutes,
  type StorageClient,
} from '../src/index.js';
import { FakeStorage } from './grpc-server.js';

let a: FakeStorage;
let b: FakeStorage;
const clients: StorageClient[] = [];

beforeAll(async () => {
  [a, b] = await Promise.all([FakeStorage.start(), FakeStorage.start()]);
});
afterAll(async () => {
  await Promise.all([a.stop(), b.stop()]);
});
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  a.calls.length = 0;
  b.calls.length = 0;
});

function client(policy: Partial<CallPolicy> = {}, routes?: OwnerRoutes): StorageClient {
  const c = connectStorage({
    address: a.address,
    security: insecureInternal,
    policy: { initialBackoffMs: 10, maxBackoffMs: 20, ...policy },
    ...(routes === undefined ? {} : { routes }),
  });
  clients.push(c);
  return c;
}

const user = directory.User.fromPartial({ id: 'u1', address: 'ann@example.test' });
const userFound = directory.GetUserResponse.fromPartial({ user });
const getUser = { selector: { $case: 'id' as const, value: 'u1' } };

describe('typed errors', () => {
  it('a refusal with an ErrorDetail is a StorageError with its reason and field, still a gRPC status', async () => {
    a.on('getUser', () => ({
      code: status.NOT_FOUND,
      detail: { reason: ErrorReason.NOT_FOUND, message: 'user not found', field: 'selector.id' },
    }));
    const error = await client()
      .directory.getUser(getUser)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({
      reason: ErrorReason.NOT_FOUND,
      field: 'selector.id',
      code: status.NOT_FOUND,
    });
    // Callers that map gRPC statuses (the admin API) keep working on it.
    expect(isServiceError(error)).toBe(true);
    expect(errorDetailOf(error)?.reason).toBe(ErrorReason.NOT_FOUND);
  });

  it('a failure without a reason is StorageUnavailableError, whatever its code', async () => {
    a.on('createUser', () => ({ code: status.INTERNAL }));
    a.on('listUsers', () => ({
      code: status.UNAVAILABLE,
      detail: { reason: ErrorReason.UNSPECIFIED, message: 'storage is temporarily unavailable; retry' },
    }));
    const c = client({ maxAttempts: 1 });
    const internal = await c.directory
      .createUser(directory.CreateUserRequest.fromPartial({}))
      .catch((e: unknown) => e);
    expect(internal).toBeInstanceOf(StorageUnavailableError);
    expect(internal).toMatchObject({ code: status.INTERNAL });
    const outage = await c.directory
      .listUsers(directory.ListUsersRequest.fromPartial({}))
      .catch((e: unknown) => e);
    expect(outage).toBeInstanceOf(StorageUnavailableError);
    expect(outage).toMatchObject({ code: status.UNAVAILABLE });
  });

  it('a failed stream is typed too', async () => {
    a.on('fetchMessages', () => ({
      code: status.NOT_FOUND,
      detail: { reason: ErrorReason.NOT_FOUND, message: 'mailbox not found', field: 'mailbox_id' },
    }));
    const fetch = async (): Promise<unknown[]> => {
      const out: unknown[] = [];
      for await (const m of client().mailstore.fetchMessages(
        mailstore.FetchMessagesRequest.fromPartial({ userId: 'u1', mailboxId: 'x' }),
      ))
        out.push(m);
      return out;
    };
    await expect(fetch()).rejects.toMatchObject({ name: 'StorageError', reason: ErrorReason.NOT_FOUND });
  });
});

describe('streams', () => {
  it('a long stream read slowly arrives whole and in order (the call pauses and resumes)', async () => {
    const responses = Array.from({ length: 200 }, (_, i) =>
      mailstore.FetchMessagesResponse.fromPartial({ messages: [{ uid: i + 1 }] }),
    );
    a.on('fetchMessages', () => ({ ok: responses }));
    const uids: number[] = [];
    for await (const m of client().mailstore.fetchMessages(
      mailstore.FetchMessagesRequest.fromPartial({ userId: 'u1', mailboxId: 'x' }),
    )) {
      uids.push(m.uid);
      if (uids.length % 50 === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(uids).toEqual(responses.map((_, i) => i + 1));
  });

  it('GetMessageContent gives the info, then every chunk in order', async () => {
    const chunks = ['one ', 'two ', 'three'].map((text) => Buffer.from(text));
    a.on('getMessageContent', () => ({
      ok: [
        mailstore.GetMessageContentResponse.fromPartial({
          part: { $case: 'info', value: { size: 13, sectionSize: 13 } },
        }),
        ...chunks.map((value) =>
          mailstore.GetMessageContentResponse.fromPartial({ part: { $case: 'chunk', value } }),
        ),
      ],
    }));
    const { info, chunks: read } = await client().mailstore.getMessageContent(
      mailstore.GetMessageContentRequest.fromPartial({ userId: 'u1', mailboxId: 'x', uid: 1 }),
    );
    expect(info.size).toBe(13);
    const got: Buffer[] = [];
    for await (const chunk of read) got.push(chunk);
    expect(Buffer.concat(got).toString()).toBe('one two three');
  });

  it('GetMessageContent that does not start with the info fails unavailable', async () => {
    a.on('getMessageContent', () => ({
      ok: [
        mailstore.GetMessageContentResponse.fromPartial({
          part: { $case: 'chunk', value: Buffer.from('x') },
        }),
      ],
    }));
    await expect(
      client().mailstore.getMessageContent(
        mailstore.GetMessageContentRequest.fromPartial({ userId: 'u1', mailboxId: 'x', uid: 1 }),
      ),
    ).rejects.toBeInstanceOf(StorageUnavailableError);
  });
});

describe('retries', () => {
  it('a read is tried maxAttempts times on UNAVAILABLE, then fails', async () => {
    a.on('getUser', () => ({ code: status.UNAVAILABLE }));
    await expect(client({ maxAttempts: 3 }).directory.getUser(getUser)).rejects.toBeInstanceOf(
      StorageUnavailableError,
    );
    expect(a.callsOf('getUser')).toHaveLength(3);
  });

  it('a read that fails twice and then answers resolves', async () => {
    a.on('getUser', (_r, n) => (n < 3 ? { code: status.UNAVAILABLE } : { ok: userFound }));
    await expect(client().directory.getUser(getUser)).resolves.toMatchObject({ user: { id: 'u1' } });
    expect(a.callsOf('getUser')).toHaveLength(3);
  });

  it('a write is never sent twice: it may have run before the outage', async () => {
    a.on('createUser', () => ({ code: status.UNAVAILABLE }));
    await expect(
      client().directory.createUser(directory.CreateUserRequest.fromPartial({})),
    ).rejects.toBeInstanceOf(StorageUnavailableError);
    expect(a.callsOf('createUser')).toHaveLength(1);
  });

  it('GetMailboxStatus that claims \\Recent is a write', async () => {
    a.on('getMailboxStatus', () => ({ code: status.UNAVAILABLE }));
    const c = client();
    const request = (claimRecent: boolean) =>
      mailstore.GetMailboxStatusRequest.fromPartial({
        userId: 'u1',
        mailbox: { selector: { $case: 'path', value: 'INBOX' } },
        claimRecent,
      });
    await expect(c.mailstore.getMailboxStatus(request(true))).rejects.toBeInstanceOf(StorageUnavailableError);
    expect(a.callsOf('getMailboxStatus')).toHaveLength(1);
    await expect(c.mailstore.getMailboxStatus(request(false))).rejects.toBeInstanceOf(
      StorageUnavailableError,
    );
    expect(a.callsOf('getMailboxStatus')).toHaveLength(4);
  });

  it('other codes are not retried', async () => {
    a.on('getUser', () => ({ code: status.INTERNAL }));
    await expect(client().directory.getUser(getUser)).rejects.toBeInstanceOf(StorageUnavailableError);
    expect(a.callsOf('getUser')).toHaveLength(1);
  });

  it('no retry starts past the deadline', async () => {
    a.on('getUser', () => ({ code: status.UNAVAILABLE }));
    const c = client({ unaryDeadlineMs: 2_000, initialBackoffMs: 5_000, maxBackoffMs: 5_000 });
    await expect(c.directory.getUser(getUser)).rejects.toBeInstanceOf(StorageUnavailableError);
    expect(a.callsOf('getUser')).toHaveLength(1);
  });
});

describe('deadline', () => {
  it('a call storage does not answer ends with DEADLINE_EXCEEDED, and the server sees the deadline', async () => {
    a.on('getDomain', () => ({ hang: true }));
    const before = Date.now();
    const error = await client({ unaryDeadlineMs: 300 })
      .directory.getDomain({ selector: { $case: 'name', value: 'example.test' } })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageUnavailableError);
    expect(error).toMatchObject({ code: status.DEADLINE_EXCEEDED });
    const [received] = a.callsOf('getDomain');
    expect(received?.deadline).toBeGreaterThanOrEqual(before + 300 - 50);
    expect(received?.deadline).toBeLessThanOrEqual(before + 300 + 1_000);
  });
});

describe('trace context', () => {
  it("each call carries the caller's span context as W3C traceparent", async () => {
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    const manager = new AsyncLocalStorageContextManager().enable();
    context.setGlobalContextManager(manager);
    try {
      a.on('getUser', () => ({ ok: userFound }));
      const spanContext = {
        traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
        spanId: '00f067aa0ba902b7',
        traceFlags: TraceFlags.SAMPLED,
      };
      const c = client();
      await context.with(trace.setSpanContext(context.active(), spanContext), () =>
        c.directory.getUser(getUser),
      );
      const [received] = a.callsOf('getUser');
      expect(received?.metadata.get('traceparent')).toEqual([
        '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      ]);
    } finally {
      context.disable();
      propagation.disable();
    }
  });
});

describe('owner routing', () => {
  const routeTo = (server: FakeStorage, partition = 7): OwnerRoute => ({
    partition,
    owner: server === a ? 'replica-a' : 'replica-b',
    address: server.address,
  });
  /** A map whose local copy says `stale` until it is read again, which says `fresh`. */
  const routes = (stale: OwnerRoute | undefined, fresh: OwnerRoute | undefined) => {
    const lookups: string[] = [];
    return {
      lookups,
      routes: {
        routeOf: () => stale,
        lookup: (userId: string) => {
          lookups.push(userId);
          return Promise.resolve(fresh);
        },
      },
    };
  };
  const notOwner = {
    code: status.UNAVAILABLE,
    detail: { reason: ErrorReason.NOT_OWNER, message: 'not the owner' },
  };
  const statusRequest = mailstore.GetMailboxStatusRequest.fromPartial({
    userId: 'u1',
    mailbox: { selector: { $case: 'path', value: 'INBOX' } },
    claimRecent: true,
  });

  it('a user-scoped call goes to the owner in the map', async () => {
    b.on('getMailboxStatus', () => ({
      ok: mailstore.GetMailboxStatusResponse.fromPartial({ status: { messages: 3 } }),
    }));
    const map = routes(routeTo(b), routeTo(b));
    await expect(client({}, map.routes).mailstore.getMailboxStatus(statusRequest)).resolves.toMatchObject({
      status: { messages: 3 },
    });
    expect(a.callsOf('getMailboxStatus')).toHaveLength(0);
    expect(b.callsOf('getMailboxStatus')).toHaveLength(1);
  });

  it('"not owner" refreshes the map and sends the call (even a write) to the new owner once', async () => {
    a.on('getMailboxStatus', () => notOwner);
    b.on('getMailboxStatus', () => ({
      ok: mailstore.GetMailboxStatusResponse.fromPartial({ status: { messages: 5 } }),
    }));
    const map = routes(routeTo(a), routeTo(b));
    await expect(client({}, map.routes).mailstore.getMailboxStatus(statusRequest)).resolves.toMatchObject({
      status: { messages: 5 },
    });
    expect(map.lookups).toEqual(['u1']);
    expect(a.callsOf('getMailboxStatus')).toHaveLength(1);
    expect(b.callsOf('getMailboxStatus')).toHaveLength(1);
  });

  it('"not owner" from every replica is chased only for ownerWaitMs: the call fails unavailable', async () => {
    a.on('getMailboxStatus', () => notOwner);
    b.on('getMailboxStatus', () => notOwner);
    const started = Date.now();
    const error = await client({ ownerWaitMs: 600 }, routes(routeTo(a), routeTo(b)).routes)
      .mailstore.getMailboxStatus(statusRequest)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageUnavailableError);
    expect(Date.now() - started).toBeLessThan(600 + 500);
    expect(a.callsOf('getMailboxStatus')).toHaveLength(1);
    // Sent again with backoff while the hand-off might still finish, then given up.
    expect(b.callsOf('getMailboxStatus').length).toBeGreaterThan(1);
  });

  it('during a hand-off (the old owner refuses, no owner yet) a write waits for the new owner', async () => {
    a.on('getMailboxStatus', () => notOwner);
    b.on('getMailboxStatus', () => ({
      ok: mailstore.GetMailboxStatusResponse.fromPartial({ status: { messages: 8 } }),
    }));
    // The map names the old owner, then nobody (released, not taken yet), then the new owner.
    const answers = [routeTo(a), undefined, undefined, routeTo(b)];
    const handOff: OwnerRoutes = {
      routeOf: () => routeTo(a),
      lookup: () => Promise.resolve(answers.length > 1 ? answers.shift() : answers[0]),
    };
    await expect(client({}, handOff).mailstore.getMailboxStatus(statusRequest)).resolves.toMatchObject({
      status: { messages: 8 },
    });
    expect(b.callsOf('getMailboxStatus')).toHaveLength(1);
  });

  it('an append re-sent to the new owner carries the whole message again', async () => {
    a.on('appendMessage', () => notOwner);
    b.on('appendMessage', () => ({
      ok: mailstore.AppendMessageResponse.fromPartial({ uid: 9, uidValidity: 1, mailboxId: 'm' }),
    }));
    const message = Buffer.alloc(150_000, 0x61);
    const answer = await client({}, routes(routeTo(a), routeTo(b)).routes).mailstore.appendMessage({
      userId: 'u1',
      mailbox: { selector: { $case: 'path', value: 'INBOX' } },
      flags: [],
      keywords: [],
      internalDate: undefined,
      message,
    });
    expect(answer.uid).toBe(9);
    const [received] = b.callsOf('appendMessage');
    const parts = received?.request as mailstore.AppendMessageRequest[];
    expect(parts[0]?.part?.$case).toBe('header');
    const body = Buffer.concat(
      parts.slice(1).map((p) => (p.part?.$case === 'chunk' ? p.part.value : Buffer.alloc(0))),
    );
    expect(body.equals(message)).toBe(true);
  });

  it('no owner for the partition: unavailable after ownerWaitMs, nothing sent', async () => {
    const started = Date.now();
    const error = await client({ ownerWaitMs: 300 }, routes(undefined, undefined).routes)
      .mailstore.getQuota(mailstore.GetQuotaRequest.fromPartial({ userId: 'u1' }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageUnavailableError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(a.calls).toHaveLength(0);
    expect(b.calls).toHaveLength(0);
  });

  it('calls that name no user go to the configured address', async () => {
    a.on('getUser', () => ({ ok: userFound }));
    await client({}, routes(routeTo(b), routeTo(b)).routes).directory.getUser(getUser);
    expect(a.callsOf('getUser')).toHaveLength(1);
    expect(b.calls).toHaveLength(0);
  });
});
