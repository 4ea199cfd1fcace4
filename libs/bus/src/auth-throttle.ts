/**
 * Brute-force protection for IMAP LOGIN / AUTHENTICATE and SMTP AUTH (DESIGN §5): failed
 * attempts are counted per client IP and per account in the JetStream KV bucket `auth-failures`
 * (`Buckets.AUTH_FAILURES`), so every imap and smtp-inbound replica sees the same counters and a
 * password guessed over IMAP and SMTP counts against one limit. Each failure within the window
 * adds a delay before the answer (doubling from the third, capped); past a threshold the IP or
 * account is locked out until the window passes. A success clears the account's counter (not the IP's).
 *
 * Keys: `ip.<address with ':' as '_'>` and `account.<sha256(lower-case login) hex, 40 chars>`.
 * Value: JSON `{ "count": n, "last": <epoch ms> }`. The bucket's TTL (24 h) removes stale keys.
 *
 * If NATS is unavailable the throttle fails open (logins still work; a warning is logged):
 * mail access should not depend on the counter store.
 */
import { createHash } from 'node:crypto';
import type { KV } from '@nats-io/kv';

export interface ThrottlePolicy {
  readonly windowMs: number;
  readonly accountLockout: number;
  readonly ipLockout: number;
  readonly freeAttempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export const DEFAULT_THROTTLE_POLICY: ThrottlePolicy = {
  windowMs: 15 * 60_000,
  accountLockout: 10,
  ipLockout: 50,
  freeAttempts: 2,
  baseDelayMs: 500,
  maxDelayMs: 8_000,
};

export type ThrottleVerdict =
  | { readonly kind: 'allowed'; readonly delayMs: number }
  | { readonly kind: 'locked'; readonly scope: 'ip' | 'account'; readonly delayMs: number };

export interface AuthThrottle {
  check(ip: string, login: string): Promise<ThrottleVerdict>;
  failed(ip: string, login: string): Promise<void>;
  succeeded(login: string): Promise<void>;
}

interface Counter {
  readonly count: number;
  readonly last: number;
}

export function ipKey(ip: string): string {
  return `ip.${ip.replace(/[^A-Za-z0-9.-]/g, '_') || 'unknown'}`;
}

export function accountKey(login: string): string {
  return `account.${createHash('sha256').update(login.trim().toLowerCase()).digest('hex').slice(0, 40)}`;
}

/** Delay before answering an attempt after `failures` recent failures (progressive, capped). */
export function delayFor(failures: number, policy: ThrottlePolicy): number {
  if (failures < policy.freeAttempts) return 0;
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (failures - policy.freeAttempts));
}

export class KvAuthThrottle implements AuthThrottle {
  constructor(
    private readonly kv: () => Promise<KV>,
    private readonly policy: ThrottlePolicy,
    private readonly warn: (error: unknown, what: string) => void,
    private readonly now: () => number = Date.now,
  ) {}

  async check(ip: string, login: string): Promise<ThrottleVerdict> {
    try {
      const kv = await this.kv();
      const [byIp, byAccount] = await Promise.all([
        this.#read(kv, ipKey(ip)),
        this.#read(kv, accountKey(login)),
      ]);
      const ipCount = this.#recent(byIp?.value);
      const accountCount = this.#recent(byAccount?.value);
      const delayMs = delayFor(Math.max(ipCount, accountCount), this.policy);
      if (accountCount >= this.policy.accountLockout) return { kind: 'locked', scope: 'account', delayMs };
      if (ipCount >= this.policy.ipLockout) return { kind: 'locked', scope: 'ip', delayMs };
      return { kind: 'allowed', delayMs };
    } catch (error) {
      this.warn(error, 'auth throttle unavailable; allowing the attempt');
      return { kind: 'allowed', delayMs: 0 };
    }
  }

  async failed(ip: string, login: string): Promise<void> {
    try {
      const kv = await this.kv();
      await Promise.all([this.#increment(kv, ipKey(ip)), this.#increment(kv, accountKey(login))]);
    } catch (error) {
      this.warn(error, 'could not record a failed login');
    }
  }

  async succeeded(login: string): Promise<void> {
    try {
      const kv = await this.kv();
      await kv.delete(accountKey(login));
    } catch (error) {
      this.warn(error, 'could not clear the failed-login counter');
    }
  }

  #recent(counter: Counter | undefined): number {
    if (counter === undefined) return 0;
    return this.now() - counter.last > this.policy.windowMs ? 0 : counter.count;
  }

  async #read(kv: KV, key: string): Promise<{ value: Counter; revision: number } | null> {
    const entry = await kv.get(key);
    if (entry === null || entry.operation !== 'PUT' || entry.length === 0) return null;
    try {
      const parsed = entry.json<Counter>();
      if (typeof parsed.count !== 'number' || typeof parsed.last !== 'number') return null;
      return { value: parsed, revision: entry.revision };
    } catch {
      return null;
    }
  }

  /** Compare-and-set increment, retried (bounded) on a concurrent update from another node. */
  async #increment(kv: KV, key: string): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const current = await this.#read(kv, key);
      const next: Counter = { count: this.#recent(current?.value) + 1, last: this.now() };
      const payload = JSON.stringify(next);
      try {
        if (current === null) await kv.create(key, payload).catch(() => kv.put(key, payload));
        else await kv.update(key, payload, current.revision);
        return;
      } catch {
        // Lost the race: read again.
      }
    }
    this.warn(new Error(key), 'failed-login counter kept changing; one failure not counted');
  }
}

/** For tests and for running without NATS: counts nothing, delays nothing. */
export const NO_THROTTLE: AuthThrottle = {
  check: () => Promise.resolve({ kind: 'allowed', delayMs: 0 }),
  failed: () => Promise.resolve(),
  succeeded: () => Promise.resolve(),
};
