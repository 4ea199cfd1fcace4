/**
 * Webhook signatures, destinations and event mapping (docs/webhooks.md), without I/O except the
 * resolver: what a receiver verifies, and which URLs and addresses the sender refuses.
 */
import { mailEvent, webhookDomainsOf, webhookEventTypeOf } from '@postmesh/bus';
import { describe, expect, it } from 'vitest';
import { DestinationPolicy, allowListProblems } from '../src/webhooks/destination.js';
import { retryDelayMs } from '../src/webhooks/sender.js';
import { generateWebhookSecret, signWebhook, verifyWebhookSignature } from '../src/webhooks/signature.js';

describe('webhook signature', () => {
  const secret = generateWebhookSecret();
  const body = '{"id":"e1","type":"delivered"}';
  const now = 1_800_000_000;

  it('verifies what was signed, with the secret, within the tolerance', () => {
    const header = signWebhook(secret, now, body);
    expect(header).toMatch(/^t=1800000000,v1=[0-9a-f]{64}$/);
    expect(verifyWebhookSignature(secret, header, body, { now: now + 10 })).toEqual({
      ok: true,
      timestamp: now,
    });
  });

  it('detects a changed body, another secret, a changed timestamp and a replay', () => {
    const header = signWebhook(secret, now, body);
    expect(verifyWebhookSignature(secret, header, body.replace('e1', 'e2'), { now })).toEqual({
      ok: false,
      problem: 'mismatch',
    });
    expect(verifyWebhookSignature(generateWebhookSecret(), header, body, { now })).toEqual({
      ok: false,
      problem: 'mismatch',
    });
    const moved = header.replace(`t=${now}`, `t=${now + 1}`);
    expect(verifyWebhookSignature(secret, moved, body, { now })).toEqual({ ok: false, problem: 'mismatch' });
    expect(verifyWebhookSignature(secret, header, body, { now: now + 301 })).toEqual({
      ok: false,
      problem: 'stale',
    });
  });

  it('refuses a missing or malformed header', () => {
    for (const header of [undefined, '', 'v1=abc', `t=${now}`, `t=x,v1=${'0'.repeat(64)}`]) {
      expect(verifyWebhookSignature(secret, header, body, { now }).ok).toBe(false);
    }
  });

  it('accepts any of several v1 signatures (a receiver checking during a secret rotation)', () => {
    const old = generateWebhookSecret();
    const header = `${signWebhook(old, now, body)},v1=${signWebhook(secret, now, body).split('v1=')[1]}`;
    expect(verifyWebhookSignature(secret, header, body, { now }).ok).toBe(true);
  });
});

describe('webhook destinations', () => {
  const strict = new DestinationPolicy();

  it('refuses other schemes, credentials and internal addresses by default', () => {
    expect(strict.urlProblem('https://hooks.example.com/postmesh')).toBeUndefined();
    expect(strict.urlProblem('http://203.0.114.7:8080/x')).toBeUndefined();
    for (const url of [
      'ftp://hooks.example.com/',
      'file:///etc/passwd',
      'https://user:pw@hooks.example.com/',
      'not a url',
      'http://127.0.0.1:9000/',
      'http://10.1.2.3/',
      'http://172.20.0.1/',
      'http://192.168.1.1/',
      'http://169.254.169.254/latest/meta-data/',
      'http://100.64.0.1/',
      'http://[::1]/',
      'http://[fd00::1]/',
      'http://[::ffff:127.0.0.1]/',
      'http://0.0.0.0/',
      'http://localhost:8080/',
      `https://example.com/${'a'.repeat(2_100)}`,
    ]) {
      expect(strict.urlProblem(url), url).toBeDefined();
    }
  });

  it('lets an operator allow chosen internal addresses and ranges', () => {
    const policy = new DestinationPolicy(['127.0.0.1', '10.20.0.0/16']);
    expect(policy.urlProblem('http://127.0.0.1:9000/')).toBeUndefined();
    expect(policy.urlProblem('http://10.20.3.4/')).toBeUndefined();
    expect(policy.urlProblem('http://10.21.3.4/')).toBeDefined();
    expect(allowListProblems(['127.0.0.1', '10.0.0.0/8', 'fd00::/8', 'nonsense', '10.0.0.0/40'])).toEqual([
      'nonsense',
      '10.0.0.0/40',
    ]);
  });

  it('refuses a host name that resolves to an internal address when connecting', async () => {
    const resolve = (policy: DestinationPolicy, all: boolean) =>
      new Promise<string>((done) => {
        policy.lookup('localhost', { all }, (error, address) =>
          done(error === null ? `ok ${JSON.stringify(address)}` : error.name),
        );
      });
    expect(await resolve(strict, false)).toBe('DestinationRefused');
    expect(await resolve(strict, true)).toBe('DestinationRefused');
    expect(await resolve(new DestinationPolicy(['127.0.0.1', '::1']), false)).toMatch(
      /^ok "(127\.0\.0\.1|::1)"$/,
    );
  });
});

describe('webhook event mapping', () => {
  it('maps mail event kinds onto webhook types', () => {
    const of = (fields: Parameters<typeof mailEvent>[0]) => webhookEventTypeOf(mailEvent(fields));
    expect(of({ service: 'smtp-inbound', kind: 'queued' })).toBe('received');
    expect(of({ service: 'mta-delivery', kind: 'queued' })).toBeUndefined();
    expect(of({ service: 'storage', kind: 'delivered' })).toBe('delivered');
    expect(of({ service: 'storage', kind: 'junked' })).toBe('delivered');
    expect(of({ service: 'mta-delivery', kind: 'relayed' })).toBe('delivered');
    expect(of({ service: 'mta-delivery', kind: 'bounced' })).toBe('bounced');
    expect(of({ service: 'mta-delivery', kind: 'deferred' })).toBe('deferred');
    expect(of({ service: 'storage', kind: 'dlq', recipient: 'a@b.test' })).toBe('dead-lettered');
    expect(of({ service: 'storage', kind: 'rejected', attributes: { spam_action: 'reject' } })).toBe(
      'spam-rejected',
    );
    expect(of({ service: 'storage', kind: 'rejected' })).toBeUndefined();
    expect(
      of({ service: 'storage', kind: 'alert', attributes: { alert: 'webhook-failed' } }),
    ).toBeUndefined();
    expect(of({ service: 'storage', kind: 'delayed-notice' })).toBeUndefined();
  });

  it('finds the domains of the sender, the recipient and all recipients of an accepted message', () => {
    const event = mailEvent({
      service: 'smtp-inbound',
      kind: 'queued',
      sender: 'Alice@Example.COM',
      attributes: { recipient_domains: 'a.test, b.test,' },
    });
    expect(webhookDomainsOf(event).sort()).toEqual(['a.test', 'b.test', 'example.com']);
  });

  it('backs off exponentially up to an hour', () => {
    expect([1, 2, 3, 4].map((n) => retryDelayMs(n, 10_000))).toEqual([10_000, 20_000, 40_000, 80_000]);
    expect(retryDelayMs(30, 10_000)).toBe(3_600_000);
  });
});
