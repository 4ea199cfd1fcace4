/**
 * The mail event (message trace and alerts): every service publishes it on
 * `mail.events.<kind>` (stream MAIL_EVENTS) as UTF-8 JSON with `Nats-Msg-Id = eventId`, so a
 * retried publish is deduplicated; storage validates it with `parseMailEvent` and stores each
 * `eventId` once, so a redelivered event is harmless (DESIGN §2, §3).
 *
 *   {
 *     "eventId":   "01J…",                    unique (a UUID, or derived from the job); required
 *     "time":      "2026-11-27T19:00:00.000Z", ISO 8601 with zone, the emitter's clock; required
 *     "service":   "smtp-inbound",             the emitter; required
 *     "kind":      "received",                 one of MAIL_EVENT_KINDS; required
 *     "queueId":   "<spoolId>",                shared by all events of one accepted message
 *     "messageId": "abc@example.com",          Message-ID without angle brackets
 *     "sender":    "alice@example.com",        envelope MAIL FROM; absent for `<>`
 *     "recipient": "bob@example.test",         the envelope recipient the event is about
 *     "detail":    "250 2.0.0 Ok: queued",     one-line human summary, no message content
 *     "attributes": { "remote_ip": "…" },      snake_case keys, string values, no content
 *     "traceId":   "4bf92f35…"                 W3C trace id (32 hex digits)
 *   }
 */
import { randomUUID } from 'node:crypto';
import type { JetStreamClient } from '@nats-io/jetstream';
import {
  NO_NUL,
  Type,
  compile,
  refuse,
  type DeepReadonly,
  type Refusal,
  type Static,
} from '@postmesh/schema';
import { traceIdOf, type Logger } from '@postmesh/telemetry';
import { publishDurable } from './publish.js';
import { Streams, Subjects } from './topology.js';

export const MAIL_EVENT_KINDS = [
  'received',
  'queued',
  'delivered',
  'deferred',
  'relayed',
  'bounced',
  'rejected',
  'dlq',
  'delayed-notice',
  'junked',
  /** An operator alert (attributes `alert`, `severity`); also mailed to the postmaster. */
  'alert',
] as const;
export type MailEventKind = (typeof MAIL_EVENT_KINDS)[number];

const MAX_FIELD = 1_000;

/** A text field: at most MAX_FIELD characters and no NUL (MongoDB and the logs keep it). */
const Text = (description: string) =>
  Type.String({
    minLength: 1,
    maxLength: MAX_FIELD,
    pattern: NO_NUL,
    description,
  });

/**
 * The event as published (JSON). Unknown fields are allowed and ignored, so an emitter of a newer
 * release can add one before every consumer reads it. `null` or `''` in an optional field means
 * absent (validateMailEvent drops them before the schema sees the event).
 */
export const MailEventSchema = Type.Object(
  {
    eventId: Text('unique id (a UUID, or derived from the job)'),
    time: Text("ISO 8601 time with zone, the emitter's clock"),
    service: Text('the emitting service'),
    kind: Type.Unsafe<MailEventKind>({ type: 'string', enum: [...MAIL_EVENT_KINDS] }),
    queueId: Type.Optional(Text('the spool id, shared by all events of one accepted message')),
    messageId: Type.Optional(Text('Message-ID without angle brackets')),
    sender: Type.Optional(Text('envelope MAIL FROM; absent for <>')),
    recipient: Type.Optional(Text('the envelope recipient the event is about')),
    detail: Type.Optional(Text('one-line human summary, no message content')),
    attributes: Type.Optional(
      Type.Record(Type.String(), Type.String({ maxLength: MAX_FIELD }), {
        // DESIGN §4: no `.` or `$` in stored field names.
        propertyNames: { pattern: '^[a-z0-9_]{1,64}$', description: 'snake_case, at most 64 characters' },
        description: 'string values, no message content',
      }),
    ),
    traceId: Type.Optional(
      Type.String({ pattern: '^[0-9a-f]{32}$', description: 'a W3C trace id: 32 lower-case hex digits' }),
    ),
  },
  { description: 'A mail event (message trace and alerts), published on mail.events.<kind>' },
);

export type MailEvent = DeepReadonly<Static<typeof MailEventSchema>>;

const checkMailEvent = compile(MailEventSchema);

/** Fields an older emitter may have written as `null` or `''` for "absent" (required ones: refused). */
const TEXT_FIELDS: readonly string[] = [
  ...['eventId', 'time', 'service', 'kind'],
  ...['queueId', 'messageId', 'sender', 'recipient', 'detail', 'traceId'],
];

export type ParsedMailEvent =
  { readonly ok: true; readonly event: MailEvent & { readonly date: Date } } | Refusal;

/** `<id@host>` → `id@host` (RFC 5322 §3.6.4 msg-id without its brackets). */
export function stripAngles(messageId: string): string {
  const trimmed = messageId.trim();
  return trimmed.startsWith('<') && trimmed.endsWith('>') ? trimmed.slice(1, -1) : trimmed;
}

/** What the emitter says; `mailEvent` fills in the id, the time and the active trace. */
export type MailEventFields = Omit<MailEvent, 'eventId' | 'time' | 'traceId'> & {
  readonly eventId?: string;
  readonly time?: Date;
  readonly traceId?: string;
};

/**
 * A complete event: a fresh `eventId` unless the emitter derives one (to publish the same event
 * again after a retry), the current time, and the trace id of the active span. Fields are cut
 * to what `parseMailEvent` accepts, so an event built here is never refused for its length.
 */
export function mailEvent(fields: MailEventFields): MailEvent {
  const { eventId, time, traceId, attributes, detail, ...rest } = fields;
  const activeTrace = traceId ?? traceIdOf();
  return {
    ...rest,
    eventId: eventId ?? randomUUID(),
    time: (time ?? new Date()).toISOString(),
    ...(detail === undefined ? {} : { detail: detail.slice(0, MAX_FIELD) }),
    ...(attributes === undefined
      ? {}
      : {
          attributes: Object.fromEntries(
            Object.entries(attributes).map(([k, v]) => [k, v.slice(0, MAX_FIELD)] as const),
          ),
        }),
    ...(activeTrace === undefined ? {} : { traceId: activeTrace }),
  };
}

export function encodeMailEvent(event: MailEvent): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(event));
}

/** Validates a published event (it comes from another process: trust nothing). */
export function parseMailEvent(data: Uint8Array): ParsedMailEvent {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data));
  } catch {
    return refuse('', 'not UTF-8 JSON');
  }
  return validateMailEvent(value);
}

/**
 * The event without the fields that are absent by convention (`null`, `''`): a shallow copy when
 * there are any (the caller's object is not changed), else the event itself, which is the usual
 * case on the hot path.
 */
function withoutAbsent(event: Record<string, unknown>): Record<string, unknown> {
  const absent = (key: string): boolean => event[key] === null || event[key] === '';
  if (!TEXT_FIELDS.some(absent)) return event;
  return Object.fromEntries(
    Object.entries(event).filter(([key]) => !(TEXT_FIELDS.includes(key) && absent(key))),
  );
}

/** Validates an event already parsed from JSON (one carried inside a job: trust nothing either). */
export function validateMailEvent(value: unknown): ParsedMailEvent {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return refuse('', 'expected an object');
  const checked = checkMailEvent(withoutAbsent(value as Record<string, unknown>));
  if (!checked.ok) return checked;
  const e = checked.value;
  const date = new Date(e.time);
  if (Number.isNaN(date.getTime())) return refuse('time', 'expected an ISO 8601 time');
  const event: MailEvent & { date: Date } = {
    eventId: e.eventId,
    time: e.time,
    service: e.service,
    kind: e.kind,
    attributes: { ...e.attributes },
    date,
    ...(e.queueId === undefined ? {} : { queueId: e.queueId }),
    ...(e.messageId === undefined ? {} : { messageId: stripAngles(e.messageId) }),
    ...(e.sender === undefined ? {} : { sender: e.sender.toLowerCase() }),
    ...(e.recipient === undefined ? {} : { recipient: e.recipient.toLowerCase() }),
    ...(e.detail === undefined ? {} : { detail: e.detail }),
    ...(e.traceId === undefined ? {} : { traceId: e.traceId }),
  };
  return { ok: true, event };
}

/**
 * Publishes one event and waits until MAIL_EVENTS stored it (PubAck); throws PublishError when
 * it did not. For a caller that can retry its own work (a job) on failure; one that cannot uses
 * a MailEventOutbox.
 */
export async function publishMailEvent(
  js: JetStreamClient,
  event: MailEvent,
  options: { readonly timeoutMs?: number } = {},
): Promise<void> {
  await publishDurable(js, Subjects.events(event.kind), encodeMailEvent(event), {
    msgId: event.eventId,
    expectStream: Streams.MAIL_EVENTS,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  });
}

export interface MailEventOutboxOptions {
  readonly js: () => JetStreamClient;
  readonly logger: Logger;
  /** Events held while NATS does not take them; beyond this the oldest are dropped (logged). */
  readonly capacity?: number;
  /** Delay before re-publishing held events (doubles up to 30 s). */
  readonly retryMs?: number;
  readonly timeoutMs?: number;
}

/**
 * Events from work that must not wait for (or be repeated because of) its trace: a queued or
 * relayed message is already the sender's or the peer's business. `publish` tries at once; an
 * event JetStream did not acknowledge is held in memory and re-published (same `eventId`, so
 * JetStream and storage keep it once) until it is stored, and `drain()` at shutdown makes a last
 * attempt. Only a process that dies while holding events, or a NATS outage longer than the
 * outbox's capacity, loses any; both are logged with the count.
 */
export class MailEventOutbox {
  private readonly held: MailEvent[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private delayMs: number;
  private flushing: Promise<void> | undefined;
  private dropped = 0;

  constructor(private readonly options: MailEventOutboxOptions) {
    this.delayMs = options.retryMs ?? 1_000;
  }

  /** Events waiting for a retry. */
  get pending(): number {
    return this.held.length;
  }

  /** Publishes now; on failure holds the event for a retry. Never throws. */
  publish(event: MailEvent): Promise<void> {
    const attempt = this.tryPublish(event).then((stored) => {
      if (!stored) this.hold(event);
    });
    this.inFlight.add(attempt);
    void attempt.finally(() => this.inFlight.delete(attempt));
    return attempt;
  }

  private async tryPublish(event: MailEvent): Promise<boolean> {
    try {
      await publishMailEvent(this.options.js(), event, {
        timeoutMs: this.options.timeoutMs ?? 5_000,
      });
      return true;
    } catch (error) {
      this.options.logger.warn(
        { err: error, kind: event.kind, eventId: event.eventId },
        'mail event not stored yet; held for a retry',
      );
      return false;
    }
  }

  private hold(event: MailEvent): void {
    this.held.push(event);
    const capacity = this.options.capacity ?? 10_000;
    while (this.held.length > capacity) {
      this.held.shift();
      this.dropped += 1;
    }
    if (this.dropped > 0) {
      this.options.logger.error({ dropped: this.dropped }, 'mail event outbox full; oldest events lost');
      this.dropped = 0;
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.timer !== undefined || this.held.length === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flushing ??= this.flush().finally(() => (this.flushing = undefined));
    }, this.delayMs);
    this.timer.unref();
  }

  /** Re-publishes held events in order; stops at the first failure and backs off. */
  private async flush(): Promise<void> {
    while (this.held.length > 0) {
      const event = this.held[0];
      if (event === undefined) break;
      if (!(await this.tryPublish(event))) {
        this.delayMs = Math.min(this.delayMs * 2, 30_000);
        this.schedule();
        return;
      }
      this.held.shift();
    }
    this.delayMs = this.options.retryMs ?? 1_000;
  }

  /** Waits for publishes in flight and makes a last attempt for held events (shutdown). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.flushing;
    const left = this.held.splice(0);
    let lost = 0;
    for (const event of left) if (!(await this.tryPublish(event))) lost += 1;
    if (lost > 0) this.options.logger.error({ lost }, 'mail events not stored at shutdown');
  }
}
