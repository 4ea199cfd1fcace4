// RFC 9051 §6.4.5 section specifications and partials.
import { describe, expect, it } from 'vitest';
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
});
