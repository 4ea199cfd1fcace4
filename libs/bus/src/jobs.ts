/**
 * The inbound delivery job of DESIGN §2 step 3, published by smtp-inbound on
 * `mail.inbound.<spoolId>` (stream MAIL_INBOUND) and consumed by storage (`storage-deliver`).
 *
 * Wire format (a contract): `[u32 big-endian length L][L octets of UTF-8 JSON job][raw message]`.
 * The raw message follows the JSON only when `body.kind === 'inline'`; a larger message lives in
 * the `mail-spool` object store under `body.object` and the frame ends after the JSON. Keeping the
 * message as raw octets (no base64) lets an inline job carry up to INLINE_MESSAGE_LIMIT octets in
 * one durable write.
 */

import { encodeJobFrame, isString, readJobFrame } from './job-frame.js';
import { validateMailEvent, type MailEvent } from './mail-event.js';

/** How the receiving server verified the sender (mailauth verdicts, RFC 8601 result values). */
export interface InboundAuthVerdict {
  readonly spf: string;
  readonly dkim: string;
  readonly dmarc: string;
  readonly arc: string;
  /** The sender domain's DMARC policy when DMARC failed (`none`, `quarantine`, `reject`), else ''. */
  readonly dmarcPolicy: string;
  /** Deliver to the recipients' Junk mailbox (DMARC `p=quarantine` failure or spam verdict). */
  readonly junk: boolean;
}

export interface InboundEnvelope {
  /** MAIL FROM without angle brackets; '' for the null reverse-path `<>` (RFC 5321 §4.5.5). */
  readonly mailFrom: string;
  /** Every accepted RCPT TO, in order, without angle brackets. */
  readonly rcptTo: readonly string[];
  /** Client address and HELO name, for trace. */
  readonly remoteIp: string;
  readonly helo: string;
}

export type InboundBody =
  | { readonly kind: 'inline'; readonly size: number }
  | { readonly kind: 'object'; readonly size: number; readonly object: string };

export interface InboundJob {
  readonly version: 1;
  readonly spoolId: string;
  readonly envelope: InboundEnvelope;
  readonly authResults: InboundAuthVerdict;
  /** ISO 8601 time the 250 was about to be sent (the message's INTERNALDATE). */
  readonly receivedAt: string;
  /** Message-ID header without angle brackets, '' when absent (trace only). */
  readonly messageId: string;
  /** W3C traceparent of the SMTP transaction, '' when none. */
  readonly traceparent: string;
  readonly body: InboundBody;
  /**
   * On a job split by partition (`mail.inbound.<partition>.<spoolId>`): the users every recipient
   * of the message resolved to at RCPT time, in all partitions. Storage delivers a job of
   * partition n to its users in n, and to a user outside every share of the split (an alias
   * changed since RCPT) so that nobody is left without a copy. Absent on unpartitioned jobs.
   */
  readonly users?: readonly string[];
  /**
   * smtp-inbound's `queued` trace event of the message (mail-event.ts). It travels in the job,
   * which is durable before the 250, instead of as a publish of its own: storage stores it with
   * the delivery's events in one write, so the trace costs no fsync per message and never loses
   * the hop. Every share of a split job carries the same event (one `eventId`, stored once).
   */
  readonly queuedEvent?: MailEvent;
}

export class JobFormatError extends Error {
  override readonly name = 'JobFormatError';
}

/** Nats-Msg-Id of a job: a retried publish of the same message is deduplicated (DESIGN §2 step 3). */
export function jobMessageId(spoolId: string, stream: string): string {
  return `${spoolId}:${stream}`;
}

/** Name of the spool object holding a large message. */
export function spoolObjectName(spoolId: string): string {
  return `msg/${spoolId}`;
}

export function encodeInboundJob(job: InboundJob, inlineBody?: Uint8Array): Uint8Array {
  if ((job.body.kind === 'inline') !== (inlineBody !== undefined)) {
    throw new JobFormatError('an inline job carries its body; an object job does not');
  }
  return encodeJobFrame(job, inlineBody);
}

export type DecodedInboundJob =
  | { readonly ok: true; readonly job: InboundJob; readonly inlineBody: Uint8Array | undefined }
  | { readonly ok: false; readonly problem: string };

/** Validates a job read from the stream (it comes from another process: trust nothing). */
export function decodeInboundJob(frame: Uint8Array): DecodedInboundJob {
  const read = readJobFrame(frame);
  if (!read.ok) return read;
  const o = read.fields;
  const env = o.envelope as Record<string, unknown> | undefined;
  const auth = o.authResults as Record<string, unknown> | undefined;
  const body = o.body as Record<string, unknown> | undefined;
  if (o.version !== 1) return { ok: false, problem: `unknown job version ${String(o.version)}` };
  if (!isString(o.spoolId) || !/^[A-Za-z0-9_-]{8,64}$/.test(o.spoolId))
    return { ok: false, problem: 'spoolId missing or malformed' };
  if (
    typeof env !== 'object' ||
    env === null ||
    !isString(env.mailFrom) ||
    !Array.isArray(env.rcptTo) ||
    env.rcptTo.length === 0 ||
    !env.rcptTo.every(isString) ||
    !isString(env.remoteIp) ||
    !isString(env.helo)
  )
    return { ok: false, problem: 'envelope missing or malformed' };
  if (
    typeof auth !== 'object' ||
    auth === null ||
    !['spf', 'dkim', 'dmarc', 'arc', 'dmarcPolicy'].every((k) => isString(auth[k])) ||
    typeof auth.junk !== 'boolean'
  )
    return { ok: false, problem: 'authResults missing or malformed' };
  if (!isString(o.receivedAt) || Number.isNaN(Date.parse(o.receivedAt)))
    return { ok: false, problem: 'receivedAt is not a timestamp' };
  if (!isString(o.messageId) || !isString(o.traceparent))
    return { ok: false, problem: 'messageId or traceparent malformed' };
  if (typeof body !== 'object' || body === null || typeof body.size !== 'number')
    return { ok: false, problem: 'body missing or malformed' };
  if (o.users !== undefined && !(Array.isArray(o.users) && o.users.every(isString)))
    return { ok: false, problem: 'users malformed' };
  if (o.queuedEvent !== undefined) {
    const queued = validateMailEvent(o.queuedEvent);
    if (!queued.ok) return { ok: false, problem: `queuedEvent: ${queued.problem}` };
  }
  const rest = read.rest;
  if (body.kind === 'inline') {
    if (rest.length !== body.size) return { ok: false, problem: 'inline body length differs from its size' };
    return { ok: true, job: o as unknown as InboundJob, inlineBody: rest };
  }
  if (body.kind === 'object' && isString(body.object) && rest.length === 0) {
    return { ok: true, job: o as unknown as InboundJob, inlineBody: undefined };
  }
  return { ok: false, problem: 'body kind unknown or inconsistent' };
}
