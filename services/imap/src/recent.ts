/**
 * The IMAP4rev1 `\Recent` set of one session (RFC 3501 §2.3.2): "this session is the first
 * session to have been notified about this message". A message is recent in at most one session:
 * SELECT claims the messages no session has seen yet, and a selected session claims each new
 * message when it announces it (storage's claim moves the mailbox's recent floor atomically, so of
 * two sessions announcing the same delivery only the first gets it). Claims are therefore not one
 * contiguous range: another session may claim a delivery between two of ours.
 */
import type { MessageMap } from './message-map.js';

export class RecentSet {
  /** Disjoint inclusive UID ranges, ascending. */
  #ranges: [number, number][] = [];

  /** Adds the UIDs `lo..hi` (inclusive; nothing when `hi < lo`). */
  add(lo: number, hi: number): void {
    if (hi < lo) return;
    const last = this.#ranges[this.#ranges.length - 1];
    if (last !== undefined && lo <= last[1] + 1 && lo >= last[0]) {
      last[1] = Math.max(last[1], hi);
      return;
    }
    this.#ranges.push([lo, hi]);
    this.#ranges.sort((a, b) => a[0] - b[0]);
  }

  has(uid: number): boolean {
    for (const [lo, hi] of this.#ranges) {
      if (uid < lo) return false;
      if (uid <= hi) return true;
    }
    return false;
  }

  /** The recent UIDs the session knows (`* n RECENT`, SEARCH RECENT / NEW / OLD). */
  known(map: MessageMap): number[] {
    return this.#ranges.flatMap(([lo, hi]) => map.uidsInUidRange(lo, hi));
  }
}
