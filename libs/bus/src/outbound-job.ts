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

import {
  TaggedUnion,
  Type,
  compile,
  refuse,
  type DeepReadonly,
  type Refusal,
  type Static,
} from '@postmesh/schema';
import { encodeJobFrame, readJobFrame } from './job-frame.js';
import { SpoolIdSchema, jobMessageId } from './jobs.js';
import { Streams } from './topology.js';

const DOMAIN_PATTERN =
  '^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$';
const Domain = (description: string) =>
  Type.String({ pattern: DOMAIN_PATTERN, description: `a lower-case domain name (A-label): ${description}` });

export const OutboundEnvelopeSchema = Type.Object({
  mailFrom: Type.String({
    description: "MAIL FROM without angle brackets; '' for the null reverse-path (then no DSN is ever sent)",
  }),
  rcptTo: Type.Array(Type.String(), {
    minItems: 1,
    description: "remote recipients, all in the job's domain, without angle brackets",
  }),
});
export type OutboundEnvelope = DeepReadonly<Static<typeof OutboundEnvelopeSchema>>;

const Size = Type.Integer({ minimum: 0, description: 'octets of the raw message' });

export const OutboundBodySchema = TaggedUnion('kind', [
  Type.Object({ kind: Type.Literal('inline'), size: Size }),
  Type.Object({
    kind: Type.Literal('object'),
    size: Size,
    object: Type.String({ minLength: 1, description: 'the mail-spool object holding the message' }),
    /**
     * The recipient domains of every outbound job that reads this object, this job's included.
     * When present, nothing but these jobs references the object, and the last of them to
     * become final (delivered, bounced, expired or cancelled) deletes it. Absent (older
     * publishers, or an object shared with an inbound job): the object is left alone.
     */
    sharedBy: Type.Optional(
      Type.Array(Domain('a job reading the object'), {
        maxItems: 10_000,
        description: "the recipient domains of every job reading the object, this job's included",
      }),
    ),
  }),
]);
export type OutboundBody = DeepReadonly<Static<typeof OutboundBodySchema>>;

/** One earlier attempt, when a publisher re-queues a job (optional; mta-delivery keeps its own). */
export const OutboundAttemptSchema = Type.Object({ at: Type.String(), reply: Type.String() });
export type OutboundAttempt = DeepReadonly<Static<typeof OutboundAttemptSchema>>;

/** The JSON part of the frame; unknown fields are allowed (and kept), as in the inbound job. */
export const OutboundJobSchema = Type.Object(
  {
    version: Type.Literal(1),
    spoolId: SpoolIdSchema,
    domain: Domain('the recipient domain every rcptTo belongs to'),
    envelope: OutboundEnvelopeSchema,
    body: OutboundBodySchema,
    queuedAt: Type.String({
      minLength: 1,
      description: 'ISO 8601 time the message was accepted: the queue lifetime counts from here',
    }),
    messageId: Type.String({ description: "Message-ID without angle brackets, '' when absent (trace only)" }),
    traceparent: Type.String({ description: "W3C traceparent of the SMTP transaction, '' when none" }),
    attempts: Type.Optional(Type.Array(OutboundAttemptSchema)),
  },
  { description: 'An outbound delivery job (mail.outbound.<domain>), the JSON part of its frame' },
);
export type OutboundJob = DeepReadonly<Static<typeof OutboundJobSchema>>;

const checkOutboundJob = compile(OutboundJobSchema);

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
  { readonly ok: true; readonly job: OutboundJob; readonly inlineBody: Uint8Array | undefined } | Refusal;

/** Validates a job read from the stream (it comes from another process: trust nothing). */
export function decodeOutboundJob(frame: Uint8Array): DecodedOutboundJob {
  const read = readJobFrame(frame);
  if (!read.ok) return refuse('', read.problem);
  const checked = checkOutboundJob(read.fields);
  if (!checked.ok) return checked;
  const job = checked.value;
  // Rules across fields, which the schema cannot say.
  const { domain, envelope, body } = job;
  for (const [i, rcpt] of envelope.rcptTo.entries()) {
    const at = rcpt.lastIndexOf('@');
    if (at < 1 || rcpt.slice(at + 1).toLowerCase() !== domain)
      return refuse(`envelope.rcptTo[${i}]`, `${rcpt.slice(0, 100)} is not in ${domain}`);
  }
  if (Number.isNaN(Date.parse(job.queuedAt))) return refuse('queuedAt', 'expected an ISO 8601 time');
  const rest = read.rest;
  if (body.kind === 'inline') {
    if (rest.length !== body.size)
      return refuse('body.size', `${body.size} octets, but the frame carries ${rest.length}`);
    return { ok: true, job, inlineBody: rest };
  }
  if (body.sharedBy !== undefined && !body.sharedBy.includes(domain))
    return refuse('body.sharedBy', `does not list this job's domain ${domain}`);
  if (rest.length !== 0) return refuse('body.kind', 'an object job carries no message after its JSON');
  return { ok: true, job, inlineBody: undefined };
}
