/**
 * Says when storage is stuck instead of going silent: every `intervalMs` it logs a warning for
 * each database command unanswered for `thresholdMs` or more (command, collection, statements, how
 * long) and for each mailbox or user lock held that long (its key — `<database>:<mailbox or user
 * id>` — how long, how many wait behind it). A database that stops answering (FerretDB's
 * connections exhausted, db/bulk-updates.ts) or a critical section that never ends then shows up
 * in the log within seconds, naming what is stuck, while callers see only deadlines passing.
 */
import type { Logger } from '@postmesh/telemetry';
import type { KeyedLock } from './keyed-lock.js';
import type { CommandsInFlight } from './metrics.js';

export interface StallWatchOptions {
  readonly logger: Logger;
  /** The database's operations unanswered (MongoDB's commands, or SQLite's writes). */
  readonly commands?: Pick<CommandsInFlight, 'longerThan'>;
  /** Locks by what their keys name (e.g. `mailbox`, `compaction`). */
  readonly locks?: Readonly<Record<string, KeyedLock>>;
  readonly thresholdMs?: number;
  readonly intervalMs?: number;
}

/** Starts the watch; answers a function that stops it. */
export function watchStalls(options: StallWatchOptions): () => void {
  const thresholdMs = options.thresholdMs ?? 10_000;
  const { logger } = options;
  const check = (): void => {
    for (const c of options.commands?.longerThan(thresholdMs) ?? []) {
      logger.warn(
        { command: c.command, collection: c.collection, statements: c.statements, runningMs: c.runningMs },
        'database command unanswered for long; storage calls that need the database wait',
      );
    }
    for (const [lock, keyed] of Object.entries(options.locks ?? {})) {
      for (const h of keyed.heldLongerThan(thresholdMs)) {
        logger.warn(
          { lock, key: h.key, heldMs: h.heldMs, waiting: h.waiting },
          'lock held for long; its waiters are stuck behind it',
        );
      }
    }
  };
  const timer = setInterval(check, options.intervalMs ?? 5_000);
  timer.unref();
  return () => clearInterval(timer);
}
