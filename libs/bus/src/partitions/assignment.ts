/**
 * Which partition a user belongs to, and which live storage replica should own each partition.
 * Both are pure and deterministic, so every replica computes the same map from the same live set
 * without talking to the others; the leases in KV (see `ownership.ts`) settle any moment where
 * two replicas briefly see different live sets.
 */
import { createHash } from 'node:crypto';

/** Default partition count: a fixed contract of a deployment (see ADR 0007, Ownership). */
export const DEFAULT_PARTITIONS = 64;

/**
 * 32-bit FNV-1a over the UTF-8 bytes of `key`. It is the hash nats-server's `partition(n, …)`
 * subject transform uses, so a stream mapping over a user-id token would put a job in the same
 * partition as `partitionOf` does.
 */
export function fnv1a32(key: string): number {
  let hash = 0x811c9dc5;
  // An ASCII key (user ids are) is its own UTF-8: no encoding, no allocation, on every call
  // that asks who owns a user.
  for (let i = 0; i < key.length; i++) {
    const code = key.charCodeAt(i);
    if (code >= 0x80) return fnv1a32Bytes(utf8.encode(key));
    hash = Math.imul(hash ^ code, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

const utf8 = new TextEncoder();

function fnv1a32Bytes(bytes: Uint8Array): number {
  let hash = 0x811c9dc5;
  for (const byte of bytes) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  return hash >>> 0;
}

/** The partition (0 … partitions-1) holding all mailboxes of `userId`. Stable for the user's life. */
export function partitionOf(userId: string, partitions: number): number {
  if (!Number.isInteger(partitions) || partitions < 1) {
    throw new RangeError(`partition count must be a positive integer, got ${partitions}`);
  }
  return fnv1a32(userId) % partitions;
}

/** Rendezvous (highest random weight) score of a replica for a partition. */
function score(partition: number, replicaId: string): bigint {
  return createHash('sha256').update(`${partition}\u0000${replicaId}`).digest().readBigUInt64BE(0);
}

/** Replicas in the partition's rendezvous order, most preferred first (ties by id). */
export function preferenceOrder(partition: number, replicaIds: Iterable<string>): string[] {
  return [...new Set(replicaIds)]
    .map((id) => ({ id, s: score(partition, id) }))
    .sort((a, b) => (a.s === b.s ? (a.id < b.id ? -1 : 1) : a.s > b.s ? -1 : 1))
    .map((x) => x.id);
}

/**
 * Rendezvous hashing with bounded load: partition by partition, each goes to the first replica in
 * its preference order that holds fewer than ⌈P/n⌉. Plain rendezvous hashing moves few partitions
 * when the live set changes but can leave one replica with a third more than another at P = 64;
 * the bound keeps every replica within ⌈P/n⌉ while a join or a departure still mostly moves only
 * the partitions that prefer the newcomer or belonged to the one that left.
 *
 * The result depends only on the set of ids (not their order). Empty set → empty map.
 */
export function assignPartitions(partitions: number, replicaIds: Iterable<string>): Map<number, string> {
  const ids = [...new Set(replicaIds)];
  const assignment = new Map<number, string>();
  if (ids.length === 0) return assignment;
  const cap = Math.ceil(partitions / ids.length);
  const load = new Map<string, number>(ids.map((id) => [id, 0]));
  for (let p = 0; p < partitions; p++) {
    for (const id of preferenceOrder(p, ids)) {
      const held = load.get(id) ?? 0;
      if (held < cap) {
        assignment.set(p, id);
        load.set(id, held + 1);
        break;
      }
    }
  }
  return assignment;
}
