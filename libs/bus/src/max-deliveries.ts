/**
 * Jobs that exhausted a consumer's server-side `max_deliver` without reaching MAIL_DLQ. The
 * consumer loop dead-letters a job on its last attempt, but not when that attempt never came back
 * (the process died, or its ack or its nak was lost): JetStream then stops delivering the job
 * and it sits in the work queue, unseen by anyone (DESIGN §2 step 8: nothing is dropped
 * silently). JetStream announces this with an advisory on
 * `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>` carrying the stream sequence
 * (nats-server `JSConsumerDeliveryExceededAdvisory`). Here the job is fetched by sequence,
 * published to `mail.dlq.<stream>` with the reason (the same `Nats-Msg-Id` as the consumer
 * loop's dead letter, so a job both dead-letter and announce is stored once), then removed
 * from the work queue. Every replica subscribes in one queue group, so each advisory is handled
 * once. Advisories are core NATS: one sent while no replica listened is not replayed.
 */
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { MsgHdrs, NatsConnection, Subscription } from '@nats-io/transport-node';
import { Type, compile } from '@postmesh/schema';
import type { Logger } from '@postmesh/telemetry';
import { deadLetterAlert, serviceOf } from './alerts.js';
import { publishMailEvent } from './mail-event.js';
import { publishDurable } from './publish.js';
import { Streams, Subjects } from './topology.js';

/**
 * `Nats-Msg-Id` of a dead letter: the consumer loop's (consumer.ts `deadLetter`) from stream and
 * sequence, so whichever path dead-letters a job first, MAIL_DLQ stores it once.
 */
export function deadLetterMessageId(stream: string, seq: number): string {
  return `dlq:${stream}:${seq}`;
}

/** A dead letter's headers, as the consumer loop writes them, plus the job's own (not `Nats-*`). */
function deadLetterHeaders(entry: {
  readonly reason: string;
  readonly subject: string;
  readonly stream: string;
  readonly seq: number;
  readonly attempts: number;
  readonly original: MsgHdrs | undefined;
}): Record<string, string> {
  const headers: Record<string, string> = {
    'Postmesh-Error': entry.reason.slice(0, 1_000),
    'Postmesh-Original-Subject': entry.subject,
    'Postmesh-Original-Stream': entry.stream,
    'Postmesh-Original-Seq': String(entry.seq),
    'Postmesh-Attempts': String(entry.attempts),
  };
  if (entry.original !== undefined) {
    for (const [key, values] of entry.original) {
      if (!key.startsWith('Nats-') && values[0] !== undefined) headers[key] = values[0];
    }
  }
  return headers;
}

/** Advisory subject for every consumer of `stream`. */
export function maxDeliveriesSubject(stream: string): string {
  return `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${stream}.*`;
}

/** The fields of `io.nats.jetstream.advisory.v1.max_deliver` we use. */
export interface MaxDeliveriesAdvisory {
  readonly stream: string;
  readonly consumer: string;
  readonly streamSeq: number;
  readonly deliveries: number;
}

/**
 * The part of the advisory (the NATS server's JSON schema `io.nats.jetstream.advisory.v1.max_deliver`)
 * this module reads; the server's other fields are allowed and ignored.
 */
const MaxDeliveriesAdvisorySchema = Type.Object({
  type: Type.Literal('io.nats.jetstream.advisory.v1.max_deliver'),
  stream: Type.String(),
  consumer: Type.String(),
  stream_seq: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
  deliveries: Type.Optional(Type.Unknown()),
});
const checkAdvisory = compile(MaxDeliveriesAdvisorySchema);

/** Parses an advisory (another process wrote it: trust nothing). */
export function parseMaxDeliveriesAdvisory(data: Uint8Array): MaxDeliveriesAdvisory | undefined {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(data));
  } catch {
    return undefined;
  }
  const checked = checkAdvisory(value);
  if (!checked.ok) return undefined;
  const o = checked.value;
  return {
    stream: o.stream,
    consumer: o.consumer,
    streamSeq: o.stream_seq,
    deliveries: typeof o.deliveries === 'number' ? o.deliveries : 0,
  };
}

export interface MaxDeliveriesDeadLetterOptions {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  /** Work-queue streams whose exhausted jobs are dead-lettered. */
  readonly streams: readonly string[];
  readonly logger: Logger;
}

export type DeadLetterResult = 'dead-lettered' | 'gone' | 'ignored';

/** Subscribes to the advisories of `streams`; `stop()` before closing the connection. */
export class MaxDeliveriesDeadLetter {
  private readonly subscriptions: Subscription[] = [];
  private readonly pending = new Set<Promise<unknown>>();

  constructor(private readonly options: MaxDeliveriesDeadLetterOptions) {}

  /**
   * Started on both mail work queues (inbound and outbound), as smtp-inbound and mta-delivery
   * run it: one replica of any subscribed service handles each advisory (a queue group).
   */
  static startForMailQueues(
    connection: Pick<MaxDeliveriesDeadLetterOptions, 'nc' | 'js' | 'jsm'>,
    logger: Logger,
  ): MaxDeliveriesDeadLetter {
    const deadLetter = new MaxDeliveriesDeadLetter({
      nc: connection.nc,
      js: connection.js,
      jsm: connection.jsm,
      streams: [Streams.MAIL_INBOUND, Streams.MAIL_OUTBOUND],
      logger,
    });
    deadLetter.start();
    return deadLetter;
  }

  start(): void {
    for (const stream of this.options.streams) {
      const sub = this.options.nc.subscribe(maxDeliveriesSubject(stream), {
        queue: 'postmesh-max-deliveries',
        callback: (error, msg) => {
          if (error !== null) {
            this.options.logger.warn({ err: error, stream }, 'max-deliveries advisories interrupted');
            return;
          }
          const advisory = parseMaxDeliveriesAdvisory(msg.data);
          if (advisory === undefined) return;
          const work = this.handle(advisory)
            .catch((err: unknown) =>
              this.options.logger.error(
                { err, stream: advisory.stream, seq: advisory.streamSeq },
                'could not dead-letter a job that exhausted its deliveries; it stays in its stream',
              ),
            )
            .finally(() => this.pending.delete(work));
          this.pending.add(work);
        },
      });
      this.subscriptions.push(sub);
    }
  }

  /** Dead-letters the job an advisory names, if it is still in its stream. */
  async handle(advisory: MaxDeliveriesAdvisory): Promise<DeadLetterResult> {
    const { js, jsm, logger, streams } = this.options;
    if (!streams.includes(advisory.stream)) return 'ignored';
    const stored = await jsm.streams.getMessage(advisory.stream, { seq: advisory.streamSeq });
    // Acked, terminated or dead-lettered by its consumer in the meantime.
    if (stored === null) return 'gone';
    const reason = `exhausted ${advisory.deliveries} deliveries of consumer ${advisory.consumer} without a verdict (process died, or its ack or retry was lost)`;
    await publishDurable(js, Subjects.dlq(advisory.stream), stored.data, {
      msgId: deadLetterMessageId(advisory.stream, advisory.streamSeq),
      headers: deadLetterHeaders({
        reason,
        subject: stored.subject,
        stream: advisory.stream,
        seq: advisory.streamSeq,
        attempts: advisory.deliveries,
        original: stored.header,
      }),
    });
    const traceparent = stored.header?.get('traceparent') ?? '';
    await publishMailEvent(
      js,
      deadLetterAlert({
        service: serviceOf(logger),
        stream: advisory.stream,
        seq: advisory.streamSeq,
        subject: stored.subject,
        attempts: advisory.deliveries,
        reason,
        ...(traceparent === '' ? {} : { traceparent }),
      }),
    );
    // Only now, with the dead letter and its alert stored, out of the work queue.
    await jsm.streams.deleteMessage(advisory.stream, advisory.streamSeq, false);
    logger.error(
      { stream: advisory.stream, consumer: advisory.consumer, seq: advisory.streamSeq, reason },
      'job moved to the dead-letter queue',
    );
    return 'dead-lettered';
  }

  async stop(): Promise<void> {
    for (const sub of this.subscriptions.splice(0)) sub.unsubscribe();
    await Promise.allSettled([...this.pending]);
  }
}
