/**
 * Webhook management over the REST API (docs/webhooks.md) against real storage, NATS and
 * FerretDB: a domain-admin manages their own domain's webhooks and nobody else's, the secret is
 * in the answer that creates or rotates it and nowhere else (lists, audit log, service logs),
 * bad URLs and event types get a 400, and every change is audited.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, OWNER, startAdminHarness, type AdminHarness } from './harness.js';

let h: AdminHarness;
let owner: ApiClient;
let da1: ApiClient;
let da2: ApiClient;
const PASSWORD = 'webhook test password 1';

interface WebhookView {
  id: string;
  domain: string;
  url: string;
  events: string[];
  enabled: boolean;
  secret?: string;
}

beforeAll(async () => {
  h = await startAdminHarness();
  owner = new ApiClient(h.baseUrl);
  expect((await owner.login(OWNER.email, OWNER.password)).status).toBe(200);
  for (const name of ['w1.test', 'w2.test']) {
    expect((await owner.post('/api/v1/domains', { name })).status).toBe(201);
  }
  const admin = async (email: string, domain: string): Promise<ApiClient> => {
    const created = await owner.post('/api/v1/admins', {
      email,
      password: PASSWORD,
      role: 'domain-admin',
      domains: [domain],
    });
    expect(created.status, created.text).toBe(201);
    const c = new ApiClient(h.baseUrl);
    expect((await c.login(email, PASSWORD)).status).toBe(200);
    return c;
  };
  da1 = await admin('da1@example.test', 'w1.test');
  da2 = await admin('da2@example.test', 'w2.test');
}, 120_000);
afterAll(async () => {
  await h?.stop();
});

describe('webhooks API', () => {
  it('lets a domain-admin manage their own webhooks, shows the secret once, and audits', async () => {
    const created = await da1.post('/api/v1/domains/w1.test/webhooks', {
      url: 'https://hooks.example.com/postmesh',
      events: ['delivered', 'bounced'],
    });
    expect(created.status, created.text).toBe(201);
    const hook = created.body as WebhookView;
    expect(hook).toMatchObject({
      domain: 'w1.test',
      url: 'https://hooks.example.com/postmesh',
      events: ['delivered', 'bounced'],
      enabled: true,
    });
    expect(hook.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    const secret = hook.secret ?? '';

    const listed = await da1.get('/api/v1/domains/w1.test/webhooks');
    expect(listed.status).toBe(200);
    expect((listed.body as { items: WebhookView[] }).items.map((w) => w.id)).toEqual([hook.id]);
    expect(listed.text).not.toContain(secret);
    expect(listed.text).not.toContain('secret');

    const changed = await da1.patch(`/api/v1/domains/w1.test/webhooks/${hook.id}`, {
      enabled: false,
      events: ['spam-rejected'],
    });
    expect(changed.status, changed.text).toBe(200);
    expect(changed.body).toMatchObject({ enabled: false, events: ['spam-rejected'], url: hook.url });
    expect(changed.text).not.toContain('secret');

    const rotated = await da1.post(`/api/v1/domains/w1.test/webhooks/${hook.id}/rotate-secret`, {});
    expect(rotated.status, rotated.text).toBe(200);
    const newSecret = (rotated.body as WebhookView).secret ?? '';
    expect(newSecret).toMatch(/^whsec_/);
    expect(newSecret).not.toBe(secret);

    // The domain-admin of another domain: 403 on every webhook endpoint of w1.test.
    for (const [method, path, body] of [
      ['GET', '/api/v1/domains/w1.test/webhooks', undefined],
      [
        'POST',
        '/api/v1/domains/w1.test/webhooks',
        { url: 'https://evil.example.com/', events: ['received'] },
      ],
      ['PATCH', `/api/v1/domains/w1.test/webhooks/${hook.id}`, { enabled: true }],
      ['POST', `/api/v1/domains/w1.test/webhooks/${hook.id}/rotate-secret`, {}],
      ['DELETE', `/api/v1/domains/w1.test/webhooks/${hook.id}`, undefined],
    ] as const) {
      const r = await da2.request(method, path, body);
      expect(r.status, `${method} ${path}`).toBe(403);
      expect(r.text).not.toContain(newSecret);
    }
    // Nor through their own domain's path: the webhook must belong to the domain in the path.
    const sideways = await da2.request('DELETE', `/api/v1/domains/w2.test/webhooks/${hook.id}`);
    expect(sideways.status).toBe(404);

    // Bad input: a clear 400 naming the field.
    for (const [body, field] of [
      [{ url: 'ftp://hooks.example.com/', events: ['delivered'] }, 'url'],
      [{ url: 'http://10.1.2.3/hook', events: ['delivered'] }, 'url'],
      [{ url: 'http://127.0.0.1:8080/hook', events: ['delivered'] }, 'url'],
      [{ url: 'https://hooks.example.com/', events: ['opened'] }, 'events[0]'],
      [{ url: 'https://hooks.example.com/', events: [] }, 'events'],
    ] as const) {
      const r = await da1.post('/api/v1/domains/w1.test/webhooks', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body).toMatchObject({ error: { status: 400, field } });
    }

    const removed = await da1.request('DELETE', `/api/v1/domains/w1.test/webhooks/${hook.id}`);
    expect(removed.status).toBe(200);
    expect((await da1.get('/api/v1/domains/w1.test/webhooks')).body).toEqual({
      items: [],
      nextPageToken: '',
    });

    const audit = await owner.get('/api/v1/audit?action=webhooks.');
    expect(audit.status).toBe(200);
    const entries = (
      audit.body as { items: { action: string; result: string; actor: string; detail: string }[] }
    ).items;
    const summary = entries.map((e) => `${e.action} ${e.result} ${e.detail.split(' ')[0] ?? ''}`);
    for (const expected of [
      'webhooks.write success POST',
      'webhooks.write success PATCH',
      'webhooks.write success DELETE',
      'webhooks.read denied GET',
      'webhooks.write denied POST',
    ]) {
      expect(summary).toContain(expected);
    }
    // Secrets appear nowhere but in the two answers that carried them.
    for (const text of [audit.text, h.logs()]) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain(newSecret);
    }
  });
});
