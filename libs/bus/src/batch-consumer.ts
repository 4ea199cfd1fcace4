import type { ConsumerMessages, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import type { Logger } from '@postmesh/telemetry';
import { settleJob, type JobOutcome } from './consumer.js';

export interface BatchConsumerLoopOptions {
  readonly js: JetStreamClient;
  readonly stream: string;
  readonly consumer: string;
  /**
   * Handles a batch; answers one outcome per job, in the batch's order. A thrown error counts as
   * `retry` for every job of the batch, so a handler that can tell its jobs apart should not throw.
   */
  readonly handler: (msgs: readonly JsMsg[]) => Promise<readonly JobOutcome[]>;
  readonly logger: Logger;
  /** Jobs in one batch at most. */
  readonly maxBatch?: number;
  /** How long the first job of a batch waits for more before the batch is handled. */
  readonly maxWaitMs?: number;
  /**
   * Batches handled at once (the next one is parsed while the previous one is written). While all
   * are busy, the next batch keeps growing (up to `maxBatch`) with the jobs that arrive.
   */
  readonly batchesInFlight?: number;
  /** Attempts before a failing job is moved to MAIL_DLQ; mirror the consumer's `max_deliver`. */
  readonly maxDeliver?: number;
  /** Delay before the n-th retry (last value repeats). */
  readonly backoffMs?: readonly number[];
  /** How often jobs in hand are reported in progress; well below the consumer's ack_wait. */
  readonly heartbeatMs?: number;
}

const TIMED_OUT = Symbol('timed out');
const SLOT_FREE = Symbol('slot free');

/**
 * A durable pull consumer that hands its handler batches of jobs: whatever arrived within
 * `maxWaitMs` of the first job, up to `maxBatch`. Writing a batch with one bulk write per
 * collection costs the database about what one job costs, where each write is a transaction with
 * its own fsync (FerretDB) or a round trip (MongoDB). Acks, retries and dead letters are per job,
 * as in `ConsumerLoop`: each job is settled by its own outcome once the handler returns, so one
 * failing job never holds back the others of its batch.
 */
export class BatchConsumerLoop {
  private messages: ConsumerMessages | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private stopping = false;
  private loop: Promise<void> | undefined;
  processed = 0;
  batches = 0;

  constructor(private readonly options: BatchConsumerLoopOptions) {}

  start(): void {
    this.loop = this.run();
  }

  private get maxBatch(): number {
    return Math.max(1, this.options.maxBatch ?? 64);
  }

  private async run(): Promise<void> {
    const { js, stream, consumer, logger } = this.options;
    const inFlight = Math.max(1, this.options.batchesInFlight ?? 2);
    while (!this.stopping) {
      try {
        const c = await js.consumers.get(stream, consumer);
        const messages = await c.consume({ max_messages: this.maxBatch * inFlight });
        this.messages = messages;
        const jobs = messages[Symbol.asyncIterator]();
        let next: Promise<IteratorResult<JsMsg>> | undefined;
        // Stopped while attaching: `stop()` found nothing to close.
        if (this.stopping) {
          void messages.close();
          await this.drain(jobs, next);
          break;
        }
        for (;;) {
          next ??= jobs.next();
          const first = await next;
          next = undefined;
          if (first.done === true) break;
          const batch = [first.value];
          let ended = false;
          const deadline = Date.now() + (this.options.maxWaitMs ?? 20);
          while (batch.length < this.maxBatch) {
            const left = deadline - Date.now();
            if (left <= 0) break;
            next ??= jobs.next();
            let timer: NodeJS.Timeout | undefined;
            const more = await Promise.race([
              next,
              new Promise<typeof TIMED_OUT>((resolve) => {
                timer = setTimeout(() => resolve(TIMED_OUT), left);
              }),
            ]);
            clearTimeout(timer);
            if (more === TIMED_OUT) break;
            next = undefined;
            if (more.done === true) {
              ended = true;
              break;
            }
            batch.push(more.value);
          }
          // Group commit: while every slot is busy, the waiting batch keeps taking the jobs that
          // arrive, so batches grow with the load instead of staying at what `maxWaitMs` gathers.
          while (this.inFlight.size >= inFlight) {
            if (ended || this.stopping || batch.length >= this.maxBatch) {
              await Promise.race(this.inFlight);
              continue;
            }
            next ??= jobs.next();
            const more = await Promise.race([
              next,
              Promise.race(this.inFlight).then((): typeof SLOT_FREE => SLOT_FREE),
            ]);
            if (more === SLOT_FREE) continue;
            next = undefined;
            if (more.done === true) ended = true;
            else batch.push(more.value);
          }
          if (this.stopping) {
            // Fetched but not started: back to the stream now rather than after ack_wait (a
            // partition handed over, ADR 0007, is pulled by its next owner at once).
            for (const msg of batch) msg.nak();
            await this.drain(jobs, next);
            break;
          }
          const handled = this.process(batch).finally(() => this.inFlight.delete(handled));
          this.inFlight.add(handled);
          if (this.stopping) {
            await this.drain(jobs, next);
            break;
          }
          if (ended) break;
        }
      } catch (error) {
        if (this.stopping) break;
        logger.warn({ err: error, stream, consumer }, 'consumer interrupted; re-attaching');
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
  }

  private async process(batch: readonly JsMsg[]): Promise<void> {
    const { logger, stream } = this.options;
    const heartbeat = setInterval(() => {
      for (const msg of batch) msg.working();
    }, this.options.heartbeatMs ?? 15_000);
    let outcomes: readonly JobOutcome[];
    try {
      outcomes = await this.options.handler(batch);
      if (outcomes.length !== batch.length) {
        throw new Error(`handler answered ${outcomes.length} outcomes for ${batch.length} jobs`);
      }
    } catch (error) {
      logger.error({ err: error, stream, jobs: batch.length }, 'batch handler failed');
      const reason = error instanceof Error ? error.message : String(error);
      outcomes = batch.map((): JobOutcome => ({ kind: 'retry', reason }));
    } finally {
      clearInterval(heartbeat);
    }
    this.batches += 1;
    const acked = await Promise.all(
      batch.map((msg, i) => settleJob(msg, outcomes[i] as JobOutcome, this.options)),
    );
    this.processed += acked.filter(Boolean).length;
  }

  /**
   * After `close()`: hands back what was fetched and not yet read, up to the end of the
   * iteration. nats.js ends the iteration (and resolves `close()`) only once everything buffered
   * before it has been read, so a loop that stops reading would never see it closed.
   */
  private async drain(
    jobs: AsyncIterator<JsMsg>,
    pending: Promise<IteratorResult<JsMsg>> | undefined,
  ): Promise<void> {
    for (let next = pending ?? jobs.next(); ; next = jobs.next()) {
      const result = await next;
      if (result.done === true) return;
      result.value.nak();
    }
  }

  /** Stop taking jobs, let the batches in flight finish, and return. */
  async stop(): Promise<void> {
    this.stopping = true;
    void this.messages?.close();
    await this.loop;
    await Promise.allSettled([...this.inFlight]);
  }
}
