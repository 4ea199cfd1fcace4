/**
 * Keeps `sieve_ledger` (docs/sieve.md, "Exactly once") to the records that still decide something:
 *
 * - `vac:<user>:<sender, handle>` decides nothing once its `until` has passed (the next reply may
 *   go, exactly as if the record were missing: sieve-delivery claims an expired record and a
 *   missing one alike), so it goes then.
 * - `fx:<spoolId>:<user>:<n>` stops a redelivered job from redirecting, rejecting or replying
 *   twice. A job can come back as long as it may be redriven from the dead-letter queue (30 days by
 *   default), so these are kept for `effectRetentionMs` (45 days) after they were written.
 * - `notice:<user>:<version>` keeps a broken script to one failure notice. It goes after
 *   `noticeRetentionMs` only when the user has no script with that version any more (a script
 *   that is still broken never notifies twice).
 *
 * And when a user is deleted, their scripts and every ledger record of theirs go with them.
 * Deletions are idempotent, so every storage replica may sweep.
 */
import type { Collection, Db } from 'mongodb';
import type { Logger } from '@postmesh/telemetry';
import { Collections, type SieveLedgerDoc, type SieveScriptDoc } from '../db/schema.js';

export interface LedgerRetention {
  readonly effectRetentionMs: number;
  readonly noticeRetentionMs: number;
}

const DAY_MS = 86_400_000;
export const DEFAULT_LEDGER_RETENTION: LedgerRetention = {
  effectRetentionMs: 45 * DAY_MS,
  noticeRetentionMs: 45 * DAY_MS,
};

/** Notice records examined per batch (each needs a look at the user's scripts). */
const NOTICE_BATCH = 500;

export interface LedgerSweepResult {
  readonly vacation: number;
  readonly effects: number;
  readonly notices: number;
}

/** Escapes a string for use inside a regular expression (user ids are hex; kept general). */
const literal = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export class SieveLedgerSweep {
  private readonly ledger: Collection<SieveLedgerDoc>;
  private readonly scripts: Collection<SieveScriptDoc>;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  constructor(
    db: Db,
    private readonly logger: Logger,
    private readonly retention: LedgerRetention = DEFAULT_LEDGER_RETENTION,
    private readonly clock: () => Date = () => new Date(),
  ) {
    this.ledger = db.collection<SieveLedgerDoc>(Collections.sieveLedger);
    this.scripts = db.collection<SieveScriptDoc>(Collections.sieveScripts);
  }

  /** One pass over the ledger. */
  async sweep(): Promise<LedgerSweepResult> {
    const now = this.clock();
    const vacation = await this.ledger.deleteMany({ _id: { $regex: /^vac:/ }, until: { $lt: now } });
    const effects = await this.ledger.deleteMany({
      _id: { $regex: /^fx:/ },
      at: { $lt: new Date(now.getTime() - this.retention.effectRetentionMs) },
    });
    let notices = 0;
    const noticeBefore = new Date(now.getTime() - this.retention.noticeRetentionMs);
    let after = 'notice:';
    for (;;) {
      const batch = await this.ledger
        .find(
          { _id: { $regex: /^notice:/, $gt: after }, at: { $lt: noticeBefore } },
          { projection: { _id: 1 } },
        )
        .sort({ _id: 1 })
        .limit(NOTICE_BATCH)
        .toArray();
      if (batch.length === 0) break;
      after = batch[batch.length - 1]?._id ?? after;
      const stale: string[] = [];
      for (const { _id } of batch) {
        const [, userId = '', version = ''] = _id.split(':');
        if ((await this.scripts.countDocuments({ userId, version }, { limit: 1 })) === 0) stale.push(_id);
      }
      if (stale.length > 0) notices += (await this.ledger.deleteMany({ _id: { $in: stale } })).deletedCount;
      if (batch.length < NOTICE_BATCH) break;
    }
    const result = { vacation: vacation.deletedCount, effects: effects.deletedCount, notices };
    if (result.vacation + result.effects + result.notices > 0) this.logger.info(result, 'sieve ledger swept');
    return result;
  }

  /** A deleted user's scripts and ledger records (their vacation memory, effects, notices). */
  async removeUser(userId: string): Promise<void> {
    const id = literal(userId);
    await this.scripts.deleteMany({ userId });
    await this.ledger.deleteMany({
      $or: [
        { _id: { $regex: new RegExp(`^vac:${id}:`) } },
        { _id: { $regex: new RegExp(`^notice:${id}:`) } },
        { _id: { $regex: new RegExp(`^fx:[^:]*:${id}:`) } },
      ],
    });
  }

  /** Sweeps every `intervalMs` (0: never); failures are logged and retried at the next tick. */
  start(intervalMs: number): void {
    if (intervalMs <= 0) return;
    const tick = (): void => {
      if (this.running !== undefined) return;
      this.running = this.sweep()
        .catch((error: unknown) =>
          this.logger.warn({ err: error }, 'sieve ledger sweep failed; it runs again later'),
        )
        .finally(() => (this.running = undefined));
    };
    this.timer = setInterval(tick, intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
