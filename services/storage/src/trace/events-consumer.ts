/**
 * Consumer `storage-events` on MAIL_EVENTS (DESIGN §3): stores trace events in batches (one
 * unordered bulk insert for whatever arrived within a few milliseconds, up to 256 events), then
 * acks each. A malformed event can never succeed, so it goes to the DLQ with the reason (never
 * silently dropped); an event the database refuses, or a batch it could not take at all, is
 * retried by redelivery. Stored alerts (kind `alert`) are then mailed to the postmaster
 * (alert-mail.ts), and stored deferrals and bounces feed the delivery-failure rule (alert-rules.ts).
 */
import {
  BatchConsumerLoop,
  Consumers,
  JobOutcomes,
  Streams,
  parseMailEvent,
  type Bus,
  type JobOutcome,
  type MailEvent,
} from '@postmesh/bus';
import type { Logger } from '@postmesh/telemetry';
import type { AlertMailer } from './alert-mail.js';
import type { StorageAlertRules } from './alert-rules.js';
import type { TraceStore } from './trace-store.js';

export function createEventsConsumer(
  bus: Bus,
  store: TraceStore,
  logger: Logger,
  alerts?: AlertMailer,
  rules?: StorageAlertRules,
): BatchConsumerLoop {
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
      const events: (MailEvent & { readonly date: Date })[] = [];
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
      const refused = await store.storeMany(events).catch((error: unknown) => {
        rules?.writeFailed(`trace events: ${error instanceof Error ? error.message : String(error)}`);
        throw error;
      });
      await Promise.all(
        positions.map(async (i, k) => {
          const problem = refused.get(k);
          const event = events[k];
          if (problem !== undefined || event === undefined) {
            outcomes[i] = JobOutcomes.retry(problem ?? 'not stored');
            return;
          }
          outcomes[i] = JobOutcomes.ack;
          rules?.observe(event);
          if (event.kind !== 'alert' || alerts === undefined) return;
          // Stored, then mailed: a notice that could not be published is retried with the
          // event (storing it again is a no-op; the notice job is deduplicated).
          try {
            await alerts.notify(event);
          } catch (error) {
            outcomes[i] = JobOutcomes.retry(
              `alert notice: ${error instanceof Error ? error.message : String(error)}`,
            );
          }
        }),
      );
      return outcomes;
    },
  });
}
