/**
 * Console sign-in throttling and session revocation against the real admin and storage processes
 * and a real JetStream KV (libs/bus auth-throttle, the throttle imap and smtp-inbound use):
 * concurrent wrong sign-ins never get past the limits, a mail user's address and aliases share one
 * account counter, an address written into X-Forwarded-For by the client does not choose the
 * counter, a success does not reset the address's counter, NATS stopped still leaves a limit,
 * and a password reset or disabling a user ends their console sessions.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, OWNER, startAdminHarness, type AdminHarness } from './harness.js';

const PER_IP = 6;
const PER_ACCOUNT = 4;
const PASSWORD = 'throttle password 2026';

let h: AdminHarness;
let owner: ApiClient;
let ipCounter = 10;
const freshIp = (): string => `203.0.113.${ipCounter++}`;

/**
 * A client behind our one trusted proxy: the proxy appends the address it saw (`ip`) to whatever
 * X-Forwarded-For the client sent (`spoofed`).
 */
function client(ip: string, spoofed?: string): ApiClient {
  const c = new ApiClient(h.baseUrl);
  const request = c.request.bind(c);
  const xff = spoofed === undefined ? ip : `${spoofed}, ${ip}`;
  c.request = (method, path, body, options = {}) =>
    request(method, path, body, { ...options, headers: { 'x-forwarded-for': xff, ...options.headers } });
  return c;
}

async function created(r: Promise<{ status: number; body: unknown; text: string }>): Promise<{ id: string }> {
  const res = await r;
  if (res.status >= 300) throw new Error(`setup call failed: ${res.status} ${res.text}`);
  return res.body as { id: string };
}

beforeAll(async () => {
  h = await startAdminHarness({
    adminEnv: {
      POSTMESH_TRUST_PROXY_HOPS: '1',
      // The older spelling trusted any X-Forwarded-For; now it means one hop at most.
      POSTMESH_TRUST_PROXY: 'true',
      POSTMESH_LOGIN_MAX_FAILURES_PER_IP: String(PER_IP),
      POSTMESH_LOGIN_MAX_FAILURES_PER_ACCOUNT: String(PER_ACCOUNT),
      POSTMESH_LOGIN_BASE_DELAY_MS: '10',
    },
  });
  owner = client('203.0.113.1');
  const r = await owner.login(OWNER.email, OWNER.password);
  if (r.status !== 200) throw new Error(`owner cannot sign in: ${r.text}`);
  await created(owner.post('/api/v1/domains', { name: 'throttle.test' }));
});
afterAll(async () => {
  await h?.stop();
});

const statuses = (rs: readonly { status: number }[]): Record<number, number> =>
  rs.reduce<Record<number, number>>((acc, r) => ({ ...acc, [r.status]: (acc[r.status] ?? 0) + 1 }), {});

describe('sign-in throttling', () => {
  it('lets no more wrong passwords through than the account limit, however many arrive at once', async () => {
    await created(owner.post('/api/v1/users', { address: 'race@throttle.test', password: PASSWORD }));
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => client(freshIp()).login('race@throttle.test', `wrong ${i}`)),
    );
    expect(statuses(answers)).toEqual({ 401: PER_ACCOUNT, 429: 20 - PER_ACCOUNT });
    // Now even the right password waits, with Retry-After.
    const locked = await client(freshIp()).login('race@throttle.test', PASSWORD);
    expect(locked.status, locked.text).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('lets no more wrong sign-ins through than the address limit, however many arrive at once', async () => {
    const ip = freshIp();
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => client(ip).login(`nobody${i}@throttle.test`, 'wrong')),
    );
    expect(statuses(answers)).toEqual({ 401: PER_IP, 429: 20 - PER_IP });
  });

  it("counts a mail user's address and aliases as one account (console lockout of mail users)", async () => {
    const ann = await created(
      owner.post('/api/v1/users', { address: 'ann@throttle.test', password: PASSWORD }),
    );
    await created(owner.post('/api/v1/aliases', { address: 'ann.alias@throttle.test', userIds: [ann.id] }));
    // The right password through the alias signs in (and clears the account's counter).
    expect((await client(freshIp()).login('ann.alias@throttle.test', PASSWORD)).status).toBe(200);
    for (const login of [
      'ann@throttle.test',
      'ANN.alias@throttle.test',
      ' Ann@Throttle.test',
      'ann.alias@throttle.test',
    ]) {
      expect((await client(freshIp()).login(login, 'wrong')).status).toBe(401);
    }
    const r = await client(freshIp()).login('ann@throttle.test', PASSWORD);
    expect(r.status, r.text).toBe(429);
  });

  it('counts the address the trusted proxy saw, not one the client wrote into X-Forwarded-For', async () => {
    const ip = freshIp();
    for (let i = 0; i < PER_IP; i++) {
      const r = await client(ip, `192.0.2.${i + 1}`).login(`spoof${i}@throttle.test`, 'wrong');
      expect(r.status).toBe(401);
    }
    const r = await client(ip, '192.0.2.200').login(OWNER.email, OWNER.password);
    expect(r.status, r.text).toBe(429);
    // The audit log has the same address.
    const audit = await owner.get(`/api/v1/audit?action=auth.login&result=denied&pageSize=1000`);
    const sources = (audit.body as { items: { sourceIp: string; target: string }[] }).items
      .filter((e) => e.target.startsWith('spoof'))
      .map((e) => e.sourceIp);
    expect(sources).toHaveLength(PER_IP);
    expect(new Set(sources)).toEqual(new Set([ip]));
  });

  it("does not reset the address's counter on a success", async () => {
    const ip = freshIp();
    for (let i = 0; i < PER_IP - 1; i++) {
      expect((await client(ip).login(`before${i}@throttle.test`, 'wrong')).status).toBe(401);
    }
    expect((await client(ip).login(OWNER.email, OWNER.password)).status).toBe(200);
    expect((await client(ip).login('after@throttle.test', 'wrong')).status).toBe(401);
    const r = await client(ip).login(OWNER.email, OWNER.password);
    expect(r.status, r.text).toBe(429);
  });
});

describe('session revocation', () => {
  it('ends a user’s console sessions when an administrator resets the password', async () => {
    const user = await created(
      owner.post('/api/v1/users', { address: 'reset@throttle.test', password: PASSWORD }),
    );
    const session = client(freshIp());
    expect((await session.login('reset@throttle.test', PASSWORD)).status).toBe(200);
    expect((await session.get('/api/v1/me')).status).toBe(200);
    const reset = await owner.post(`/api/v1/users/${user.id}/password`, { password: `${PASSWORD} new` });
    expect(reset.body).toMatchObject({ changed: true, sessionsRevoked: 1 });
    expect((await session.get('/api/v1/me')).status).toBe(401);
  });

  it('keeps the session a user changes their own password from, and ends the others', async () => {
    const user = await created(
      owner.post('/api/v1/users', { address: 'self@throttle.test', password: PASSWORD }),
    );
    const here = client(freshIp());
    const there = client(freshIp());
    expect((await here.login('self@throttle.test', PASSWORD)).status).toBe(200);
    expect((await there.login('self@throttle.test', PASSWORD)).status).toBe(200);
    const changed = await here.post(`/api/v1/users/${user.id}/password`, {
      password: `${PASSWORD} mine`,
      currentPassword: PASSWORD,
    });
    expect(changed.status, changed.text).toBe(200);
    expect((await here.get('/api/v1/me')).status).toBe(200);
    expect((await there.get('/api/v1/me')).status).toBe(401);
  });

  it('ends the sessions of a user who is disabled, and deletes the app passwords when asked', async () => {
    const user = await created(
      owner.post('/api/v1/users', { address: 'off@throttle.test', password: PASSWORD }),
    );
    await created(owner.post(`/api/v1/users/${user.id}/app-passwords`, { label: 'phone' }));
    const session = client(freshIp());
    expect((await session.login('off@throttle.test', PASSWORD)).status).toBe(200);
    const refused = await owner.patch(`/api/v1/users/${user.id}`, { revokeAppPasswords: true });
    expect(refused.status).toBe(400);
    const disabled = await owner.patch(`/api/v1/users/${user.id}`, {
      status: 'disabled',
      revokeAppPasswords: true,
    });
    expect(disabled.status, disabled.text).toBe(200);
    expect((await session.get('/api/v1/me')).status).toBe(401);
    const left = await owner.get(`/api/v1/users/${user.id}/app-passwords`);
    expect((left.body as { items: unknown[] }).items).toEqual([]);
    // Re-enabled, the user signs in again (with the password; the app password is gone).
    expect((await owner.post(`/api/v1/users/${user.id}/unlock`)).status).toBe(200);
    expect((await client(freshIp()).login('off@throttle.test', PASSWORD)).status).toBe(200);
  });
});

describe('without NATS', () => {
  // Last: NATS does not come back in this suite.
  it('still refuses an address after the limit (counted in the admin process)', async () => {
    const nats = h.env.nats;
    if (nats === undefined) throw new Error('this test needs its own nats-server');
    await nats.stop();
    const ip = freshIp();
    for (let i = 0; i < PER_IP; i++) {
      expect((await client(ip).login(`offline${i}@throttle.test`, 'wrong')).status).toBe(401);
    }
    const r = await client(ip).login(OWNER.email, OWNER.password);
    expect(r.status, r.text).toBe(429);
  });
});
