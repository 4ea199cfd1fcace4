/**
 * The bounded backstop of outbound spool cleanup. Normally the last outbound job of a message to
 * become final deletes its `out/<spoolId>` object (`OutboundDelivery#releaseSpool`). An object
 * can still be left behind: a release that failed (NATS briefly unavailable), a publish that
 * failed after the object was written, or a job that went to MAIL_DLQ. No outbound job lives
 * longer than the queue lifetime (it is then bounced with 4.4.7), so an `out/` object older
 * than the lifetime plus a margin has no reader left and is deleted. Inbound objects (`msg/`)
 * are storage's and are never touched here: a dead-lettered inbound job still needs its body.
 */
import type { ObjectStore } from '@postmesh/bus';
import type { Logger } from '@postmesh/telemetry';

/** Extra time past the queue lifetime before an outbound spool object counts as abandoned. */
export const SPOOL_MARGIN_MS = 2 * 24 * 3_600_000;
/** Objects of outbound jobs (smtp-inbound `outboundSpoolObjectName`). */
export const OUTBOUND_SPOOL_PREFIX = 'out/';

/** Names of the outbound spool objects last modified before `cutoff` (ms since epoch). */
export function abandonedObjects(
  objects: readonly { name: string; mtime: string; deleted?: boolean }[],
  cutoff: number,
): string[] {
  return objects
    .filter((o) => o.deleted !== true && o.name.startsWith(OUTBOUND_SPOOL_PREFIX))
    .filter((o) => {
      const at = Date.parse(o.mtime);
      return Number.isFinite(at) && at < cutoff;
    })
    .map((o) => o.name);
}

export interface SpoolSweeperOptions {
  readonly spool: () => Promise<ObjectStore>;
  readonly lifetimeMs: number;
  readonly intervalMs: number;
  readonly logger: Logger;
  readonly now?: () => number;
}

export class SpoolSweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;

  constructor(private readonly options: SpoolSweeperOptions) {}

  /** Sweeps every `intervalMs`; the first sweep waits one interval, so a restarted replica works its queue first. */
  start(): void {
    this.timer ??= setInterval(() => {
      void this.sweep();
    }, this.options.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One sweep; resolves to the number of objects deleted (0 when one is already running). */
  sweep(): Promise<number> {
    if (this.running !== undefined) return Promise.resolve(0);
    const run = this.sweepOnce().finally(() => (this.running = undefined));
    this.running = run;
    return run;
  }

  private async sweepOnce(): Promise<number> {
    const now = (this.options.now ?? Date.now)();
    try {
      const store = await this.options.spool();
      const names = abandonedObjects(await store.list(), now - this.options.lifetimeMs - SPOOL_MARGIN_MS);
      for (const name of names) await store.delete(name);
      if (names.length > 0)
        this.options.logger.warn({ count: names.length }, 'abandoned outbound spool objects deleted');
      return names.length;
    } catch (error) {
      this.options.logger.warn({ err: error }, 'spool sweep failed; next time');
      return 0;
    }
  }
}
