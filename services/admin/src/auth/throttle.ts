/**
 * Login throttling per client IP (DESIGN §5 brute force): failed logins in a sliding window; over
 * the limit, logins are refused with 429 and Retry-After before any password is checked. The
 * per-account lockout lives in storage (AuthenticateAdmin), so it holds across admin replicas.
 *
 * With NATS, the per-IP failures are kept in the shared JetStream KV bucket `auth-failures`
 * (the bucket imap and smtp-inbound count in, under the admin's own key prefix `admin-ip.` so the
 * console's stricter limit does not mix with the mail protocols'): every admin replica sees the
 * same counters. Each replica also counts locally, so a NATS outage does not switch throttling off.
 */
import type { KV } from '@nats-io/kv';

export interface LoginThrottle {
  /** Seconds to wait before trying again, or 0 when a login may be attempted. */
  retryAfter(ip: string): Promise<number>;
  fail(ip: string): Promise<void>;
  succeed(ip: string): Promise<void>;
}

/** The sliding window over failure times (epoch ms): seconds until a login may be tried again. */
function waitSeconds(times: readonly number[], maxFailures: number, windowMs: number, now: number): number {
  const recent = times.filter((t) => t > now - windowMs);
  if (recent.length < maxFailures) return 0;
  const oldest = recent[recent.length - maxFailures] ?? now;
  return Math.max(1, Math.ceil((oldest + windowMs - now) / 1000));
}

/** One replica's own counters (also the fallback of the shared one). */
export class MemoryLoginThrottle implements LoginThrottle {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly maxFailures: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  retryAfter(ip: string): Promise<number> {
    return Promise.resolve(waitSeconds(this.recent(ip), this.maxFailures, this.windowMs, this.now()));
  }

  fail(ip: string): Promise<void> {
    const recent = this.recent(ip);
    recent.push(this.now());
    this.failures.set(ip, recent.slice(-this.maxFailures));
    // Bounded memory: forget the oldest IPs when too many are tracked.
    if (this.failures.size > 100_000) {
      const first = this.failures.keys().next().value;
      if (first !== undefined) this.failures.delete(first);
    }
    return Promise.resolve();
  }

  succeed(ip: string): Promise<void> {
    this.failures.delete(ip);
    return Promise.resolve();
  }

  private recent(ip: string): number[] {
    const since = this.now() - this.windowMs;
    return (this.failures.get(ip) ?? []).filter((t) => t > since);
  }
}

/** KV key of an IP (NATS KV keys allow `[-/_=.a-zA-Z0-9]`; IPv6 colons become `_`). */
export const adminIpKey = (ip: string): string =>
  `admin-ip.${ip.replace(/[^A-Za-z0-9.-]/g, '_').slice(0, 100) || 'unknown'}`;

interface Failures {
  /** The latest failure times (epoch ms), at most `maxFailures`. */
  readonly times: number[];
}

/** Per-IP failures shared by all admin replicas through the KV bucket `auth-failures`. */
export class KvLoginThrottle implements LoginThrottle {
  private readonly local: MemoryLoginThrottle;

  constructor(
    private readonly kv: () => Promise<KV>,
    private readonly maxFailures: number,
    private readonly windowMs: number,
    private readonly warn: (error: unknown, what: string) => void,
    private readonly now: () => number = Date.now,
  ) {
    this.local = new MemoryLoginThrottle(maxFailures, windowMs, now);
  }

  async retryAfter(ip: string): Promise<number> {
    const local = await this.local.retryAfter(ip);
    try {
      const entry = await this.read(await this.kv(), adminIpKey(ip));
      const shared = waitSeconds(entry?.value.times ?? [], this.maxFailures, this.windowMs, this.now());
      return Math.max(local, shared);
    } catch (error) {
      this.warn(error, 'shared login throttle unavailable; using this replica’s counters');
      return local;
    }
  }

  async fail(ip: string): Promise<void> {
    await this.local.fail(ip);
    try {
      const kv = await this.kv();
      const key = adminIpKey(ip);
      // Compare-and-set, retried (bounded) when another replica counted at the same time.
      for (let attempt = 0; attempt < 5; attempt++) {
        const current = await this.read(kv, key);
        const since = this.now() - this.windowMs;
        const times = [...(current?.value.times ?? []).filter((t) => t > since), this.now()].slice(
          -this.maxFailures,
        );
        const payload = JSON.stringify({ times } satisfies Failures);
        try {
          if (current === null) await kv.create(key, payload);
          else await kv.update(key, payload, current.revision);
          return;
        } catch {
          // Lost the race (or the key was created meanwhile): read again.
        }
      }
      this.warn(new Error(key), 'failed-login counter kept changing; one failure counted locally only');
    } catch (error) {
      this.warn(error, 'could not record a failed login in the shared throttle');
    }
  }

  async succeed(ip: string): Promise<void> {
    await this.local.succeed(ip);
    try {
      await (await this.kv()).delete(adminIpKey(ip));
    } catch (error) {
      this.warn(error, 'could not clear the shared failed-login counter');
    }
  }

  private async read(kv: KV, key: string): Promise<{ value: Failures; revision: number } | null> {
    const entry = await kv.get(key);
    if (entry === null || entry.operation !== 'PUT' || entry.length === 0) return null;
    try {
      const parsed = entry.json<Failures>();
      if (!Array.isArray(parsed.times) || !parsed.times.every((t) => typeof t === 'number')) return null;
      return { value: { times: parsed.times }, revision: entry.revision };
    } catch {
      return null;
    }
  }
}
