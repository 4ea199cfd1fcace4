/**
 * Alerts are mail events of kind `alert` (DESIGN §3: MAIL_EVENTS carries trace, audit and
 * alerts): stored and shown like the message trace, and mailed to the postmaster (and, for an
 * alert about one domain, its admins) by storage, rate limited there per alert and subject.
 * Each has a deterministic `eventId`, so the same incident seen twice (a retried dead letter,
 * the consumer loop and the max-deliveries advisory both acting, two services serving the same
 * expiring certificate) is one alert.
 *
 * Attributes every alert carries: `alert` (its rule, ALERT_NAMES), `severity`, and `about` (what
 * it is about: a stream, a consumer, a domain, a certificate; the rate limit's key with
 * `alert`); `domain` when it concerns one domain (its admins are told, and only they and
 * installation-wide roles see it in the console). docs/alerts.md lists the rules.
 */
import type { Logger } from '@postmesh/telemetry';
import { mailEvent, type MailEvent } from './mail-event.js';

export const ALERT_NAMES = [
  'dlq',
  'delivery-failures',
  'queue-depth',
  'consumer-lag',
  'certificate-expiry',
  'storage-write-errors',
  /** A webhook endpoint gave no 2xx for an event within its attempts (docs/webhooks.md). */
  'webhook-failed',
] as const;
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
      about: entry.stream,
      stream: entry.stream,
      seq: String(entry.seq),
      subject: entry.subject,
      attempts: String(entry.attempts),
      reason: entry.reason,
    },
    ...(traceId === undefined ? {} : { traceId }),
  });
}

/** The start of the `windowMs`-long slot `at` falls in: alerts raised within one slot are one. */
function slotOf(at: number, windowMs: number): string {
  return new Date(Math.floor(at / windowMs) * windowMs).toISOString();
}

/**
 * Repeated failures delivering to one destination domain: `failures` deferrals or bounces within
 * `windowMs`. One alert per domain and window slot, whoever counts them.
 */
export function deliveryFailuresAlert(entry: {
  readonly service: string;
  readonly domain: string;
  readonly failures: number;
  readonly windowMs: number;
  readonly lastError: string;
  readonly now?: number;
}): MailEvent {
  const now = entry.now ?? Date.now();
  const minutes = Math.round(entry.windowMs / 60_000);
  return mailEvent({
    eventId: `alert:delivery-failures:${entry.domain}:${slotOf(now, entry.windowMs)}`,
    service: entry.service,
    kind: 'alert',
    time: new Date(now),
    detail: `${entry.failures} deliveries to ${entry.domain} failed within ${minutes} minutes; last: ${entry.lastError}`,
    attributes: {
      alert: 'delivery-failures' satisfies AlertName,
      severity: 'warning' satisfies AlertSeverity,
      about: entry.domain,
      domain: entry.domain,
      failures: String(entry.failures),
      window_minutes: String(minutes),
      last_error: entry.lastError,
    },
  });
}

/** A work queue (stream) holding more than its threshold. One alert per stream and hour. */
export function queueDepthAlert(entry: {
  readonly service: string;
  readonly stream: string;
  readonly messages: number;
  readonly threshold: number;
  readonly now?: number;
}): MailEvent {
  const now = entry.now ?? Date.now();
  return mailEvent({
    eventId: `alert:queue-depth:${entry.stream}:${slotOf(now, 3_600_000)}`,
    service: entry.service,
    kind: 'alert',
    time: new Date(now),
    detail: `${entry.stream} holds ${entry.messages} messages (threshold ${entry.threshold})`,
    attributes: {
      alert: 'queue-depth' satisfies AlertName,
      severity: 'warning' satisfies AlertSeverity,
      about: entry.stream,
      stream: entry.stream,
      messages: String(entry.messages),
      threshold: String(entry.threshold),
    },
  });
}

/** A consumer whose backlog (jobs not yet delivered to it) passed its threshold. One per consumer and hour. */
export function consumerLagAlert(entry: {
  readonly service: string;
  readonly stream: string;
  readonly consumer: string;
  readonly pending: number;
  readonly threshold: number;
  readonly now?: number;
}): MailEvent {
  const now = entry.now ?? Date.now();
  return mailEvent({
    eventId: `alert:consumer-lag:${entry.stream}:${entry.consumer}:${slotOf(now, 3_600_000)}`,
    service: entry.service,
    kind: 'alert',
    time: new Date(now),
    detail: `consumer ${entry.consumer} on ${entry.stream} is ${entry.pending} jobs behind (threshold ${entry.threshold})`,
    attributes: {
      alert: 'consumer-lag' satisfies AlertName,
      severity: 'warning' satisfies AlertSeverity,
      about: `${entry.stream}/${entry.consumer}`,
      stream: entry.stream,
      consumer: entry.consumer,
      pending: String(entry.pending),
      threshold: String(entry.threshold),
    },
  });
}

/**
 * A served TLS certificate that expires within the warning period. Keyed by the certificate's
 * fingerprint: the same certificate (served by smtp-inbound and imap, checked at every start and
 * periodically) is one alert; its renewal, a new certificate, is a new one if it too expires soon.
 */
export function certificateExpiryAlert(entry: {
  readonly service: string;
  readonly fingerprint: string;
  readonly subject: string;
  readonly notAfter: Date;
  readonly file: string;
  readonly now?: number;
}): MailEvent {
  const now = entry.now ?? Date.now();
  const daysLeft = Math.floor((entry.notAfter.getTime() - now) / 86_400_000);
  const expired = entry.notAfter.getTime() <= now;
  return mailEvent({
    eventId: `alert:certificate-expiry:${entry.fingerprint}`,
    service: entry.service,
    kind: 'alert',
    time: new Date(now),
    detail: expired
      ? `the TLS certificate for ${entry.subject} expired on ${entry.notAfter.toISOString()}`
      : `the TLS certificate for ${entry.subject} expires on ${entry.notAfter.toISOString()} (in ${daysLeft} days)`,
    attributes: {
      alert: 'certificate-expiry' satisfies AlertName,
      severity: (expired || daysLeft < 2 ? 'critical' : 'warning') satisfies AlertSeverity,
      about: entry.subject,
      certificate: entry.subject,
      not_after: entry.notAfter.toISOString(),
      days_left: String(Math.max(0, daysLeft)),
      fingerprint: entry.fingerprint,
      file: entry.file,
    },
  });
}

/** Storage failing to write: `errors` failed writes within `windowMs`. One per window slot. */
export function storageWriteErrorsAlert(entry: {
  readonly service: string;
  readonly errors: number;
  readonly windowMs: number;
  readonly lastError: string;
  readonly now?: number;
}): MailEvent {
  const now = entry.now ?? Date.now();
  const minutes = Math.round(entry.windowMs / 60_000);
  return mailEvent({
    eventId: `alert:storage-write-errors:${slotOf(now, entry.windowMs)}`,
    service: entry.service,
    kind: 'alert',
    time: new Date(now),
    detail: `${entry.errors} storage writes failed within ${minutes} minutes; last: ${entry.lastError}`,
    attributes: {
      alert: 'storage-write-errors' satisfies AlertName,
      severity: 'critical' satisfies AlertSeverity,
      about: 'database',
      errors: String(entry.errors),
      window_minutes: String(minutes),
      last_error: entry.lastError,
    },
  });
}

/**
 * Counts occurrences per key within a sliding window (repeated failures to one domain, storage
 * write errors) and says when a key reaches its threshold. Each occurrence has an id, so a
 * redelivered event is counted once. Bounded: at most `maxKeys` keys are tracked (the oldest
 * are forgotten first), each holding at most `threshold` recent occurrences.
 */
export class WindowCounter {
  private readonly seen = new Map<string, { at: number; id: string }[]>();

  constructor(
    private readonly options: {
      readonly threshold: number;
      readonly windowMs: number;
      readonly maxKeys?: number;
    },
  ) {}

  /** Records one occurrence; answers the count within the window when it reaches the threshold. */
  record(key: string, id: string, at: number): number | undefined {
    const { threshold, windowMs } = this.options;
    const recent = (this.seen.get(key) ?? []).filter((o) => at - o.at < windowMs);
    if (!recent.some((o) => o.id === id)) recent.push({ at, id });
    while (recent.length > Math.max(threshold, 1)) recent.shift();
    this.seen.delete(key);
    this.seen.set(key, recent);
    while (this.seen.size > (this.options.maxKeys ?? 10_000)) {
      const oldest = this.seen.keys().next().value;
      if (oldest === undefined) break;
      this.seen.delete(oldest);
    }
    return recent.length >= threshold ? recent.length : undefined;
  }

  /** Forgets a key (its alert was raised: count the next incident from zero). */
  reset(key: string): void {
    this.seen.delete(key);
  }
}
