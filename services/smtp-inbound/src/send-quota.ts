/**
 * Per-user sending limit for submission: accepted transactions per user per clock
 * hour, counted across every smtp-inbound replica in the KV bucket `rate-limits` under
 * `submit.user.<userId>.<hour since epoch>` (JSON `{ "count": n }`; the bucket's TTL removes old
 * hours). Counted at MAIL FROM, so a transaction abandoned after MAIL still counts: the limit is
 * on attempts, which is what slows a hijacked account. Fails open when NATS is unavailable.
 *
 * The allowance is the user's own (directory.proto `User.messages_per_hour`) when set, else the
 * service default (`POSTMESH_SUBMISSION_MESSAGES_PER_HOUR`); 0 for both means no limit.
 */
import type { KV } from '@postmesh/bus';

export interface SendQuota {
  /**
   * Takes one message from the user's hourly allowance; false when it is used up. `ownPerHour`
   * is the user's own limit, 0 for the service default.
   */
  take(userId: string, ownPerHour?: number): Promise<boolean>;
}

/** The limit that applies: the user's own when set (> 0), else the service default. */
export function effectiveLimit(own: number | undefined, serviceDefault: number): number {
  return own !== undefined && own > 0 ? own : serviceDefault;
}

export function sendQuotaKey(userId: string, now: number): string {
  return `submit.user.${userId.replace(/[^A-Za-z0-9_-]/g, '_')}.${Math.floor(now / 3_600_000)}`;
}

export class KvSendQuota implements SendQuota {
  constructor(
    private readonly kv: () => Promise<KV>,
    private readonly perHour: number,
    private readonly warn: (error: unknown) => void,
    private readonly now: () => number = Date.now,
  ) {}

  async take(userId: string, ownPerHour = 0): Promise<boolean> {
    const perHour = effectiveLimit(ownPerHour, this.perHour);
    if (perHour <= 0) return true;
    try {
      const kv = await this.kv();
      const key = sendQuotaKey(userId, this.now());
      // Compare-and-set, bounded retries on a concurrent update from another replica.
      for (let attempt = 0; attempt < 5; attempt++) {
        const entry = await kv.get(key);
        const count =
          entry !== null && entry.operation === 'PUT' && entry.length > 0
            ? Number(entry.json<{ count?: unknown }>().count) || 0
            : 0;
        if (count >= perHour) return false;
        const payload = JSON.stringify({ count: count + 1 });
        try {
          if (entry === null) await kv.create(key, payload);
          else await kv.update(key, payload, entry.revision);
          return true;
        } catch {
          // Lost the race: read again.
        }
      }
      return true;
    } catch (error) {
      this.warn(error);
      return true;
    }
  }
}
