/**
 * Consumer `storage-events` on MAIL_EVENTS (DESIGN §3): stores trace events in batches (one
 * unordered bulk insert for whatever arrived within a few milliseconds, up to 256 events), then
 * acks each. A malformed event can never succeed, so it goes to the DLQ with the reason (never
 * silently dropped); an event the database refuses, or a batch it could not take at all, is
 * retried by redelivery.
 */
import { BatchConsumerLoop, Consumers, JobOutcomes, Streams, type Bus, type JobOutcome } from '@postmesh/bus';
import type { Logger } from '@postmesh/telemetry';
import { parseMailEvent, type MailEventPayload } from './event.js';
import type { TraceStore } from './trace-store.js';

export function createEventsConsumer(bus: Bus, store: TraceStore, logger: Logger): BatchConsumerLoop {
  return new BatchConsumerLoop({
    js: bus.js,
    stream: Streams.MAIL_EVENTS,
    consumer: Consumers.STORAGE_EVENTS,
    logger,
    maxDeliver: 20,
    maxBatch: 256,
    maxWaitMs: 50,
    async handler(msgs) {
      const outcomes: JobOutcome[] = [];
      const events: (MailEventPayload & { readonly date: Date })[] = [];
      const positions: number[] = [];
      for (const [i, msg] of msgs.entries()) {
        const parsed = parseMailEvent(msg.data);
        if (!parsed.ok) {
          logger.warn(
            { subject: msg.subject, seq: msg.seq, problem: parsed.problem },
            'malformed trace event',
          );
          outcomes[i] = JobOutcomes.reject(`malformed trace event: ${parsed.problem}`);
          continue;
        }
        events.push(parsed.event);
        positions.push(i);
      }
      const refused = await store.storeMany(events);
      positions.forEach((i, k) => {
        const problem = refused.get(k);
        outcomes[i] = problem === undefined ? JobOutcomes.ack : JobOutcomes.retry(problem);
      });
      return outcomes;
    },
  });
}
