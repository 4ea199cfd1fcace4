/**
 * Which tagged writes count (ADR 0007, Commit-then-confirm and Rebuild). A delivery batch or an
 * IMAP write of a partition is written tagged `(partition, epoch, seq)` and counts only once the partition's
 * commit pointer covers it; an owner that lost the partition before its confirm went through
 * (paused past its lease, cut off, killed) leaves documents that must never count, whenever they
 * reach the database.
 *
 * Only the partition's owner can judge: it holds the record it acquired, whose `closed` list
 * gives the last confirmed sequence of every earlier epoch, and its own epoch's batches are
 * either confirmed or about to be (a failed confirm loses the partition and drops its caches).
 * Partitions this replica does not own are not judged here: their owner rebuilds them.
 */
import type { PartitionOwnership } from '@postmesh/bus';
import type { Filter } from 'mongodb';
import type { DeliveryRecord, MessageRecord, WriteTag } from '../mailstore/types.js';
import type { FlagChangeDoc, PendingTombstoneDoc } from '../mailstore/pending-changes.js';

export class WriteConfirmation {
  private ownership: Pick<PartitionOwnership, 'epochOf' | 'heldCommitState'> | undefined;

  /** Judge with this replica's leases from now on (until then, every write counts). */
  use(ownership: Pick<PartitionOwnership, 'epochOf' | 'heldCommitState'>): void {
    this.ownership = ownership;
  }

  /** The Mailstore's `writeCounts`: false only for a batch this owner knows was never confirmed. */
  readonly counts = (tag: WriteTag): boolean => {
    const ownership = this.ownership;
    if (ownership === undefined) return true;
    const epoch = ownership.epochOf(tag.p);
    if (epoch === undefined || tag.e === epoch) return true;
    return ownership.heldCommitState(tag.p)?.isConfirmed(tag.e, tag.s) ?? true;
  };
}

/** Documents of exactly one delivery batch (its own undo after a failed confirm). */
export function batchFilter(tag: WriteTag): Filter<MessageRecord> & Filter<DeliveryRecord> {
  return { 'own.p': tag.p, 'own.e': tag.e, 'own.s': tag.s };
}

/** Documents of any collection with a tag (`own`): messages, records, flag records, tombstones. */
type Tagged = Filter<MessageRecord> &
  Filter<DeliveryRecord> &
  Filter<FlagChangeDoc> &
  Filter<PendingTombstoneDoc>;

/**
 * Documents of the partition's earlier epochs that their owners wrote and never confirmed, from
 * the record this replica acquired (its `closed` list); undefined when there can be none.
 */
export function unconfirmedFilter(
  partition: number,
  closed: readonly { readonly epoch: number; readonly seq: number }[],
): Tagged | undefined {
  if (closed.length === 0) return undefined;
  return {
    'own.p': partition,
    $or: closed.map((c) => ({ 'own.e': c.epoch, 'own.s': { $gt: c.seq } })),
  };
}
