/**
 * One shared interval for every session's deadlines (autologout, RFC 9051 §5.4, and the IDLE
 * poll), instead of a timer per session: with thousands of idling connections a Timeout object,
 * its closure and a re-arm on every input chunk per session cost more memory and CPU than one
 * sweep over the live sessions. Deadlines fire at most `periodMs` late.
 */
export interface Ticking {
  /** Called on every tick with the current time (ms since the epoch). */
  tick(now: number): void;
}

export class SessionClock {
  readonly #members = new Set<Ticking>();
  #timer: NodeJS.Timeout | null = null;

  constructor(readonly periodMs: number) {}

  /** The period for these limits: a tenth of the shortest deadline, between 50 ms and 1 s. */
  static periodFor(shortestMs: number): number {
    return Math.max(50, Math.min(1_000, Math.floor(shortestMs / 10)));
  }

  add(member: Ticking): void {
    this.#members.add(member);
    if (this.#timer === null) {
      this.#timer = setInterval(() => this.#sweep(), this.periodMs);
      // The clock alone never keeps the process alive.
      this.#timer.unref();
    }
  }

  delete(member: Ticking): void {
    this.#members.delete(member);
    if (this.#members.size === 0 && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }

  get size(): number {
    return this.#members.size;
  }

  #sweep(): void {
    const now = Date.now();
    for (const member of this.#members) member.tick(now);
  }
}
