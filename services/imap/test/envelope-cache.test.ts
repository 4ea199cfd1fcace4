/**
 * The process-wide cache of serialized ENVELOPEs (src/envelope-cache.ts): the bytes equal a fresh
 * serialization, the UTF-8 option is part of the key, and the byte bound evicts the least
 * recently used entries.
 */
import type { Envelope } from '@postmesh/mime';
import { serializeEnvelope, serializeFetch } from '@postmesh/imap-protocol';
import { describe, expect, it } from 'vitest';
import { EnvelopeCache } from '../src/envelope-cache.js';

function envelope(subject: string): Envelope {
  return {
    date: 'Mon, 7 Feb 1994 21:52:25 -0800',
    subject,
    from: [{ name: 'Alice "A" \\ B', adl: null, mailbox: 'alice', host: 'example.org' }],
    sender: null,
    replyTo: null,
    to: [{ name: null, adl: null, mailbox: 'bob', host: 'example.test' }],
    cc: null,
    bcc: null,
    inReplyTo: null,
    messageId: `<${subject.length}@example.org>`,
  };
}

describe('EnvelopeCache', () => {
  it('answers the bytes a fresh serialization gives, from the cache the second time', () => {
    const cache = new EnvelopeCache(1 << 20);
    const json = JSON.stringify(envelope('Grüße, "quoted" \\ subject'));
    for (const utf8 of [false, true]) {
      const first = cache.serialized(json, utf8);
      expect(first).toEqual(serializeEnvelope(JSON.parse(json) as Envelope, { utf8 }));
      expect(cache.serialized(json, utf8)).toBe(first);
    }
    // 8-bit text is a literal without UTF8=ACCEPT and quoted with it: two entries.
    expect(cache.size).toBe(2);
    expect(cache.serialized(json, false).toString('utf8')).toContain('{');
    expect(cache.serialized(json, true).toString('utf8')).toContain('"Grüße, \\"quoted\\" \\\\ subject"');
    // In a FETCH response the cached bytes read exactly as the envelope written in place.
    const inPlace = serializeFetch(1, [{ item: 'ENVELOPE', envelope: JSON.parse(json) as Envelope }]);
    const cached = serializeFetch(1, [{ item: 'ENVELOPE', serialized: cache.serialized(json, false) }]);
    expect(Buffer.concat(cached as Uint8Array[])).toEqual(Buffer.concat(inPlace as Uint8Array[]));
  });

  it('stays within its byte bound, evicting the least recently used first', () => {
    const jsons = Array.from({ length: 10 }, (_, i) => JSON.stringify(envelope(`message ${i}`)));
    const one = new EnvelopeCache(1 << 20);
    one.serialized(jsons[0]!, false);
    const cost = one.bytes;
    const cache = new EnvelopeCache(cost * 3 + cost / 2);
    for (const json of jsons.slice(0, 3)) cache.serialized(json, false);
    const kept = cache.serialized(jsons[0]!, false); // now the most recently used
    cache.serialized(jsons[3]!, false); // evicts jsons[1], the least recently used
    expect(cache.size).toBe(3);
    expect(cache.bytes).toBeLessThanOrEqual(cache.maxBytes);
    expect(cache.serialized(jsons[0]!, false)).toBe(kept);
    const before = cache.serialized(jsons[2]!, false);
    expect(cache.serialized(jsons[2]!, false)).toBe(before);
    // jsons[1] was evicted: a new Buffer with the same bytes.
    const again = cache.serialized(jsons[1]!, false);
    expect(again).toEqual(serializeEnvelope(JSON.parse(jsons[1]!) as Envelope));
    for (const json of jsons) cache.serialized(json, false);
    expect(cache.size).toBe(3);
    expect(cache.bytes).toBeLessThanOrEqual(cache.maxBytes);
  });

  it('caches nothing with a zero bound, and still answers', () => {
    const cache = new EnvelopeCache(0);
    const json = JSON.stringify(envelope('x'));
    expect(cache.serialized(json, false)).toEqual(serializeEnvelope(JSON.parse(json) as Envelope));
    expect(cache.size).toBe(0);
    expect(cache.bytes).toBe(0);
  });
});
