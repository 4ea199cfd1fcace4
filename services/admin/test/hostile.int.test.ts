/**
 * Hostile HTTP input against the real admin process, over raw sockets so nothing is cleaned up
 * by a client library: a bounded fast-check run (fixed seed) of requests to every endpoint of the
 * OpenAPI document with malformed JSON, wrong types, deep nesting, prototype-pollution keys,
 * unicode tricks, hostile path ids (traversal, encodings, NUL), hostile query strings, odd
 * content types and header injection attempts; plus huge bodies and huge headers. Every answer is
 * a 4xx in the API's one JSON error format (never a 500, never a stack trace), and the process
 * keeps serving.
 */
import { connect } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, OWNER, startAdminHarness, type AdminHarness } from './harness.js';

let h: AdminHarness;
let port: number;
let bearer: string;
let session: { cookie: string; csrf: string };
let endpoints: { method: string; path: string }[] = [];

interface RawResponse {
  readonly status: number;
  readonly headers: ReadonlyMap<string, string>;
  readonly body: string;
}

/** One request over its own connection (`Connection: close`), bytes exactly as given. */
function send(request: Buffer, timeoutMs = 10_000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms to ${request.subarray(0, 200).toString('latin1')}`));
    }, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks);
      const end = raw.indexOf('\r\n\r\n');
      if (end < 0) {
        reject(new Error(`not an HTTP answer: ${JSON.stringify(raw.toString('latin1').slice(0, 200))}`));
        return;
      }
      const [statusLine = '', ...lines] = raw.subarray(0, end).toString('latin1').split('\r\n');
      const headers = new Map<string, string>();
      for (const line of lines) {
        const colon = line.indexOf(':');
        if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      }
      let body: Buffer = raw.subarray(end + 4);
      if (headers.get('transfer-encoding')?.toLowerCase() === 'chunked') body = unchunk(body);
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: body.toString('utf8') });
    });
    // Not half-closed: Node's HTTP server aborts a request whose client has ended its side.
    socket.write(request);
  });
}

function unchunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd < 0) break;
    const size = parseInt(data.subarray(at, lineEnd).toString('latin1'), 16);
    if (!(size > 0)) break;
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

function build(
  method: string,
  target: string,
  headers: readonly (readonly [string, string])[],
  body?: Buffer,
): Buffer {
  const head = [`${method} ${target} HTTP/1.1`, `Host: 127.0.0.1:${port}`, 'Connection: close'];
  for (const [name, value] of headers) head.push(`${name}: ${value}`);
  if (body !== undefined) head.push(`Content-Length: ${body.length}`);
  return Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'), body ?? Buffer.alloc(0)]);
}

/** The API's one error format, a 4xx, and nothing of the server's insides. */
function expectCleanRefusal(r: RawResponse, what: string): void {
  expect(r.status, `${what} → ${r.status} ${r.body.slice(0, 300)}`).toBeGreaterThanOrEqual(400);
  expect(r.status, `${what} → ${r.status} ${r.body.slice(0, 300)}`).toBeLessThan(500);
  expect(r.headers.get('content-type') ?? '', what).toMatch(/^application\/json/);
  let parsed: unknown;
  expect(
    () => {
      parsed = JSON.parse(r.body) as unknown;
    },
    `${what}: body is JSON: ${r.body.slice(0, 400)}`,
  ).not.toThrow();
  expect(parsed, what).toMatchObject({
    error: { status: r.status, code: expect.any(String) as unknown, message: expect.any(String) as unknown },
  });
  expect(r.body, what).not.toMatch(/\bat .+:\d+:\d+|node_modules|Error:|\/work\//);
}

beforeAll(async () => {
  h = await startAdminHarness();
  port = Number(new URL(h.baseUrl).port);
  const owner = new ApiClient(h.baseUrl);
  expect((await owner.login(OWNER.email, OWNER.password)).status).toBe(200);
  session = { cookie: owner.cookie ?? '', csrf: owner.csrf ?? '' };
  const token = await owner.post('/api/v1/tokens', { name: 'hostile', scopes: ['*'] });
  bearer = (token.body as { secret: string }).secret;
  expect((await owner.post('/api/v1/domains', { name: 'hostile.test' })).status).toBe(201);
  const doc = (await owner.get('/api/docs')).body as { paths: Record<string, Record<string, unknown>> };
  endpoints = Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.keys(methods).map((method) => ({ method: method.toUpperCase(), path })),
  );
});
afterAll(async () => {
  await h?.stop();
});

/** Ids that must never reach anything but a 4xx: traversal, encodings, NUL, operators, unicode. */
const hostileId = fc.oneof(
  fc.constantFrom(
    '..',
    '../../etc/passwd',
    '..%2f..%2fetc%2fpasswd',
    '%2e%2e%2f%2e%2e%2f',
    '%252e%252e%252f',
    '%00',
    'a%00b',
    '%',
    '%E0%A4%A',
    '%C0%AE%C0%AE%2F',
    '__proto__',
    'constructor',
    'prototype',
    '%7B%22%24gt%22%3A%22%22%7D',
    '$where',
    "' OR '1'='1",
    '%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E',
    '%E2%80%AE%E2%80%8Bowner',
    '%EF%BB%BFadmin',
    '%F0%9F%92%A9',
    '%ED%A0%80',
    'x'.repeat(5000),
    'ffffffffffffffffffffffff',
    '000000000000000000000000',
    '-1',
    '1e309',
    'NaN',
  ),
  fc.string({ unit: 'binary', maxLength: 40 }).map((s) => encodeURIComponent(s)),
);

/**
 * Query strings no endpoint accepts: pollution keys, repeated or bracketed keys, values of the
 * wrong type, overlong values, keys no endpoint knows (every endpoint refuses unknown keys).
 */
const invalidQuery = fc.oneof(
  fc.constantFrom(
    '?__proto__[admin]=1',
    '?constructor[prototype][x]=1',
    '?__proto__=x',
    '?pageSize=-1',
    '?pageSize=0',
    '?pageSize=1e309',
    '?pageSize=abc',
    '?pageSize=1&pageSize=2',
    '?domain[]=a&domain[]=b',
    '?start=not-a-time&pageSize=x',
    `?q=${'a'.repeat(10_000)}`,
    '?%E0%A4%A=1',
    '?%00=1',
  ),
  fc
    .dictionary(fc.string({ maxLength: 12 }), fc.string({ maxLength: 30 }), { minKeys: 1, maxKeys: 4 })
    .map(
      (d) =>
        `?${new URLSearchParams(Object.entries(d).map(([k, v]): [string, string] => [`zz${k}`, v])).toString()}`,
    ),
);

/** Queries next to a hostile path id: none, or invalid ones, or odd values of known keys. */
const anyQuery = fc.oneof(
  fc.constant(''),
  invalidQuery,
  fc.constantFrom('?purge=maybe', '?dsn=2', '?cascade=%00', '?check=yes', '?q=%E0%A4%A'),
);

/** JSON values of the wrong shape, or with pollution keys, lone surrogates, NULs, huge numbers. */
const hostileJson = fc.oneof(
  // Any JSON but an empty object (which an endpoint without a body rightly takes).
  fc
    .jsonValue({ maxDepth: 4 })
    .filter((v) => typeof v !== 'object' || v === null || Array.isArray(v) || Object.keys(v).length > 0)
    .map((v) => JSON.stringify(v)),
  fc
    .record({
      key: fc.constantFrom('name', 'email', 'password', 'address', 'role', 'domains', 'status', 'scopes'),
      value: fc.oneof(
        fc.integer(),
        fc.double(),
        fc.boolean(),
        fc.constant(null),
        fc.array(fc.string(), { maxLength: 3 }),
        fc.dictionary(fc.string({ maxLength: 5 }), fc.string(), { maxKeys: 2 }),
      ),
    })
    .map(({ key, value }) => JSON.stringify({ [key]: value })),
  fc.constantFrom(
    '{"__proto__":{"role":"owner"}}',
    '{"constructor":{"prototype":{"isAdmin":true}}}',
    '{"name":"a.test","__proto__":{"x":1}}',
    '{"email":"a@b.c","password":"x","role":"owner","domains":[],"constructor":{}}',
    '{"name":"\\ud800.test"}',
    '{"address":"a\\u0000b@hostile.test","password":"0123456789"}',
    '{"address":"\\u202eevil@hostile.test","password":"0123456789"}',
    '{"name":"xn--\\u200b.test"}',
    '{"pageSize":1e309}',
    '{"quotaBytes":-1e400}',
    '{"quotaBytes":18446744073709551616}',
    '{"status":["active"]}',
    '{"a":1,"a":2,"__proto__":null}',
    '\ufeff{"name":"bom.test"}',
  ),
);

/** Bodies that are not JSON at all, or JSON cut short, or nested far too deep. */
const brokenBody = fc.oneof(
  fc.constantFrom(
    '{',
    '{"name":',
    '{"name":"a.test"}garbage',
    "{'name':'a.test'}",
    'null',
    '[]',
    '"just a string"',
    '0',
    'true',
    '{"name":"a.test",}',
    'NaN',
    '\u0000',
  ),
  fc.integer({ min: 100, max: 20_000 }).map((depth) => '['.repeat(depth) + ']'.repeat(depth)),
  fc.integer({ min: 100, max: 5_000 }).map((depth) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)),
  fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
);

/** How the request authenticates: bearer token, session (with or without CSRF), or nothing. */
const credentials = fc.constantFrom('bearer', 'session', 'session-no-csrf', 'none', 'bad-bearer');

const contentType = fc.constantFrom(
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=utf-16le',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  '',
  'application/json\u0000',
);

/** Header values that try to smuggle or inject (sent raw). */
const hostileHeader = fc.constantFrom<readonly [string, string] | null>(
  null,
  ['X-Request-Id', 'abc\r\nX-Injected: yes'],
  ['X-Request-Id', '<script>alert(1)</script>'],
  ['X-Forwarded-For', '127.0.0.1, ::1, not-an-ip'],
  ['Cookie', 'pm_session=../../etc/passwd; pm_session=%00'],
  ['Authorization', 'Bearer ' + 'x'.repeat(300)],
  ['Authorization', 'Basic YWRtaW46YWRtaW4='],
  ['X-CSRF-Token', '\u00ff\u00fe'],
  ['Accept', '*/*\r\n\r\nGET /api/v1/me HTTP/1.1'],
  ['Origin', 'https://evil.example'],
);

const hostileRequest = fc.record({
  endpoint: fc.nat(),
  id: hostileId,
  query: anyQuery,
  listQuery: invalidQuery,
  body: fc.oneof(hostileJson, brokenBody),
  credentials,
  contentType,
  header: hostileHeader,
});

describe('hostile HTTP requests to the admin API', () => {
  it('answers every one with a 4xx in the JSON error format, never a 500 or a crash', async () => {
    expect(endpoints.length).toBeGreaterThan(40);
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(hostileRequest, async (r) => {
        const endpoint = endpoints[r.endpoint % endpoints.length] ?? { method: 'GET', path: '/api/v1/me' };
        // Every path parameter gets the hostile id; a path without one gets a hostile query.
        const path = endpoint.path.replace(/\{[^}]+\}/g, r.id);
        const hasParam = path !== endpoint.path;
        // A GET without a path id would be a good request with a good query: it gets a bad one.
        const query = !hasParam && endpoint.method === 'GET' ? r.listQuery : r.query;
        const headers: [string, string][] = [];
        switch (r.credentials) {
          case 'bearer':
            headers.push(['Authorization', `Bearer ${bearer}`]);
            break;
          case 'bad-bearer':
            headers.push(['Authorization', 'Bearer pmt_forged']);
            break;
          case 'session':
            headers.push(['Cookie', session.cookie], ['X-CSRF-Token', session.csrf]);
            break;
          case 'session-no-csrf':
            headers.push(['Cookie', session.cookie]);
            break;
          case 'none':
            break;
        }
        if (r.contentType !== '') headers.push(['Content-Type', r.contentType]);
        if (r.header !== null) headers.push([r.header[0], r.header[1]]);
        const withBody = endpoint.method !== 'GET';
        const request = build(
          endpoint.method,
          `${path}${query}`,
          headers,
          withBody ? Buffer.from(r.body, 'utf8') : undefined,
        );
        const answer = await send(request);
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        // mta-delivery does not run here: a queue request that passes validation is 503.
        if (answer.status === 503 && path.startsWith('/api/v1/queue')) {
          expect(answer.body).toContain('"code":"unavailable"');
          return;
        }
        expectCleanRefusal(
          answer,
          `${endpoint.method} ${path}${query.slice(0, 100)} ${r.body.slice(0, 100)}`,
        );
      }),
      { seed: 20261206, numRuns: 400, endOnFailure: true },
    );
    // The run reached past authentication and validation, not only the front door.
    expect([...statuses.keys()].filter((s) => s !== 401 && s !== 415).length).toBeGreaterThan(2);
  }, 60_000);

  it('refuses huge bodies, huge or broken headers and broken URLs in the one format, and keeps serving', async () => {
    const auth: [string, string][] = [['Authorization', `Bearer ${bearer}`]];
    const json: [string, string][] = [...auth, ['Content-Type', 'application/json']];
    // A 2 MiB body announced by Content-Length is refused before it is read (only its start is
    // sent: the server answers and closes at once, and a client still writing would see a reset).
    const huge = build('POST', '/api/v1/domains', json, Buffer.alloc(2 * 1024 * 1024, 'a'));
    const big = await send(huge.subarray(0, huge.indexOf('\r\n\r\n') + 4 + 1024));
    expectCleanRefusal(big, 'a 2 MiB body');
    expect(big.status).toBe(413);
    // The same without a length, chunked: refused once 64 KiB have arrived.
    const chunk = `{"name":"${'a'.repeat(70 * 1024)}"}`;
    const chunked = Buffer.concat([
      build('POST', '/api/v1/domains', [...json, ['Transfer-Encoding', 'chunked']]),
      Buffer.from(`${chunk.length.toString(16)}\r\n${chunk}\r\n0\r\n\r\n`),
    ]);
    const bigChunked = await send(chunked);
    expectCleanRefusal(bigChunked, 'a 70 KiB chunked body');
    expect(bigChunked.status).toBe(413);

    // Node's HTTP parser refuses oversized headers and broken header lines before any route, and
    // the router refuses broken percent-encoding: still the one format.
    const hugeHeader = await send(
      build('GET', '/api/v1/domains', [...auth, ['X-Padding', 'p'.repeat(64 * 1024)]]),
    );
    expectCleanRefusal(hugeHeader, '64 KiB of headers');
    expect(hugeHeader.status).toBe(431);
    expectCleanRefusal(
      await send(Buffer.from('GET /api/v1/me HTTP/1.1\r\nHost: x\r\nBroken header line\r\n\r\n')),
      'a header line without a colon',
    );
    expectCleanRefusal(await send(build('GET', '/api/v1/users/%E0%A4%A', auth)), 'broken percent-encoding');
    expectCleanRefusal(await send(build('GET', '/%E0%A4%A', auth)), 'broken percent-encoding (console)');

    const nested = '['.repeat(30_000) + ']'.repeat(30_000);
    expectCleanRefusal(
      await send(build('POST', '/api/v1/domains', json, Buffer.from(nested))),
      'JSON nested 30,000 deep',
    );

    // The server is still there, and answers a good request.
    const me = await send(build('GET', '/api/v1/me', auth));
    expect(me.status).toBe(200);
    const live = await fetch(`http://127.0.0.1:${h.adminOpsPort}/healthz/live`);
    expect(live.status).toBe(200);
    expect(h.logs()).not.toMatch(/FATAL|uncaught/i);
  });
});
