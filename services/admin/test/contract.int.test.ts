/**
 * Contract test of the admin API against its own OpenAPI document (/api/docs): every documented
 * operation is called with an invalid body (a documented field of the wrong type, or a body where
 * the operation takes none), which must be a documented 400 naming the field, and then with a
 * valid request, which must answer the documented success status with a body that validates
 * against the documented response schema. Real admin, storage, NATS, FerretDB and mta-delivery.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { WEBHOOK_EVENT_TYPES } from '@postmesh/bus';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, OWNER, startAdminHarness, totp, type AdminHarness, type ApiResponse } from './harness.js';
import { startDeferringMta, type DeferringMta } from './mta.js';

type Schema = Record<string, unknown>;
interface Operation {
  parameters: { name: string; in: string }[];
  requestBody?: { content: { 'application/json': { schema: Schema } } };
  responses: Record<string, { content?: { 'application/json': { schema: Schema } } }>;
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
}

/** One call of the sequence: the documented operation, and a valid request for it now. */
interface Case {
  readonly method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** The documented path template, e.g. `/api/v1/users/{id}`. */
  readonly path: string;
  readonly params?: () => Record<string, string>;
  readonly query?: () => string;
  readonly body?: () => unknown;
  /** What the valid request answers when not the documented success (with a reason). */
  readonly expect?: { status: number; why: string };
  /** Keeps what later cases need (ids, secrets). */
  readonly after?: (body: unknown) => void;
}

const DOMAIN = 'contract.test';
const state: Record<string, string> = {};
const id = (key: string) => () => ({ id: state[key] ?? '' });

const CASES: readonly Case[] = [
  { method: 'GET', path: '/api/docs' },
  { method: 'GET', path: '/api/v1/me' },
  {
    method: 'POST',
    path: '/api/v1/auth/login',
    body: () => ({ email: OWNER.email, password: OWNER.password }),
  },
  { method: 'GET', path: '/api/v1/domains', query: () => 'pageSize=10' },
  { method: 'POST', path: '/api/v1/domains', body: () => ({ name: DOMAIN }) },
  { method: 'GET', path: '/api/v1/domains/{domain}', params: () => ({ domain: DOMAIN }) },
  {
    method: 'PATCH',
    path: '/api/v1/domains/{domain}',
    params: () => ({ domain: DOMAIN }),
    body: () => ({ status: 'active' }),
  },
  { method: 'GET', path: '/api/v1/domains/{domain}/dns', params: () => ({ domain: DOMAIN }) },
  { method: 'GET', path: '/api/v1/domains/{domain}/dkim', params: () => ({ domain: DOMAIN }) },
  {
    method: 'POST',
    path: '/api/v1/domains/{domain}/dkim',
    params: () => ({ domain: DOMAIN }),
    body: () => ({ selector: 'contract', algorithm: 'ed25519' }),
    after: (b) => (state.keyId = (b as { id: string }).id),
  },
  {
    method: 'POST',
    path: '/api/v1/domains/{domain}/dkim/{keyId}/activate',
    params: () => ({ domain: DOMAIN, keyId: state.keyId ?? '' }),
  },
  {
    method: 'POST',
    path: '/api/v1/domains/{domain}/dkim/{keyId}/retire',
    params: () => ({ domain: DOMAIN, keyId: state.keyId ?? '' }),
  },
  { method: 'GET', path: '/api/v1/domains/{domain}/webhooks', params: () => ({ domain: DOMAIN }) },
  {
    method: 'POST',
    path: '/api/v1/domains/{domain}/webhooks',
    params: () => ({ domain: DOMAIN }),
    body: () => ({ url: 'https://hooks.contract.test/mail', events: [WEBHOOK_EVENT_TYPES[0]] }),
    after: (b) => (state.webhookId = (b as { id: string }).id),
  },
  {
    method: 'PATCH',
    path: '/api/v1/domains/{domain}/webhooks/{id}',
    params: () => ({ domain: DOMAIN, id: state.webhookId ?? '' }),
    body: () => ({ enabled: false }),
  },
  {
    method: 'POST',
    path: '/api/v1/domains/{domain}/webhooks/{id}/rotate-secret',
    params: () => ({ domain: DOMAIN, id: state.webhookId ?? '' }),
  },
  {
    method: 'DELETE',
    path: '/api/v1/domains/{domain}/webhooks/{id}',
    params: () => ({ domain: DOMAIN, id: state.webhookId ?? '' }),
  },
  {
    method: 'POST',
    path: '/api/v1/users',
    body: () => ({ address: `lea@${DOMAIN}`, password: 'contract test password 1', quotaBytes: 0 }),
    after: (b) => (state.userId = (b as { id: string }).id),
  },
  { method: 'GET', path: '/api/v1/users', query: () => `domain=${DOMAIN}` },
  { method: 'GET', path: '/api/v1/users/{id}', params: id('userId') },
  {
    method: 'PATCH',
    path: '/api/v1/users/{id}',
    params: id('userId'),
    body: () => ({ displayName: 'Léa', limits: { recipientsPerMessage: 10 } }),
  },
  { method: 'POST', path: '/api/v1/users/{id}/unlock', params: id('userId') },
  {
    method: 'POST',
    path: '/api/v1/users/{id}/password',
    params: id('userId'),
    body: () => ({ password: 'another contract password 2' }),
  },
  { method: 'GET', path: '/api/v1/users/{id}/app-passwords', params: id('userId') },
  {
    method: 'POST',
    path: '/api/v1/users/{id}/app-passwords',
    params: id('userId'),
    body: () => ({ label: 'phone' }),
    after: (b) => (state.appPasswordId = (b as { id: string }).id),
  },
  {
    method: 'DELETE',
    path: '/api/v1/users/{id}/app-passwords/{appPasswordId}',
    params: () => ({ id: state.userId ?? '', appPasswordId: state.appPasswordId ?? '' }),
  },
  {
    method: 'POST',
    path: '/api/v1/users/{id}/sieve-scripts',
    params: id('userId'),
    body: () => ({ name: 'filters', content: 'keep;\r\n', activate: true }),
  },
  { method: 'GET', path: '/api/v1/users/{id}/sieve-scripts', params: id('userId') },
  {
    method: 'GET',
    path: '/api/v1/users/{id}/sieve-scripts/{name}',
    params: () => ({ id: state.userId ?? '', name: 'filters' }),
  },
  {
    method: 'POST',
    path: '/api/v1/users/{id}/sieve-active',
    params: id('userId'),
    body: () => ({ name: '' }),
  },
  {
    method: 'DELETE',
    path: '/api/v1/users/{id}/sieve-scripts/{name}',
    params: () => ({ id: state.userId ?? '', name: 'filters' }),
  },
  { method: 'GET', path: '/api/v1/users/{id}/vacation', params: id('userId') },
  {
    method: 'POST',
    path: '/api/v1/users/{id}/vacation',
    params: id('userId'),
    body: () => ({ enabled: true, subject: 'Away', body: 'Back on Monday.', days: 7 }),
  },
  {
    method: 'POST',
    path: '/api/v1/users/{id}/team-mailboxes',
    params: id('userId'),
    body: () => ({ path: 'Team', members: [{ identifier: 'anyone', rights: 'lr' }] }),
  },
  {
    method: 'GET',
    path: '/api/v1/users/{id}/team-mailboxes/acl',
    params: id('userId'),
    query: () => 'path=Team',
  },
  {
    method: 'PATCH',
    path: '/api/v1/users/{id}/team-mailboxes/acl',
    params: id('userId'),
    body: () => ({ path: 'Team', identifier: 'anyone', rights: 'lrs' }),
  },
  {
    method: 'DELETE',
    path: '/api/v1/users/{id}/team-mailboxes/acl',
    params: id('userId'),
    query: () => 'path=Team&identifier=anyone',
  },
  {
    method: 'POST',
    path: '/api/v1/aliases',
    body: () => ({ address: `info@${DOMAIN}`, userIds: [state.userId] }),
  },
  { method: 'GET', path: '/api/v1/aliases', query: () => `domain=${DOMAIN}` },
  { method: 'DELETE', path: '/api/v1/aliases/{address}', params: () => ({ address: `info@${DOMAIN}` }) },
  {
    method: 'POST',
    path: '/api/v1/admins',
    body: () => ({
      email: 'helper@contract.test',
      password: 'contract admin password 3',
      role: 'domain-admin',
      domains: [DOMAIN],
    }),
    after: (b) => (state.adminId = (b as { id: string }).id),
  },
  { method: 'GET', path: '/api/v1/admins' },
  { method: 'GET', path: '/api/v1/admins/{id}', params: id('adminId') },
  {
    method: 'PATCH',
    path: '/api/v1/admins/{id}',
    params: id('adminId'),
    body: () => ({ displayName: 'Helper' }),
  },
  { method: 'DELETE', path: '/api/v1/admins/{id}', params: id('adminId') },
  { method: 'GET', path: '/api/v1/tokens' },
  {
    method: 'POST',
    path: '/api/v1/tokens',
    body: () => ({ name: 'contract', scopes: ['*'] }),
    after: (b) => (state.tokenId = (b as { id: string }).id),
  },
  { method: 'DELETE', path: '/api/v1/tokens/{id}', params: id('tokenId') },
  { method: 'GET', path: '/api/v1/audit', query: () => 'pageSize=5' },
  { method: 'GET', path: '/api/v1/trace', query: () => `pageSize=5&address=lea@${DOMAIN}` },
  { method: 'GET', path: '/api/v1/alerts', query: () => 'limit=5' },
  { method: 'GET', path: '/api/v1/overview' },
  { method: 'GET', path: '/api/v1/overview/setup' },
  { method: 'GET', path: '/api/v1/health' },
  { method: 'GET', path: '/api/v1/keys/kek' },
  { method: 'POST', path: '/api/v1/keys/kek/rewrap' },
  { method: 'GET', path: '/api/v1/queue' },
  { method: 'POST', path: '/api/v1/queue/{id}/retry', params: id('queueId') },
  { method: 'DELETE', path: '/api/v1/queue/{id}', params: id('queueId'), query: () => 'dsn=false' },
  { method: 'GET', path: '/api/v1/dlq' },
  {
    method: 'POST',
    path: '/api/v1/dlq/{seq}/redrive',
    params: () => ({ seq: '999999' }),
    expect: { status: 404, why: 'the dead-letter queue is empty here' },
  },
  {
    method: 'DELETE',
    path: '/api/v1/dlq/{seq}',
    params: () => ({ seq: '999999' }),
    expect: { status: 404, why: 'the dead-letter queue is empty here' },
  },
  {
    method: 'POST',
    path: '/api/v1/me/totp',
    after: (b) => (state.totpSecret = (b as { secretBase32: string }).secretBase32),
  },
  {
    method: 'POST',
    path: '/api/v1/me/totp/confirm',
    body: () => ({ code: totp(state.totpSecret ?? '') }),
  },
  { method: 'DELETE', path: '/api/v1/me/totp' },
  { method: 'DELETE', path: '/api/v1/users/{id}', params: id('userId'), query: () => 'purge=true' },
  {
    method: 'DELETE',
    path: '/api/v1/domains/{domain}',
    params: () => ({ domain: DOMAIN }),
    query: () => 'cascade=true',
  },
  { method: 'POST', path: '/api/v1/auth/logout' },
];

/** A value of another JSON type than the schema's. */
function wrongType(schema: Schema): unknown {
  switch (schema.type) {
    case 'string':
      return 12345;
    case 'integer':
    case 'number':
      return 'not a number';
    case 'boolean':
      return 'maybe';
    case 'array':
      return 'not an array';
    default:
      return 'not an object';
  }
}

let h: AdminHarness;
let mta: DeferringMta;
let client: ApiClient;
let doc: Document;
const ajv = new Ajv2020({ strict: false });
const validators = new Map<Schema, ValidateFunction>();
function matches(schema: Schema, body: unknown): string {
  let validate = validators.get(schema);
  if (validate === undefined) {
    validate = ajv.compile('$ref' in schema ? (doc.components.schemas.Error ?? {}) : schema);
    validators.set(schema, validate);
  }
  return validate(body) ? '' : ajv.errorsText(validate.errors);
}

const url = (c: Case): string => {
  const params = c.params?.() ?? {};
  const path = c.path.replace(/\{([A-Za-z]+)\}/g, (_m, name: string) =>
    encodeURIComponent(params[name] ?? ''),
  );
  const query = c.query?.();
  return query === undefined ? path : `${path}?${query}`;
};

beforeAll(async () => {
  h = await startAdminHarness();
  mta = await startDeferringMta(h);
  client = new ApiClient(h.baseUrl);
  expect((await client.login(OWNER.email, OWNER.password)).status).toBe(200);
  doc = (await client.get('/api/docs')).body as Document;
}, 180_000);

afterAll(async () => {
  await mta?.stop();
  await h?.stop();
});

describe('the admin API against its OpenAPI document', () => {
  it('serves a rendered page of the document under the console Content-Security-Policy', async () => {
    const page = await fetch(`${h.baseUrl}/api-docs.html`);
    const html = await page.text();
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(html).toContain('<script type="module" src="/api-docs.js"></script>');
    // No inline script: every <script> has a src.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    const script = await fetch(`${h.baseUrl}/api-docs.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/javascript/);
    expect(await script.text()).toContain("fetch('/api/docs'");
  });

  it('has a contract case for every documented operation', () => {
    const documented = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(CASES.map((c) => `${c.method} ${c.path}`).sort()).toEqual(documented.sort());
  });

  it('answers an invalid body with a documented 400 and a valid request with the documented status and body', async () => {
    // A deferred outbound message for the queue operations (mta-delivery answers it 451).
    state.queueId = await mta.queueOne('contract', `ann@${DOMAIN}`);
    const deadline = Date.now() + 60_000;
    const problems: string[] = [];
    for (const c of CASES) {
      const op = doc.paths[c.path]?.[c.method.toLowerCase()];
      if (op === undefined) throw new Error(`${c.method} ${c.path} is not documented`);
      const what = `${c.method} ${c.path}`;
      if (c.path === '/api/v1/queue/{id}/retry') {
        // The entry is listed once mta-delivery made its first attempt.
        for (;;) {
          const listed = (await client.get('/api/v1/queue')).body as { items: { id: string }[] };
          if (listed.items.some((e) => e.id === state.queueId)) break;
          if (Date.now() > deadline) throw new Error('the deferred message was never listed');
          await new Promise((r) => setTimeout(r, 200));
        }
      }

      // Invalid: a documented field of the wrong type, or any body where none is taken.
      const bodySchema = op.requestBody?.content['application/json'].schema;
      const [field, fieldSchema] = Object.entries(
        (bodySchema?.properties ?? {}) as Record<string, Schema>,
      )[0] ?? ['unexpected', { type: 'boolean' }];
      const invalid = { ...((c.body?.() as object | undefined) ?? {}), [field]: wrongType(fieldSchema) };
      // A GET has no body (fetch refuses one): an unknown query parameter instead.
      const refused: ApiResponse =
        c.method === 'GET'
          ? await client.request('GET', `${url(c)}${url(c).includes('?') ? '&' : '?'}unexpected=1`)
          : await client.request(c.method, url(c), invalid);
      if (refused.status !== 400 || op.responses['400'] === undefined)
        problems.push(`${what} invalid body: ${refused.status} ${refused.text.slice(0, 300)}`);
      else {
        const error = (refused.body as { error: { code: string; field?: string } }).error;
        if (error.code !== 'invalid_argument') problems.push(`${what} invalid body: code ${error.code}`);
        if (bodySchema !== undefined && error.field !== field)
          problems.push(`${what} invalid body: field ${String(error.field)}, expected ${field}`);
        const mismatch = matches({ $ref: '#/components/schemas/Error' }, refused.body);
        if (mismatch !== '') problems.push(`${what} 400 body: ${mismatch}`);
      }

      // Valid: the documented status, and the documented body.
      const answer = await client.request(
        c.method,
        url(c),
        c.body?.() ?? (c.method === 'GET' ? undefined : {}),
      );
      const success = Object.keys(op.responses).find((s) => /^2\d\d$/.test(s)) ?? '';
      const expected = c.expect?.status ?? Number(success);
      const documented = op.responses[String(answer.status)] ?? op.responses.default;
      const schema = documented?.content?.['application/json'].schema;
      if (answer.status !== expected || op.responses[String(expected)] === undefined) {
        problems.push(`${what}: ${answer.status}, expected ${expected}: ${answer.text.slice(0, 300)}`);
      } else if (schema !== undefined) {
        const mismatch = matches(schema, answer.body);
        if (mismatch !== '') problems.push(`${what} ${answer.status} body: ${mismatch}`);
      }
      if (answer.status === expected) c.after?.(answer.body);
    }
    expect(problems).toEqual([]);
  }, 240_000);
});
