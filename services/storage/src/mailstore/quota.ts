/**
 * The mailstore's quota: the checks before a write (bytes and messages, RFC 9208) and GETQUOTA.
 */
import type { mailstore } from '@postmesh/contracts';
import { ErrorReason } from './contract.js';
import { MailstoreError } from './errors.js';
import { userFilter, users, usageOf } from './mailboxes.js';
import { StorePart } from './store-part.js';
import { notFound } from './store-common.js';

export class QuotaChecks extends StorePart {
  /** Quota limits of the users written to lately (`quotaLimitsOf`). */
  private readonly quotaLimits = new Map<
    string,
    { at: number; limits: { quotaBytes: number; quotaMessages: number } | null }
  >();

  /**
   * Refuses with OVER_QUOTA when `bytes` more would exceed the user's STORAGE quota or `messages`
   * more the MESSAGE quota (RFC 9208 §5.1, §5.2).
   */
  async checkQuota(userId: string, bytes: number, messages = 1): Promise<void> {
    const limits = await this.quotaLimitsOf(userId);
    if (limits === null || (limits.quotaBytes <= 0 && limits.quotaMessages <= 0)) return;
    const used = (await usageOf(this.db, [userId], this.recountHeld)).get(userId) ?? {
      bytes: 0,
      messages: 0,
    };
    if (limits.quotaBytes > 0 && used.bytes + bytes > limits.quotaBytes) {
      throw new MailstoreError(ErrorReason.OVER_QUOTA, 'storage quota exceeded');
    }
    if (limits.quotaMessages > 0 && used.messages + messages > limits.quotaMessages) {
      throw new MailstoreError(ErrorReason.OVER_QUOTA, 'message quota exceeded');
    }
  }

  /**
   * A user's STORAGE and MESSAGE limits, kept for `MailstoreRuntime.settings.quotaLimits.maxAgeMs` (null: no such
   * user): an APPEND checks the quota without reading the user's document each time (a scan of
   * `users` on FerretDB), and a limit an administrator changed applies within that time.
   */
  private async quotaLimitsOf(userId: string): Promise<{ quotaBytes: number; quotaMessages: number } | null> {
    const now = Date.now();
    const known = this.quotaLimits.get(userId);
    if (known !== undefined && now - known.at < this.rt.settings.quotaLimits.maxAgeMs) return known.limits;
    const filter = userFilter(userId);
    const user =
      filter === null
        ? null
        : await users(this.db).findOne(filter, { projection: { quotaBytes: 1, quotaMessages: 1 } });
    const limits =
      user === null ? null : { quotaBytes: user.quotaBytes ?? 0, quotaMessages: user.quotaMessages ?? 0 };
    if (this.quotaLimits.size >= 100_000) this.quotaLimits.clear();
    this.quotaLimits.set(userId, { at: now, limits });
    return limits;
  }

  /**
   * Recounts, under its lock, a mailbox whose counters a lost holder may have kept in memory, so
   * that usage read by the owner (`usageOf`) is right after a crash too.
   */
  private readonly recountHeld = (mailboxId: string, mark: string): Promise<void> =>
    this.rt.withCounterLock(this.lockKey(mailboxId), () => this.s.flags.recountCounters(mailboxId, mark));

  /**
   * Bytes and messages each of these users may still store, for those with a STORAGE or MESSAGE
   * quota (one read of the users, one of the mailboxes of those with a quota: usage is the sum of
   * their counters, `usageOf`).
   */
  async quotaRoom(
    userIds: readonly string[],
  ): Promise<{ bytes: Map<string, number>; messages: Map<string, number> }> {
    const ids = [...new Set(userIds)].flatMap((id) => {
      const filter = userFilter(id);
      return filter === null ? [] : [filter._id];
    });
    if (ids.length === 0) return { bytes: new Map(), messages: new Map() };
    const docs = await users(this.db)
      .find({ _id: { $in: ids } }, { projection: { quotaBytes: 1, quotaMessages: 1 } })
      .toArray();
    const limited = docs.filter((u) => u.quotaBytes > 0 || (u.quotaMessages ?? 0) > 0);
    const used = await usageOf(
      this.db,
      limited.map((u) => u._id.toHexString()),
      this.recountHeld,
    );
    const usedOf = (id: string) => used.get(id) ?? { bytes: 0, messages: 0 };
    return {
      bytes: new Map(
        limited
          .filter((u) => u.quotaBytes > 0)
          .map((u) => [u._id.toHexString(), u.quotaBytes - usedOf(u._id.toHexString()).bytes] as const),
      ),
      messages: new Map(
        limited
          .filter((u) => (u.quotaMessages ?? 0) > 0)
          .map((u) => {
            const id = u._id.toHexString();
            return [id, (u.quotaMessages ?? 0) - usedOf(id).messages] as const;
          }),
      ),
    };
  }

  /** RFC 9208 §5.1: one quota root per user. */
  async getQuota(userId: string): Promise<mailstore.GetQuotaResponse> {
    const filter = userFilter(userId);
    const user =
      filter === null
        ? null
        : await users(this.db).findOne(filter, {
            projection: { quotaBytes: 1, quotaMessages: 1 },
          });
    if (user === null) throw notFound('user', 'user_id');
    const used = (await usageOf(this.db, [userId], this.recountHeld)).get(userId);
    return {
      usedBytes: used?.bytes ?? 0,
      limitBytes: user.quotaBytes ?? 0,
      usedMessages: used?.messages ?? 0,
      limitMessages: user.quotaMessages ?? 0,
    };
  }
}
