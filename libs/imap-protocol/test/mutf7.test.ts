import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeMailboxName, decodeMutf7, encodeMailboxName, encodeMutf7 } from '../src/index.js';

describe('modified UTF-7 (RFC 3501 §5.1.3)', () => {
  it.each([
    ['INBOX', 'INBOX'],
    ['AT&T', 'AT&-T'],
    ['~peter/mail/台北/日本語', '~peter/mail/&U,BTFw-/&ZeVnLIqe-'],
    ['Entwürfe', 'Entw&APw-rfe'],
    ['Grüße & Küsse', 'Gr&APwA3w-e &- K&APw-sse'],
    ['😀', '&2D3eAA-'],
    ['a\u0000b', 'a&AAA-b'],
    ['', ''],
  ])('%j ⇄ %s', (decoded, encoded) => {
    expect(encodeMutf7(decoded)).toBe(encoded);
    expect(decodeMutf7(encoded)).toEqual({ ok: true, value: decoded });
  });

  it.each([
    ['&Jjo!', /unterminated/],
    ['&AGE-', /printable ASCII/],
    ['&AOQ-&AOQ-', /adjacent/],
    ['&AOQ', /unterminated/],
    ['&A-', /BASE64/],
    ['&AOR-', /BASE64/],
    ['&2D0-', /BASE64/],
    ['&3gA-', /BASE64/],
    ['&AO/-', /BASE64/],
    ['tab\there', /encoded/],
    ['café', /encoded/],
  ])('rejects %j', (encoded, reason) => {
    const result = decodeMutf7(encoded);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(reason);
  });

  it('round-trips any Unicode string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (name) => {
        const encoded = encodeMutf7(name);
        expect(encoded).toMatch(/^[\x20-\x7e]*$/);
        expect(decodeMutf7(encoded)).toEqual({ ok: true, value: name });
      }),
      { numRuns: 2000 },
    );
  });

  it('decodes only canonical encodings: decode then encode gives the input back', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom(...'&-AaZz09+,/ é'.split('')), maxLength: 16 }),
        (wire) => {
          const result = decodeMutf7(wire);
          if (result.ok) expect(encodeMutf7(result.value)).toBe(wire);
        },
      ),
      { numRuns: 3000 },
    );
  });
});

describe('mailbox name codecs', () => {
  it('uses UTF-8 as is when enabled (RFC 6855 §3), modified UTF-7 otherwise', () => {
    expect(encodeMailboxName('Entwürfe', true)).toBe('Entwürfe');
    expect(encodeMailboxName('Entwürfe', false)).toBe('Entw&APw-rfe');
    expect(decodeMailboxName('Entw&APw-rfe', false)).toEqual({ ok: true, value: 'Entwürfe' });
    expect(decodeMailboxName('Entw&APw-rfe', true)).toEqual({ ok: true, value: 'Entw&APw-rfe' });
  });

  it('treats INBOX case-insensitively (RFC 9051 §5.1)', () => {
    expect(decodeMailboxName('inBox', false)).toEqual({ ok: true, value: 'INBOX' });
    expect(decodeMailboxName('inbox', true)).toEqual({ ok: true, value: 'INBOX' });
    expect(decodeMailboxName('inboxes', true)).toEqual({ ok: true, value: 'inboxes' });
  });
});
