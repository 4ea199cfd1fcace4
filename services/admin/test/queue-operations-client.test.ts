/** The client of mta-delivery's queue operations and the queue scope, without servers. */
import type { NatsConnection } from '@postmesh/bus';
import { QueueSubjects, type QueueEntry } from '@postmesh/bus';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../src/api/errors.js';
import { parseQueueId, QueueOps, senderDomainOf } from '../src/ops/queue-operations-client.js';
import { decide, queueScope, type Subject } from '../src/policy.js';

type Handler = (subject: string, body: Record<string, unknown>) => unknown;

/** A NATS connection whose `request` answers from `handler` (a thrown error = no responders). */
function fakeNats(handler: Handler): { nc: NatsConnection; seen: { subject: string; body: unknown }[] } {
  const seen: { subject: string; body: unknown }[] = [];
  const nc = {
    request: (subject: string, data: Uint8Array) => {
      const body = JSON.parse(new TextDecoder().decode(data)) as Record<string, unknown>;
      seen.push({ subject, body });
      try {
        const answer = handler(subject, body);
        return Promise.resolve({ data: new TextEncoder().encode(JSON.stringify(answer)) });
      } catch (error) {
        return Promise.reject(error instanceof Error ? error : new Error(String(error)));
      }
    },
  } as unknown as NatsConnection;
  return { nc, seen };
}

const entry = (id: string, sender: string): QueueEntry => ({
  id,
  spoolId: id.split(':')[0] ?? '',
  domain: id.split(':')[1] ?? '',
  sender,
  recipients: ['bob@example.org'],
  messageId: 'm@x',
  queuedAt: '2026-11-27T19:00:00.000Z',
  attempts: 2,
  lastAttemptAt: '2026-11-27T19:01:00.000Z',
  nextAttemptAt: '2026-11-27T19:06:00.000Z',
  lastError: '451 4.7.1 try later (mx.example.org)',
});

const caller = { actor: 'admin:a@x', role: 'domain-admin', domains: ['alpha.test'] } as const;

async function apiErrorOf(promise: Promise<unknown>): Promise<ApiError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ApiError) return error;
    throw error;
  }
  throw new Error('expected an ApiError');
}

describe('QueueOps', () => {
  it('passes the caller, domain filter and cursor, and returns the cursor as the next page', async () => {
    const { nc, seen } = fakeNats(() => ({
      ok: true,
      items: [entry('s1:example.org', 'ann@alpha.test')],
      nextCursor: 's1:example.org',
    }));
    const page = await new QueueOps(nc).list(caller, { domain: 'example.org', limit: 10, cursor: 'c0' });
    expect(seen).toEqual([
      {
        subject: QueueSubjects.list,
        body: { caller, domain: 'example.org', limit: 10, cursor: 'c0' },
      },
    ]);
    expect(page.nextCursor).toBe('s1:example.org');
    expect(page.items[0]).toMatchObject({ lastError: '451 4.7.1 try later (mx.example.org)', attempts: 2 });
  });

  it('maps typed failures to HTTP statuses and no responder to 503', async () => {
    const statuses: number[] = [];
    for (const code of ['forbidden', 'not-found', 'invalid', 'unavailable', 'something-new']) {
      const { nc } = fakeNats(() => ({ ok: false, error: { code, message: `it is ${code}` } }));
      const error = await apiErrorOf(new QueueOps(nc).retry(caller, 's1:example.org'));
      statuses.push(error.status);
      expect(error.message).toBe(`it is ${code}`);
    }
    expect(statuses).toEqual([403, 404, 400, 503, 503]);
    const down = fakeNats(() => {
      throw new Error('503 no responders');
    });
    const error = await apiErrorOf(new QueueOps(down.nc).cancel(caller, 's1:example.org', true));
    expect(error.status).toBe(503);
    expect(error.message).toMatch(/mta-delivery is not answering/);
  });

  it('sends cancel with the dsn choice and retry with the id', async () => {
    const { nc, seen } = fakeNats((subject, body) =>
      subject === QueueSubjects.cancel
        ? { ok: true, id: body.id, dsnSent: body.dsn }
        : { ok: true, id: body.id, nextAttemptAt: '2026-11-27T19:02:00.000Z' },
    );
    const ops = new QueueOps(nc);
    expect(await ops.cancel(caller, 's1:example.org', false)).toEqual({
      ok: true,
      id: 's1:example.org',
      dsnSent: false,
    });
    expect(await ops.retry(caller, 's1:example.org')).toMatchObject({ id: 's1:example.org' });
    expect(seen.map((s) => s.subject)).toEqual([QueueSubjects.cancel, QueueSubjects.retry]);
    expect(seen[0]?.body).toEqual({ caller, id: 's1:example.org', dsn: false });
  });

  it('finds an entry for the guard across pages as a read-only auditor, by recipient domain', async () => {
    const { nc, seen } = fakeNats((_subject, body) =>
      body.cursor === undefined
        ? { ok: true, items: [entry('s1:example.org', 'a@alpha.test')], nextCursor: 's1:example.org' }
        : { ok: true, items: [entry('s2:example.org', 'b@beta.test')] },
    );
    const found = await new QueueOps(nc).find('s2:example.org', 'owner:o1');
    expect(found === undefined ? '' : senderDomainOf(found)).toBe('beta.test');
    expect(seen).toHaveLength(2);
    expect(seen[0]?.body).toMatchObject({
      caller: { role: 'auditor', domains: [] },
      domain: 'example.org',
      limit: 500,
    });
    expect(await new QueueOps(nc).find('no-colon', 'owner:o1')).toBeUndefined();
  });

  it('parses queue ids', () => {
    expect(parseQueueId('01JD:Example.ORG')).toEqual({ spoolId: '01JD', domain: 'example.org' });
    expect(parseQueueId(':example.org')).toBeUndefined();
    expect(parseQueueId('01JD:')).toBeUndefined();
  });
});

describe('queueScope', () => {
  it('sends system-wide decisions with the role and domain decisions as a domain scope', () => {
    const owner: Subject = { role: 'owner', id: 'o', domains: [] };
    const ownerToken: Subject = { ...owner, token: { scopes: ['*'], domains: ['alpha.test'] } };
    const da: Subject = { role: 'domain-admin', id: 'd', domains: ['alpha.test'] };
    const scope = (s: Subject) => {
      const d = decide(s, 'queue.read', { list: true });
      return d.allow ? queueScope(s.role, d.domains) : 'denied';
    };
    expect(scope(owner)).toEqual({ role: 'owner', domains: [] });
    expect(scope(ownerToken)).toEqual({ role: 'domain-admin', domains: ['alpha.test'] });
    expect(scope(da)).toEqual({ role: 'domain-admin', domains: ['alpha.test'] });
    expect(scope({ role: 'helpdesk', id: 'h', domains: ['alpha.test'] })).toBe('denied');
    expect(queueScope('domain-admin', [])).toBeUndefined();
    // A domain-admin changes only mail sent from its domains (DESIGN §6).
    expect(decide(da, 'queue.write', { domain: 'beta.test' })).toMatchObject({ allow: false });
    expect(decide(da, 'queue.write', { domain: 'alpha.test' })).toMatchObject({ allow: true });
  });
});
