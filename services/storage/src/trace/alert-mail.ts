/**
 * Alerts (mail events of kind `alert`) mailed to the postmaster and, for an alert about one
 * domain (attribute `domain`), to that domain's admins and the owners. The notice is published as an
 * inbound delivery job on MAIL_INBOUND (not through SMTP submission: it must reach the
 * postmaster even when smtp-inbound is what is failing), from the null reverse-path so nothing
 * ever bounces back (RFC 5321 §4.5.5), with a spool id derived from the alert's `eventId`: a
 * re-published job is deduplicated by JetStream and a redelivered one by storage's
 * `(spoolId, recipient)` record, so the postmaster gets each alert once.
 *
 * Rate limited per alert name and subject (attribute `about`: a stream, a domain, a
 * certificate), so one incident cannot flood the postmaster while another still gets through:
 * at most `perHour` notices an hour per pair; alerts over the limit are counted and the next
 * notice for the pair says how many were not mailed (they are all in the trace and the console,
 * by kind `alert`). The limit is this replica's; each storage replica mails its share.
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
  /**
   * Who else is told of an alert about `domain`: its domain-admins and the owners, those whose
   * address is a mailbox here (the notice is delivered through MAIL_INBOUND, local only).
   */
  readonly domainRecipients?: (domain: string) => Promise<readonly string[]>;
  /** `postmesh_alerts_total{alert, mailed}`. */
  readonly counter?: Counter<'alert' | 'mailed'>;
}

const HOUR_MS = 60 * 60 * 1000;

/** The spool id of an alert's notice: stable per alert, within the job schema's alphabet. */
export function alertSpoolId(eventId: string): string {
  return `alert_${createHash('sha256').update(eventId).digest('base64url').slice(0, 40)}`;
}

export class AlertMailer {
  /** Times of the notices sent in the last hour, per alert name and subject. */
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
    // A notice that itself ended in MAIL_DLQ must not raise a notice about itself, forever.
    if (event.attributes?.subject?.startsWith(Subjects.inbound('alert_')) === true) {
      logger.error({ eventId: event.eventId }, 'an alert notice could not be delivered; not mailed again');
      this.options.counter?.inc({ alert: name, mailed: 'false' });
      return 'loop';
    }
    const domain = event.attributes?.domain;
    const admins =
      domain === undefined || this.options.domainRecipients === undefined
        ? []
        : await this.options.domainRecipients(domain);
    const recipients = [
      ...new Set([...(postmaster === undefined ? [] : [postmaster]), ...admins].map((a) => a.toLowerCase())),
    ];
    if (recipients.length === 0) {
      this.options.counter?.inc({ alert: name, mailed: 'false' });
      return 'no-postmaster';
    }
    const key = `${name}\0${event.attributes?.about ?? ''}`;
    const now = (this.options.now ?? Date.now)();
    const recent = (this.sent.get(key) ?? []).filter((t) => now - t < HOUR_MS);
    if (recent.length >= this.options.perHour) {
      this.sent.set(key, recent);
      this.suppressed.set(key, (this.suppressed.get(key) ?? 0) + 1);
      this.options.counter?.inc({ alert: name, mailed: 'false' });
      logger.warn(
        { alert: name, about: event.attributes?.about, eventId: event.eventId },
        'alert not mailed: hourly limit for this alert and subject reached',
      );
      return 'rate-limited';
    }
    const skipped = this.suppressed.get(key) ?? 0;
    const host = this.options.hostname ?? hostname();
    const spoolId = alertSpoolId(event.eventId);
    const notice = buildNotice(event, { recipients, host, spoolId, skipped, now });
    const job: InboundJob = {
      version: 1,
      spoolId,
      envelope: { mailFrom: '', rcptTo: recipients, remoteIp: '127.0.0.1', helo: host },
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
    this.sent.set(key, recent);
    this.suppressed.delete(key);
    this.options.counter?.inc({ alert: name, mailed: 'true' });
    return 'mailed';
  }
}

/** What each rule's notice says in its Subject. */
const SUBJECTS: Readonly<Record<string, string>> = {
  dlq: 'a job was moved to the dead-letter queue',
  'delivery-failures': 'repeated delivery failures',
  'queue-depth': 'a queue is growing',
  'consumer-lag': 'a consumer is falling behind',
  'certificate-expiry': 'a TLS certificate expires soon',
  'storage-write-errors': 'storage writes are failing',
};

/** One-line header value: no CR/LF (RFC 5322 §2.2), bounded. */
function headerText(value: string): string {
  return value.replace(/[\r\n\t]+/g, ' ').slice(0, 200);
}

function buildNotice(
  event: MailEvent,
  notice: { recipients: readonly string[]; host: string; spoolId: string; skipped: number; now: number },
): Uint8Array {
  const attributes = event.attributes ?? {};
  const name = attributes.alert ?? 'unknown';
  const lines = [
    `From: Postmesh alerts <MAILER-DAEMON@${notice.host}>`,
    `To: ${notice.recipients.map((r) => `<${r}>`).join(', ')}`,
    `Subject: [Postmesh ${attributes.severity ?? 'alert'}] ${headerText(SUBJECTS[name] ?? name)}${
      attributes.about === undefined || name === 'dlq' ? '' : `: ${headerText(attributes.about)}`
    }`,
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
      .filter(([key]) => key !== 'alert' && key !== 'severity' && key !== 'about')
      .map(([key, value]) => `${`${key}:`.padEnd(10)}${headerText(value)}`),
    ...(event.traceId === undefined ? [] : [`Trace id: ${event.traceId}`]),
    '',
    ...(notice.skipped > 0
      ? [
          `${notice.skipped} earlier alert(s) of this kind about the same subject were not mailed (hourly limit); see the console.`,
          '',
        ]
      : []),
    'Recent alerts are on the console overview and in the message trace (kind "alert"); dead letters are listed in the console.',
    '',
  ];
  return new TextEncoder().encode(lines.join('\r\n'));
}
