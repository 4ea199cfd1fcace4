import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, type Registry } from 'prom-client';

export interface EventLoopWatchdogOptions {
  readonly registry: Registry;
  /**
   * A turn of the event loop longer than this is a stall: liveness fails while the loop is
   * stalled and for as long again afterwards. 0 disables the liveness effect (metrics stay).
   */
  readonly stallThresholdMs: number;
  /** How often the heartbeat runs; it bounds how precisely a stall is measured. */
  readonly heartbeatMs?: number;
}

export type LivenessVerdict =
  { readonly live: true } | { readonly live: false; readonly reason: string; readonly stalledMs: number };

/**
 * Watches the event loop of the process: one request that runs synchronously for long (a
 * backtracking pattern, a huge JSON body) stops every other request, health checks included.
 *
 * - `postmesh_event_loop_lag_seconds`: the longest event-loop delay since the last scrape
 *   (perf_hooks `monitorEventLoopDelay`), so a spike between scrapes is not averaged away;
 *   `postmesh_event_loop_stalls_total`: turns longer than the stall threshold.
 * - `liveness()`: a heartbeat timer records when the loop last turned. A `/healthz/live` request
 *   that waited behind a stall finds the heartbeat late and fails; so does every request for as
 *   long again after a stall ended, so a process that keeps stalling keeps failing its liveness
 *   probe (and is restarted) rather than answering in the gaps.
 */
export class EventLoopWatchdog {
  readonly #histogram: IntervalHistogram;
  readonly #timer: NodeJS.Timeout;
  readonly #thresholdMs: number;
  readonly #heartbeatMs: number;
  #lastBeat = performance.now();
  /** When the last stall ended (performance.now()) and how long it was. */
  #lastStallEnd = -Infinity;
  #lastStallMs = 0;
  /** The latest heartbeat seen since the last scrape (ms): the histogram alone can miss a stall. */
  #maxLateMs = 0;

  constructor(options: EventLoopWatchdogOptions) {
    this.#thresholdMs = options.stallThresholdMs;
    this.#heartbeatMs = options.heartbeatMs ?? 100;
    this.#histogram = monitorEventLoopDelay({ resolution: 10 });
    this.#histogram.enable();
    const stalls = new Counter({
      name: 'postmesh_event_loop_stalls_total',
      help: 'Event-loop turns longer than the stall threshold',
      registers: [options.registry],
    });
    const histogram = this.#histogram;
    const takeMaxLateMs = (): number => {
      // A stall still in progress when the scrape runs has not reached the heartbeat yet.
      const pending = performance.now() - this.#lastBeat - this.#heartbeatMs;
      const max = Math.max(this.#maxLateMs, pending);
      this.#maxLateMs = 0;
      return max;
    };
    new Gauge({
      name: 'postmesh_event_loop_lag_seconds',
      help: 'Longest event-loop delay since the last scrape',
      registers: [options.registry],
      collect() {
        // The histogram is in nanoseconds; max is 0 before the first sample. Its sampling timer
        // may not have run since a stall ended, so the heartbeat's own measure is taken too.
        this.set(Math.max(histogram.max / 1e9, Math.max(0, takeMaxLateMs()) / 1e3));
        histogram.reset();
      },
    });
    this.#timer = setInterval(() => {
      const now = performance.now();
      const late = now - this.#lastBeat - this.#heartbeatMs;
      this.#lastBeat = now;
      if (late > this.#maxLateMs) this.#maxLateMs = late;
      if (this.#thresholdMs > 0 && late > this.#thresholdMs) {
        this.#lastStallEnd = now;
        this.#lastStallMs = late;
        stalls.inc();
      }
    }, this.#heartbeatMs);
    this.#timer.unref();
  }

  /** Whether the loop is turning: false while (and shortly after) it was stalled. */
  liveness(): LivenessVerdict {
    if (this.#thresholdMs <= 0) return { live: true };
    const now = performance.now();
    // The heartbeat is late: this request waited behind a stall that the timer has not seen yet.
    const late = now - this.#lastBeat - this.#heartbeatMs;
    if (late > this.#thresholdMs) return { live: false, reason: 'event loop stalled', stalledMs: late };
    if (now - this.#lastStallEnd < this.#thresholdMs) {
      return { live: false, reason: 'event loop stalled recently', stalledMs: this.#lastStallMs };
    }
    return { live: true };
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#histogram.disable();
  }
}
