/**
 * What the Mailstores of one storage process share on one database: the mailbox locks, the
 * messages waiting for their mailbox's group commit, the flag and expunge records not yet folded
 * and their background compaction, the counter flush, and the index builds and cache fills in
 * flight. Created once per process and database (app.ts) and injected into every `Mailstore`
 * over it (`MailstoreDeps.runtime`): the gRPC service, the delivery consumer, the spam learner
 * and the index warm-up all serialise on the same locks and see the same pending records.
 */
import type { Db } from 'mongodb';
import type { BlobRefDoc } from '../blob/index.js';
import { KeyedLock } from '../db/keyed-lock.js';
import type { AtomicWriter, WriteGuard } from '../db/sqlite/index.js';
import type { MailboxIndexEntry, MessageSummary } from './mailbox-index.js';
import { PendingChanges, retainOwnedRecords, setRecordOwnership } from './pending-changes.js';
import type { MessageRecord, SearchIndexDoc } from './types.js';

/** A message waiting to join the next group committed into its mailbox (`MessageWriter.insertMessage`). */
export interface PendingInsert {
  readonly entry: SearchIndexDoc;
  readonly doc: MessageRecord;
  /**
   * Written in one transaction of the database with its body's reference (`blobRef`), checked
   * against this guard (ADR 0014); without it, search entries, then messages, then a confirm.
   */
  readonly atomic?: { readonly write: AtomicWriter; readonly guard: WriteGuard | undefined };
  readonly blobRef?: BlobRefDoc;
  readonly resolve: (stored: { uid: number; modseq: number }) => void;
  readonly reject: (error: unknown) => void;
  /** Set once its message document is written. */
  stored: boolean;
}

/**
 * Flag changes and expunges not yet folded into the message documents (loaded at first use;
 * pending-changes.ts), and its background compaction.
 */
export interface PendingState {
  /** Replaced by a chained refresh when ownership moves (`followRecordOwnership`). */
  changes: Promise<PendingChanges>;
  refreshQueued: boolean;
  timer: NodeJS.Timeout | undefined;
  running: Promise<number> | undefined;
  /** When the mailstore last wrote a record: compaction waits for a quiet moment. */
  lastWrite: number;
  /** Shutting down (`quiesce`): no more background compaction. */
  stopped: boolean;
}

/**
 * When background compaction runs: once writes paused for `quietMs` with at least `minBatch`
 * records waiting, once they paused for `idleMs` with any, or beyond `backlog` records whatever the
 * load (each record is folded at every read of its mailbox's documents until then). On FerretDB
 * every update or delete by anything but one `_id`, and a delete or update even by one, costs about
 * a scan of its collection, so a compaction costs about the same for 2 records as for 200: small
 * batches spent most of the FerretDB CPU of long-lived IMAP sessions (docs/benchmarks.md).
 */
export interface CompactionSettings {
  quietMs: number;
  minBatch: number;
  idleMs: number;
  backlog: number;
}

/**
 * How long counters moved in memory (`FlagStore.advanceCounters`) wait to be written: one update
 * per mailbox per period instead of one per command.
 */
export interface CounterFlushSettings {
  delayMs: number;
}

/**
 * How long the owner keeps a user's quota limits (`QuotaChecks.quotaLimitsOf`): a limit an
 * administrator changed applies to APPEND and COPY within this time.
 */
export interface QuotaLimitSettings {
  maxAgeMs: number;
}

export interface MailstoreSettings {
  readonly compaction: CompactionSettings;
  readonly counterFlush: CounterFlushSettings;
  readonly quotaLimits: QuotaLimitSettings;
}

export const DEFAULT_COMPACTION: Readonly<CompactionSettings> = {
  quietMs: 2_000,
  minBatch: 128,
  idleMs: 60_000,
  backlog: 20_000,
};
/** 2 s until 2026-12-07, when those updates were a tenth of the database commands of long-lived IMAP sessions. */
export const DEFAULT_COUNTER_FLUSH: Readonly<CounterFlushSettings> = { delayMs: 10_000 };
export const DEFAULT_QUOTA_LIMITS: Readonly<QuotaLimitSettings> = { maxAgeMs: 10_000 };

export class MailstoreRuntime {
  /**
   * Every read-modify-write of one mailbox's or one user's counters runs under this lock
   * (docs/adr/0005-ferretdb-concurrent-updates.md: FerretDB applies concurrent `$inc` and
   * `findOneAndUpdate` without isolation). One per process, shared by every Mailstore (the gRPC
   * service and the delivery consumer); the unique `(mailboxId, uid)` index covers races between
   * processes.
   */
  readonly locks = new KeyedLock();
  /** Compaction of one mailbox and its DELETE or purge exclude each other (never both release a body). */
  readonly compactionLocks = new KeyedLock();
  /** Messages waiting for their mailbox's lock, by lock key (one group each). */
  readonly pendingInserts = new Map<string, PendingInsert[]>();
  /** The flag and expunge records not folded yet, once loaded (`IndexUpkeep.pendingState`). */
  records: PendingState | undefined;
  /** The timer of the next write of the counters moved in memory (`FlagStore.countersAhead`). */
  readonly counterFlush: { timer: NodeJS.Timeout | undefined } = { timer: undefined };
  /** Index builds in progress, per mailbox: concurrent readers share one scan. */
  readonly indexBuilds = new Map<string, Promise<MailboxIndexEntry | undefined>>();
  /** Reads filling the message cache for a mailbox, by mailbox id, shared by concurrent readers. */
  readonly cacheFills = new Map<string, Promise<void>>();
  /** Reads of a mailbox's messages for their index summaries, by mailbox id, shared likewise. */
  readonly summaryFills = new Map<string, Promise<Map<number, MessageSummary>>>();
  /**
   * Fenced writes of records (STORE, EXPUNGE) written and not confirmed yet, by mailbox id:
   * compaction leaves those mailboxes alone until they are settled (ADR 0007).
   */
  readonly confirming = new Map<string, number>();
  /** Tunable while running (tests hold compaction and counter writes back). */
  readonly settings: MailstoreSettings;

  constructor(
    readonly db: Db,
    settings: {
      compaction?: Partial<CompactionSettings>;
      counterFlush?: Partial<CounterFlushSettings>;
      quotaLimits?: Partial<QuotaLimitSettings>;
    } = {},
  ) {
    this.settings = {
      compaction: { ...DEFAULT_COMPACTION, ...settings.compaction },
      counterFlush: { ...DEFAULT_COUNTER_FLUSH, ...settings.counterFlush },
      quotaLimits: { ...DEFAULT_QUOTA_LIMITS, ...settings.quotaLimits },
    };
  }

  withCounterLock<T>(key: string, run: () => Promise<T>): Promise<T> {
    return this.locks.run(key, run);
  }

  /** The locks by what they guard, for db/stall-watch.ts to report one held too long. */
  get locksByRole(): Readonly<Record<string, KeyedLock>> {
    return { mailbox: this.locks, compaction: this.compactionLocks };
  }

  /**
   * Ends background record work before the database client closes (shutdown): no further
   * compaction is scheduled, and the refresh or compaction under way is waited for, so none of it
   * fails on a closed client later.
   */
  async quiesce(): Promise<void> {
    const state = this.records;
    if (state === undefined) return;
    state.stopped = true;
    clearTimeout(state.timer);
    state.timer = undefined;
    await state.changes.catch(() => undefined);
    await state.running?.catch(() => undefined);
  }

  /**
   * With ownership on (ADR 0007): fold and compact only the records of the users this process owns,
   * and when partitions move (the returned cache's `dropUsersWhere`, called on every gain and loss)
   * read the records again, so that the former owner's flag changes and expunges of a gained
   * partition are folded before anything of it is served (readers wait on the refresh).
   */
  followRecordOwnership(ownsUser: (userId: string) => boolean): {
    dropUsersWhere(inPartition: (userId: string) => boolean): void;
  } {
    const db = this.db;
    setRecordOwnership(db, ownsUser);
    return {
      dropUsersWhere: () => {
        const state = this.records;
        // Not loaded yet: the first use loads the owned records.
        if (state === undefined || state.refreshQueued) return;
        state.refreshQueued = true;
        state.changes = state.changes.then(async (pending) => {
          state.refreshQueued = false;
          try {
            await retainOwnedRecords(db, pending, await PendingChanges.load(db));
          } catch (error) {
            // Fail the waiting calls and start over at the next use rather than serve a gained
            // partition without its former owner's records.
            if (this.records === state) this.records = undefined;
            throw error;
          }
          return pending;
        });
        // The calls waiting on the refresh get its failure; with none waiting (an ownership move at
        // shutdown) it must not become an unhandled rejection, which ends the process.
        state.changes.catch(() => undefined);
      },
    };
  }
}
