/**
 * When to try a deferred message again: the n-th delay of the schedule (the last one repeats),
 * ± jitter so that a burst of deferrals to one domain does not come back as a burst (RFC 5321
 * §4.5.4.1 asks for at least 30 minutes between retries in production; the schedule is
 * configurable and tests compress it).
 */
export function retryDelay(
  schedule: readonly number[],
  failedAttempts: number,
  jitterPct: number,
  random: () => number = Math.random,
): number {
  const base = schedule[Math.min(Math.max(failedAttempts, 1), schedule.length) - 1] ?? 60_000;
  const spread = (base * jitterPct) / 100;
  return Math.max(0, Math.round(base - spread + 2 * spread * random()));
}

/** Per-destination concurrency (a counting semaphore) and rate (a token bucket per minute). */
export class DestinationLimiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private tokens: number;
  private refilledAt: number;

  constructor(
    private readonly concurrency: number,
    private readonly perMinute: number | undefined,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = perMinute ?? 0;
    this.refilledAt = now();
  }

  /** Resolves when a slot (and a rate token) is free; call the returned release once. */
  async acquire(): Promise<() => void> {
    if (this.active >= this.concurrency) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.active += 1;
    }
    await this.takeToken();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.active -= 1;
    };
  }

  private async takeToken(): Promise<void> {
    if (this.perMinute === undefined) return;
    for (;;) {
      const now = this.now();
      this.tokens = Math.min(
        this.perMinute,
        this.tokens + ((now - this.refilledAt) * this.perMinute) / 60_000,
      );
      this.refilledAt = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      const waitMs = Math.ceil(((1 - this.tokens) * 60_000) / this.perMinute);
      await new Promise((r) => setTimeout(r, waitMs));
    }
  }
}
