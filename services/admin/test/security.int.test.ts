/**
 * Security behaviour of the admin API: CSRF, session expiry, login throttling and
 * lockout, API token scopes, the audit trail of changes and denials, and hostile input answered
 * with 4xx in the one error format and never a stack trace.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, OWNER, startAdminHarness, type AdminHarness } from './harness.js';

let h: AdminHarness;
let owner: ApiClient;
const PASSWORD = 'security password 2026';
let ipCounter = 10;
/** Each test signs in from its own address (one proxy hop is trusted here), so throttles do not mix. */
const freshIp = (): string => `192.0.2.${ipCounter++}`;

function client(ip = freshIp(), bearer?: string): ApiClient {
  const c = new ApiClient(h.baseUrl, bearer);
  const request = c.request.bind(c);
  c.request = (method, path, body, options = {}) =>
    request(method, path, body, { ...options, headers: { 'x-forwarded-for': ip, ...options.headers } });
  return c;
}

beforeAll(async () => {
  h = await startAdminHarness({
    adminEnv: {
      POSTMESH_SESSION_IDLE_SECONDS: '3',
      POSTMESH_TRUST_PROXY_HOPS: '1',
      POSTMESH_LOGIN_MAX_FAILURES_PER_IP: '5',
      POSTMESH_LOGIN_BASE_DELAY_MS: '20',
    },
  });
  // Sessions idle out after 3 s here, so the suite's owner works through an API token.
  const session = client('192.0.2.1');
  expect((await session.login(OWNER.email, OWNER.password)).status).toBe(200);
  const token = await session.post('/api/v1/tokens', { name: 'suite', scopes: ['*'] });
  owner = client('192.0.2.2', (token.body as { secret: string }).secret);
  await owner.post('/api/v1/domains', { name: 'sec.test' });
  await owner.post('/api/v1/domains', { name: 'other.test' });
  await owner.post('/api/v1/admins', {
    email: 'da@sec.test',
    password: PASSWORD,
    role: 'domain-admin',
    domains: ['sec.test'],
  });
});
afterAll(async () => {
  await h?.stop();
});

/** The one error format, and nothing of the server's insides. */
function expectCleanError(
  r: { status: number; body: unknown; text: string },
  status: number,
  code: string,
): void {
  expect(r.status, r.text).toBe(status);
  expect(r.body).toMatchObject({ error: { status, code, message: expect.any(String) as unknown } });
  expect(r.text).not.toMatch(/\bat .+:\d+:\d+|node_modules|stack|Error:|\/work\//);
}

describe('sessions and CSRF', () => {
  it('sets an HttpOnly, SameSite=Strict session cookie and refuses changes without the CSRF token', async () => {
    const c = client();
    const login = await c.login(OWNER.email, OWNER.password);
    expect(login.headers.get('set-cookie')).toMatch(
      /^pm_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/,
    );
    const noCsrf = await c.request('POST', '/api/v1/domains', { name: 'csrf.test' }, { csrf: false });
    expectCleanError(noCsrf, 403, 'permission_denied');
    const wrong = await c.request(
      'POST',
      '/api/v1/domains',
      { name: 'csrf.test' },
      { csrf: false, headers: { 'x-csrf-token': 'x'.repeat(43) } },
    );
    expectCleanError(wrong, 403, 'permission_denied');
    expect((await c.get('/api/v1/domains/csrf.test')).status).toBe(404);
    // Reads need no token; with the token the change goes through.
    expect((await c.request('GET', '/api/v1/domains', undefined, { csrf: false })).status).toBe(200);
    expect((await c.post('/api/v1/domains', { name: 'csrf.test' })).status).toBe(201);
  });

  it('refuses a session after its idle timeout, and after logout', async () => {
    const c = client();
    await c.login(OWNER.email, OWNER.password);
    expect((await c.get('/api/v1/me')).status).toBe(200);
    await new Promise((r) => setTimeout(r, 3_500));
    expectCleanError(await c.get('/api/v1/me'), 401, 'unauthenticated');

    const d = client();
    await d.login(OWNER.email, OWNER.password);
    const out = await d.post('/api/v1/auth/logout');
    expect(out.status).toBe(200);
    expect(out.headers.get('set-cookie')).toContain('Max-Age=0');
    expectCleanError(await d.get('/api/v1/me'), 401, 'unauthenticated');
  });

  it('refuses requests with no credentials, a forged cookie or a made-up token', async () => {
    expectCleanError(await client().get('/api/v1/users'), 401, 'unauthenticated');
    const forged = client();
    forged.cookie = 'pm_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    expectCleanError(await forged.get('/api/v1/users'), 401, 'unauthenticated');
    expectCleanError(
      await client(freshIp(), 'pmt_notarealtoken').get('/api/v1/users'),
      401,
      'unauthenticated',
    );
  });
});

describe('brute force', () => {
  it('throttles an address after repeated failures, even for the right password', async () => {
    const ip = freshIp();
    const c = client(ip);
    for (let i = 0; i < 5; i++)
      expectCleanError(await c.login(`guess${i}@sec.test`, `wrong guess ${i}`), 401, 'unauthenticated');
    const throttled = await c.login(OWNER.email, OWNER.password);
    expectCleanError(throttled, 429, 'too_many_requests');
    expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThan(0);
    // Another address is not affected.
    const other = await client().login(OWNER.email, OWNER.password);
    expect(other.status, other.text + h.logs()).toBe(200);
  });

  it('locks an account after repeated failures from many addresses', async () => {
    await owner.post('/api/v1/admins', { email: 'target@sec.test', password: PASSWORD, role: 'auditor' });
    for (let i = 0; i < 5; i++) await client().login('target@sec.test', `wrong guess ${i}`);
    // The right password from a fresh address is refused with the same generic answer.
    const r = await client().login('target@sec.test', PASSWORD);
    expectCleanError(r, 401, 'unauthenticated');
    expect(r.text).not.toContain('locked until');
  });
});

describe('API tokens', () => {
  it('act with their scopes only, need no CSRF token, and stop working when revoked', async () => {
    const session = client();
    await session.login(OWNER.email, OWNER.password);
    const created = await session.post('/api/v1/tokens', { name: 'reader', scopes: ['domains:read'] });
    expect(created.status).toBe(201);
    const { secret, id } = created.body as { secret: string; id: string };
    const bot = client(freshIp(), secret);
    expect((await bot.get('/api/v1/domains')).status).toBe(200);
    expectCleanError(await bot.post('/api/v1/domains', { name: 'bot.test' }), 403, 'permission_denied');
    expectCleanError(await bot.get('/api/v1/users'), 403, 'permission_denied');
    // A token cannot mint tokens.
    expectCleanError(
      await bot.post('/api/v1/tokens', { name: 'x', scopes: ['*'] }),
      403,
      'permission_denied',
    );
    expect((await session.delete(`/api/v1/tokens/${id}`)).status).toBe(200);
    expectCleanError(await bot.get('/api/v1/domains'), 401, 'unauthenticated');
  });

  it('never exceed their administrator: a domain-admin token with * stays in its domains', async () => {
    const da = client();
    await da.login('da@sec.test', PASSWORD);
    const { secret } = (await da.post('/api/v1/tokens', { name: 'all', scopes: ['*'] })).body as {
      secret: string;
    };
    const bot = client(freshIp(), secret);
    expect((await bot.post('/api/v1/users', { address: 'made@sec.test', password: PASSWORD })).status).toBe(
      201,
    );
    expectCleanError(
      await bot.post('/api/v1/users', { address: 'made@other.test', password: PASSWORD }),
      403,
      'permission_denied',
    );
    expectCleanError(await bot.post('/api/v1/domains', { name: 'x.test' }), 403, 'permission_denied');
    expectCleanError(
      await da.post('/api/v1/tokens', { name: 'wide', scopes: ['*'], domains: ['other.test'] }),
      403,
      'permission_denied',
    );
  });
});

describe('audit log', () => {
  it('records changes and denials with actor, action, target, time, source IP and result', async () => {
    const ip = freshIp();
    const c = client(ip);
    await c.login(OWNER.email, OWNER.password);
    expect((await c.post('/api/v1/domains', { name: 'audited.test' })).status).toBe(201);
    const da = client(ip);
    await da.login('da@sec.test', PASSWORD);
    expect((await da.post('/api/v1/domains', { name: 'sneaky.test' })).status).toBe(403);
    expect((await da.request('PATCH', '/api/v1/domains/other.test', { status: 'suspended' })).status).toBe(
      403,
    );

    const created = await owner.get('/api/v1/audit?action=domains.create&result=success');
    const entry = (created.body as { items: Record<string, unknown>[] }).items.find(
      (e) => e.target === 'audited.test',
    );
    expect(entry).toMatchObject({
      actor: `admin:${OWNER.email}`,
      actorRole: 'owner',
      action: 'domains.create',
      domain: 'audited.test',
      sourceIp: ip,
      result: 'success',
    });
    expect(Date.now() - Date.parse(String(entry?.time))).toBeLessThan(60_000);

    const denied = (await owner.get('/api/v1/audit?actor=admin:da@sec.test&result=denied')).body as {
      items: Record<string, unknown>[];
    };
    expect(denied.items.map((e) => e.action).sort()).toEqual(['domains.create', 'domains.update']);
    expect(denied.items.find((e) => e.action === 'domains.update')).toMatchObject({
      target: 'other.test',
      domain: 'other.test',
      sourceIp: ip,
    });
    const logins = (await owner.get(`/api/v1/audit?action=auth.login&result=denied`)).body as {
      items: Record<string, unknown>[];
    };
    expect(logins.items.length).toBeGreaterThan(0);
    // The log itself cannot be changed through the API.
    expect((await owner.delete('/api/v1/audit')).status).toBe(404);
  });

  it('pages with pageSize and pageToken', async () => {
    const first = (await owner.get('/api/v1/audit?pageSize=2')).body as {
      items: { id: string }[];
      nextPageToken: string;
    };
    expect(first.items).toHaveLength(2);
    expect(first.nextPageToken).not.toBe('');
    const second = (
      await owner.get(`/api/v1/audit?pageSize=2&pageToken=${encodeURIComponent(first.nextPageToken)}`)
    ).body as { items: { id: string }[] };
    expect(second.items.map((e) => e.id)).not.toContain(first.items[0]?.id);
  });
});

describe('hostile input', () => {
  it('answers wrong types, unknown fields and missing fields with a 400 naming the field', async () => {
    const wrongType = await owner.post('/api/v1/users', { address: 42, password: PASSWORD });
    expectCleanError(wrongType, 400, 'invalid_argument');
    expect(wrongType.body).toMatchObject({ error: { field: 'address' } });
    const unknown = await owner.post('/api/v1/domains', { name: 'ok.test', admin: true });
    expectCleanError(unknown, 400, 'invalid_argument');
    expect(unknown.body).toMatchObject({ error: { field: 'admin' } });
    expectCleanError(await owner.post('/api/v1/domains', {}), 400, 'invalid_argument');
    expectCleanError(
      await owner.post('/api/v1/users', { address: 'x@sec.test', password: 'short' }),
      400,
      'invalid_argument',
    );
    expectCleanError(await owner.get('/api/v1/users?pageSize=-5'), 400, 'invalid_argument');
    expectCleanError(await owner.get('/api/v1/users?pageToken=%00%ff'), 400, 'invalid_argument');
    expectCleanError(await owner.get('/api/v1/users?sort=evil'), 400, 'invalid_argument');
  });

  it('refuses huge bodies, broken JSON, other content types and prototype pollution', async () => {
    expectCleanError(
      await owner.request('POST', '/api/v1/domains', undefined, {
        rawBody: JSON.stringify({ name: 'a'.repeat(200_000) }),
      }),
      413,
      'payload_too_large',
    );
    expectCleanError(
      await owner.request('POST', '/api/v1/domains', undefined, { rawBody: '{"name": "broken' }),
      400,
      'invalid_argument',
    );
    expectCleanError(
      await owner.request('POST', '/api/v1/domains', undefined, {
        rawBody: 'name=x',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      }),
      415,
      'unsupported_media_type',
    );
    expectCleanError(
      await owner.request('POST', '/api/v1/domains', undefined, {
        rawBody: '{"__proto__": {"admin": true}, "name": "p.test"}',
      }),
      400,
      'invalid_argument',
    );
    expectCleanError(
      await owner.request('POST', '/api/v1/domains', undefined, { rawBody: '[1,2,3]' }),
      400,
      'invalid_argument',
    );
  });

  it('treats injection strings as data and answers 4xx', async () => {
    const attempts = [
      await owner.post('/api/v1/auth/login', { email: { $gt: '' }, password: { $ne: null } }),
      await owner.post('/api/v1/domains', { name: "x.test'; DROP TABLE domains; --" }),
      await owner.post('/api/v1/users', {
        address: '<script>alert(1)</script>@sec.test',
        password: PASSWORD,
      }),
      await owner.get('/api/v1/users/..%2F..%2Fetc%2Fpasswd'),
      await owner.get('/api/v1/domains/%24where'),
      await owner.get('/api/v1/users/%7B%22%24gt%22%3A%22%22%7D'),
      await owner.get('/api/v1/trace?address[$ne]=x'),
      await owner.get(`/api/v1/users/${'a'.repeat(5000)}`),
    ];
    for (const r of attempts) {
      expect(r.status, r.text).toBeGreaterThanOrEqual(400);
      expect(r.status, r.text).toBeLessThan(500);
      expect(r.text).not.toMatch(/\bat .+:\d+:\d+|node_modules|\/work\//);
    }
    const domains = (await owner.get('/api/v1/domains')).body as { items: { name: string }[] };
    expect(domains.items.map((d) => d.name)).toEqual(expect.arrayContaining(['sec.test', 'other.test']));
  });

  it('sends security headers and serves the OpenAPI document', async () => {
    const r = await client().get('/api/docs');
    expect(r.status).toBe(200);
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    expect(r.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(r.body).toMatchObject({
      openapi: '3.1.0',
      paths: { '/api/v1/users/{id}': { get: {}, patch: {}, delete: {} } },
    });
  });
});
