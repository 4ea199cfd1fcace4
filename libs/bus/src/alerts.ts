/**
 * Alerts are mail events of kind `alert` (DESIGN §3: MAIL_EVENTS carries trace, audit and
 * alerts): stored and shown like the message trace, and mailed to the postmaster by storage
 * (rate limited there). Each has a deterministic `eventId`, so the same incident seen twice
 * (a retried dead letter, the consumer loop and the max-deliveries advisory both acting) is
 * one alert.
 */
import type { Logger } from '@postmesh/telemetry';
import { mailEvent, type MailEvent } from './mail-event.js';

export const ALERT_NAMES = ['dlq'] as const;
export type AlertName = (typeof ALERT_NAMES)[number];
export type AlertSeverity = 'warning' | 'critical';

/** The emitting service, from the logger's `service` binding (libs/telemetry createLogger). */
export function serviceOf(logger: Logger): string {
  const service = (logger.bindings() as { service?: unknown }).service;
  return typeof service === 'string' && service !== '' ? service : 'postmesh';
}

/** A job moved to MAIL_DLQ (DESIGN §2 step 8: admins are told, nothing is dropped silently). */
export function deadLetterAlert(entry: {
  readonly service: string;
  readonly stream: string;
  readonly seq: number;
  readonly subject: string;
  readonly attempts: number;
  readonly reason: string;
  readonly traceparent?: string;
}): MailEvent {
  const traceId = /^00-([0-9a-f]{32})-/.exec(entry.traceparent ?? '')?.[1];
  return mailEvent({
    eventId: `alert:dlq:${entry.stream}:${entry.seq}`,
    service: entry.service,
    kind: 'alert',
    detail: `job ${entry.seq} of ${entry.stream} moved to the dead-letter queue: ${entry.reason}`,
    attributes: {
      alert: 'dlq' satisfies AlertName,
      severity: 'critical' satisfies AlertSeverity,
      stream: entry.stream,
      seq: String(entry.seq),
      subject: entry.subject,
      attempts: String(entry.attempts),
      reason: entry.reason,
    },
    ...(traceId === undefined ? {} : { traceId }),
  });
}
