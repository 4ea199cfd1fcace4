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

import {
  TaggedUnion,
  Type,
  compile,
  nest,
  refuse,
  type DeepReadonly,
  type Refusal,
  type Static,
} from '@postmesh/schema';
import { encodeJobFrame, readJobFrame } from './job-frame.js';
import { validateMailEvent, type MailEvent } from './mail-event.js';

/** A spool id (newSpoolId in smtp-inbound): also part of object names and dedup ids. */
export const SpoolIdSchema = Type.String({
  pattern: '^[A-Za-z0-9_-]{8,64}$',
  description: '8 to 64 letters, digits, _ or -',
});

/** An ISO 8601 time; decoders also check that it parses (Date.parse), which a pattern cannot. */
export const TimeSchema = Type.String({ minLength: 1, description: 'an ISO 8601 time' });

/** How the receiving server verified the sender (mailauth verdicts, RFC 8601 result values). */
export const InboundAuthVerdictSchema = Type.Object({
  spf: Type.String(),
  dkim: Type.String(),
  dmarc: Type.String(),
  arc: Type.String(),
  dmarcPolicy: Type.String({
    description: "the sender domain's DMARC policy when DMARC failed (none, quarantine, reject), else ''",
  }),
  junk: Type.Boolean({
    description: "deliver to the recipients' Junk mailbox (DMARC p=quarantine failure or spam verdict)",
  }),
});
export type InboundAuthVerdict = DeepReadonly<Static<typeof InboundAuthVerdictSchema>>;

/** The verdict of a message nothing verified (local mail, or checks that were off): no results, not junk. */
export const NO_AUTH_VERDICT: InboundAuthVerdict = {
  spf: 'none',
  dkim: 'none',
  dmarc: 'none',
  arc: 'none',
  dmarcPolicy: '',
  junk: false,
};

export const InboundEnvelopeSchema = Type.Object({
  mailFrom: Type.String({
    description: "MAIL FROM without angle brackets; '' for the null reverse-path <> (RFC 5321 §4.5.5)",
  }),
  rcptTo: Type.Array(Type.String(), {
    minItems: 1,
    description: 'every accepted RCPT TO, in order, without angle brackets',
  }),
  remoteIp: Type.String({ description: 'client address, for trace' }),
  helo: Type.String({ description: 'HELO/EHLO name, for trace' }),
});
export type InboundEnvelope = DeepReadonly<Static<typeof InboundEnvelopeSchema>>;

const Size = Type.Integer({ minimum: 0, description: 'octets of the raw message' });

export const InboundBodySchema = TaggedUnion('kind', [
  Type.Object({ kind: Type.Literal('inline'), size: Size }),
  Type.Object({
    kind: Type.Literal('object'),
    size: Size,
    object: Type.String({ minLength: 1, description: 'the mail-spool object holding the message' }),
  }),
]);
export type InboundBody = DeepReadonly<Static<typeof InboundBodySchema>>;

/**
 * The JSON part of the frame. Unknown fields are allowed (and kept): a publisher of a newer
 * release may add one before every consumer reads it.
 */
export const InboundJobSchema = Type.Object(
  {
    version: Type.Literal(1),
    spoolId: SpoolIdSchema,
    envelope: InboundEnvelopeSchema,
    authResults: InboundAuthVerdictSchema,
    receivedAt: Type.String({
      minLength: 1,
      description: "ISO 8601 time the 250 was about to be sent (the message's INTERNALDATE)",
    }),
    messageId: Type.String({ description: "Message-ID without angle brackets, '' when absent (trace only)" }),
    traceparent: Type.String({ description: "W3C traceparent of the SMTP transaction, '' when none" }),
    body: InboundBodySchema,
    /**
     * On a job split by partition (`mail.inbound.<partition>.<spoolId>`): the users every recipient
     * of the message resolved to at RCPT time, in all partitions. Storage delivers a job of
     * partition n to its users in n, and to a user outside every share of the split (an alias
     * changed since RCPT) so that nobody is left without a copy. Absent on unpartitioned jobs.
     */
    users: Type.Optional(
      Type.Array(Type.String(), { description: 'split jobs: the users every recipient resolved to' }),
    ),
    /**
     * smtp-inbound's `queued` trace event of the message (mail-event.ts). It travels in the job,
     * which is durable before the 250, instead of as a publish of its own: storage stores it with
     * the delivery's events in one write, so the trace costs no fsync per message and never loses
     * the hop. Every share of a split job carries the same event (one `eventId`, stored once).
     * The object is checked by validateMailEvent (which also reads older emitters' conventions).
     */
    queuedEvent: Type.Optional(
      Type.Unsafe<MailEvent>({ type: 'object', description: "smtp-inbound's queued mail event" }),
    ),
  },
  { description: 'An inbound delivery job (mail.inbound.<spoolId>), the JSON part of its frame' },
);
export type InboundJob = DeepReadonly<Static<typeof InboundJobSchema>>;

const checkInboundJob = compile(InboundJobSchema);

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
  { readonly ok: true; readonly job: InboundJob; readonly inlineBody: Uint8Array | undefined } | Refusal;

/** Validates a job read from the stream (it comes from another process: trust nothing). */
export function decodeInboundJob(frame: Uint8Array): DecodedInboundJob {
  const read = readJobFrame(frame);
  if (!read.ok) return refuse('', read.problem);
  const checked = checkInboundJob(read.fields);
  if (!checked.ok) return checked;
  const job = checked.value;
  if (Number.isNaN(Date.parse(job.receivedAt))) return refuse('receivedAt', 'expected an ISO 8601 time');
  if (job.queuedEvent !== undefined) {
    const queued = validateMailEvent(job.queuedEvent);
    if (!queued.ok) return nest('queuedEvent', queued);
  }
  const rest = read.rest;
  if (job.body.kind === 'inline') {
    if (rest.length !== job.body.size)
      return refuse('body.size', `${job.body.size} octets, but the frame carries ${rest.length}`);
    return { ok: true, job, inlineBody: rest };
  }
  if (rest.length !== 0) return refuse('body.kind', 'an object job carries no message after its JSON');
  return { ok: true, job, inlineBody: undefined };
}
