/**
 * The memory all sessions of one imap process may hold in literals being received (APPEND
 * messages, mostly). The receiver already refuses a literal over the APPEND limit before reading
 * it; this bounds the sum over connections, so a few hundred clients appending at once cannot
 * take the process's memory. A session reserves a literal's size before it invites it (`+`) or
 * before it reads more of a non-synchronizing one, waits a little when the budget is spent, and
 * otherwise refuses the command with `NO [LIMIT]`.
 */
export class LiteralBudget {
  #used = 0;
  readonly #waiters: { readonly bytes: number; readonly grant: () => void }[] = [];

  constructor(readonly capacity: number) {}

  get used(): number {
    return this.#used;
  }

  /** Reserves `bytes`, waiting up to `waitMs` for earlier reservations to be released. */
  async reserve(bytes: number, waitMs: number): Promise<boolean> {
    if (bytes > this.capacity) return false;
    // First come, first served: a large literal is not starved by a stream of small ones.
    if (this.#waiters.length === 0 && this.#used + bytes <= this.capacity) {
      this.#used += bytes;
      return true;
    }
    return new Promise<boolean>((resolve) => {
      const waiter = {
        bytes,
        grant: () => {
          clearTimeout(timer);
          resolve(true);
        },
      };
      const timer = setTimeout(() => {
        const at = this.#waiters.indexOf(waiter);
        if (at >= 0) this.#waiters.splice(at, 1);
        resolve(false);
        this.#grantWaiting();
      }, waitMs);
      this.#waiters.push(waiter);
    });
  }

  release(bytes: number): void {
    this.#used = Math.max(0, this.#used - bytes);
    this.#grantWaiting();
  }

  #grantWaiting(): void {
    for (;;) {
      const next = this.#waiters[0];
      if (next === undefined || this.#used + next.bytes > this.capacity) return;
      this.#waiters.shift();
      this.#used += next.bytes;
      next.grant();
    }
  }
}
