/**
 * The NATS server's max-deliveries advisory as read by the dead-letter watcher
 * (src/max-deliveries.ts): only the fields it uses are checked; anything else is not an advisory.
 */
import { describe, expect, it } from 'vitest';
import { parseMaxDeliveriesAdvisory } from '../src/max-deliveries.js';

const encode = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));
// As nats-server 2.x publishes it (its other fields are ignored).
const advisory = {
  type: 'io.nats.jetstream.advisory.v1.max_deliver',
  id: 'abc',
  timestamp: '2026-12-06T10:00:00Z',
  stream: 'MAIL_INBOUND',
  consumer: 'storage-deliver',
  stream_seq: 42,
  deliveries: 5,
  domain: '',
};

describe('parseMaxDeliveriesAdvisory', () => {
  it('reads the stream, consumer, sequence and deliveries', () => {
    expect(parseMaxDeliveriesAdvisory(encode(advisory))).toEqual({
      stream: 'MAIL_INBOUND',
      consumer: 'storage-deliver',
      streamSeq: 42,
      deliveries: 5,
    });
    expect(parseMaxDeliveriesAdvisory(encode({ ...advisory, deliveries: undefined }))?.deliveries).toBe(0);
  });

  it.each<[string, Uint8Array]>([
    ['text that is not JSON', new TextEncoder().encode('{')],
    ['another advisory', encode({ ...advisory, type: 'io.nats.jetstream.advisory.v1.terminated' })],
    ['no stream', encode({ ...advisory, stream: undefined })],
    ['a numeric consumer', encode({ ...advisory, consumer: 7 })],
    ['sequence 0', encode({ ...advisory, stream_seq: 0 })],
    ['a fractional sequence', encode({ ...advisory, stream_seq: 1.5 })],
    ['a sequence beyond 2^53', encode({ ...advisory, stream_seq: 2 ** 53 + 2 })],
    ['null', encode(null)],
  ])('is undefined for %s', (_what, data) => {
    expect(parseMaxDeliveriesAdvisory(data)).toBeUndefined();
  });
});
