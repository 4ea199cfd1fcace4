/** The login throttle's rules, on its in-process counters (the KV never answers here). */
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_THROTTLE_POLICY,
  KvAuthThrottle,
  PENDING_MAX_MS,
  accountKey,
  delayFor,
  throttlePolicyOf,
  authFailuresCounter,
} from '../src/index.js';
import { Registry } from '@postmesh/telemetry';

const policy = { ...DEFAULT_THROTTLE_POLICY, accountLockout: 3, ipLockout: 5, windowMs: 60_000 };

function offline(now: () => number): { throttle: KvAuthThrottle; warnings: string[] } {
  const warnings: string[] = [];
  const throttle = new KvAuthThrottle(
    () => Promise.reject(new Error('NATS is not connected')),
    policy,
    (_e, what) => warnings.push(what),
    { now },
  );
  return { throttle, warnings };
}

describe('KvAuthThrottle without NATS', () => {
  it('locks an account at the limit and lets it go when the window has passed', async () => {
    let now = 1_000_000;
    const { throttle, warnings } = offline(() => now);
    const delays = [];
    for (let i = 0; i < 3; i++) {
      const v = await throttle.attempt(`192.0.2.${i}`, 'eve@example.test');
      expect(v.kind).toBe('allowed');
      delays.push(v.delayMs);
      if (v.kind === 'allowed') throttle.failed(v.ticket);
    }
    // Progressive: nothing for the free attempts, then the base delay doubling.
    expect(delays).toEqual([0, 0, delayFor(2, policy)]);
    const locked = await throttle.attempt('192.0.2.9', 'EVE@example.test');
    expect(locked).toMatchObject({ kind: 'locked', scope: 'account', retryAfterMs: 60_000 });
    now += 60_001;
    expect(await throttle.attempt('192.0.2.9', 'eve@example.test')).toMatchObject({ kind: 'allowed' });
    expect(warnings[0]).toBe('shared auth throttle unavailable; counting in this process');
  });

  it('takes a released attempt off both counters', async () => {
    const { throttle } = offline(() => 0);
    for (let i = 0; i < 10; i++) {
      const v = await throttle.attempt('192.0.2.50', 'frank@example.test');
      expect(v.kind).toBe('allowed');
      if (v.kind === 'allowed') await throttle.release(v.ticket);
    }
  });

  it('delays after failures, not for attempts still under way beside them', async () => {
    const now = 1_000_000;
    const { throttle } = offline(() => now);
    // Four users behind one address logging in at once: none of them has failed.
    const together = [];
    for (const user of ['ann', 'bob', 'cat', 'dan']) {
      together.push(await throttle.attempt('192.0.2.60', `${user}@example.test`));
    }
    expect(together.map((v) => v.kind)).toEqual(['allowed', 'allowed', 'allowed', 'allowed']);
    expect(together.map((v) => v.delayMs)).toEqual([0, 0, 0, 0]);
    // Two of them typed a wrong password: the next attempt from that address waits for both.
    for (const v of together.slice(0, 2)) if (v.kind === 'allowed') throttle.failed(v.ticket);
    const third = await throttle.attempt('192.0.2.60', 'eve@example.test');
    expect(third).toMatchObject({ kind: 'allowed', delayMs: delayFor(2, policy) });
  });

  it('counts an attempt never settled as a failure once PENDING_MAX_MS has passed', async () => {
    let now = 1_000_000;
    const { throttle } = offline(() => now);
    for (const user of ['ann', 'bob']) await throttle.attempt('192.0.2.70', `${user}@example.test`);
    expect(await throttle.attempt('192.0.2.70', 'cat@example.test')).toMatchObject({ delayMs: 0 });
    now += PENDING_MAX_MS + 1;
    expect(await throttle.attempt('192.0.2.70', 'dan@example.test')).toMatchObject({
      delayMs: delayFor(3, policy),
    });
  });

  it('lets every one of many simultaneous right logins to one account through', async () => {
    const { throttle } = offline(() => 1_000_000);
    // Twenty connections of one client at once, each with the right password: each is settled as
    // a success once its check is done. Only `policy.accountLockout` can be under way at a time.
    const verdicts = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const verdict = await throttle.attempt('192.0.2.80', 'gina@example.test');
        if (verdict.kind === 'allowed') {
          await new Promise((r) => setTimeout(r, 5));
          await throttle.succeeded(verdict.ticket);
        }
        return verdict;
      }),
    );
    expect(verdicts.map((v) => v.kind)).toEqual(Array.from({ length: 20 }, () => 'allowed'));
    expect(verdicts.map((v) => v.delayMs)).toEqual(Array.from({ length: 20 }, () => 0));
  });

  it('still refuses simultaneous wrong logins past the limit', async () => {
    const { throttle } = offline(() => 1_000_000);
    // Each from its own address: only the account's limit applies.
    const verdicts = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const verdict = await throttle.attempt(`192.0.2.${100 + i}`, 'hank@example.test');
        if (verdict.kind === 'allowed') {
          await new Promise((r) => setTimeout(r, 5));
          throttle.failed(verdict.ticket);
        }
        return verdict;
      }),
    );
    expect(verdicts.filter((v) => v.kind === 'allowed')).toHaveLength(policy.accountLockout);
    expect(verdicts.filter((v) => v.kind === 'locked' && v.scope === 'account')).toHaveLength(
      20 - policy.accountLockout,
    );
  });

  it('refuses at the limit after settleWaitMs when attempts under way never settle', async () => {
    const warnings: string[] = [];
    const throttle = new KvAuthThrottle(
      () => Promise.reject(new Error('NATS is not connected')),
      policy,
      (_e, what) => warnings.push(what),
      { settleWaitMs: 50 },
    );
    const verdicts = await Promise.all(
      Array.from({ length: 5 }, () => throttle.attempt('192.0.2.82', 'ivy@example.test')),
    );
    expect(verdicts.map((v) => v.kind)).toEqual(['allowed', 'allowed', 'allowed', 'locked', 'locked']);
  });

  it('keys accounts by the trimmed, case-folded login when nothing resolves them', () => {
    expect(accountKey(' Alice@Example.TEST')).toBe(accountKey('alice@example.test'));
    expect(accountKey('alice@example.test')).toMatch(/^account\.[0-9a-f]{40}$/);
  });
});

describe('throttlePolicyOf', () => {
  it("takes the four variables imap and smtp-inbound share and keeps the defaults' other rules", () => {
    const set = throttlePolicyOf({
      POSTMESH_AUTH_LOCKOUT_ACCOUNT: 4,
      POSTMESH_AUTH_LOCKOUT_IP: 40,
      POSTMESH_AUTH_WINDOW_MS: 120_000,
      POSTMESH_AUTH_BASE_DELAY_MS: 250,
    });
    expect(set).toEqual({
      ...DEFAULT_THROTTLE_POLICY,
      accountLockout: 4,
      ipLockout: 40,
      windowMs: 120_000,
      baseDelayMs: 250,
    });
  });
});

describe('authFailuresCounter', () => {
  it('counts failed logins per protocol in the registry it is given, under one metric name', async () => {
    const registry = new Registry();
    const failures = authFailuresCounter(registry);
    failures.inc({ protocol: 'imap' });
    failures.inc({ protocol: 'imap' });
    failures.inc({ protocol: 'smtp' });
    const text = await registry.metrics();
    expect(text).toContain('postmesh_auth_failures_total{protocol="imap"} 2');
    expect(text).toContain('postmesh_auth_failures_total{protocol="smtp"} 1');
  });
});
