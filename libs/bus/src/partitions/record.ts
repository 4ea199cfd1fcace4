/**
 * The KV entry `partition.<n>`: a partition's lease and its commit pointer in one value, so that
 * taking the lease bumps the fencing epoch and fences the pointer in a single compare-and-set.
 * Only these pure transitions produce new values; `ownership.ts` writes them with the revision it
 * last saw, and every one of them is tested against a model (test/partition-record.test.ts).
 */

import { Type, compile, type DeepReadonly, type Static } from '@postmesh/schema';

/** A count or sequence number: an integer JavaScript numbers hold exactly. */
const Count = (description?: string) =>
  Type.Integer({
    minimum: 0,
    maximum: Number.MAX_SAFE_INTEGER,
    ...(description === undefined ? {} : { description }),
  });

/** The last confirmed sequence of an epoch that has ended (its owner was replaced). */
export const ClosedEpochSchema = Type.Object({ epoch: Count(), seq: Count() });
export type ClosedEpoch = DeepReadonly<Static<typeof ClosedEpochSchema>>;

export const PartitionRecordSchema = Type.Object(
  {
    owner: Type.Unsafe<string | null>({
      type: ['string', 'null'],
      description: 'replica id holding the lease; null once released by a graceful hand-off',
    }),
    address: Type.String({ description: "where the owner serves gRPC (for routing); '' when released" }),
    epoch: Count('fencing epoch: +1 on every acquisition, never reused'),
    seq: Count('highest confirmed batch sequence of epoch (0: none yet)'),
    closed: Type.Array(ClosedEpochSchema, {
      description: 'ended epochs with their last confirmed sequence, most recent first',
    }),
  },
  { description: 'The KV entry partition.<n>: lease and commit pointer' },
);
export type PartitionRecord = DeepReadonly<Static<typeof PartitionRecordSchema>>;

const checkRecord = compile(PartitionRecordSchema);

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

/**
 * A commit pointer kept outside the KV record (`CommitPointerStore`): the epoch confirms may move
 * it in, its highest confirmed sequence, and the ended epochs, as in `PartitionRecord`.
 */
export type CommitPointer = Pick<PartitionRecord, 'epoch' | 'seq' | 'closed'>;

/**
 * The pointer once `epoch` began (its owner took the lease in KV): the stored epoch is closed with
 * its last confirmed sequence. Epochs skipped (an owner that took the lease and died before
 * opening its pointer) confirmed nothing, which `confirmationOf` reports for an epoch missing
 * from `closed`.
 */
export function openedPointer(previous: CommitPointer | null, epoch: number): CommitPointer {
  if (!Number.isSafeInteger(epoch) || epoch < 1)
    throw new PartitionRecordError(`epoch ${epoch} is not valid`);
  if (previous === null) return { epoch, seq: 0, closed: [] };
  if (epoch <= previous.epoch) {
    throw new PartitionRecordError(`epoch ${epoch} does not follow the stored ${previous.epoch}`);
  }
  return {
    epoch,
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
export function confirmationOf(record: CommitPointer, epoch: number, seq: number): Confirmation {
  if (epoch === record.epoch) return seq <= record.seq ? 'confirmed' : 'unconfirmed';
  if (epoch > record.epoch) return 'unconfirmed';
  const closed = record.closed.find((c) => c.epoch === epoch);
  if (closed !== undefined) return seq <= closed.seq ? 'confirmed' : 'unconfirmed';
  const oldest = record.closed.at(-1)?.epoch ?? record.epoch;
  // Every epoch from `oldest` on is current, in `closed`, or one that confirmed nothing (with the
  // KV record epochs are consecutive; a `CommitPointerStore` may skip one, see `openedPointer`).
  return epoch < oldest ? 'before-history' : 'unconfirmed';
}

/** A rebuild keeps a batch iff this is true (see `confirmationOf` for older epochs). */
export function isConfirmed(record: CommitPointer, epoch: number, seq: number): boolean {
  return confirmationOf(record, epoch, seq) !== 'unconfirmed';
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeRecord(record: PartitionRecord): Uint8Array {
  return encoder.encode(JSON.stringify(record));
}

export function decodeRecord(bytes: Uint8Array): PartitionRecord {
  let raw: unknown;
  try {
    raw = JSON.parse(decoder.decode(bytes));
  } catch (error) {
    throw new PartitionRecordError('partition record is not JSON', { cause: error });
  }
  const checked = checkRecord(raw);
  if (!checked.ok)
    throw new PartitionRecordError(`partition record has an unexpected shape: ${checked.problem}`);
  const r = checked.value;
  // Only the record's own fields, so an extra one never travels into the next compare-and-set.
  return {
    owner: r.owner,
    address: r.address,
    epoch: r.epoch,
    seq: r.seq,
    closed: r.closed.map(({ epoch, seq }) => ({ epoch, seq })),
  };
}
