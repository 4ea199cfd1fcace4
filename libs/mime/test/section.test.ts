// RFC 9051 §6.4.5 section specifications and partials.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { headerBytesToString } from '../src/bytes.js';
import {
  applyPartial,
  indexMessage,
  parseSectionSpec,
  resolveSection,
  selectHeaderFields,
} from '../src/index.js';

describe('parseSectionSpec', () => {
  it.each([
    ['', { part: [], text: null, fields: [] }],
    ['1.2.3', { part: [1, 2, 3], text: null, fields: [] }],
    ['header', { part: [], text: 'HEADER', fields: [] }],
    ['4.MIME', { part: [4], text: 'MIME', fields: [] }],
    ['2.TEXT', { part: [2], text: 'TEXT', fields: [] }],
    ['HEADER.FIELDS (From "To")', { part: [], text: 'HEADER.FIELDS', fields: ['From', 'To'] }],
    ['1.HEADER.FIELDS.NOT (X-A)', { part: [1], text: 'HEADER.FIELDS.NOT', fields: ['X-A'] }],
  ])('%j', (input, want) => {
    expect(parseSectionSpec(input)).toEqual(want);
  });

  it.each([
    '0',
    '1.0',
    '1..2',
    '1.',
    '.1',
    'HEADER.FIELDS',
    'HEADER.FIELDS ()',
    'TEXT (a)',
    'BODY',
    '1.2.MIMEX',
    '01',
  ])('rejects %j', (input) => {
    expect(parseSectionSpec(input)).toBeNull();
    expect(resolveSection(indexMessage(Buffer.from('x')).bodystructure, input)).toEqual({
      ok: false,
      error: 'syntax',
    });
  });
});

describe('applyPartial', () => {
  it('clips to the section and yields empty past its end', () => {
    const r = { start: 10, end: 20 };
    expect(applyPartial(r, 0, 5)).toEqual({ start: 10, end: 15 });
    expect(applyPartial(r, 8, 5)).toEqual({ start: 18, end: 20 });
    expect(applyPartial(r, 30, 5)).toEqual({ start: 20, end: 20 });
    expect(applyPartial(r, 3)).toEqual({ start: 13, end: 20 });
  });
});

describe('selectHeaderFields', () => {
  const header = Buffer.from('From: a@b\r\nSubject: one\r\n  two\r\nTO: c@d\r\nX: y\r\n\r\n');
  it('keeps folded fields whole and ends with the blank line', () => {
    expect(Buffer.from(selectHeaderFields(header, ['subject', 'to'], false)).toString()).toBe(
      'Subject: one\r\n  two\r\nTO: c@d\r\n\r\n',
    );
    expect(Buffer.from(selectHeaderFields(header, ['FROM', 'Subject', 'to'], true)).toString()).toBe(
      'X: y\r\n\r\n',
    );
    expect(Buffer.from(selectHeaderFields(header, ['nothing'], false)).toString()).toBe('\r\n');
  });

  it('compares names case-insensitively after trimming, and decodes 8-bit names to compare them', () => {
    const odd = Buffer.concat([
      Buffer.from('sUbJeCt \t: spaced\r\n folded\r\nno colon here\r\n'),
      Buffer.from([0xc3, 0xa9, 0x3a, 0x20, 0x31, 0x0d, 0x0a]), // "é: 1" in UTF-8
      Buffer.from('Kelvin: 2\r\n\r\nBody: not a header\r\n'),
    ]);
    expect(Buffer.from(selectHeaderFields(odd, ['Subject', 'É', '\u212Aelvin'], false)).toString()).toBe(
      'sUbJeCt \t: spaced\r\n folded\r\né: 1\r\nKelvin: 2\r\n\r\n',
    );
    // A line without a colon is never selected, not even by HEADER.FIELDS.NOT.
    expect(Buffer.from(selectHeaderFields(odd, ['subject'], true)).toString()).toBe(
      'é: 1\r\nKelvin: 2\r\n\r\n',
    );
  });

  /** The plain implementation: each line's name decoded, trimmed and lower-cased, then looked up. */
  function reference(bytes: Uint8Array, names: readonly string[], not: boolean): Buffer {
    const wanted = new Set(names.map((n) => n.toLowerCase()));
    const out: Uint8Array[] = [];
    let i = 0;
    let include = false;
    while (i < bytes.length) {
      const lf = bytes.indexOf(0x0a, i);
      const next = lf < 0 ? bytes.length : lf + 1;
      const line = bytes.subarray(i, next);
      i = next;
      if (line[0] === 0x0a || (line[0] === 0x0d && line[1] === 0x0a)) break;
      if (line[0] !== 0x20 && line[0] !== 0x09) {
        const colon = line.indexOf(0x3a);
        const name = colon < 0 ? null : headerBytesToString(line.subarray(0, colon)).trim().toLowerCase();
        include = name !== null && wanted.has(name) !== not;
      }
      if (include) out.push(line);
    }
    out.push(Uint8Array.of(0x0d, 0x0a));
    return Buffer.concat(out);
  }

  it('selects what the plain implementation selects, for any bytes and names', () => {
    const piece = fc.constantFrom(
      'From',
      'from',
      'TO',
      'Subject',
      'x-a',
      ':',
      ' ',
      '\t',
      '\r\n',
      '\n',
      '\r',
      'a',
      'Z',
      '\v',
      '\u00e9',
      '\u212a',
    );
    const bytes = fc.oneof(
      fc.array(piece, { maxLength: 40 }).map((parts) => Buffer.from(parts.join(''), 'utf8')),
      fc.uint8Array({ maxLength: 80 }).map((a) => Buffer.from(a)),
    );
    const names = fc.array(
      fc.constantFrom('from', 'FROM', 'to', 'subject', 'x-a', 'a', 'z', 'É', '\u212a', ''),
      {
        maxLength: 4,
      },
    );
    fc.assert(
      fc.property(bytes, names, fc.boolean(), (header, list, not) => {
        expect(Buffer.from(selectHeaderFields(header, list, not))).toEqual(reference(header, list, not));
      }),
      { numRuns: 2000 },
    );
  });
});
