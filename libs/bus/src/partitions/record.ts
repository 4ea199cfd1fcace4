/**
 * The KV entry `partition.<n>`: a partition's lease and its commit pointer in one value, so that
 * taking the lease bumps the fencing epoch and fences the pointer in a single compare-and-set.
 * Only these pure transitions produce new values; `ownership.ts` writes them with the revision it
 * last saw, and every one of them is tested against a model (test/partition-record.test.ts).
 */

/** The last confirmed sequence of an epoch that has ended (its owner was replaced). */
export interface ClosedEpoch {
  readonly epoch: number;
  readonly seq: number;
}

export interface PartitionRecord {
  /** Replica id holding the lease; null once released by a graceful hand-off. */
  readonly owner: string | null;
  /** Where the owner serves gRPC (for routing IMAP/admin calls); '' when released. */
  readonly address: string;
  /** Fencing epoch: +1 on every acquisition, never reused (the key is never deleted). */
  readonly epoch: number;
  /** Highest confirmed batch sequence of `epoch` (0: none yet). Covers every smaller one. */
  readonly seq: number;
  /** Ended epochs with their last confirmed sequence, most recent first, at most `MAX_CLOSED_EPOCHS`. */
  readonly closed: readonly ClosedEpoch[];
}

/**
 * Ended epochs kept in the record. A gaining owner rebuilds its partition and discards the
 * batches of earlier epochs that were never confirmed, so only the last few epochs can still have
 * such batches in the database; 32 hand-offs without one completed rebuild do not happen.
 */
export const MAX_CLOSED_EPOCHS = 32;

export class PartitionRecordError extends Error {
  override readonly name = 'PartitionRecordError';
}

/** The record after `owner` took the lease (from nothing, a released lease or an expired one). */
export function acquiredRecord(
  previous: PartitionRecord | null,
  owner: string,
  address: string,
): PartitionRecord {
  if (previous === null) return { owner, address, epoch: 1, seq: 0, closed: [] };
  return {
    owner,
    address,
    epoch: previous.epoch + 1,
    seq: 0,
    closed: [{ epoch: previous.epoch, seq: previous.seq }, ...previous.closed].slice(0, MAX_CLOSED_EPOCHS),
  };
}

/** The record after its owner confirmed every batch up to `seq` of the current epoch. */
export function confirmedRecord(record: PartitionRecord, seq: number): PartitionRecord {
  if (!Number.isSafeInteger(seq) || seq < record.seq) {
    throw new PartitionRecordError(`sequence ${seq} is behind the confirmed ${record.seq}`);
  }
  return { ...record, seq };
}

/** The record after a graceful hand-off: no owner; epoch and sequence stay (the epoch has ended). */
export function releasedRecord(record: PartitionRecord): PartitionRecord {
  return { ...record, owner: null, address: '' };
}

export type Confirmation = 'confirmed' | 'unconfirmed' | 'before-history';

/**
 * Whether a batch written with (epoch, seq) counts. `before-history` is an epoch older than the
 * retained ones: its owner's successors have long rebuilt and discarded what was unconfirmed.
 */
export function confirmationOf(record: PartitionRecord, epoch: number, seq: number): Confirmation {
  if (epoch === record.epoch) return seq <= record.seq ? 'confirmed' : 'unconfirmed';
  if (epoch > record.epoch) return 'unconfirmed';
  const closed = record.closed.find((c) => c.epoch === epoch);
  if (closed !== undefined) return seq <= closed.seq ? 'confirmed' : 'unconfirmed';
  const oldest = record.closed.at(-1)?.epoch ?? record.epoch;
  // Epochs are consecutive, so every epoch from `oldest` on is either current or in `closed`.
  return epoch < oldest ? 'before-history' : 'unconfirmed';
}

/** A rebuild keeps a batch iff this is true (see `confirmationOf` for older epochs). */
export function isConfirmed(record: PartitionRecord, epoch: number, seq: number): boolean {
  return confirmationOf(record, epoch, seq) !== 'unconfirmed';
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeRecord(record: PartitionRecord): Uint8Array {
  return encoder.encode(JSON.stringify(record));
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

export function decodeRecord(bytes: Uint8Array): PartitionRecord {
  let raw: unknown;
  try {
    raw = JSON.parse(decoder.decode(bytes));
  } catch (error) {
    throw new PartitionRecordError('partition record is not JSON', { cause: error });
  }
  const r = raw as Partial<Record<keyof PartitionRecord, unknown>>;
  if (
    typeof raw !== 'object' ||
    raw === null ||
    !(r.owner === null || typeof r.owner === 'string') ||
    typeof r.address !== 'string' ||
    !isCount(r.epoch) ||
    !isCount(r.seq) ||
    !Array.isArray(r.closed) ||
    !r.closed.every((c: { epoch?: unknown; seq?: unknown }) => isCount(c?.epoch) && isCount(c?.seq))
  ) {
    throw new PartitionRecordError('partition record has an unexpected shape');
  }
  return {
    owner: r.owner,
    address: r.address,
    epoch: r.epoch,
    seq: r.seq,
    closed: (r.closed as ClosedEpoch[]).map(({ epoch, seq }) => ({ epoch, seq })),
  };
}
