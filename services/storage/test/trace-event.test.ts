/** Validation of published trace events (src/trace/event.ts): trust nothing from the bus. */
import { describe, expect, it } from 'vitest';
import { parseMailEvent } from '../src/trace/event.js';

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
});
