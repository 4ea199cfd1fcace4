import type { ConsumerMessages, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { SpanKind, inSpan, type Logger } from '@postmesh/telemetry';
import { deadLetterAlert, serviceOf } from './alerts.js';
import { publishMailEvent } from './mail-event.js';
import { publishDurable } from './publish.js';
import { Subjects } from './topology.js';
import { jobTraceContext } from './trace-headers.js';

/** What a job handler decided. Expected failures are values; a thrown error counts as `retry`. */
export type JobOutcome =
  | { readonly kind: 'ack' }
  /** Try again later (nak with delay); after `maxDeliver` attempts the job goes to the DLQ. */
  | { readonly kind: 'retry'; readonly reason: string; readonly delayMs?: number }
  /** Will never succeed: straight to the DLQ with the reason. */
  | { readonly kind: 'reject'; readonly reason: string }
  /** Finished with on purpose, nothing more to do (e.g. a cancelled job). */
  | { readonly kind: 'drop'; readonly reason: string };

export const JobOutcomes = {
  ack: { kind: 'ack' } as JobOutcome,
  retry: (reason: string, delayMs?: number): JobOutcome =>
    delayMs === undefined ? { kind: 'retry', reason } : { kind: 'retry', reason, delayMs },
  reject: (reason: string): JobOutcome => ({ kind: 'reject', reason }),
  drop: (reason: string): JobOutcome => ({ kind: 'drop', reason }),
} as const;

export interface ConsumerLoopOptions {
  readonly js: JetStreamClient;
  readonly stream: string;
  readonly consumer: string;
  readonly handler: (msg: JsMsg) => Promise<JobOutcome>;
  readonly logger: Logger;
  /** Jobs processed at once. */
  readonly concurrency?: number;
  /** Attempts before a failing job is moved to MAIL_DLQ; mirror the consumer's `max_deliver`. */
  readonly maxDeliver?: number;
  /** Delay before the n-th retry (last value repeats). */
  readonly backoffMs?: readonly number[];
}

/**
 * A durable pull-consumer loop with explicit acks. Each job is acked only after its handler's
 * effect is durable; a crash before that leaves it unacked and JetStream redelivers it, which is
 * why handlers must be idempotent (DESIGN §2 step 6). Jobs that fail `maxDeliver` times are
 * published to `mail.dlq.<stream>` with the error and then terminated: never dropped silently,
 * never retried forever (DESIGN §2 step 8).
 */
export class ConsumerLoop {
  private messages: ConsumerMessages | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private stopping = false;
  private loop: Promise<void> | undefined;
  processed = 0;

  constructor(private readonly options: ConsumerLoopOptions) {}

  start(): void {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    const { js, stream, consumer, logger } = this.options;
    const concurrency = this.options.concurrency ?? 16;
    // Re-attach after NATS outages: consume() ends on some errors; keep going until stopped.
    while (!this.stopping) {
      try {
        const c = await js.consumers.get(stream, consumer);
        const messages = await c.consume({ max_messages: concurrency });
        this.messages = messages;
        for await (const msg of messages) {
          while (this.inFlight.size >= concurrency) await Promise.race(this.inFlight);
          const job = this.process(msg).finally(() => this.inFlight.delete(job));
          this.inFlight.add(job);
          if (this.stopping) break;
        }
      } catch (error) {
        if (this.stopping) break;
        logger.warn({ err: error, stream, consumer }, 'consumer interrupted; re-attaching');
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
  }

  private async process(msg: JsMsg): Promise<void> {
    const { logger, stream } = this.options;
    const heartbeat = setInterval(() => msg.working(), 15_000);
    let outcome: JobOutcome;
    try {
      // One span per attempt, a child of the span that published the job (its headers).
      outcome = await inSpan(
        `process ${stream}`,
        {
          kind: SpanKind.CONSUMER,
          parent: jobTraceContext(msg),
          attributes: {
            'messaging.system': 'nats',
            'messaging.destination.name': msg.subject,
            'messaging.consumer.group.name': this.options.consumer,
            'messaging.message.delivery_count': msg.info.deliveryCount,
          },
        },
        async (span) => {
          const result = await this.options.handler(msg);
          span.setAttribute('postmesh.job.outcome', result.kind);
          return result;
        },
      );
    } catch (error) {
      logger.error(
        { err: error, stream, seq: msg.seq, attempt: msg.info.deliveryCount },
        'job handler failed',
      );
      outcome = { kind: 'retry', reason: error instanceof Error ? error.message : String(error) };
    } finally {
      clearInterval(heartbeat);
    }
    if (await settleJob(msg, outcome, this.options)) this.processed += 1;
  }

  /** Stop taking jobs, let those in flight finish, and return. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.messages?.close();
    await Promise.allSettled([...this.inFlight]);
    await this.loop;
  }
}

/** What settling a job needs to know about its consumer. */
export interface SettleOptions {
  readonly js: JetStreamClient;
  readonly stream: string;
  readonly logger: Logger;
  readonly maxDeliver?: number;
  readonly backoffMs?: readonly number[];
}

/**
 * Acks, naks (with backoff), terminates or dead-letters one job by its outcome; answers whether
 * it was acked. A failed ack or nak leaves the job unacked, so JetStream redelivers it.
 */
export async function settleJob(msg: JsMsg, outcome: JobOutcome, options: SettleOptions): Promise<boolean> {
  const { logger, stream } = options;
  const maxDeliver = options.maxDeliver ?? 10;
  try {
    switch (outcome.kind) {
      case 'ack':
        await msg.ackAck();
        return true;
      case 'drop':
        logger.info({ stream, seq: msg.seq, reason: outcome.reason }, 'job dropped');
        msg.term(outcome.reason);
        return false;
      case 'reject':
        await deadLetter(msg, outcome.reason, options);
        return false;
      case 'retry': {
        const attempt = msg.info.deliveryCount;
        if (maxDeliver > 0 && attempt >= maxDeliver) {
          await deadLetter(msg, `${outcome.reason} (after ${attempt} attempts)`, options);
          return false;
        }
        const schedule = options.backoffMs ?? [1_000, 5_000, 15_000, 60_000];
        const delay = outcome.delayMs ?? schedule[Math.min(attempt - 1, schedule.length - 1)] ?? 1_000;
        logger.warn(
          { stream, seq: msg.seq, attempt, delayMs: delay, reason: outcome.reason },
          'job will be retried',
        );
        msg.nak(delay);
        return false;
      }
    }
  } catch (error) {
    // The ack/nak itself failed (e.g. NATS went away): the job stays unacked and is redelivered.
    logger.warn({ err: error, stream, seq: msg.seq }, 'could not settle job; it will be redelivered');
    return false;
  }
}

async function deadLetter(msg: JsMsg, reason: string, options: SettleOptions): Promise<void> {
  const { js, stream, logger } = options;
  const headers: Record<string, string> = {
    'Postmesh-Error': reason.slice(0, 1_000),
    'Postmesh-Original-Subject': msg.subject,
    'Postmesh-Original-Stream': stream,
    'Postmesh-Original-Seq': String(msg.seq),
    'Postmesh-Attempts': String(msg.info.deliveryCount),
  };
  for (const [key, values] of msg.headers ?? natsHeaders()) {
    if (!key.startsWith('Nats-') && values[0] !== undefined) headers[key] = values[0];
  }
  // Dedup id from stream+seq: a crash between this publish and term() cannot duplicate the DLQ entry.
  await publishDurable(js, Subjects.dlq(stream), msg.data, { msgId: `dlq:${stream}:${msg.seq}`, headers });
  // The alert before the term: if it is not stored, the job stays and is dead-lettered again
  // (both publishes are deduplicated), so a dead letter is never left unannounced.
  await publishMailEvent(
    js,
    deadLetterAlert({
      service: serviceOf(logger),
      stream,
      seq: msg.seq,
      subject: msg.subject,
      attempts: msg.info.deliveryCount,
      reason: reason.slice(0, 1_000),
      ...(headers.traceparent === undefined ? {} : { traceparent: headers.traceparent }),
    }),
  );
  msg.term(reason);
  logger.error({ stream, seq: msg.seq, reason }, 'job moved to the dead-letter queue');
}
