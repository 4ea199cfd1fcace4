/**
 * The base of the mailstore's role modules (mailbox-ops.ts, message-writer.ts, delivery-commit.ts,
 * content-reader.ts, flag-store.ts, copy-move-expunge.ts, search.ts, quota.ts, index-upkeep.ts):
 * what they share, injected once by the `Mailstore` facade instead of module state.
 */
import type { MailboxChange } from '@postmesh/bus';
import type { Logger } from '@postmesh/telemetry';
import type { Collection, Db, Document } from 'mongodb';
import { groupInsert } from '../db/group-insert.js';
import type { UserKeyring } from '../crypto/types.js';
import { Collections } from '../db/schema.js';
import { releaseBlobRefs as releaseRefs, type BlobRefCounts, type BlobStores } from '../blob/index.js';
import type { MailstoreRuntime } from './runtime.js';
import type { PendingTombstoneDoc } from './pending-changes.js';
import {
  MailstoreCollections,
  type DeliveryRecord,
  type MessageRecord,
  type SearchIndexDoc,
  type WriteTag,
} from './types.js';
import type { MailstoreLimits } from './store-common.js';
import type { MailboxOps } from './mailbox-ops.js';
import type { MessageWriter } from './message-writer.js';
import type { DeliveryCommit } from './delivery-commit.js';
import type { QuotaChecks } from './quota.js';
import type { IndexUpkeep } from './index-upkeep.js';
import type { ContentReader } from './content-reader.js';
import type { FlagStore } from './flag-store.js';
import type { CopyMoveExpunge } from './copy-move-expunge.js';
import type { MessageSearch } from './search.js';
import { atomicWriterOf, type AtomicWriter } from '../db/sqlite/index.js';
import { guardFailed, notOwner, type FencedWrite, type WriteFence, type WriteGuard } from './write-fence.js';
import type { FencedRecords } from './flag-store.js';

export interface StoreBase {
  readonly db: Db;
  readonly rt: MailstoreRuntime;
  readonly blobs: BlobStores;
  readonly keyring: UserKeyring;
  readonly logger: Logger;
  readonly limits: MailstoreLimits;
  readonly onChanged: (userId: string, change?: MailboxChange) => void;
  readonly writeCounts: (tag: WriteTag) => boolean;
  /** Commit-then-confirm of IMAP writes (write-fence.ts); undefined: not fenced. */
  readonly fence: WriteFence | undefined;
}

/** A write made in one transaction of the database, checked against `guard` (ADR 0014). */
export interface AtomicWrite {
  readonly write: AtomicWriter;
  readonly guard: WriteGuard | undefined;
}

/** The mailstore's parts by role, each reaching the others through this (wired by `Mailstore`). */
export interface StoreRoles {
  boxes: MailboxOps;
  writer: MessageWriter;
  batches: DeliveryCommit;
  quota: QuotaChecks;
  upkeep: IndexUpkeep;
  reader: ContentReader;
  flags: FlagStore;
  transfer: CopyMoveExpunge;
  searcher: MessageSearch;
}

export type StoreParts = StoreBase & Readonly<StoreRoles>;

/**
 * A part of the mailstore: the dependencies every part shares (`StoreBase`), the runtime of the
 * process (runtime.ts), and the other parts (`this.s.<role>`).
 */
export abstract class StorePart {
  constructor(protected readonly s: StoreParts) {}

  protected get db(): StoreBase['db'] {
    return this.s.db;
  }

  protected get rt(): StoreBase['rt'] {
    return this.s.rt;
  }

  protected get blobs(): StoreBase['blobs'] {
    return this.s.blobs;
  }

  protected get keyring(): StoreBase['keyring'] {
    return this.s.keyring;
  }

  protected get logger(): StoreBase['logger'] {
    return this.s.logger;
  }

  protected get limits(): StoreBase['limits'] {
    return this.s.limits;
  }

  protected get onChanged(): StoreBase['onChanged'] {
    return this.s.onChanged;
  }

  protected get writeCounts(): StoreBase['writeCounts'] {
    return this.s.writeCounts;
  }

  /**
   * How a write of the user's mail can be made as one transaction that counts as it commits
   * (ADR 0014): the database's atomic writer and the guard that transaction checks (undefined when
   * writes are not fenced now); undefined when the database cannot (not the in-process SQLite) or
   * the write must be confirmed after (`beginWrite`, `confirmWrite`). Throws NOT_OWNER when this
   * replica does not own the user's partition.
   */
  protected async atomicWrite(userId: string): Promise<AtomicWrite | undefined> {
    const write = atomicWriterOf(this.db);
    if (write === undefined) return undefined;
    const fence = this.s.fence;
    if (fence === undefined) return { write, guard: undefined };
    const guard = await fence.guard(userId);
    if (guard === 'confirm') return undefined;
    return { write, guard: guard === 'unfenced' ? undefined : guard };
  }

  /**
   * How a command's records (flag changes, tombstones) are written: in one guarded transaction
   * (`atomic`, ADR 0014), or under the partition's tag kept in `fenced.write` for the confirm
   * after the lock (ADR 0007); neither when the caller is not fenced.
   */
  protected async recordWrite(
    userId: string,
    fenced: FencedRecords | undefined,
  ): Promise<{ atomic?: AtomicWrite; write?: FencedWrite }> {
    if (fenced === undefined) return {};
    const atomic = await this.atomicWrite(userId);
    if (atomic !== undefined) return { atomic };
    const write = (fenced.write = await fenced.begin());
    return write === undefined ? {} : { write };
  }

  /** Inserts a command's records as `recordWrite` said: atomically, or in the group insert. */
  protected async insertRecords<T extends Document>(
    userId: string,
    atomic: AtomicWrite | undefined,
    collection: Collection<T>,
    docs: readonly T[],
  ): Promise<void> {
    if (atomic === undefined) {
      await groupInsert(this.db, collection, docs);
      return;
    }
    try {
      await atomic.write(atomic.guard, [{ collection: collection.collectionName, docs }]);
    } catch (error) {
      throw this.refusedByGuard(error, userId, atomic.guard);
    }
  }

  /**
   * What a call answers when its guarded write was refused (ADR 0014): NOT_OWNER, with what the
   * caches hold of the user's partition read again; any other error as it is.
   */
  protected refusedByGuard(error: unknown, userId: string, guard: WriteGuard | undefined): unknown {
    if (!guardFailed(error)) return error;
    this.logger.warn(
      { userId, guard: guard?.filter },
      'write not made: this replica no longer owns the partition',
    );
    this.s.fence?.forget(userId);
    return notOwner();
  }

  /** The tag of a write of the user's mail, when writes are fenced (write-fence.ts). */
  protected beginWrite(userId: string): Promise<FencedWrite | undefined> {
    return this.s.fence?.begin(userId) ?? Promise.resolve(undefined);
  }

  /**
   * Makes a fenced write count before the call answers: on a failed confirm, `undo` removes what it
   * wrote, the caches of the user's partition are read again, and the call is refused NOT_OWNER.
   */
  protected async confirmWrite(
    write: FencedWrite | undefined,
    userId: string,
    undo: (tag: WriteTag) => Promise<void>,
  ): Promise<void> {
    if (write === undefined || (await write.confirm())) return;
    try {
      await undo(write.tag);
    } catch (error) {
      // The owner's reads ignore it (never confirmed) and its next owner's clean-up removes it.
      this.logger.warn({ err: error, tag: write.tag }, 'an unconfirmed write was not removed');
    }
    this.s.fence?.forget(userId);
    throw notOwner();
  }

  protected lockKey(id: string): string {
    return `${this.db.databaseName}:${id}`;
  }

  protected messages() {
    return this.db.collection<MessageRecord>(Collections.messages);
  }

  protected searchIndex() {
    return this.db.collection<SearchIndexDoc>(MailstoreCollections.searchIndex);
  }

  protected tombstones() {
    return this.db.collection<PendingTombstoneDoc>(Collections.tombstones);
  }

  protected deliveries() {
    return this.db.collection<DeliveryRecord>(Collections.deliveries);
  }

  /** Drops blob references; bodies whose last reference goes are deleted from their store. */
  protected releaseBlobRefs(counts: BlobRefCounts): Promise<void> {
    return releaseRefs(this.db, this.blobs, counts);
  }
}
