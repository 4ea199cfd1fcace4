/**
 * Consumer `storage-events` on MAIL_EVENTS (DESIGN §3): stores every trace event, then acks.
 * A malformed event can never succeed, so it goes to the DLQ with the reason (never silently
 * dropped); a database failure is retried by redelivery.
 */
import { ConsumerLoop, Consumers, JobOutcomes, Streams, type Bus } from '@postmesh/bus';
import type { Logger } from '@postmesh/telemetry';
import { parseMailEvent } from './event.js';
import type { TraceStore } from './trace-store.js';

export function createEventsConsumer(bus: Bus, store: TraceStore, logger: Logger): ConsumerLoop {
  return new ConsumerLoop({
    js: bus.js,
    stream: Streams.MAIL_EVENTS,
    consumer: Consumers.STORAGE_EVENTS,
    logger,
    maxDeliver: 20,
    async handler(msg) {
      const parsed = parseMailEvent(msg.data);
      if (!parsed.ok) {
        logger.warn({ subject: msg.subject, seq: msg.seq, problem: parsed.problem }, 'malformed trace event');
        return JobOutcomes.reject(`malformed trace event: ${parsed.problem}`);
      }
      const stored = await store.store(parsed.event);
      if (!stored) logger.debug({ eventId: parsed.event.eventId }, 'trace event already stored');
      return JobOutcomes.ack;
    },
  });
}
