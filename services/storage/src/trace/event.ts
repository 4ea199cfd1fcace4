/**
 * The trace event every service publishes on `mail.events.<kind>` (Subjects.events in libs/bus,
 * stream MAIL_EVENTS) as UTF-8 JSON, and storage stores (DESIGN §2, §3). Publish with
 * `Nats-Msg-Id = eventId` so a retried publish is deduplicated by JetStream; storage also stores
 * each `eventId` once, so a redelivered event is harmless.
 *
 *   {
 *     "eventId":   "01J…",                    unique (a UUID or ULID); required
 *     "time":      "2026-11-27T19:00:00.000Z", ISO 8601 with zone, the emitter's clock; required
 *     "service":   "smtp-inbound",             the emitter; required
 *     "kind":      "received",                 one of TRACE_EVENT_KINDS; required
 *     "queueId":   "<spoolId>",                shared by all events of one accepted message
 *     "messageId": "abc@example.com",          Message-ID without angle brackets
 *     "sender":    "alice@example.com",        envelope MAIL FROM; absent for `<>`
 *     "recipient": "bob@example.test",         the envelope recipient the event is about
 *     "detail":    "250 2.0.0 Ok: queued",     one-line human summary, no message content
 *     "attributes": { "remote_ip": "…" },      snake_case keys, string values, no content
 *     "traceId":   "4bf92f35…"                 W3C trace id (32 hex digits)
 *   }
 */

export const TRACE_EVENT_KINDS = [
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
] as const;
export type TraceEventKind = (typeof TRACE_EVENT_KINDS)[number];

export interface MailEventPayload {
  readonly eventId: string;
  /** ISO 8601 timestamp. */
  readonly time: string;
  readonly service: string;
  readonly kind: TraceEventKind;
  readonly queueId?: string;
  readonly messageId?: string;
  readonly sender?: string;
  readonly recipient?: string;
  readonly detail?: string;
  readonly attributes?: Readonly<Record<string, string>>;
  readonly traceId?: string;
}

export type ParsedMailEvent =
  | { readonly ok: true; readonly event: MailEventPayload & { readonly date: Date } }
  | { readonly ok: false; readonly problem: string };

const MAX_FIELD = 1_000;

/** Validates a published event (it comes from another process: trust nothing). */
export function parseMailEvent(data: Uint8Array): ParsedMailEvent {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data));
  } catch {
    return { ok: false, problem: 'not UTF-8 JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { ok: false, problem: 'not an object' };
  const o = value as Record<string, unknown>;
  const str = (key: string, required: boolean): string | undefined | null => {
    const v = o[key];
    if (v === undefined || v === null || v === '') return required ? null : undefined;
    return typeof v === 'string' && v.length <= MAX_FIELD && !v.includes('\0') ? v : null;
  };
  const fields: Record<string, string | undefined> = {};
  const required = ['eventId', 'time', 'service', 'kind'];
  for (const key of [...required, 'queueId', 'messageId', 'sender', 'recipient', 'detail', 'traceId']) {
    const v = str(key, required.includes(key));
    if (v === null) {
      return {
        ok: false,
        problem: `field ${key} is missing or not a string of at most ${MAX_FIELD} characters`,
      };
    }
    fields[key] = v;
  }
  const kind = fields.kind ?? '';
  if (!(TRACE_EVENT_KINDS as readonly string[]).includes(kind))
    return { ok: false, problem: `unknown kind ${kind}` };
  const date = new Date(fields.time ?? '');
  if (Number.isNaN(date.getTime())) return { ok: false, problem: 'time is not an ISO 8601 timestamp' };
  const attributes: Record<string, string> = {};
  if (o.attributes !== undefined) {
    if (typeof o.attributes !== 'object' || o.attributes === null)
      return { ok: false, problem: 'attributes is not an object' };
    for (const [k, v] of Object.entries(o.attributes)) {
      // DESIGN §4: no `.` or `$` in stored field names.
      if (!/^[a-z0-9_]{1,64}$/.test(k) || typeof v !== 'string' || v.length > MAX_FIELD) {
        return { ok: false, problem: `attribute ${JSON.stringify(k.slice(0, 64))} is invalid` };
      }
      attributes[k] = v;
    }
  }
  const event: MailEventPayload & { date: Date } = {
    eventId: fields.eventId ?? '',
    time: fields.time ?? '',
    service: fields.service ?? '',
    kind: kind as TraceEventKind,
    attributes,
    date,
    ...(fields.queueId === undefined ? {} : { queueId: fields.queueId }),
    ...(fields.messageId === undefined ? {} : { messageId: stripAngles(fields.messageId) }),
    ...(fields.sender === undefined ? {} : { sender: fields.sender.toLowerCase() }),
    ...(fields.recipient === undefined ? {} : { recipient: fields.recipient.toLowerCase() }),
    ...(fields.detail === undefined ? {} : { detail: fields.detail }),
    ...(fields.traceId === undefined ? {} : { traceId: fields.traceId }),
  };
  return { ok: true, event };
}

/** `<id@host>` → `id@host` (RFC 5322 §3.6.4 msg-id without its brackets). */
export function stripAngles(messageId: string): string {
  const trimmed = messageId.trim();
  return trimmed.startsWith('<') && trimmed.endsWith('>') ? trimmed.slice(1, -1) : trimmed;
}
