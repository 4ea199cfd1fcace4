/**
 * The alert rules storage evaluates, because it sees the data (docs/alerts.md):
 *
 * - delivery-failures: every deferral and bounce of every mta-delivery replica reaches storage
 *   as a trace event (MAIL_EVENTS), so storage counts them per recipient domain; N within the
 *   window raise one alert about that domain (its admins are told too).
 * - storage-write-errors: a delivery batch the database refused (retried by redelivery, so no
 *   mail is lost, but nothing arrives either); N within the window raise one alert.
 *
 * Raised alerts go out through a MailEventOutbox (stored on MAIL_EVENTS even after a NATS
 * hiccup); their `eventId`s are per subject and window slot, so the same incident raised twice,
 * or by two replicas, is stored and mailed once.
 */
import {
  WindowCounter,
  deliveryFailuresAlert,
  storageWriteErrorsAlert,
  type MailEvent,
  type MailEventOutbox,
} from '@postmesh/bus';
import type { Logger } from '@postmesh/telemetry';

export interface AlertThreshold {
  /** Occurrences within the window that raise the alert. */
  readonly threshold: number;
  readonly windowMs: number;
}

export interface StorageAlertRulesOptions {
  readonly outbox: Pick<MailEventOutbox, 'publish'>;
  readonly logger: Logger;
  /** Deferrals and bounces to one domain (POSTMESH_ALERT_DELIVERY_FAILURES, …_WINDOW_MS). */
  readonly deliveryFailures: AlertThreshold;
  /** Refused delivery writes (POSTMESH_ALERT_STORAGE_WRITE_ERRORS, …_WINDOW_MS). */
  readonly writeErrors: AlertThreshold;
  readonly now?: () => number;
}

export class StorageAlertRules {
  private readonly failures: WindowCounter;
  private readonly writeErrors: WindowCounter;
  private writeErrorSeq = 0;

  constructor(private readonly options: StorageAlertRulesOptions) {
    this.failures = new WindowCounter(options.deliveryFailures);
    this.writeErrors = new WindowCounter({ ...options.writeErrors, maxKeys: 1 });
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  /** A stored trace event: counts deferrals and bounces per recipient domain. */
  observe(event: MailEvent): void {
    if (event.kind !== 'deferred' && event.kind !== 'bounced') return;
    const at = event.recipient?.lastIndexOf('@') ?? -1;
    if (event.recipient === undefined || at < 0) return;
    const domain = event.recipient.slice(at + 1).toLowerCase();
    const now = this.now();
    const count = this.failures.record(domain, event.eventId, now);
    if (count === undefined) return;
    this.failures.reset(domain);
    this.options.logger.warn({ domain, failures: count }, 'repeated delivery failures to one domain');
    void this.options.outbox.publish(
      deliveryFailuresAlert({
        service: 'storage',
        domain,
        failures: count,
        windowMs: this.options.deliveryFailures.windowMs,
        lastError: event.detail ?? event.kind,
        now,
      }),
    );
  }

  /** A write the database refused (a delivery batch, trace events). */
  writeFailed(reason: string): void {
    const now = this.now();
    this.writeErrorSeq += 1;
    const count = this.writeErrors.record('database', String(this.writeErrorSeq), now);
    if (count === undefined) return;
    this.writeErrors.reset('database');
    this.options.logger.error({ errors: count, reason }, 'storage writes keep failing');
    void this.options.outbox.publish(
      storageWriteErrorsAlert({
        service: 'storage',
        errors: count,
        windowMs: this.options.writeErrors.windowMs,
        lastError: reason,
        now,
      }),
    );
  }
}
