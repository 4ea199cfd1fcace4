/**
 * Parsing the extension commands: COMPRESS (RFC 4978 §3), GETQUOTA / GETQUOTAROOT (RFC 9208
 * §4.2-3), SORT with ESORT options (RFC 5256 §5 with its own example, RFC 5267 §3.2, RFC 5957),
 * THREAD (RFC 5256 §5 example); RECURSIVEMATCH with only REMOTE (RFC 5258 §3.1); LIST patterns.
 */
import { describe, expect, it } from 'vitest';
import { COMMAND_STATES, compileListPattern } from '../src/index.js';
import { parseErr, parseOk } from './helpers.js';

describe('extension commands', () => {
  it('COMPRESS, GETQUOTA, GETQUOTAROOT', () => {
    expect(parseOk('a COMPRESS deflate\r\n')).toEqual({ name: 'COMPRESS', tag: 'a', mechanism: 'DEFLATE' });
    expect(parseOk('a GETQUOTA ""\r\n')).toEqual({ name: 'GETQUOTA', tag: 'a', root: '' });
    expect(parseOk('a GETQUOTAROOT "AT&AKM-T"\r\n')).toEqual({
      name: 'GETQUOTAROOT',
      tag: 'a',
      mailbox: 'AT£T',
    });
    expect(parseErr('a COMPRESS\r\n').message).toMatch(/missing/);
    expect(parseErr('a COMPRESS DEFLATE x\r\n').message).toMatch(/unexpected/);
    expect(COMMAND_STATES.COMPRESS).toEqual(['authenticated', 'selected']);
  });

  it('SORT: the RFC 5256 §5 example, REVERSE, DISPLAYFROM, RETURN options, UID SORT', () => {
    expect(parseOk('A282 SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994\r\n')).toMatchObject({
      name: 'SORT',
      uid: false,
      criteria: [{ key: 'SUBJECT', reverse: false }],
      charset: 'UTF-8',
      returnOptions: null,
      search: { key: 'AND', operands: [{ key: 'SINCE', date: { year: 1994, month: 2, day: 1 } }] },
    });
    expect(
      parseOk('a UID SORT RETURN (MIN COUNT) (REVERSE DATE DISPLAYFROM) us-ascii UNSEEN\r\n'),
    ).toMatchObject({
      name: 'SORT',
      uid: true,
      criteria: [
        { key: 'DATE', reverse: true },
        { key: 'DISPLAYFROM', reverse: false },
      ],
      charset: 'US-ASCII',
      returnOptions: ['MIN', 'COUNT'],
    });
    expect(parseErr('a SORT () UTF-8 ALL\r\n').message).toMatch(/sort key/);
    expect(parseErr('a SORT (REVERSE) UTF-8 ALL\r\n').message).toMatch(/expected space/);
    expect(parseErr('a SORT (DATE) UTF-8\r\n').message).toMatch(/missing/);
    expect(parseErr('a SORT RETURN (SAVE) (DATE) UTF-8 ALL\r\n').message).toMatch(/sort return option SAVE/);
    expect(parseErr('a SORT (DATE) X-UNKNOWN ALL\r\n').responseCode).toEqual({
      code: 'BADCHARSET',
      charsets: ['UTF-8', 'US-ASCII'],
    });
  });

  it('THREAD: the RFC 5256 §5 example and UID THREAD', () => {
    expect(parseOk('A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000\r\n')).toMatchObject({
      name: 'THREAD',
      uid: false,
      algorithm: 'ORDEREDSUBJECT',
      charset: 'UTF-8',
    });
    expect(parseOk('a UID THREAD references US-ASCII ALL\r\n')).toMatchObject({
      name: 'THREAD',
      uid: true,
      algorithm: 'REFERENCES',
    });
    expect(parseErr('a THREAD REFS UTF-8 ALL\r\n').message).toMatch(/unknown thread algorithm REFS/);
  });

  it('RECURSIVEMATCH with only REMOTE is BAD (RFC 5258 §3.1)', () => {
    expect(parseErr('a LIST (RECURSIVEMATCH REMOTE) "" *\r\n').message).toMatch(/RECURSIVEMATCH/);
    expect(parseOk('a LIST (SUBSCRIBED RECURSIVEMATCH REMOTE) "" *\r\n')).toMatchObject({ name: 'LIST' });
  });
});

describe('LIST patterns (RFC 9051 §6.3.9)', () => {
  it('* crosses the delimiter, % does not, INBOX is case-insensitive', () => {
    const star = compileListPattern('a*');
    expect([star('a'), star('a/b/c'), star('b')]).toEqual([true, true, false]);
    const pct = compileListPattern('a/%');
    expect([pct('a/b'), pct('a/b/c'), pct('a/')]).toEqual([true, false, true]);
    const inbox = compileListPattern('inbox/%');
    expect([inbox('INBOX/x'), inbox('inbox/x'), inbox('Inbox2/x')]).toEqual([true, true, false]);
  });
  it('matches a backtracking-prone pattern in linear time', () => {
    const hostile = compileListPattern('*a*a*a*a*a*a*a*a*b');
    expect(hostile('a'.repeat(5000))).toBe(false);
    expect(hostile(`${'a'.repeat(5000)}b`)).toBe(true);
  });
});
