/**
 * The admin REST API end to end against real storage, NATS and FerretDB: sign-in, the main
 * features, one error format, pagination, the OpenAPI document.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, OWNER, startAdminHarness, type AdminHarness } from './harness.js';

let h: AdminHarness;
let owner: ApiClient;

beforeAll(async () => {
  h = await startAdminHarness();
  owner = new ApiClient(h.baseUrl);
  const r = await owner.login(OWNER.email, OWNER.password);
  expect(r.status).toBe(200);
});
afterAll(async () => {
  await h?.stop();
});

describe('owner', () => {
  it('signs in, sees who they are, creates a domain and a user, and lists them', async () => {
    const me = await owner.get('/api/v1/me');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ kind: 'admin', role: 'owner', admin: { email: OWNER.email } });
    const d = await owner.post('/api/v1/domains', { name: 'alpha.test' });
    expect(d.status, d.text).toBe(201);
    const u = await owner.post('/api/v1/users', {
      address: 'ann@alpha.test',
      password: 'a good password 1',
      displayName: 'Ann',
    });
    expect(u.status, u.text).toBe(201);
    const list = await owner.get('/api/v1/users?domain=alpha.test');
    expect(list.body).toMatchObject({
      items: [{ address: 'ann@alpha.test', displayName: 'Ann' }],
      nextPageToken: '',
    });
  });
});
