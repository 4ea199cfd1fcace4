// RFC 5322 §3.4 address lists as IMAP ENVELOPE addresses (RFC 9051 §7.5.2), incl. malformed input.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { indexMessage, parseAddressList, type EnvelopeAddress } from '../src/index.js';

const A = (
  name: string | null,
  adl: string | null,
  mailbox: string | null,
  host: string | null,
): EnvelopeAddress => ({
  name,
  adl,
  mailbox,
  host,
});
const GROUP_END = A(null, null, null, null);

describe('parseAddressList', () => {
  it.each<[string, EnvelopeAddress[]]>([
    ['', []],
    ['undisclosed-recipients:;', [A(null, null, 'undisclosed-recipients', null), GROUP_END]],
    ['Team: a@b.c', [A(null, null, 'Team', null), A(null, null, 'a', 'b.c'), GROUP_END]],
    ['"quoted local"@example.com', [A(null, null, '"quoted local"', 'example.com')]],
    ['user', [A(null, null, 'user', '')]],
    ['<>', [A(null, null, '', '')]],
    ['John Doe john@example.com', [A('John Doe', null, 'john', 'example.com')]],
    ['a@b.c (Comment Name)', [A('Comment Name', null, 'a', 'b.c')]],
    ['=?utf-8?q?J=C3=B6rg?= <j@x.de>', [A('=?utf-8?q?J=C3=B6rg?=', null, 'j', 'x.de')]],
    ['"Smith, J" <j@[192.0.2.1]>', [A('Smith, J', null, 'j', '[192.0.2.1]')]],
    ['a@b.c,,  ,d@e.f', [A(null, null, 'a', 'b.c'), A(null, null, 'd', 'e.f')]],
    ['Name <unterminated@x.y', [A('Name', null, 'unterminated', 'x.y')]],
    ['"unterminated quote <a@b.c>', [A(null, null, '"unterminated quote <a@b.c>"', '')]],
  ])('%j', (input, want) => {
    expect(parseAddressList(input)).toEqual(want);
  });

  it('never throws on arbitrary text', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom(...'ab@<>,;:"()\\[]. \t=?'.split('')), maxLength: 60 }),
        (s) => {
          for (const a of parseAddressList(s)) {
            // Group markers have host NIL; real addresses always have a string host.
            if (a.host === null) expect(a.name).toBeNull();
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('ENVELOPE defaults (RFC 9051 §7.5.2)', () => {
  it('an empty Sender or Reply-To takes the value of From; absent address fields are NIL', () => {
    const r = indexMessage(
      Buffer.from('From: f@example.com\r\nSender:\r\nReply-To:  \r\nTo: undisclosed:;\r\n\r\n'),
    );
    const from = [A(null, null, 'f', 'example.com')];
    expect(r.envelope.from).toEqual(from);
    expect(r.envelope.sender).toEqual(from);
    expect(r.envelope.replyTo).toEqual(from);
    expect(r.envelope.to).toEqual([A(null, null, 'undisclosed', null), GROUP_END]);
    expect(r.envelope.cc).toBeNull();
    // The group's name stays searchable (SEARCH TO undisclosed); it has no address.
    expect(r.headers.to).toEqual([{ name: 'undisclosed', address: '' }]);
  });
});
