/**
 * Helpers for `postmesh.mailstore.v1.UidSet`, the UID form of an IMAP `sequence-set`
 * (RFC 9051 §9). A range's `last = 0` stands for `*`, the highest UID in use; storage and the
 * imap service must agree on what that means, so both use these functions.
 */
import type { UidRange, UidSet } from './gen/postmesh/mailstore/v1/mailstore.js';

/** Largest UID: UIDs are 32-bit non-zero numbers (RFC 9051 §9 `nz-number`). */
export const MAX_UID = 0xffff_ffff;

/** An inclusive interval of concrete UIDs, `first <= last`. */
export type UidInterval = readonly [first: number, last: number];

/** Compresses UIDs (any order, duplicates allowed) into the fewest ascending ranges. */
export function uidSetFromUids(uids: Iterable<number>): UidSet {
  const sorted = [...new Set(uids)].sort((a, b) => a - b);
  const ranges: UidRange[] = [];
  for (const uid of sorted) {
    const previous = ranges.at(-1);
    if (previous !== undefined && previous.last === uid - 1) previous.last = uid;
    else ranges.push({ first: uid, last: uid });
  }
  return { ranges };
}

/**
 * Why a set from a peer is unusable, or `undefined` if it is fine. A UID of 0 is not a UID, and
 * neither is anything above 2^32 - 1; `last = 0` is allowed (it means `*`).
 */
export function uidSetProblem(set: UidSet): string | undefined {
  for (const [i, range] of set.ranges.entries()) {
    if (!Number.isInteger(range.first) || range.first < 1 || range.first > MAX_UID) {
      return `ranges[${i}].first must be a UID between 1 and ${MAX_UID}, got ${range.first}`;
    }
    if (!Number.isInteger(range.last) || range.last < 0 || range.last > MAX_UID) {
      return `ranges[${i}].last must be 0 (*) or a UID up to ${MAX_UID}, got ${range.last}`;
    }
  }
  return undefined;
}

/**
 * The concrete, sorted, non-overlapping intervals a set denotes in a mailbox whose highest UID is
 * `highestUid` (0 for an empty mailbox).
 *
 * RFC 9051 §9 `seq-range`: `a:b` equals `b:a`, and `*` is the highest UID, so `n:*` with `n`
 * above it still contains the highest UID. In an empty mailbox `*` matches nothing. Ranges with
 * a `first` of 0 (invalid, see `uidSetProblem`) are ignored.
 */
export function resolveUidSet(set: UidSet, highestUid: number): UidInterval[] {
  const intervals: [number, number][] = [];
  for (const range of set.ranges) {
    if (range.first < 1) continue;
    let a = range.first;
    let b = range.last;
    if (b === 0) {
      if (highestUid < 1) continue;
      b = highestUid;
    }
    if (a > b) [a, b] = [b, a];
    intervals.push([a, b]);
  }
  intervals.sort((x, y) => x[0] - y[0]);
  const merged: [number, number][] = [];
  for (const [a, b] of intervals) {
    const previous = merged.at(-1);
    if (previous !== undefined && a <= previous[1] + 1) previous[1] = Math.max(previous[1], b);
    else merged.push([a, b]);
  }
  return merged;
}

/** Whether `uid` is in the set, with `*` resolved against `highestUid`. */
export function uidSetHas(set: UidSet, uid: number, highestUid: number): boolean {
  return resolveUidSet(set, highestUid).some(([first, last]) => uid >= first && uid <= last);
}
