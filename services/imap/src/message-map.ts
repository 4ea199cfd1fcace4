/**
 * A session's view of a selected mailbox: message sequence numbers ↔ UIDs (RFC 9051 §2.3.1.1,
 * §2.3.1.2). MSN n is the n-th smallest UID the session has been told about; the map changes
 * only when the session announces EXISTS or EXPUNGE, so it is kept incrementally: new UIDs are
 * always larger than every known one (UIDs are assigned ascending), so they append, and expunges
 * remove entries. Each entry also keeps the modseq the session last reported, so a flag change
 * the session already announced (its own STORE) is not announced again.
 */
export class MessageMap {
  #uids: number[] = [];
  #modseqs: number[] = [];

  /** Number of messages (the last EXISTS sent). */
  get size(): number {
    return this.#uids.length;
  }

  /** The highest UID known, or 0 when empty. */
  get maxUid(): number {
    return this.#uids[this.#uids.length - 1] ?? 0;
  }

  /** The UID of MSN `msn` (1-based), or undefined. */
  uidAt(msn: number): number | undefined {
    return this.#uids[msn - 1];
  }

  /** The MSN of `uid`, or 0 when the session does not know it. Binary search. */
  msnOf(uid: number): number {
    const i = this.#indexOf(uid);
    return i < 0 ? 0 : i + 1;
  }

  has(uid: number): boolean {
    return this.#indexOf(uid) >= 0;
  }

  modseqOf(uid: number): number {
    const i = this.#indexOf(uid);
    return i < 0 ? 0 : (this.#modseqs[i] ?? 0);
  }

  setModseq(uid: number, modseq: number): void {
    const i = this.#indexOf(uid);
    if (i >= 0) this.#modseqs[i] = modseq;
  }

  /** Appends a UID above every known one; returns false (and changes nothing) otherwise. */
  append(uid: number, modseq: number): boolean {
    if (uid <= this.maxUid) return false;
    this.#uids.push(uid);
    this.#modseqs.push(modseq);
    return true;
  }

  /**
   * Removes `uid`; returns the MSN it had (to send `* n EXPUNGE`), or 0 when unknown. Callers
   * remove in the order they announce, so each MSN is the one after the earlier removals
   * (RFC 9051 §7.5.1).
   */
  remove(uid: number): number {
    const i = this.#indexOf(uid);
    if (i < 0) return 0;
    this.#uids.splice(i, 1);
    this.#modseqs.splice(i, 1);
    return i + 1;
  }

  /**
   * Removes many UIDs at once (a large EXPUNGE) and returns the MSNs to announce, in order:
   * highest first, so each stays valid as the earlier ones are removed.
   */
  removeMany(uids: Iterable<number>): number[] {
    const gone = new Set<number>();
    for (const uid of uids) if (this.has(uid)) gone.add(uid);
    if (gone.size === 0) return [];
    const msns: number[] = [];
    const keptUids: number[] = [];
    const keptModseqs: number[] = [];
    this.#uids.forEach((uid, i) => {
      if (gone.has(uid)) msns.push(i + 1);
      else {
        keptUids.push(uid);
        keptModseqs.push(this.#modseqs[i] ?? 0);
      }
    });
    this.#uids = keptUids;
    this.#modseqs = keptModseqs;
    return msns.reverse();
  }

  /** UIDs whose MSN lies in the inclusive range. */
  uidsInMsnRange(lo: number, hi: number): number[] {
    return this.#uids.slice(Math.max(0, lo - 1), Math.max(0, hi));
  }

  /** Known UIDs inside `[lo, hi]`, ascending. */
  uidsInUidRange(lo: number, hi: number): number[] {
    let start = this.#lowerBound(lo);
    const out: number[] = [];
    while (start < this.#uids.length) {
      const uid = this.#uids[start]!;
      if (uid > hi) break;
      out.push(uid);
      start++;
    }
    return out;
  }

  #lowerBound(uid: number): number {
    let lo = 0;
    let hi = this.#uids.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#uids[mid]! < uid) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #indexOf(uid: number): number {
    const i = this.#lowerBound(uid);
    return this.#uids[i] === uid ? i : -1;
  }
}
