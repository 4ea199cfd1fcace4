import { FakeDnsServer, type DnsZones } from '@postmesh/testing';
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { simpleParser } from 'mailparser';
import {
  decodeOutboundJob,
  encodeOutboundJob,
  outboundJobMessageId,
  type OutboundJob,
  type QueueCaller,
} from '@postmesh/bus';
import { DestinationLimiter, retryDelay } from '../src/backoff.js';
import { systemResolver, type Resolver } from '../src/dns.js';
import { buildDsn, statusOf } from '@postmesh/mime';
import { fromDomain, headerSection } from '../src/message.js';
import { StsPolicyCache, mxMatches, parseStsPolicy, parseStsRecord } from '../src/mta-sts.js';
import { allowed } from '../src/queue-operations-server.js';
import { parseEntryId, type QueueRecord } from '../src/queue-store.js';
import { resolveRoute } from '../src/routes.js';
import { SPOOL_MARGIN_MS, SpoolSweeper, abandonedObjects } from '../src/spool-sweeper.js';
import type { ObjectStore } from '@postmesh/bus';
import type { Logger } from '@postmesh/telemetry';

const enc = new TextEncoder();

/** The service's own resolver (node:dns), asking a FakeDnsServer that answers from `zones`. */
const dnsServers: FakeDnsServer[] = [];
async function resolverFor(zones: DnsZones): Promise<Resolver> {
  const server = await FakeDnsServer.start(zones);
  dnsServers.push(server);
  return systemResolver([server.address]);
}
afterAll(async () => {
  await Promise.all(dnsServers.map((s) => s.stop()));
});

describe('route (RFC 5321 §5.1, RFC 7505)', () => {
  const resolver = resolverFor({
    MX: {
      'two.example': [
        { exchange: 'mx2.two.example', priority: 20 },
        { exchange: 'mx1.two.example', priority: 10 },
      ],
      'null.example': [{ exchange: '', priority: 0 }],
      'temp.example': 'TEMPERROR',
    },
    A: {
      'mx1.two.example': ['192.0.2.1'],
      'mx2.two.example': ['192.0.2.2'],
      'a-only.example': ['192.0.2.3'],
    },
    AAAA: { 'mx1.two.example': ['2001:db8::1'] },
  });
  let resolved: Resolver | undefined;
  const route = async (domain: string) => resolveRoute(domain, (resolved ??= await resolver));

  it('orders MX by preference and lists IPv6 and IPv4 addresses', async () => {
    expect(await route('two.example')).toEqual({
      kind: 'hosts',
      implicit: false,
      hosts: [
        { name: 'mx1.two.example', preference: 10, addresses: ['2001:db8::1', '192.0.2.1'] },
        { name: 'mx2.two.example', preference: 20, addresses: ['192.0.2.2'] },
      ],
    });
  });
  it('falls back to the A record as an implicit MX', async () => {
    expect(await route('a-only.example')).toEqual({
      kind: 'hosts',
      implicit: true,
      hosts: [{ name: 'a-only.example', preference: 0, addresses: ['192.0.2.3'] }],
    });
  });
  it('recognises a null MX, a missing domain and a DNS timeout', async () => {
    expect((await route('null.example')).kind).toBe('null-mx');
    expect((await route('nowhere.example')).kind).toBe('no-domain');
    expect((await route('temp.example')).kind).toBe('temp');
  });
});

describe('MTA-STS (RFC 8461)', () => {
  it('parses a policy and rejects a malformed one', () => {
    expect(
      parseStsPolicy(
        'version: STSv1\r\nmode: enforce\r\nmx: mx1.example.org\r\nmx: *.example.net\r\nmax_age: 86400\r\n',
      ),
    ).toEqual({
      ok: true,
      policy: { mode: 'enforce', mx: ['mx1.example.org', '*.example.net'], maxAge: 86400 },
    });
    expect(parseStsPolicy('version: STSv1\nmode: enforce\nmax_age: 1\n').ok).toBe(false);
    expect(parseStsPolicy('version: STSv2\nmode: enforce\nmx: a\nmax_age: 1\n').ok).toBe(false);
    expect(parseStsPolicy('version: STSv1\nmode: strict\nmx: a\nmax_age: 1\n').ok).toBe(false);
  });
  it('matches a wildcard on exactly one label (§4.1)', () => {
    expect(mxMatches('mx.example.net', ['*.example.net'])).toBe(true);
    expect(mxMatches('a.b.example.net', ['*.example.net'])).toBe(false);
    expect(mxMatches('example.net', ['*.example.net'])).toBe(false);
    expect(mxMatches('MX1.Example.org.', ['mx1.example.org'])).toBe(true);
  });
  it('reads the TXT record id; two STSv1 records mean no policy (§3.1)', () => {
    expect(parseStsRecord(['v=STSv1; id=20261127T1'])).toEqual({ id: '20261127T1' });
    expect(parseStsRecord(['v=STSv1; id=a', 'v=STSv1; id=b'])).toBeUndefined();
    expect(parseStsRecord(['v=spf1 -all'])).toBeUndefined();
  });
  it('caches by id and max_age, and refetches when the id changes (§5.1)', async () => {
    const zones: Record<string, Record<string, unknown>> = {
      TXT: { '_mta-sts.example.org': ['v=STSv1; id=one'] },
    };
    let fetches = 0;
    const cache = new StsPolicyCache(await resolverFor(zones), () => {
      fetches += 1;
      return Promise.resolve({
        status: 200,
        contentType: 'text/plain',
        body: 'version: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: 600\n',
      });
    });
    expect((await cache.lookup('example.org')).policy?.mode).toBe('enforce');
    await cache.lookup('example.org');
    expect(fetches).toBe(1);
    (zones.TXT as Record<string, unknown>)['_mta-sts.example.org'] = ['v=STSv1; id=two'];
    await cache.lookup('example.org');
    expect(fetches).toBe(2);
  });
  it('reports a fetch that is not a 200 text/plain', async () => {
    const cache = new StsPolicyCache(
      await resolverFor({ TXT: { '_mta-sts.example.org': ['v=STSv1; id=1'] } }),
      () => Promise.resolve({ status: 301, contentType: 'text/html', body: '' }),
    );
    const lookup = await cache.lookup('example.org');
    expect(lookup.policy).toBeUndefined();
    expect(lookup.failure?.type).toBe('sts-policy-fetch-error');
  });
});

describe('retry schedule', () => {
  it('follows the schedule, repeats the last delay, stays within the jitter', () => {
    expect(retryDelay([100, 200, 400], 1, 0)).toBe(100);
    expect(retryDelay([100, 200, 400], 2, 0)).toBe(200);
    expect(retryDelay([100, 200, 400], 9, 0)).toBe(400);
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.double({ min: 0, max: 0.999999, noNaN: true }),
        (n, r) => {
          const d = retryDelay([1000, 2000], n, 20, () => r);
          const base = n === 1 ? 1000 : 2000;
          return d >= base * 0.8 && d <= base * 1.2;
        },
      ),
    );
  });
  it('limits transactions at once per destination', async () => {
    const limiter = new DestinationLimiter(2, undefined);
    const a = await limiter.acquire();
    await limiter.acquire();
    let third = false;
    const pending = limiter.acquire().then((release) => {
      third = true;
      return release;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(third).toBe(false);
    a();
    (await pending)();
    expect(third).toBe(true);
  });
});

describe('outbound job codec', () => {
  const job: OutboundJob = {
    version: 1,
    spoolId: 'abcdEFGH1234',
    domain: 'example.org',
    envelope: { mailFrom: 'alice@example.test', rcptTo: ['bob@example.org', 'carol@EXAMPLE.org'] },
    body: { kind: 'inline', size: 5 },
    queuedAt: '2026-11-27T19:00:00.000Z',
    messageId: 'm@x',
    traceparent: '',
  };
  it('round-trips and names the dedup id', () => {
    const decoded = decodeOutboundJob(encodeOutboundJob(job, enc.encode('hello')));
    expect(decoded.ok && decoded.job).toEqual(job);
    expect(decoded.ok && new TextDecoder().decode(decoded.inlineBody)).toBe('hello');
    expect(outboundJobMessageId('abcdEFGH1234', 'Example.org')).toBe(
      'abcdEFGH1234:example.org:MAIL_OUTBOUND',
    );
  });
  it('refuses a recipient outside the job domain and a truncated body', () => {
    const wrong = { ...job, envelope: { ...job.envelope, rcptTo: ['eve@example.net'] } };
    expect(decodeOutboundJob(encodeOutboundJob(wrong, enc.encode('hello'))).ok).toBe(false);
    const frame = encodeOutboundJob(job, enc.encode('hello'));
    expect(decodeOutboundJob(frame.subarray(0, frame.length - 1)).ok).toBe(false);
  });
  it('never throws on arbitrary bytes', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        (bytes) => typeof decodeOutboundJob(bytes).ok === 'boolean',
      ),
    );
  });
  it('carries the domains sharing a spool object, which must include the job domain', () => {
    const shared: OutboundJob = {
      ...job,
      body: { kind: 'object', size: 5, object: 'out/abcdEFGH1234', sharedBy: ['example.org', 'example.net'] },
    };
    const decoded = decodeOutboundJob(encodeOutboundJob(shared));
    expect(decoded.ok && decoded.job.body).toEqual(shared.body);
    for (const sharedBy of [['example.net'], ['Example.org'], 'example.org', [7]]) {
      const bad = { ...shared, body: { ...shared.body, sharedBy } } as unknown as OutboundJob;
      expect(decodeOutboundJob(encodeOutboundJob(bad)).ok, JSON.stringify(sharedBy)).toBe(false);
    }
  });
});

describe('outbound spool sweeper (bounded cleanup)', () => {
  const hour = 3_600_000;
  const now = Date.parse('2026-11-27T12:00:00Z');
  const lifetime = 5 * 24 * hour;
  const at = (ms: number) => new Date(ms).toISOString();
  const objects = [
    { name: 'out/old', mtime: at(now - lifetime - SPOOL_MARGIN_MS - hour) },
    { name: 'out/young', mtime: at(now - lifetime) },
    { name: 'out/gone', mtime: at(now - 30 * 24 * hour), deleted: true },
    // Inbound objects are storage's (a dead-lettered inbound job still needs its body).
    { name: 'msg/old', mtime: at(now - 30 * 24 * hour) },
  ];
  it('picks only outbound objects older than the queue lifetime plus the margin', () => {
    expect(abandonedObjects(objects, now - lifetime - SPOOL_MARGIN_MS)).toEqual(['out/old']);
  });
  it('deletes them from the store, and keeps going after a failed listing', async () => {
    const deleted: string[] = [];
    let fail = true;
    const store = {
      list: () => (fail ? Promise.reject(new Error('nats down')) : Promise.resolve(objects)),
      delete: (name: string) => {
        deleted.push(name);
        return Promise.resolve({ purged: 1, success: true });
      },
    } as unknown as ObjectStore;
    const warnings: string[] = [];
    const logger = { warn: (_o: unknown, m: string) => warnings.push(m) } as unknown as Logger;
    const sweeper = new SpoolSweeper({
      spool: () => Promise.resolve(store),
      lifetimeMs: lifetime,
      intervalMs: hour,
      logger,
      now: () => now,
    });
    expect(await sweeper.sweep()).toBe(0);
    expect(warnings).toEqual(['spool sweep failed; next time']);
    fail = false;
    expect(await sweeper.sweep()).toBe(1);
    expect(deleted).toEqual(['out/old']);
  });
});

describe('DSN (RFC 3464, RFC 6522)', () => {
  const original = enc.encode(
    'From: Alice <alice@example.test>\r\nTo: bob@example.org\r\nSubject: hello\r\nMessage-ID: <m1@example.test>\r\n\r\nbody\r\n',
  );
  it('reads the enhanced status code of a reply, or derives one', () => {
    expect(statusOf(550, '550 5.1.1 no such user')).toBe('5.1.1');
    expect(statusOf(550, '550 no such user')).toBe('5.0.0');
    expect(statusOf(451, '451 4.7.1 greylisted')).toBe('4.7.1');
  });
  it('is a multipart/report a mail parser reads: status, diagnostic code, original headers', async () => {
    const dsn = buildDsn({
      reportingMta: 'mx.example.test',
      sender: 'alice@example.test',
      queueId: 'abcdEFGH1234',
      arrival: new Date('2026-11-27T19:00:00Z'),
      recipients: [
        {
          rcpt: 'bob@example.org',
          action: 'failed',
          status: '5.1.1',
          remoteMta: 'mx1.example.org',
          diagnostic: '550 5.1.1 no such user',
          diagnosticType: 'smtp',
          lastAttempt: new Date('2026-11-27T19:00:01Z'),
        },
      ],
      originalHeaders: headerSection(original),
      date: new Date('2026-11-27T19:00:02Z'),
    });
    const parsed = await simpleParser(Buffer.from(dsn));
    expect(parsed.headers.get('content-type')).toMatchObject({
      value: 'multipart/report',
      params: { 'report-type': 'delivery-status' },
    });
    // mailparser shows message/delivery-status (a text type, RFC 3464 §2.1) with the body text.
    const text = parsed.text ?? '';
    expect(text).toContain('Final-Recipient: rfc822; bob@example.org');
    expect(text).toContain('Action: failed');
    expect(text).toContain('Status: 5.1.1');
    expect(text).toContain('Diagnostic-Code: smtp; 550 5.1.1 no such user');
    const headers = parsed.attachments.find((a) => a.contentType === 'text/rfc822-headers');
    expect(headers?.content.toString('utf8')).toContain('Subject: hello');
    expect(parsed.headers.get('auto-submitted')).toBe('auto-replied');
  });
});

describe('message facts', () => {
  it('finds the From: domain (the DKIM signing domain)', () => {
    expect(fromDomain(enc.encode('Subject: x\r\nFrom: "A, B" <a@Sub.Example.TEST>\r\n\r\nbody'))).toBe(
      'sub.example.test',
    );
    expect(fromDomain(enc.encode('From: a@example.test\r\n\r\n'))).toBe('example.test');
    expect(fromDomain(enc.encode('Subject: none\r\n\r\n'))).toBeUndefined();
  });
});

describe('queue operation scope (DESIGN §6)', () => {
  const record: QueueRecord = {
    spoolId: 'abcdEFGH1234',
    domain: 'example.org',
    sender: 'alice@example.test',
    messageId: '',
    queuedAt: '2026-11-27T19:00:00.000Z',
    remaining: ['bob@example.org'],
    attempts: 1,
    lastAttemptAt: '2026-11-27T19:00:00.000Z',
    nextAttemptAt: '2026-11-27T19:05:00.000Z',
    lastError: '451 4.7.1 later',
    remoteMta: 'mx.example.org',
    delayNoticeSent: false,
    originalHeaders: '',
  };
  const caller = (role: QueueCaller['role'], domains: string[] = []): QueueCaller => ({
    actor: 'a',
    role,
    domains,
  });
  it.each([
    ['owner', [], true, true],
    ['auditor', [], true, false],
    ['domain-admin', ['example.test'], true, true],
    ['domain-admin', ['example.org'], false, false],
    ['helpdesk', ['example.test'], false, false],
    ['user', [], false, false],
  ] as const)('%s %j: read %s, change %s', (role, domains, read, write) => {
    expect(allowed(caller(role, [...domains]), record, false)).toBe(read);
    expect(allowed(caller(role, [...domains]), record, true)).toBe(write);
  });
  it('parses entry ids', () => {
    expect(parseEntryId('abcdEFGH1234:example.org')).toEqual({
      spoolId: 'abcdEFGH1234',
      domain: 'example.org',
    });
    expect(parseEntryId('abcd:example.org')).toBeUndefined();
    expect(parseEntryId('abcdEFGH1234:Example.org')).toBeUndefined();
  });
});
