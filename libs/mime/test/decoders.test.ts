// Table-driven tests of the decoders: RFC 2045 §6.7/§6.8 transfer encodings (whole and streamed),
// RFC 2047 encoded words, RFC 2231 parameters, charsets, RFC 5322 dates.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createTransferDecoder,
  decodeCharset,
  decodeEncodedWords,
  decodeTransferEncoding,
  isKnownTransferEncoding,
  parseContentType,
  parseDisposition,
  parseRfc5322Date,
} from '../src/index.js';

const text = (b: Uint8Array | null): string | null => (b === null ? null : Buffer.from(b).toString('latin1'));

describe('quoted-printable (RFC 2045 §6.7)', () => {
  it.each([
    ['caf=C3=A9', 'caf\xc3\xa9'],
    ['caf=c3=a9', 'caf\xc3\xa9'],
    ['soft=\r\nbreak', 'softbreak'],
    ['soft=\nbreak', 'softbreak'],
    ['soft= \t\r\nbreak', 'softbreak'],
    ['trailing   \r\nspace\t\r\n', 'trailing\r\nspace\r\n'],
    ['bad =ZZ and =4', 'bad =ZZ and =4'],
    ['end with =', 'end with '],
    ['a=3D=3d', 'a=='],
    ['lf only  \nx', 'lf only\nx'],
  ])('%j → %j', (input, want) => {
    expect(text(decodeTransferEncoding(Buffer.from(input, 'latin1'), 'Quoted-Printable'))).toBe(want);
  });
});

describe('base64 (RFC 2045 §6.8)', () => {
  it.each([
    ['SGVsbG8=', 'Hello'],
    ['SGVs\r\nbG8', 'Hello'],
    ['S G V s b G 8 h', 'Hell' + 'o!'],
    ['SGVsbG8=SGk=', 'HelloHi'],
    ['!!SGk*=', 'Hi'],
    ['Q', ''],
  ])('%j → %j', (input, want) => {
    expect(text(decodeTransferEncoding(Buffer.from(input), ' base64 '))).toBe(want);
  });
});

describe('identity and unknown encodings', () => {
  it('passes 7bit/8bit/binary through and reports unknown ones as null', () => {
    expect(text(decodeTransferEncoding(Buffer.from('x\xff', 'latin1'), '8bit'))).toBe('x\xff');
    expect(text(decodeTransferEncoding(Buffer.from('x'), ''))).toBe('x');
    expect(decodeTransferEncoding(Buffer.from('x'), 'x-uuencode')).toBeNull();
    expect(isKnownTransferEncoding('BINARY')).toBe(true);
    expect(isKnownTransferEncoding('x-uuencode')).toBe(false);
  });
});

describe('streaming transfer decoders', () => {
  it.each(['base64', 'quoted-printable'])('%s: any split gives the whole-input result', (encoding) => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.array(fc.integer({ min: 1, max: 17 }), { minLength: 1 }),
        (bytes, sizes) => {
          const input =
            encoding === 'base64'
              ? Buffer.from(
                  Buffer.from(bytes)
                    .toString('base64')
                    .replace(/.{1,20}/g, '$&\r\n'),
                )
              : Buffer.from(bytes);
          const whole = decodeTransferEncoding(input, encoding)!;
          const d = createTransferDecoder(encoding)!;
          const out: Uint8Array[] = [];
          for (let pos = 0, i = 0; pos < input.length; i++) {
            const n = sizes[i % sizes.length]!;
            out.push(d.update(input.subarray(pos, pos + n)));
            pos += n;
          }
          out.push(d.final());
          expect(Buffer.concat(out)).toEqual(Buffer.from(whole));
          if (encoding === 'base64') expect(Buffer.from(whole)).toEqual(Buffer.from(bytes));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('quoted-printable round-trips text encoded by an independent encoder', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        // Minimal RFC 2045 §6.7 encoder: every octet as =XX, soft breaks every 20 octets.
        const encoded = [...bytes]
          .map((b, i) => `=${b.toString(16).toUpperCase().padStart(2, '0')}${i % 20 === 19 ? '=\r\n' : ''}`)
          .join('');
        expect(Buffer.from(decodeTransferEncoding(Buffer.from(encoded), 'quoted-printable')!)).toEqual(
          Buffer.from(bytes),
        );
      }),
    );
  });
});

describe('RFC 2047 encoded words', () => {
  it.each([
    ['=?UTF-8?B?SsO2cmc=?=', 'Jörg'],
    ['=?iso-8859-1?q?this=20is=20some=20text?=', 'this is some text'],
    ['(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)', '(ab)'],
    ['=?ISO-8859-1?Q?a?=  \r\n  =?ISO-8859-2?Q?_b?=', 'a b'],
    ['=?ISO-8859-1?Q?a?= b', 'a b'],
    ['a =?ISO-8859-1?Q?b?=', 'a b'],
    ['=?utf-8?b?4oI=?==?utf-8?b?rA==?=', '€'], // a character split across two words
    ['=?utf-8*en?q?hi?=', 'hi'],
    ['=?bogus?Q?caf=E9?=', 'café'],
    ['=?utf-8?x?nope?=', '=?utf-8?x?nope?='],
    ['plain', 'plain'],
  ])('%j → %j', (input, want) => {
    expect(decodeEncodedWords(input)).toBe(want);
  });
});

describe('charsets', () => {
  it.each([
    ['iso-8859-1', [0x63, 0x61, 0x66, 0xe9], 'café'],
    ['"UTF-8"', [0xc3, 0xa9], 'é'],
    ['koi8-r', [0xf0, 0xd2, 0xc9], 'При'],
    ['windows-1252', [0x80], '€'],
    ['iso-8859-1', [0x93, 0x61, 0x94], '“a”'], // WHATWG: the iso-8859-1 label means windows-1252
    ['us-ascii', [0x41, 0xe9], 'Aé'],
    ['shift_jis', [0x82, 0xa0], 'あ'],
    ['x-unknown', [0xc3, 0xa9], 'é'],
    ['x-unknown', [0xe9], 'é'],
    [null, [0x41], 'A'],
    ['utf-8', [0xff], '\ufffd'],
  ] as const)('%s %j → %j', (charset, bytes, want) => {
    expect(decodeCharset(Uint8Array.from(bytes), charset)).toBe(want);
  });
});

describe('Content-Type and Content-Disposition (RFC 2045 §5.1, RFC 2183, RFC 2231)', () => {
  it('parses types, quoted values and comments', () => {
    expect(parseContentType('Text/Plain; Charset="us-ascii" (Plain text); format=flowed')).toEqual({
      type: 'text',
      subtype: 'plain',
      params: [
        ['charset', 'us-ascii'],
        ['format', 'flowed'],
      ],
    });
    expect(parseContentType('multipart/mixed; boundary="a;b\\"c"')?.params).toEqual([['boundary', 'a;b"c']]);
    expect(parseContentType('text / html')).toMatchObject({ type: 'text', subtype: 'html' });
    expect(parseContentType('garbage')).toBeNull();
    expect(parseContentType('')).toBeNull();
  });

  it('joins RFC 2231 sections in numeric order and decodes charset/language', () => {
    const d = parseDisposition(
      'attachment; filename*1*=%20two; filename*0*=utf-8\'en\'%E2%82%AC; filename*2=" three"; filename=plain',
    );
    expect(d).toEqual({ type: 'attachment', params: [['filename', '€ two three']] });
    expect(parseDisposition("inline; name*=''%41")?.params).toEqual([['name', 'A']]);
    expect(parseDisposition('; x=1')).toBeNull();
    expect(parseDisposition('attachment; filename=my file.pdf')?.params).toEqual([
      ['filename', 'my file.pdf'],
    ]);
  });
});

describe('dates (RFC 5322 §3.3, §4.3)', () => {
  it.each([
    ['Tue, 1 Jan 2019 10:00:00 +0100', '2019-01-01T09:00:00.000Z'],
    ['1 Jan 2019 10:00 -0030', '2019-01-01T10:30:00.000Z'],
    ['Fri, 21 Nov 97 09:55:06 GMT', '1997-11-21T09:55:06.000Z'],
    ['Thu, 13 Feb 1969 23:32 -0330 (Newfoundland Time)', '1969-02-14T03:02:00.000Z'],
    ['Mon, 7 Feb 1994 21:52:25 PST', '1994-02-08T05:52:25.000Z'],
    ['7 Feb 49 00:00:00 Z', '2049-02-07T00:00:00.000Z'],
    ['29 Feb 2020 12:00:00 +0000', '2020-02-29T12:00:00.000Z'],
  ])('%j → %s', (input, iso) => {
    const ms = parseRfc5322Date(input);
    expect(ms === null ? null : new Date(ms).toISOString()).toBe(iso);
  });

  it.each([
    '',
    'yesterday',
    '29 Feb 2019 12:00:00 +0000',
    '1 Foo 2019 10:00:00',
    '1 Jan 2019 25:00:00',
    '1 Jan 2019 10:00 +0099',
  ])('rejects %j', (input) => {
    expect(parseRfc5322Date(input)).toBeNull();
  });
});
