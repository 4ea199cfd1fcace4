/**
 * Delivery Status Notifications: RFC 3464 (message/delivery-status), RFC 6522
 * (multipart/report), RFC 3463 (enhanced status codes), RFC 3834 §5 (Auto-Submitted). Pure:
 * typed report in, message bytes out. The DSN is sent with the null reverse-path (RFC 5321
 * §4.5.5) by the caller, and never *to* the null reverse-path (no bounce loops).
 */
import { createHash } from 'node:crypto';

export interface DsnRecipient {
  readonly rcpt: string;
  /** RFC 3464 §2.3.3. */
  readonly action: 'failed' | 'delayed';
  /** RFC 3463 `class.subject.detail`. */
  readonly status: string;
  /** The MX that answered, when one did. */
  readonly remoteMta?: string;
  /** The remote reply or our own reason, one line. */
  readonly diagnostic: string;
  /** `smtp` for a remote reply, `x-postmesh` for a local reason. */
  readonly diagnosticType: 'smtp' | 'x-postmesh';
  readonly lastAttempt: Date;
}

export interface DsnReport {
  readonly reportingMta: string;
  readonly sender: string;
  readonly queueId: string;
  readonly arrival: Date;
  readonly recipients: readonly DsnRecipient[];
  /** Header section of the original message (RFC 6522 §4: text/rfc822-headers). */
  readonly originalHeaders: Uint8Array;
  /** For `delayed` notices (RFC 3464 §2.3.9 Will-Retry-Until). */
  readonly willRetryUntil?: Date;
  readonly date: Date;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number): string => String(n).padStart(2, '0');

/** RFC 5322 §3.3 date-time in UTC. */
export function rfc5322Date(d: Date): string {
  return (
    `${DAYS[d.getUTCDay()] ?? ''}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()] ?? ''} ${d.getUTCFullYear()} ` +
    `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} +0000`
  );
}

/** RFC 3463: the enhanced code in a reply (`550 5.1.1 …`), else one derived from the basic code. */
export function statusOf(code: number, reply: string): string {
  const enhanced = /^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})\b/.exec(reply)?.[1];
  if (enhanced !== undefined && enhanced[0] === String(code)[0]) return enhanced;
  if (code >= 500) return '5.0.0';
  if (code >= 400) return '4.0.0';
  return '4.4.1';
}

// RFC 3464 §2.1: field values are US-ASCII; strip anything else so the report stays parseable.
const ascii = (s: string): string => s.replace(/[^\x20-\x7e]/g, '?');

export function buildDsn(report: DsnReport): Uint8Array {
  const failed = report.recipients.some((r) => r.action === 'failed');
  const boundary = `pm-dsn-${createHash('sha256').update(report.queueId).update(String(report.date.getTime())).digest('hex').slice(0, 24)}`;
  const messageId = `${report.queueId}.${report.date.getTime()}.dsn@${report.reportingMta}`;
  const human = failed
    ? [
        'This is the mail system at ' + report.reportingMta + '.',
        '',
        'Your message could not be delivered to one or more recipients.',
        'It has not been delivered to them and will not be retried.',
        '',
        ...report.recipients.map((r) => `<${r.rcpt}>: ${r.diagnostic}`),
      ]
    : [
        'This is the mail system at ' + report.reportingMta + '.',
        '',
        'Your message has not been delivered yet to the recipients below.',
        'Delivery will be retried' +
          (report.willRetryUntil ? ` until ${rfc5322Date(report.willRetryUntil)}.` : '.') +
          ' You do not need to send it again.',
        '',
        ...report.recipients.map((r) => `<${r.rcpt}>: ${r.diagnostic}`),
      ];
  const perMessage = [
    `Reporting-MTA: dns; ${report.reportingMta}`,
    `X-Postmesh-Queue-ID: ${report.queueId}`,
    `Arrival-Date: ${rfc5322Date(report.arrival)}`,
  ];
  const perRecipient = report.recipients.map((r) =>
    [
      `Final-Recipient: rfc822; ${ascii(r.rcpt)}`,
      `Action: ${r.action}`,
      `Status: ${r.status}`,
      ...(r.remoteMta === undefined ? [] : [`Remote-MTA: dns; ${ascii(r.remoteMta)}`]),
      `Diagnostic-Code: ${r.diagnosticType}; ${ascii(r.diagnostic).slice(0, 900)}`,
      `Last-Attempt-Date: ${rfc5322Date(r.lastAttempt)}`,
      ...(r.action === 'delayed' && report.willRetryUntil
        ? [`Will-Retry-Until: ${rfc5322Date(report.willRetryUntil)}`]
        : []),
    ].join('\r\n'),
  );
  const head = [
    `From: Mail Delivery System <MAILER-DAEMON@${report.reportingMta}>`,
    `To: <${report.sender}>`,
    `Subject: ${failed ? 'Undelivered Mail Returned to Sender' : 'Delayed Mail (still being retried)'}`,
    `Date: ${rfc5322Date(report.date)}`,
    `Message-ID: <${messageId}>`,
    // RFC 3834 §5: an automatic reply; RFC 3464 §4 and RFC 5321 §4.5.5: never answered with a DSN.
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    '',
    'This is a MIME-encapsulated delivery status notification.',
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=us-ascii',
    'Content-Description: Notification',
    '',
    ...human.map(ascii),
    '',
    `--${boundary}`,
    'Content-Type: message/delivery-status',
    'Content-Description: Delivery report',
    '',
    perMessage.join('\r\n'),
    '',
    perRecipient.join('\r\n\r\n'),
    '',
    `--${boundary}`,
    'Content-Type: text/rfc822-headers',
    'Content-Description: Undelivered message headers',
    '',
    '',
  ].join('\r\n');
  const tail = `\r\n--${boundary}--\r\n`;
  const headBytes = new TextEncoder().encode(head);
  const tailBytes = new TextEncoder().encode(tail);
  let original = report.originalHeaders;
  // The part ends with CRLF before the boundary; drop a trailing CRLF of the header section.
  if (original.length >= 2 && original[original.length - 2] === 13 && original[original.length - 1] === 10) {
    original = original.subarray(0, original.length - 2);
  }
  const out = new Uint8Array(headBytes.length + original.length + tailBytes.length);
  out.set(headBytes, 0);
  out.set(original, headBytes.length);
  out.set(tailBytes, headBytes.length + original.length);
  return out;
}
