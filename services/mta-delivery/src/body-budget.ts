/**
 * A byte budget for the message bodies this replica holds in memory at once. Each job being
 * attempted holds its body (read from the job or the `mail-spool` object) and, while DKIM
 * signing and sending, a signed copy; with POSTMESH_MTA_CONCURRENCY jobs in flight and messages
 * of up to 50 MB, that is far more than a pod's memory. A job reserves its cost before it loads
 * its body and gives it back when its attempt is over; a job that must wait keeps its JetStream
 * message unacknowledged and in progress (ConsumerLoop's `working()` heartbeat), so it is neither
 * loaded nor redelivered elsewhere meanwhile. Waiters are served first come, first served. A job
 * costing more than the whole budget runs when nothing else holds any of it, so it never starves.
 */
export class ByteBudget {
  private inUse = 0;
  private holders = 0;
  private readonly waiting: { readonly cost: number; readonly grant: (release: () => void) => void }[] = [];
  /** Most bytes ever held at once (metrics, tests). */
  peak = 0;

  constructor(readonly capacity: number) {}

  get bytesInUse(): number {
    return this.inUse;
  }

  get waiters(): number {
    return this.waiting.length;
  }

  /** Resolves, once `cost` bytes are available, with the function that gives them back. */
  async acquire(cost: number): Promise<() => void> {
    const bytes = Math.max(0, Math.ceil(cost));
    if (this.waiting.length === 0 && this.fits(bytes)) return this.take(bytes);
    return new Promise<() => void>((grant) => this.waiting.push({ cost: bytes, grant }));
  }

  private fits(bytes: number): boolean {
    return this.holders === 0 || this.inUse + bytes <= this.capacity;
  }

  private take(bytes: number): () => void {
    this.inUse += bytes;
    this.holders += 1;
    this.peak = Math.max(this.peak, this.inUse);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inUse -= bytes;
      this.holders -= 1;
      this.admit();
    };
  }

  private admit(): void {
    for (;;) {
      const next = this.waiting[0];
      if (next === undefined || !this.fits(next.cost)) return;
      this.waiting.shift();
      // Taken now, before the waiter runs, so the next waiter's check sees it.
      next.grant(this.take(next.cost));
    }
  }
}
