import { describe, expect, it } from 'vitest';
import type { SearchCommand, SearchKey, SequenceSet } from '../src/index.js';
import { parseErr, parseOk } from './helpers.js';

function search(text: string): SearchCommand {
  const command = parseOk(text);
  if (command.name !== 'SEARCH') throw new Error(`not SEARCH: ${command.name}`);
  return command;
}

function criteria(keys: string): readonly SearchKey[] {
  return search(`a SEARCH ${keys}\r\n`).criteria.operands;
}

const set = (start: number | '*', end: number | '*' = start): SequenceSet => ({
  kind: 'ranges',
  ranges: [{ start, end }],
});

describe('SEARCH keys (RFC 9051 §6.4.4)', () => {
  it.each<[string, SearchKey[]]>([
    ['ALL', [{ key: 'ALL' }]],
    [
      'seen unseen ANSWERED UNANSWERED',
      [{ key: 'SEEN' }, { key: 'UNSEEN' }, { key: 'ANSWERED' }, { key: 'UNANSWERED' }],
    ],
    [
      'DELETED UNDELETED DRAFT UNDRAFT',
      [{ key: 'DELETED' }, { key: 'UNDELETED' }, { key: 'DRAFT' }, { key: 'UNDRAFT' }],
    ],
    [
      'FLAGGED UNFLAGGED NEW OLD RECENT',
      [{ key: 'FLAGGED' }, { key: 'UNFLAGGED' }, { key: 'NEW' }, { key: 'OLD' }, { key: 'RECENT' }],
    ],
    [
      'FROM "Smith" TO bob',
      [
        { key: 'FROM', value: 'Smith' },
        { key: 'TO', value: 'bob' },
      ],
    ],
    [
      'CC c BCC d SUBJECT "hi there" BODY x TEXT y',
      [
        { key: 'CC', value: 'c' },
        { key: 'BCC', value: 'd' },
        { key: 'SUBJECT', value: 'hi there' },
        { key: 'BODY', value: 'x' },
        { key: 'TEXT', value: 'y' },
      ],
    ],
    ['SINCE 1-Feb-1994', [{ key: 'SINCE', date: { year: 1994, month: 2, day: 1 } }]],
    [
      'BEFORE "01-feb-1994" ON 29-Feb-2024',
      [
        { key: 'BEFORE', date: { year: 1994, month: 2, day: 1 } },
        { key: 'ON', date: { year: 2024, month: 2, day: 29 } },
      ],
    ],
    [
      'SENTBEFORE 1-Jan-2000 SENTON 2-Jan-2000 SENTSINCE 3-Jan-2000',
      [
        { key: 'SENTBEFORE', date: { year: 2000, month: 1, day: 1 } },
        { key: 'SENTON', date: { year: 2000, month: 1, day: 2 } },
        { key: 'SENTSINCE', date: { year: 2000, month: 1, day: 3 } },
      ],
    ],
    ['HEADER Message-ID "<a@b>"', [{ key: 'HEADER', field: 'Message-ID', value: '<a@b>' }]],
    ['HEADER X-Spam ""', [{ key: 'HEADER', field: 'X-Spam', value: '' }]],
    [
      'KEYWORD $Forwarded UNKEYWORD Junk',
      [
        { key: 'KEYWORD', flag: '$Forwarded' },
        { key: 'UNKEYWORD', flag: 'Junk' },
      ],
    ],
    [
      'LARGER 1000 SMALLER 50000',
      [
        { key: 'LARGER', size: 1000 },
        { key: 'SMALLER', size: 50000 },
      ],
    ],
    [
      'UID 1:* 2,4:*',
      [
        { key: 'UID', set: set(1, '*') },
        {
          key: 'SEQUENCE',
          set: {
            kind: 'ranges',
            ranges: [
              { start: 2, end: 2 },
              { start: 4, end: '*' },
            ],
          },
        },
      ],
    ],
    [
      'UID $ $',
      [
        { key: 'UID', set: { kind: 'saved' } },
        { key: 'SEQUENCE', set: { kind: 'saved' } },
      ],
    ],
    [
      '* NOT SEEN',
      [
        { key: 'SEQUENCE', set: set('*') },
        { key: 'NOT', operand: { key: 'SEEN' } },
      ],
    ],
    [
      'OR SEEN (FLAGGED FROM x)',
      [
        {
          key: 'OR',
          left: { key: 'SEEN' },
          right: { key: 'AND', operands: [{ key: 'FLAGGED' }, { key: 'FROM', value: 'x' }] },
        },
      ],
    ],
    [
      'OR OR A1 A2 NOT (OR B C)'.replace(
        /A1|A2|B|C/g,
        (m) => ({ A1: 'SEEN', A2: 'DRAFT', B: 'NEW', C: 'OLD' })[m]!,
      ),
      [
        {
          key: 'OR',
          left: { key: 'OR', left: { key: 'SEEN' }, right: { key: 'DRAFT' } },
          right: {
            key: 'NOT',
            operand: { key: 'AND', operands: [{ key: 'OR', left: { key: 'NEW' }, right: { key: 'OLD' } }] },
          },
        },
      ],
    ],
    ['MODSEQ 620162338', [{ key: 'MODSEQ', modseq: 620162338n }]],
    ['MODSEQ "/flags/\\\\draft" all 620162338', [{ key: 'MODSEQ', modseq: 620162338n }]],
    [
      'OLDER 3600 YOUNGER 60',
      [
        { key: 'OLDER', seconds: 3600 },
        { key: 'YOUNGER', seconds: 60 },
      ],
    ],
  ])('%s', (keys, expected) => {
    expect(criteria(keys)).toEqual(expected);
  });

  it('reads literals in search strings (the client sends non-ASCII that way)', () => {
    const text = `a SEARCH SUBJECT {${Buffer.byteLength('Grüße')}}\r\nGrüße UNSEEN\r\n`;
    expect(search(text).criteria.operands).toEqual([{ key: 'SUBJECT', value: 'Grüße' }, { key: 'UNSEEN' }]);
  });

  it('decodes strings in the given CHARSET', () => {
    const command = parseOk(Buffer.from('a SEARCH CHARSET ISO-8859-1 SUBJECT "Gr\xfc\xdfe"\r\n', 'latin1'));
    expect(command).toMatchObject({
      charset: 'ISO-8859-1',
      criteria: { operands: [{ key: 'SUBJECT', value: 'Grüße' }] },
    });
  });

  it('answers an unknown charset with BADCHARSET (RFC 9051 §6.4.4)', () => {
    const error = parseErr('a SEARCH CHARSET X-UNKNOWN-9 ALL\r\n');
    expect(error.responseCode).toEqual({ code: 'BADCHARSET', charsets: ['UTF-8', 'US-ASCII'] });
  });

  it('parses ESEARCH return options (RFC 4731, RFC 5182 SAVE)', () => {
    expect(search('A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"\r\n')).toEqual({
      name: 'SEARCH',
      tag: 'A282',
      uid: false,
      charset: null,
      returnOptions: ['MIN', 'COUNT'],
      criteria: {
        key: 'AND',
        operands: [
          { key: 'FLAGGED' },
          { key: 'SINCE', date: { year: 1994, month: 2, day: 1 } },
          { key: 'NOT', operand: { key: 'FROM', value: 'Smith' } },
        ],
      },
    });
    expect(search('a UID SEARCH RETURN () CHARSET UTF-8 ALL\r\n')).toMatchObject({
      uid: true,
      returnOptions: [],
      charset: 'UTF-8',
    });
    expect(search('a SEARCH RETURN (SAVE ALL MAX) UNSEEN\r\n').returnOptions).toEqual(['SAVE', 'ALL', 'MAX']);
  });

  it.each([
    ['a SEARCH\r\n', /missing argument/],
    ['a SEARCH FOO\r\n', /unknown search key FOO/],
    ['a SEARCH OR SEEN\r\n', /missing argument/],
    ['a SEARCH NOT\r\n', /missing argument/],
    ['a SEARCH (SEEN\r\n', /missing argument/],
    ['a SEARCH ()\r\n', /search key/],
    ['a SEARCH SINCE 30-Feb-2020\r\n', /invalid date/],
    ['a SEARCH SINCE 1-Foo-2020\r\n', /invalid date/],
    ['a SEARCH LARGER x\r\n', /size/],
    ['a SEARCH RETURN (FOO) ALL\r\n', /unknown search return option/],
    ['a SEARCH SEEN  UNSEEN\r\n', /search key/],
    ['a SEARCH MODSEQ "x" bogus 5\r\n', /entry type/],
    ['a SEARCH ' + 'NOT '.repeat(100) + 'ALL\r\n', /nested too deeply/],
  ])('rejects %s', (input, message) => {
    expect(parseErr(input).message).toMatch(message);
  });
});
