/**
 * Where the partitions' commit pointers live (ADR 0007; ADR 0012 for the database's).
 *
 * By default a pointer is part of the KV record `partition.<n>`, beside the lease: taking the
 * lease and moving the pointer are compare-and-sets of one value, and every confirm is a
 * JetStream round trip. A storage replica whose database is one machine's file (SQLite in its
 * process, ADR 0011) keeps the pointers in that database instead, through this interface: the
 * lease stays in KV, and the fence is the pointer's epoch. An owner opens its epoch in the store
 * right after taking the lease and before it reads or writes anything of the partition, so a
 * former owner's later `advance` finds another epoch and fails; the store serialises `open` and
 * `advance` of one partition (one database, one conditional write each).
 */
import type { CommitPointer } from './record.js';

export interface CommitPointerStore {
  /** The partition's pointer as stored now; null before its first `open`. */
  read(partition: number): Promise<CommitPointer | null>;
  /**
   * Begins `epoch` (its lease was just taken in KV): the stored epoch is closed with its last
   * confirmed sequence (`openedPointer`). `fenced` when the stored epoch is already `epoch` or
   * later: another replica opened a newer one, and this lease is not to be used. `seed`, the
   * pointer kept in KV until now (a deployment moving from KV's pointers to the store's), is what
   * the first pointer of the partition closes; without it the first pointer has no history.
   */
  open(partition: number, epoch: number, seed?: CommitPointer): Promise<CommitPointer | 'fenced'>;
  /**
   * Confirms every batch of `epoch` up to `seq` if the stored epoch is still `epoch` (`ok`; also
   * when the pointer already covers `seq`); `fenced` otherwise. Answers only once durable.
   */
  advance(partition: number, epoch: number, seq: number): Promise<'ok' | 'fenced'>;
}
