/**
 * Serialises async critical sections per key (a mailbox id, a user id) inside one process.
 *
 * Why: FerretDB 1.24 on SQLite applies concurrent updates to one document without isolation —
 * 50 concurrent `findOneAndUpdate({$inc})` on one counter returned 10 distinct values, and
 * compare-and-swap updates (`updateOne({_id, n: k}, {$set: {n: k + 1}})`) let several writers
 * win (docs/adr/0005-ferretdb-concurrent-updates.md). MongoDB applies them atomically. Running
 * every read-modify-write of a mailbox or user through this lock makes UID/MODSEQ allocation and
 * counters exact on FerretDB with one storage process, and costs MongoDB next to nothing.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();
  /**
   * Per key with a holder or waiters: since when (performance.now()) the current holder holds it
   * (undefined before the first takes it) and how many callers queue for it, holder included.
   */
  private readonly holders = new Map<string, { since: number | undefined; queued: number }>();

  /** Run `fn` once every earlier holder of `key` has finished; callers queue in order. */
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const current = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => current);
    this.tails.set(key, tail);
    let holder = this.holders.get(key);
    if (holder === undefined) {
      holder = { since: undefined, queued: 0 };
      this.holders.set(key, holder);
    }
    holder.queued++;
    await previous;
    holder.since = performance.now();
    try {
      return await fn();
    } finally {
      holder.queued--;
      release();
      // Forget the key when nobody queued behind us, so the maps do not grow without bound.
      if (this.tails.get(key) === tail) {
        this.tails.delete(key);
        this.holders.delete(key);
      }
    }
  }

  /**
   * Keys held for at least `minMs` now, with how long and how many callers wait behind them: a
   * critical section that never ends (a database command that never answers) shows up here rather
   * than as silence (db/stall-watch.ts logs them).
   */
  heldLongerThan(minMs: number): { key: string; heldMs: number; waiting: number }[] {
    const now = performance.now();
    const out: { key: string; heldMs: number; waiting: number }[] = [];
    for (const [key, h] of this.holders) {
      if (h.since === undefined) continue;
      const heldMs = now - h.since;
      if (heldMs >= minMs) out.push({ key, heldMs: Math.round(heldMs), waiting: h.queued - 1 });
    }
    return out;
  }

  /** Keys with a holder or waiters (for tests and metrics). */
  get size(): number {
    return this.tails.size;
  }
}
