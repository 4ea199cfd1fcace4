/**
 * The outbound delivery job of DESIGN §2 steps 3 and 9, published by smtp-inbound (submission)
 * on `mail.outbound.<domain>` (Subjects.outbound, stream MAIL_OUTBOUND) and consumed by
 * mta-delivery (durable consumer `mta-delivery`). One job per (message, recipient domain): the
 * publisher groups the remote recipients by domain, so each job has exactly one destination.
 *
 * Wire format (a contract, the same framing as the inbound job in jobs.ts):
 * `[u32 big-endian length L][L octets of UTF-8 JSON OutboundJob][raw message]`. The raw message
 * (CRLF line ends, as submitted, unsigned: mta-delivery adds the DKIM signature) follows the
 * JSON only when `body.kind === 'inline'`; a larger one lives in the `mail-spool` object store
 * under `body.object` (`spoolObjectName(spoolId)`) and the frame ends after the JSON.
 *
 * Publish with `Nats-Msg-Id = outboundJobMessageId(spoolId, domain)`
 * (`<spoolId>:<domain>:MAIL_OUTBOUND`), so a retried publish is deduplicated.
 *
 * Example JSON part:
 *   { "version": 1, "spoolId": "01JD…", "domain": "example.org",
 *     "envelope": { "mailFrom": "alice@example.test", "rcptTo": ["bob@example.org"] },
 *     "body": { "kind": "inline", "size": 10240 },
 *     "queuedAt": "2026-11-27T19:00:00.000Z", "messageId": "abc@example.test",
 *     "traceparent": "00-…-…-01" }
 */

import { encodeJobFrame, isString, readJobFrame } from './job-frame.js';
import { jobMessageId } from './jobs.js';
import { Streams } from './topology.js';

export interface OutboundEnvelope {
  /** MAIL FROM without angle brackets; '' for the null reverse-path (then no DSN is ever sent). */
  readonly mailFrom: string;
  /** Remote recipients, all in `OutboundJob.domain`, without angle brackets; at least one. */
  readonly rcptTo: readonly string[];
}

export type OutboundBody =
  | { readonly kind: 'inline'; readonly size: number }
  | {
      readonly kind: 'object';
      readonly size: number;
      readonly object: string;
      /**
       * The recipient domains of every outbound job that reads this object, this job's included.
       * When present, nothing but these jobs references the object, and the last of them to
       * become final (delivered, bounced, expired or cancelled) deletes it. Absent (older
       * publishers, or an object shared with an inbound job): the object is left alone.
       */
      readonly sharedBy?: readonly string[];
    };

/** One earlier attempt, when a publisher re-queues a job (optional; mta-delivery keeps its own). */
export interface OutboundAttempt {
  readonly at: string;
  readonly reply: string;
}

export interface OutboundJob {
  readonly version: 1;
  readonly spoolId: string;
  /** The recipient domain (lower case, A-label) every `rcptTo` belongs to. */
  readonly domain: string;
  readonly envelope: OutboundEnvelope;
  readonly body: OutboundBody;
  /** ISO 8601 time the message was accepted: the queue lifetime counts from here. */
  readonly queuedAt: string;
  /** Message-ID header without angle brackets, '' when absent (trace only). */
  readonly messageId: string;
  /** W3C traceparent of the SMTP transaction, '' when none. */
  readonly traceparent: string;
  readonly attempts?: readonly OutboundAttempt[];
}

/** `Nats-Msg-Id` of an outbound job: `<spoolId>:<domain>:MAIL_OUTBOUND`. */
export function outboundJobMessageId(spoolId: string, domain: string): string {
  return jobMessageId(`${spoolId}:${domain.toLowerCase()}`, Streams.MAIL_OUTBOUND);
}

export class OutboundJobFormatError extends Error {
  override readonly name = 'OutboundJobFormatError';
}

export function encodeOutboundJob(job: OutboundJob, inlineBody?: Uint8Array): Uint8Array {
  if ((job.body.kind === 'inline') !== (inlineBody !== undefined)) {
    throw new OutboundJobFormatError('an inline job carries its body; an object job does not');
  }
  return encodeJobFrame(job, inlineBody);
}

export type DecodedOutboundJob =
  | { readonly ok: true; readonly job: OutboundJob; readonly inlineBody: Uint8Array | undefined }
  | { readonly ok: false; readonly problem: string };

const DOMAIN =
  /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** Validates a job read from the stream (it comes from another process: trust nothing). */
export function decodeOutboundJob(frame: Uint8Array): DecodedOutboundJob {
  const read = readJobFrame(frame);
  if (!read.ok) return read;
  const o = read.fields;
  const env = o.envelope as Record<string, unknown> | undefined;
  const body = o.body as Record<string, unknown> | undefined;
  if (o.version !== 1) return { ok: false, problem: `unknown job version ${String(o.version)}` };
  if (!isString(o.spoolId) || !/^[A-Za-z0-9_-]{8,64}$/.test(o.spoolId))
    return { ok: false, problem: 'spoolId missing or malformed' };
  if (!isString(o.domain) || !DOMAIN.test(o.domain))
    return { ok: false, problem: 'domain missing or not a lower-case domain name' };
  const domain = o.domain;
  if (
    typeof env !== 'object' ||
    env === null ||
    !isString(env.mailFrom) ||
    !Array.isArray(env.rcptTo) ||
    env.rcptTo.length === 0 ||
    !env.rcptTo.every(isString)
  )
    return { ok: false, problem: 'envelope missing or malformed' };
  for (const rcpt of env.rcptTo) {
    const at = rcpt.lastIndexOf('@');
    if (at < 1 || rcpt.slice(at + 1).toLowerCase() !== domain)
      return { ok: false, problem: `recipient ${rcpt.slice(0, 100)} is not in ${domain}` };
  }
  if (!isString(o.queuedAt) || Number.isNaN(Date.parse(o.queuedAt)))
    return { ok: false, problem: 'queuedAt is not a timestamp' };
  if (!isString(o.messageId) || !isString(o.traceparent))
    return { ok: false, problem: 'messageId or traceparent malformed' };
  if (
    o.attempts !== undefined &&
    !(
      Array.isArray(o.attempts) &&
      o.attempts.every(
        (a: unknown) =>
          typeof a === 'object' &&
          a !== null &&
          isString((a as Record<string, unknown>).at) &&
          isString((a as Record<string, unknown>).reply),
      )
    )
  )
    return { ok: false, problem: 'attempts malformed' };
  if (typeof body !== 'object' || body === null || typeof body.size !== 'number')
    return { ok: false, problem: 'body missing or malformed' };
  const rest = read.rest;
  if (body.kind === 'inline') {
    if (rest.length !== body.size) return { ok: false, problem: 'inline body length differs from its size' };
    return { ok: true, job: o as unknown as OutboundJob, inlineBody: rest };
  }
  if (
    body.sharedBy !== undefined &&
    !(
      Array.isArray(body.sharedBy) &&
      body.sharedBy.length <= 10_000 &&
      body.sharedBy.every((d) => isString(d) && DOMAIN.test(d)) &&
      body.sharedBy.includes(domain)
    )
  ) {
    return { ok: false, problem: "body.sharedBy must list lower-case domains, this job's included" };
  }
  if (body.kind === 'object' && isString(body.object) && rest.length === 0) {
    return { ok: true, job: o as unknown as OutboundJob, inlineBody: undefined };
  }
  return { ok: false, problem: 'body kind unknown or inconsistent' };
}
