/** Pure pieces of smtp-inbound: generated Haraka config, reply mapping, job frames, DNS cache. */
import {
  INLINE_MESSAGE_LIMIT,
  decodeInboundJob,
  encodeInboundJob,
  jobMessageId,
  type InboundJob,
} from '@postmesh/bus';
import { describe, expect, it } from 'vitest';
import { cachingResolver } from '../src/dns-cache.js';
import { POSTMESH_PLUGINS, harakaConfigFiles, pluginShim } from '../src/haraka/config-dir.js';
import { counterKey } from '../src/plugins/limits.js';
import { newSpoolId, queuedEvent, recipientDomains } from '../src/plugins/queue.js';
import { cachingReverseLookup, reverseDnsHooks } from '../src/plugins/rdns.js';
import { rcptDecision } from '../src/plugins/recipients.js';
import { forgedAuthResults } from '../src/plugins/sender-auth.js';
import { effectiveLimit } from '../src/send-quota.js';

const settings = {
  listenHost: '127.0.0.1',
  listenPort: 2525,
  hostname: 'mx.example.test',
  maxMessageBytes: 50 * 1024 * 1024,
  idleTimeoutSeconds: 300,
  tls: { certFile: '/c.pem', keyFile: '/k.pem', dhparamFile: '/dh.pem' },
  proxyProtocol: true,
  queueTimeoutSeconds: 135,
};

describe('generated Haraka configuration', () => {
  const files = harakaConfigFiles(settings, '/spool');
  it('listens where configured, single process, graceful', () => {
    const smtp = files.get('smtp.ini') ?? '';
    expect(smtp).toContain('listen=127.0.0.1:2525');
    expect(smtp).toContain('nodes=0');
    expect(smtp).toContain('inactivity_timeout=300');
    expect(harakaConfigFiles({ ...settings, listenHost: '::1' }, '/s').get('smtp.ini')).toContain(
      'listen=[::1]:2525',
    );
  });
  it('advertises SIZE, limits command lines to 512 octets, never rewraps DATA lines', () => {
    const conn = files.get('connection.ini') ?? '';
    expect(conn).toContain(`bytes=${50 * 1024 * 1024}`);
    expect(conn).toContain('line_length=512');
    expect(conn).toContain('data_line_length=1048576');
    expect(conn).toContain('clean_auth_results=false');
    // proxy-front.ts checks every connection's header, then Haraka applies the v1 line it puts back.
    expect(conn).toContain('[haproxy]\nenabled=true\nhosts[]=0.0.0.0/0\nhosts[]=::/0');
    expect(harakaConfigFiles({ ...settings, proxyProtocol: false }, '/s').get('connection.ini')).toContain(
      '[haproxy]\nenabled=false\n',
    );
  });
  it('STARTTLS with TLS 1.2+, the given certificate and DH group', () => {
    const tls = files.get('tls.ini') ?? '';
    expect(tls).toContain('key=/k.pem');
    expect(tls).toContain('cert=/c.pem');
    expect(tls).toContain('dhparam=/dh.pem');
    expect(tls).toContain('minVersion=TLSv1.2');
  });
  it('runs tls and our plugins in order, the queue hook with the longer timeout', () => {
    expect(files.get('plugins')).toBe(`tls\n${POSTMESH_PLUGINS.join('\n')}\n`);
    expect(files.get('postmesh_queue.timeout')).toBe('135\n');
    expect(files.get('me')).toBe('mx.example.test\n');
    expect(pluginShim('postmesh_rcpt')).toContain(`?.["postmesh_rcpt"]`);
  });
});

describe('recipient replies', () => {
  const table = [
    [{ kind: 'not-found' }, 550, '5.1.1'],
    [{ kind: 'over-quota' }, 452, '4.2.2'],
    [{ kind: 'suspended' }, 550, '5.2.1'],
    [{ kind: 'unavailable', reason: 'x' }, 451, '4.3.0'],
    [{ kind: 'forward', targets: ['a@b.c'] }, 550, '5.3.3'],
  ] as const;
  it.each(table)('%o → %d %s', (resolution, code, enhanced) => {
    const d = rcptDecision(resolution);
    if (d.kind !== 'reply') throw new Error('expected a reply');
    expect(d.dsn.code).toBe(code);
    expect(d.dsn.reply.startsWith(enhanced)).toBe(true);
  });
  it('accepts local users except those over quota', () => {
    expect(
      rcptDecision({
        kind: 'users',
        users: [
          { userId: 'a', overQuota: false },
          { userId: 'b', overQuota: true },
        ],
      }),
    ).toEqual({ kind: 'accept', userIds: ['a'] });
  });
});

describe('inbound job frames', () => {
  const job = (body: InboundJob['body']): InboundJob => ({
    version: 1,
    spoolId: newSpoolId(),
    envelope: { mailFrom: '', rcptTo: ['ünï@example.test'], remoteIp: '::1', helo: 'x' },
    authResults: { spf: 'none', dkim: 'none', dmarc: 'none', arc: 'none', dmarcPolicy: '', junk: false },
    receivedAt: new Date().toISOString(),
    messageId: '',
    traceparent: '',
    body,
  });
  it('round-trips an inline job with its raw bytes untouched', () => {
    const raw = Uint8Array.from([0, 13, 10, 255, 46, 46]);
    const j = job({ kind: 'inline', size: raw.length });
    const decoded = decodeInboundJob(encodeInboundJob(j, raw));
    expect(decoded.ok && decoded.job).toEqual(j);
    expect(decoded.ok && [...(decoded.inlineBody ?? [])]).toEqual([...raw]);
  });
  it('round-trips an object job', () => {
    const j = job({ kind: 'object', size: INLINE_MESSAGE_LIMIT * 4, object: 'msg/x' });
    const decoded = decodeInboundJob(encodeInboundJob(j));
    expect(decoded.ok && decoded.job).toEqual(j);
  });
  it('refuses truncated, inconsistent and foreign frames', () => {
    const j = job({ kind: 'inline', size: 3 });
    const frame = encodeInboundJob(j, Uint8Array.from([1, 2, 3]));
    expect(decodeInboundJob(frame.subarray(0, frame.length - 1)).ok).toBe(false);
    expect(decodeInboundJob(frame.subarray(0, 3)).ok).toBe(false);
    expect(decodeInboundJob(new TextEncoder().encode('{"version":1}')).ok).toBe(false);
    const bad = encodeInboundJob({ ...j, spoolId: '../../etc' }, Uint8Array.from([1, 2, 3]));
    expect(decodeInboundJob(bad)).toMatchObject({
      ok: false,
      field: 'spoolId',
      problem: 'spoolId: expected 8 to 64 letters, digits, _ or -',
    });
  });
  it('names the distinct recipient domains for webhooks, never cutting one in the middle', () => {
    // RFC 5321 §4.1.1.3 allows a bare "postmaster": no domain to name.
    expect(recipientDomains(['a@One.test', 'b@one.test', 'c@two.test', 'postmaster'])).toBe(
      'one.test,two.test',
    );
    expect(recipientDomains(['a@aaaa.test', 'b@bbbb.test'], 15)).toBe('aaaa.test');
    expect(recipientDomains([])).toBe('');
  });
  it("carries the message's queued trace event, and refuses a job whose event is malformed", () => {
    const j = job({ kind: 'inline', size: 3 });
    const event = queuedEvent({ ...j, messageId: 'm1@example.test' }, 3);
    expect(event).toMatchObject({
      eventId: `${j.spoolId}:queued`,
      kind: 'queued',
      service: 'smtp-inbound',
      queueId: j.spoolId,
      messageId: 'm1@example.test',
      attributes: { recipients: '3', size: '3', remote_ip: '::1' },
    });
    expect(event.sender).toBeUndefined();
    expect(event.attributes?.authenticated_as).toBeUndefined();
    expect(queuedEvent(j, 1, 'demo@example.test').attributes?.authenticated_as).toBe('demo@example.test');
    const carried = decodeInboundJob(
      encodeInboundJob({ ...j, queuedEvent: event }, Uint8Array.from([1, 2, 3])),
    );
    expect(carried.ok && carried.job.queuedEvent).toEqual(event);
    const bad = encodeInboundJob(
      { ...j, queuedEvent: { ...event, kind: 'nonsense' as 'queued' } },
      Uint8Array.from([1, 2, 3]),
    );
    const refused = decodeInboundJob(bad);
    expect(refused).toMatchObject({ ok: false, field: 'queuedEvent.kind' });
    expect(!refused.ok && refused.problem).toMatch(/^queuedEvent\.kind: expected one of received, queued, /);
  });
  it('dedup ids and spool ids have the documented shapes', () => {
    expect(jobMessageId('abc', 'MAIL_INBOUND')).toBe('abc:MAIL_INBOUND');
    const a = newSpoolId(1_000);
    const b = newSpoolId(2_000);
    expect(a).toMatch(/^[0-9a-z]{9}[A-Za-z0-9_-]{14}$/);
    expect(a.slice(0, 9) < b.slice(0, 9)).toBe(true);
  });
});

describe('small helpers', () => {
  it("a user's own sending limit wins over the service default; 0 or unset means the default", () => {
    expect(effectiveLimit(2, 1000)).toBe(2);
    expect(effectiveLimit(5000, 1000)).toBe(5000);
    expect(effectiveLimit(0, 1000)).toBe(1000);
    expect(effectiveLimit(undefined, 100)).toBe(100);
    expect(effectiveLimit(0, 0)).toBe(0); // no limit at all
    expect(effectiveLimit(7, 0)).toBe(7); // the default is off, the user's own still applies
  });
  it('rate-limit keys are valid KV keys for IPv4 and IPv6', () => {
    expect(counterKey('conn', '192.0.2.1', 7)).toBe('smtp.conn.192.0.2.1.7');
    expect(counterKey('msg', '2001:db8::1', 7)).toMatch(/^[-/_=.a-zA-Z0-9]+$/);
  });
  it('finds only Authentication-Results claiming our authserv-id', () => {
    const values = ['mx.example.test; dkim=pass', ' MX.EXAMPLE.TEST (c) ;spf=pass', 'other.test; spf=pass'];
    const header = { get: () => '', get_all: () => values };
    expect(forgedAuthResults(header, 'mx.example.test')).toEqual(values.slice(0, 2));
  });
  it('the DNS cache keeps answers and NXDOMAIN, but retries temporary failures', async () => {
    let calls = 0;
    const errors: Record<string, string> = { 'gone.test': 'ENOTFOUND', 'slow.test': 'ETIMEOUT' };
    const resolve = cachingResolver((name) => {
      calls += 1;
      const code = errors[name];
      return code === undefined
        ? Promise.resolve([['v=spf1 -all']])
        : Promise.reject(Object.assign(new Error(code), { code }));
    });
    await resolve('a.test', 'TXT');
    await resolve('A.TEST', 'txt');
    await expect(resolve('gone.test', 'TXT')).rejects.toThrow('ENOTFOUND');
    await expect(resolve('gone.test', 'TXT')).rejects.toThrow('ENOTFOUND');
    await expect(resolve('slow.test', 'TXT')).rejects.toThrow('ETIMEOUT');
    await new Promise((r) => setTimeout(r, 0));
    await expect(resolve('slow.test', 'TXT')).rejects.toThrow('ETIMEOUT');
    expect(calls).toBe(4);
  });
});

describe('reverse DNS of the client (rdns.ts)', () => {
  it("answers as Haraka's default lookup, keeping names and NXDOMAIN but not failures", async () => {
    let clock = 0;
    const asked: string[] = [];
    const answers: Record<string, () => Promise<string[]>> = {
      '192.0.2.1': () => Promise.resolve(['mx.sender.test', 'other.sender.test']),
      '192.0.2.2': () => Promise.reject(Object.assign(new Error('none'), { code: 'ENOTFOUND' })),
      '192.0.2.3': () => Promise.reject(Object.assign(new Error('slow'), { code: 'ETIMEOUT' })),
      '192.0.2.4': () => Promise.resolve([]),
    };
    const lookup = cachingReverseLookup({
      reverse: (ip) => {
        asked.push(ip);
        return answers[ip]?.() ?? Promise.reject(new Error('unexpected'));
      },
      ttlMs: 1_000,
      now: () => clock,
    });
    expect(await lookup('192.0.2.1')).toBe('mx.sender.test');
    expect(await lookup('192.0.2.2')).toBe('NXDOMAIN');
    expect(await lookup('192.0.2.3')).toBe('DNSERROR');
    expect(await lookup('192.0.2.4')).toBe('');
    clock = 999;
    for (const ip of ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4']) await lookup(ip);
    expect(asked).toEqual(['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4', '192.0.2.3']);
    clock = 1_001;
    await lookup('192.0.2.1');
    expect(asked).toHaveLength(6);
  });

  it('hands the name to Haraka as the lookup_rdns result', async () => {
    const hooks = reverseDnsHooks((ip) => Promise.resolve(`host-of-${ip}`));
    const answer = await new Promise<unknown[]>((resolve) => {
      hooks.hook_lookup_rdns?.((...args) => resolve(args), {
        remote: { ip: '192.0.2.9', port: 1 },
      } as never);
    });
    expect(answer).toEqual([906, 'host-of-192.0.2.9']);
  });
});

describe('generated Haraka configuration, files Haraka reads per connection', () => {
  it('writes results.ini (a missing file is stat-ed again at every read), with no Redis publishing', () => {
    expect(harakaConfigFiles(settings, '/spool').get('results.ini')).toBe('[main]\nredis_publish=false\n');
  });
});
