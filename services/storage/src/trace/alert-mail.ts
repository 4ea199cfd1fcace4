/**
 * Alerts (mail events of kind `alert`) mailed to the postmaster. The notice is published as an
 * inbound delivery job on MAIL_INBOUND (not through SMTP submission: it must reach the
 * postmaster even when smtp-inbound is what is failing), from the null reverse-path so nothing
 * ever bounces back (RFC 5321 §4.5.5), with a spool id derived from the alert's `eventId`: a
 * re-published job is deduplicated by JetStream and a redelivered one by storage's
 * `(spoolId, recipient)` record, so the postmaster gets each alert once.
 *
 * Rate limited per alert name: at most `perHour` notices an hour; alerts over the limit are
 * counted and the next notice that goes out says how many were not mailed (they are all in the
 * trace, by kind `alert`). The limit is this replica's; each storage replica mails its share.
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import {
  Streams,
  Subjects,
  encodeInboundJob,
  jobMessageId,
  publishDurable,
  type InboundJob,
  type MailEvent,
} from '@postmesh/bus';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { Counter, Logger } from '@postmesh/telemetry';

export interface AlertMailerOptions {
  readonly js: JetStreamClient;
  readonly logger: Logger;
  /** The postmaster's address; undefined: alerts are stored and logged, not mailed. */
  readonly postmaster: string | undefined;
  /** Notices per alert name and hour. */
  readonly perHour: number;
  /** The reporting host in the notice's From and Message-ID. */
  readonly hostname?: string;
  readonly now?: () => number;
  /** `postmesh_alerts_total{alert, mailed}`. */
  readonly counter?: Counter<'alert' | 'mailed'>;
}

const HOUR_MS = 60 * 60 * 1000;

/** The spool id of an alert's notice: stable per alert, within the job schema's alphabet. */
export function alertSpoolId(eventId: string): string {
  return `alert_${createHash('sha256').update(eventId).digest('base64url').slice(0, 40)}`;
}

export class AlertMailer {
  /** Times of the notices sent in the last hour, per alert name. */
  private readonly sent = new Map<string, number[]>();
  private readonly suppressed = new Map<string, number>();

  constructor(private readonly options: AlertMailerOptions) {}

  /**
   * Mails an alert unless its name is over the hour's limit. Resolves once the notice job is
   * stored in MAIL_INBOUND (or was not due); rejects if it could not be published.
   */
  async notify(event: MailEvent): Promise<'mailed' | 'rate-limited' | 'no-postmaster' | 'loop'> {
    const name = event.attributes?.alert ?? 'unknown';
    const { postmaster, logger } = this.options;
    if (postmaster === undefined) {
      this.options.counter?.inc({ alert: name, mailed: 'false' });
      return 'no-postmaster';
    }
    // A notice that itself ended in MAIL_DLQ must not raise a notice about itself, forever.
    if (event.attributes?.subject?.startsWith(Subjects.inbound('alert_')) === true) {
      logger.error({ eventId: event.eventId }, 'an alert notice could not be delivered; not mailed again');
      this.options.counter?.inc({ alert: name, mailed: 'false' });
      return 'loop';
    }
    const now = (this.options.now ?? Date.now)();
    const recent = (this.sent.get(name) ?? []).filter((t) => now - t < HOUR_MS);
    if (recent.length >= this.options.perHour) {
      this.sent.set(name, recent);
      this.suppressed.set(name, (this.suppressed.get(name) ?? 0) + 1);
      this.options.counter?.inc({ alert: name, mailed: 'false' });
      logger.warn({ alert: name, eventId: event.eventId }, 'alert not mailed: hourly limit reached');
      return 'rate-limited';
    }
    const skipped = this.suppressed.get(name) ?? 0;
    const host = this.options.hostname ?? hostname();
    const spoolId = alertSpoolId(event.eventId);
    const notice = buildNotice(event, { postmaster, host, spoolId, skipped, now });
    const job: InboundJob = {
      version: 1,
      spoolId,
      envelope: { mailFrom: '', rcptTo: [postmaster], remoteIp: '127.0.0.1', helo: host },
      authResults: { spf: 'none', dkim: 'none', dmarc: 'none', arc: 'none', dmarcPolicy: '', junk: false },
      receivedAt: new Date(now).toISOString(),
      messageId: `${spoolId}@${host}`,
      traceparent: '',
      body: { kind: 'inline', size: notice.length },
    };
    await publishDurable(this.options.js, Subjects.inbound(spoolId), encodeInboundJob(job, notice), {
      msgId: jobMessageId(spoolId, Streams.MAIL_INBOUND),
      expectStream: Streams.MAIL_INBOUND,
    });
    recent.push(now);
    this.sent.set(name, recent);
    this.suppressed.delete(name);
    this.options.counter?.inc({ alert: name, mailed: 'true' });
    return 'mailed';
  }
}

/** One-line header value: no CR/LF (RFC 5322 §2.2), bounded. */
function headerText(value: string): string {
  return value.replace(/[\r\n\t]+/g, ' ').slice(0, 200);
}

function buildNotice(
  event: MailEvent,
  notice: { postmaster: string; host: string; spoolId: string; skipped: number; now: number },
): Uint8Array {
  const attributes = event.attributes ?? {};
  const name = attributes.alert ?? 'unknown';
  const lines = [
    `From: Postmesh alerts <MAILER-DAEMON@${notice.host}>`,
    `To: <${notice.postmaster}>`,
    `Subject: [Postmesh ${attributes.severity ?? 'alert'}] ${headerText(name === 'dlq' ? 'a job was moved to the dead-letter queue' : name)}`,
    `Date: ${new Date(notice.now).toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <${notice.spoolId}@${notice.host}>`,
    'Auto-Submitted: auto-generated',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    headerText(event.detail ?? name),
    '',
    `Alert:    ${name}`,
    `Raised:   ${event.time} by ${event.service}`,
    ...Object.entries(attributes)
      .filter(([key]) => key !== 'alert' && key !== 'severity')
      .map(([key, value]) => `${`${key}:`.padEnd(10)}${headerText(value)}`),
    ...(event.traceId === undefined ? [] : [`Trace id: ${event.traceId}`]),
    '',
    ...(notice.skipped > 0
      ? [`${notice.skipped} earlier alert(s) of this kind were not mailed (hourly limit); see the trace.`, '']
      : []),
    'The alert is in the message trace (kind "alert"); dead letters are listed in the console.',
    '',
  ];
  return new TextEncoder().encode(lines.join('\r\n'));
}
