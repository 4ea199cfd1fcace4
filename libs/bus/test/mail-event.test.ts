/** Validation of published mail events (src/mail-event.ts): trust nothing from the bus. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { context, startTracing, trace, type Tracing } from '@postmesh/telemetry';
import { encodeMailEvent, mailEvent, parseMailEvent, validateMailEvent } from '../src/mail-event.js';

const encode = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));
const valid = { eventId: 'e1', time: '2026-11-27T10:00:00Z', service: 'storage', kind: 'delivered' };

describe('parseMailEvent', () => {
  it('accepts a minimal event and normalises addresses and Message-ID', () => {
    const parsed = parseMailEvent(
      encode({
        ...valid,
        sender: 'Alice@Example.ORG',
        recipient: 'BOB@x.test',
        messageId: '<id@host>',
        attributes: { remote_ip: '192.0.2.1' },
      }),
    );
    expect(parsed.ok && parsed.event).toMatchObject({
      eventId: 'e1',
      kind: 'delivered',
      sender: 'alice@example.org',
      recipient: 'bob@x.test',
      messageId: 'id@host',
      attributes: { remote_ip: '192.0.2.1' },
      date: new Date('2026-11-27T10:00:00Z'),
    });
  });

  it.each<[string, Uint8Array]>([
    ['not JSON', new TextEncoder().encode('{')],
    ['invalid UTF-8', new Uint8Array([0x7b, 0xff, 0x7d])],
    ['an array', encode([valid])],
    ['no eventId', encode({ ...valid, eventId: undefined })],
    ['a numeric eventId', encode({ ...valid, eventId: 42 })],
    ['an unknown kind', encode({ ...valid, kind: 'exploded' })],
    ['a bad time', encode({ ...valid, time: 'yesterday' })],
    ['a NUL in a field', encode({ ...valid, detail: 'a\u0000b' })],
    ['an oversized field', encode({ ...valid, detail: 'x'.repeat(1_001) })],
    ['a dotted attribute key', encode({ ...valid, attributes: { 'a.b': 'x' } })],
    ['a $ attribute key', encode({ ...valid, attributes: { $where: 'x' } })],
    ['a non-string attribute', encode({ ...valid, attributes: { n: 1 } })],
  ])('refuses %s', (_what, data) => {
    expect(parseMailEvent(data).ok).toBe(false);
  });

  it.each<[string, unknown, string, string]>([
    ['an empty eventId', { ...valid, eventId: '' }, 'eventId', 'is required'],
    ['a null kind', { ...valid, kind: null }, 'kind', 'is required'],
    [
      'an unknown kind',
      { ...valid, kind: 'exploded' },
      'kind',
      'expected one of received, queued, delivered, deferred, relayed, bounced, rejected, dlq, delayed-notice, junked, alert',
    ],
    ['a bad time', { ...valid, time: 'yesterday' }, 'time', 'expected an ISO 8601 time'],
    ['a NUL in a field', { ...valid, sender: 'a\u0000b' }, 'sender', 'contains a NUL character'],
    [
      'an oversized field',
      { ...valid, detail: 'x'.repeat(1_001) },
      'detail',
      'must be at most 1000 characters',
    ],
    [
      'a dotted attribute key',
      { ...valid, attributes: { 'a.b': 'x' } },
      'attributes',
      'key "a.b" is not allowed (snake_case, at most 64 characters)',
    ],
    ['a non-string attribute', { ...valid, attributes: { n: 1 } }, 'attributes.n', 'expected a string'],
    ['attributes as a list', { ...valid, attributes: ['x'] }, 'attributes', 'expected an object'],
    [
      'an upper-case trace id',
      { ...valid, traceId: 'A'.repeat(32) },
      'traceId',
      'expected a W3C trace id: 32 lower-case hex digits',
    ],
    ['an array', [valid], '', 'expected an object'],
  ])('names the field of %s', (_what, value, field, reason) => {
    expect(validateMailEvent(value)).toEqual({
      ok: false,
      field,
      problem: field === '' ? reason : `${field}: ${reason}`,
    });
  });

  it('reads null and empty optional fields as absent (as earlier releases wrote them), and keeps unknown fields out', () => {
    const input = { ...valid, queueId: null, messageId: '', traceId: '', sender: null, newField: { x: 1 } };
    const parsed = validateMailEvent(input);
    expect(parsed).toEqual({
      ok: true,
      event: { ...valid, attributes: {}, date: new Date(valid.time) },
    });
    // The caller's object is not changed.
    expect(input.queueId).toBeNull();
  });
});

describe('mailEvent', () => {
  // The SDK registers the async context manager that carries the active span across calls.
  let tracing: Tracing;
  beforeAll(() => {
    tracing = startTracing('mail-event-test', {});
  });
  afterAll(() => tracing.shutdown());

  it('fills id and time, cuts long fields to what parseMailEvent accepts, and round-trips', () => {
    const event = mailEvent({
      service: 'smtp-inbound',
      kind: 'queued',
      queueId: 'q1',
      detail: 'd'.repeat(5_000),
      attributes: { remote_ip: '192.0.2.1', long: 'x'.repeat(2_000) },
    });
    expect(event.eventId).toMatch(/^[0-9a-f-]{36}$/);
    expect(Date.parse(event.time)).not.toBeNaN();
    const parsed = parseMailEvent(encodeMailEvent(event));
    expect(parsed.ok).toBe(true);
    expect(parsed.ok && parsed.event.detail).toHaveLength(1_000);
  });

  it('records the trace id of the active span, or the one given', () => {
    const spanContext = {
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      traceFlags: 1,
    };
    const active = trace.setSpanContext(context.active(), spanContext);
    const inside = context.with(active, () => mailEvent({ service: 's', kind: 'delivered' }));
    expect(inside.traceId).toBe(spanContext.traceId);
    expect(mailEvent({ service: 's', kind: 'delivered' }).traceId).toBeUndefined();
    const given = 'a'.repeat(32);
    expect(
      context.with(active, () => mailEvent({ service: 's', kind: 'delivered', traceId: given })).traceId,
    ).toBe(given);
  });

  it('refuses a trace id that is not 32 lower-case hex digits', () => {
    expect(parseMailEvent(encode({ ...valid, traceId: 'not-a-trace' })).ok).toBe(false);
    expect(parseMailEvent(encode({ ...valid, traceId: '4bf92f3577b34da6a3ce929d0e0e4736' })).ok).toBe(true);
  });
});
