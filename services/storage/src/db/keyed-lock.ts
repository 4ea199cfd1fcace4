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

  /** Run `fn` once every earlier holder of `key` has finished; callers queue in order. */
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const current = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => current);
    this.tails.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      // Forget the key when nobody queued behind us, so the map does not grow without bound.
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /** Keys with a holder or waiters (for tests and metrics). */
  get size(): number {
    return this.tails.size;
  }
}
