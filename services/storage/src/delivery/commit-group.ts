/**
 * Group commit of delivery batches across partitions (ADR 0007, Batched writes). Every owned
 * partition's worker commits its own batch; with many partitions busy at once (mail for many
 * users), as many commits would run at once, and on FerretDB/SQLite they all queue for SQLite's one
 * writer: each waits for all the others, commands go unanswered for seconds, and past SQLite's busy
 * timeout FerretDB refuses them with SQLITE_BUSY (docs/benchmarks.md, "Memory at 100,000
 * messages"). So at most a few commits run at once (one by default); the batches that arrive
 * meanwhile wait and then go together as one commit (one bulk write per collection for all of
 * them), each delivery still tagged with its own partition's batch (`BatchDelivery.tag`), so every
 * partition confirms (or discards) only its own writes afterwards. The batches' trace events are
 * stored the same way.
 */
interface Waiting<T, R> {
  readonly items: readonly T[];
  readonly resolve: (results: R[]) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Runs a bulk write (`write(items)`, one result per item, in order) at most `concurrency` at a
 * time; what is submitted meanwhile waits and goes in the next write, together.
 */
export class GroupedWrites<T, R> {
  private running = 0;
  private readonly waiting: Waiting<T, R>[] = [];

  /**
   * @param write writes items of several submissions at once
   * @param concurrency writes running at once
   * @param maxItems items one write takes at most (a submission is never split)
   */
  constructor(
    private readonly write: (items: readonly T[]) => Promise<R[]>,
    private readonly concurrency = 1,
    private readonly maxItems = 512,
  ) {}

  /** Writes `items` with whatever else is waiting; answers one result per item, in order. */
  submit(items: readonly T[]): Promise<R[]> {
    if (items.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.waiting.push({ items, resolve, reject });
      this.next();
    });
  }

  private next(): void {
    while (this.running < Math.max(1, this.concurrency) && this.waiting.length > 0) {
      const group: Waiting<T, R>[] = [];
      let size = 0;
      for (let first = this.waiting[0]; first !== undefined; first = this.waiting[0]) {
        if (group.length > 0 && size + first.items.length > this.maxItems) break;
        group.push(first);
        size += first.items.length;
        this.waiting.shift();
      }
      this.running++;
      void this.run(group).finally(() => {
        this.running--;
        this.next();
      });
    }
  }

  private async run(group: readonly Waiting<T, R>[]): Promise<void> {
    try {
      const results = await this.write(group.flatMap((w) => w.items));
      let at = 0;
      for (const w of group) {
        w.resolve(results.slice(at, at + w.items.length));
        at += w.items.length;
      }
    } catch (error) {
      for (const w of group) w.reject(error);
    }
  }
}
