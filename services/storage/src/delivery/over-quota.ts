/**
 * Accepted mail for a recipient over quota (DESIGN §2 step 5; RFC 3463 X.2.2 "mailbox full"):
 * we answered 250, so the sender must hear what happens to it. While the job keeps retrying, the
 * sender gets one delay notice (RFC 3464 `Action: delayed`, `Status: 4.2.2`); once
 * `giveUpAfterMs` has passed since the message arrived, or the consumer's deliveries are about to
 * run out, a failure DSN (`Action: failed`, `Status: 5.2.2`) and the job is finished for those
 * recipients. A DSN is an inbound job for the sender (as mta-delivery's bounces are), with a
 * spoolId derived from the message's, so a retried publish and storage's `(spoolId, recipient)`
 * idempotency deliver each notice at most once however often it is sent. Never a DSN to the null
 * sender (RFC 3464 §4, RFC 5321 §4.5.5).
 *
 * Retries are spread so that the last delivery the consumer allows (`maxDeliver`) falls at the
 * give-up time: JetStream counts every redelivery, and the job must not end in MAIL_DLQ.
 */
import {
  JobOutcomes,
  Streams,
  Subjects,
  encodeInboundJob,
  jobMessageId,
  publishDurable,
  type InboundJob,
  type JobOutcome,
} from '@postmesh/bus';
import { buildDsn, type DsnRecipient } from '@postmesh/mime';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { Logger } from '@postmesh/telemetry';

export interface OverQuotaPolicy {
  /** Failure DSN once this long has passed since the message arrived (`receivedAt`). */
  readonly giveUpAfterMs: number;
  /** Shortest wait between two attempts. */
  readonly minRetryMs: number;
  /** Our name in the DSN (`Reporting-MTA`, `MAILER-DAEMON@`). */
  readonly reportingMta: string;
}

export const DEFAULT_OVER_QUOTA_POLICY: OverQuotaPolicy = {
  giveUpAfterMs: 24 * 3_600_000,
  minRetryMs: 60_000,
  reportingMta: 'mx.example.test',
};

export interface OverQuotaInput {
  readonly js: JetStreamClient;
  readonly logger: Logger;
  readonly policy: OverQuotaPolicy;
  readonly job: InboundJob;
  /** The message (or at least its header section), for the DSN's text/rfc822-headers part. */
  readonly body: Uint8Array | AsyncIterable<Uint8Array>;
  /** Recipients whose mailbox is full (the others are delivered). */
  readonly recipients: readonly string[];
  /** `msg.info.deliveryCount` of this attempt. */
  readonly deliveryCount: number;
  /** The consumer's max_deliver (and the consumer loop's): its last delivery must not be wasted. */
  readonly maxDeliver: number;
  readonly now?: number;
}

/** The header section (up to the empty line, at most 16 KiB) of a message. */
export async function headerSection(body: Uint8Array | AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const limit = 16 * 1024;
  let bytes: Uint8Array;
  if (body instanceof Uint8Array) {
    bytes = body.subarray(0, limit + 4);
  } else {
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of body) {
      chunks.push(chunk);
      size += chunk.length;
      if (size > limit + 4) break;
    }
    bytes = Buffer.concat(chunks).subarray(0, limit + 4);
  }
  const end = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf('\r\n\r\n');
  return bytes.subarray(0, end < 0 ? Math.min(bytes.length, limit) : end + 2);
}

/** spoolId of a notice about `spoolId` (fits decodeInboundJob's `[A-Za-z0-9_-]{8,64}`). */
export function noticeSpoolId(spoolId: string, kind: 'delayed' | 'failed'): string {
  return `${spoolId.slice(0, 60)}-q${kind === 'delayed' ? 'd' : 'f'}`;
}

/**
 * What to do with a job some of whose recipients are over quota: `retry` (with the delay notice
 * sent) or `ack` (the failure DSN sent; the job is done). Throws when a DSN cannot be queued (the
 * caller's usual retry then applies).
 */
export async function overQuotaOutcome(input: OverQuotaInput): Promise<JobOutcome> {
  const { job, policy } = input;
  const now = input.now ?? Date.now();
  const arrival = new Date(job.receivedAt);
  const giveUpAt = arrival.getTime() + policy.giveUpAfterMs;
  const lastDelivery = input.deliveryCount >= input.maxDeliver;
  const giveUp = now >= giveUpAt || lastDelivery;
  const kind = giveUp ? 'failed' : 'delayed';
  if (job.envelope.mailFrom !== '') {
    const recipients: DsnRecipient[] = input.recipients.map((rcpt) => ({
      rcpt,
      action: kind,
      // RFC 3463 X.2.2: mailbox full; persistent only once we give up.
      status: giveUp ? '5.2.2' : '4.2.2',
      diagnostic: giveUp
        ? `mailbox full; gave up after ${Math.round((now - arrival.getTime()) / 60_000)} minutes`
        : 'mailbox full; delivery will be retried',
      diagnosticType: 'x-postmesh',
      lastAttempt: new Date(now),
    }));
    const dsn = buildDsn({
      reportingMta: policy.reportingMta,
      sender: job.envelope.mailFrom,
      queueId: job.spoolId,
      arrival,
      recipients,
      originalHeaders: await headerSection(input.body),
      ...(giveUp ? {} : { willRetryUntil: new Date(giveUpAt) }),
      date: new Date(now),
    });
    const spoolId = noticeSpoolId(job.spoolId, kind);
    const notice: InboundJob = {
      version: 1,
      spoolId,
      // RFC 5321 §4.5.5: notifications travel with the null reverse-path.
      envelope: { mailFrom: '', rcptTo: [job.envelope.mailFrom], remoteIp: '', helo: policy.reportingMta },
      authResults: { spf: 'none', dkim: 'none', dmarc: 'none', arc: 'none', dmarcPolicy: '', junk: false },
      receivedAt: new Date(now).toISOString(),
      messageId: '',
      traceparent: job.traceparent,
      body: { kind: 'inline', size: dsn.length },
    };
    await publishDurable(input.js, Subjects.inbound(spoolId), encodeInboundJob(notice, dsn), {
      msgId: jobMessageId(spoolId, Streams.MAIL_INBOUND),
      expectStream: Streams.MAIL_INBOUND,
    });
  }
  input.logger.warn(
    { spoolId: job.spoolId, recipients: input.recipients.length, notice: kind, attempt: input.deliveryCount },
    giveUp ? 'recipients over quota: gave up, failure DSN sent' : 'recipients over quota: will retry',
  );
  if (giveUp) return JobOutcomes.ack;
  const left = Math.max(1, input.maxDeliver - input.deliveryCount);
  const delayMs = Math.max(policy.minRetryMs, Math.ceil((giveUpAt - now) / left));
  return JobOutcomes.retry(`${input.recipients.length} recipient(s) over quota`, delayMs);
}
