/**
 * A mail user's Sieve filters and vacation reply over the REST API against real storage, NATS and
 * FerretDB: the user manages their own scripts (an invalid one is a 400 with its line and column,
 * the active one cannot be deleted), the vacation form writes a script storage accepts and reads
 * it back, nobody reaches another user's scripts except a domain-admin of that user's domain, and
 * every change is audited.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, OWNER, startAdminHarness, type AdminHarness } from './harness.js';

let h: AdminHarness;
let owner: ApiClient;
const PASSWORD = 'sieve test password 1';
const ids: Record<string, string> = {};

async function signIn(login: string): Promise<ApiClient> {
  const c = new ApiClient(h.baseUrl);
  const r = await c.login(login, PASSWORD);
  expect(r.status, r.text).toBe(200);
  return c;
}

beforeAll(async () => {
  h = await startAdminHarness();
  owner = new ApiClient(h.baseUrl);
  expect((await owner.login(OWNER.email, OWNER.password)).status).toBe(200);
  for (const name of ['s1.test', 's2.test']) {
    expect((await owner.post('/api/v1/domains', { name })).status).toBe(201);
  }
  for (const address of ['ann@s1.test', 'bob@s1.test', 'cy@s2.test']) {
    const r = await owner.post('/api/v1/users', { address, password: PASSWORD });
    expect(r.status, r.text).toBe(201);
    ids[address] = (r.body as { id: string }).id;
  }
  for (const [email, domain] of [
    ['da1@example.test', 's1.test'],
    ['da2@example.test', 's2.test'],
  ] as const) {
    const r = await owner.post('/api/v1/admins', {
      email,
      password: PASSWORD,
      role: 'domain-admin',
      domains: [domain],
    });
    expect(r.status, r.text).toBe(201);
  }
}, 120_000);
afterAll(async () => {
  await h?.stop();
});

describe('Sieve filters API', () => {
  it('lets a mail user manage their own scripts and vacation reply, and audits each change', async () => {
    const ann = await signIn('ann@s1.test');
    const base = `/api/v1/users/${ids['ann@s1.test']}`;
    expect((await ann.get(`${base}/sieve-scripts`)).body).toEqual({ items: [], nextPageToken: '' });

    const script = 'require "fileinto";\r\nif header :contains "subject" "invoice" { fileinto "Bills"; }\r\n';
    const put = await ann.post(`${base}/sieve-scripts`, { name: 'bills', content: script, activate: true });
    expect(put.status, put.text).toBe(200);
    expect(put.body).toEqual({ name: 'bills', active: true });
    expect((await ann.get(`${base}/sieve-scripts/bills`)).body).toEqual({
      name: 'bills',
      content: script,
      active: true,
    });

    // A mistake: 400 naming the content, with the line and column.
    const bad = await ann.post(`${base}/sieve-scripts`, {
      name: 'broken',
      content: 'keep;\r\nfileinto "x";\r\n',
    });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ error: { code: 'invalid_argument', field: 'content' } });
    expect((bad.body as { error: { message: string } }).error.message).toMatch(/^line 2, column 1: /);
    const badName = await ann.post(`${base}/sieve-scripts`, { name: 'a\tb', content: 'keep;' });
    expect(badName.status).toBe(400);
    expect(badName.body).toMatchObject({ error: { field: 'name' } });

    // The active script cannot be deleted; deactivated, it can.
    expect((await ann.request('DELETE', `${base}/sieve-scripts/bills`)).status).toBe(409);
    expect((await ann.get(`${base}/sieve-scripts/nothing`)).status).toBe(404);

    // Vacation: nothing yet; then on (replacing the active filter), read back, then off.
    expect((await ann.get(`${base}/vacation`)).body).toEqual({
      enabled: false,
      subject: '',
      body: '',
      days: 7,
      editedByHand: false,
    });
    const on = await ann.post(`${base}/vacation`, {
      enabled: true,
      subject: 'Away "until" Monday',
      body: 'I am away.\nBack on Monday \\o/',
      days: 3,
    });
    expect(on.status, on.text).toBe(200);
    expect(on.body).toMatchObject({ enabled: true, replaced: 'bills' });
    expect((await ann.get(`${base}/vacation`)).body).toEqual({
      enabled: true,
      subject: 'Away "until" Monday',
      body: 'I am away.\nBack on Monday \\o/',
      days: 3,
      editedByHand: false,
    });
    const vacation = (await ann.get(`${base}/sieve-scripts/vacation`)).body as {
      content: string;
      active: boolean;
    };
    expect(vacation.active).toBe(true);
    expect(vacation.content).toContain(
      'vacation :days 3 :subject "Away \\"until\\" Monday" "I am away.\r\nBack on Monday \\\\o/";',
    );
    expect(
      (await ann.post(`${base}/vacation`, { enabled: true, subject: '', body: ' ', days: 3 })).status,
    ).toBe(400);
    expect(
      (await ann.post(`${base}/vacation`, { enabled: true, subject: 'x', body: 'y', days: 366 })).status,
    ).toBe(400);
    const off = await ann.post(`${base}/vacation`, {
      enabled: false,
      subject: 'Away',
      body: 'Gone.',
      days: 3,
    });
    expect(off.body).toMatchObject({ enabled: false, replaced: null });
    expect((await ann.get(`${base}/sieve-scripts`)).body).toEqual({
      items: [
        { name: 'bills', active: false },
        { name: 'vacation', active: false },
      ],
      nextPageToken: '',
    });
    // Edited by hand: the form says so rather than overwrite what it cannot show.
    await ann.post(`${base}/sieve-scripts`, {
      name: 'vacation',
      content: 'require "vacation";\r\nvacation "Hand-made";\r\n',
    });
    expect((await ann.get(`${base}/vacation`)).body).toMatchObject({ editedByHand: true });

    expect((await ann.post(`${base}/sieve-active`, { name: 'bills' })).body).toEqual({ active: 'bills' });
    expect((await ann.post(`${base}/sieve-active`, { name: 'nothing' })).status).toBe(404);
    expect((await ann.post(`${base}/sieve-active`, { name: '' })).body).toEqual({ active: null });
    expect((await ann.request('DELETE', `${base}/sieve-scripts/bills`)).status).toBe(200);

    const audit = await owner.get('/api/v1/audit?action=sieve.');
    const summary = (audit.body as { items: { action: string; result: string; detail: string }[] }).items.map(
      (e) => `${e.action} ${e.result} ${e.detail.split(' ')[0] ?? ''}`,
    );
    expect(summary).toContain('sieve.write success POST');
    expect(summary).toContain('sieve.write success DELETE');
    expect(summary).toContain('sieve.write failed DELETE');
  });

  it("keeps everyone else out of a user's scripts except a domain-admin of the user's domain", async () => {
    const annBase = `/api/v1/users/${ids['ann@s1.test']}`;
    const bob = await signIn('bob@s1.test');
    const cy = await signIn('cy@s2.test');
    const da1 = await signIn('da1@example.test');
    const da2 = await signIn('da2@example.test');
    for (const client of [bob, cy, da2]) {
      for (const [method, path, body] of [
        ['GET', `${annBase}/sieve-scripts`, undefined],
        ['GET', `${annBase}/vacation`, undefined],
        ['POST', `${annBase}/sieve-scripts`, { name: 'evil', content: 'discard;' }],
        ['POST', `${annBase}/sieve-active`, { name: '' }],
        ['POST', `${annBase}/vacation`, { enabled: true, subject: 'x', body: 'y', days: 1 }],
        ['DELETE', `${annBase}/sieve-scripts/vacation`, undefined],
      ] as const) {
        const r = await client.request(method, path, body);
        expect(r.status, `${method} ${path}`).toBe(403);
      }
    }
    // The domain-admin of s1.test may help ann.
    const helped = await da1.post(`${annBase}/sieve-scripts`, { name: 'by-admin', content: 'keep;\r\n' });
    expect(helped.status, helped.text).toBe(200);
    expect(
      ((await da1.get(`${annBase}/sieve-scripts`)).body as { items: { name: string }[] }).items.map(
        (s) => s.name,
      ),
    ).toContain('by-admin');
    const denied = await owner.get('/api/v1/audit?action=sieve.');
    expect((denied.body as { items: { result: string }[] }).items.some((e) => e.result === 'denied')).toBe(
      true,
    );
  });
});
