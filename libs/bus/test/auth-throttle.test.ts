/** The login throttle's rules, on its in-process counters (the KV never answers here). */
import { describe, expect, it } from 'vitest';
import { DEFAULT_THROTTLE_POLICY, KvAuthThrottle, accountKey, delayFor } from '../src/index.js';

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

  it('keys accounts by the trimmed, case-folded login when nothing resolves them', () => {
    expect(accountKey(' Alice@Example.TEST')).toBe(accountKey('alice@example.test'));
    expect(accountKey('alice@example.test')).toMatch(/^account\.[0-9a-f]{40}$/);
  });
});
