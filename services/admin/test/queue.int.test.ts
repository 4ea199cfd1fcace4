/**
 * The outbound queue through the admin API with the real mta-delivery process: a message to a
 * host that answers 451 (RFC 5321 §4.2.1: transient) stays deferred; the API lists it with its
 * last error, retries it and cancels it; a domain-admin of another domain gets 403.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, OWNER, startAdminHarness, type AdminHarness } from './harness.js';
import { startDeferringMta, until, type DeferringMta } from './mta.js';

const PASSWORD = 'queue test password 1';
let h: AdminHarness;
let owner: ApiClient;
let other: ApiClient;
let mta: DeferringMta;

interface Listed {
  id: string;
  sender: string;
  attempts: number;
  nextAttemptAt: string;
  lastError: string;
}

beforeAll(async () => {
  h = await startAdminHarness();
  owner = new ApiClient(h.baseUrl);
  expect((await owner.login(OWNER.email, OWNER.password)).status).toBe(200);
  for (const name of ['alpha.test', 'beta.test'])
    expect((await owner.post('/api/v1/domains', { name })).status).toBeLessThan(300);
  expect(
    (
      await owner.post('/api/v1/admins', {
        email: 'beta-admin@example.test',
        password: PASSWORD,
        role: 'domain-admin',
        domains: ['beta.test'],
      })
    ).status,
  ).toBeLessThan(300);
  other = new ApiClient(h.baseUrl);
  expect((await other.login('beta-admin@example.test', PASSWORD)).status).toBe(200);

  mta = await startDeferringMta(h);
}, 120_000);

afterAll(async () => {
  await mta?.stop();
  await h?.stop();
});

const queueOne = (subject: string) => mta.queueOne(subject, 'ann@alpha.test');

const listed = async (client: ApiClient, id: string): Promise<Listed | undefined> => {
  const r = await client.get('/api/v1/queue?domain=alpha.test');
  return (r.body as { items?: Listed[] }).items?.find((e) => e.id === id);
};

describe('outbound queue through mta-delivery', () => {
  it('lists a deferred message with its last error, retries it and cancels it; another domain gets 403', async () => {
    const id = await queueOne('deferred');
    const entry = await until('the deferred entry', async () => {
      const e = await listed(owner, id);
      return e !== undefined && e.attempts >= 1 ? e : undefined;
    });
    expect(entry).toMatchObject({ sender: 'ann@alpha.test' });
    expect(entry.lastError).toMatch(/451/);
    expect(Date.parse(entry.nextAttemptAt)).toBeGreaterThan(Date.now());

    // A domain-admin of beta.test sees nothing of alpha's mail and may not touch it.
    const theirs = (await other.get('/api/v1/queue')).body as { items: Listed[] };
    expect(theirs.items.map((e) => e.id)).not.toContain(id);
    const path = `/api/v1/queue/${encodeURIComponent(id)}`;
    expect((await other.post(`${path}/retry`)).body).toMatchObject({
      error: { status: 403, code: 'permission_denied' },
    });
    expect((await other.delete(`${path}?dsn=false`)).status).toBe(403);

    const retried = await owner.post(`${path}/retry`);
    expect(retried.body).toMatchObject({ retried: true, id });
    // The retry runs within a tick and is deferred again: one more attempt.
    await until('a second attempt', async () => {
      const e = await listed(owner, id);
      return e !== undefined && e.attempts > entry.attempts ? e : undefined;
    });

    expect((await owner.delete(`${path}?dsn=false`)).body).toEqual({ cancelled: true, id, dsnSent: false });
    await until('the entry to leave the queue', async () =>
      (await listed(owner, id)) === undefined ? true : undefined,
    );
    expect((await owner.post(`${path}/retry`)).status).toBe(404);

    const audit = (await owner.get('/api/v1/audit?pageSize=100')).text;
    expect(audit).toContain('queue.write');
    expect(audit).toContain('denied');
  });
});
