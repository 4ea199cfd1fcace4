/**
 * Parsing the extension commands: COMPRESS (RFC 4978 §3), GETQUOTA / GETQUOTAROOT (RFC 9208
 * §4.2-3), SORT with ESORT options (RFC 5256 §5 with its own example, RFC 5267 §3.2, RFC 5957),
 * THREAD (RFC 5256 §5 example); RECURSIVEMATCH with only REMOTE (RFC 5258 §3.1); LIST patterns;
 * OBJECTID (RFC 8474) parsing and responses.
 */
import { describe, expect, it } from 'vitest';
import {
  COMMAND_STATES,
  collectOutput,
  compileListPattern,
  serializeFetch,
  serializeStatus,
  serializeStatusData,
} from '../src/index.js';
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

describe('OBJECTID (RFC 8474), with the RFC’s own examples', () => {
  const s = (b: Buffer) => b.toString('latin1');

  it('parses STATUS (MAILBOXID), FETCH EMAILID / THREADID and SEARCH EMAILID / THREADID', () => {
    // §4.2 example: `STATUS foo (MAILBOXID)`
    expect(parseOk('27 STATUS foo (MAILBOXID)\r\n')).toEqual({
      name: 'STATUS',
      tag: '27',
      mailbox: 'foo',
      items: ['MAILBOXID'],
    });
    // §5.3 example: `FETCH 1:* (EMAILID)`, `FETCH 1:* (THREADID)`
    expect(parseOk('27 FETCH 1:* (EMAILID THREADID)\r\n')).toMatchObject({
      attributes: [{ kind: 'EMAILID' }, { kind: 'THREADID' }],
    });
    // §6 example: `SEARCH EMAILID M6d99ac3275bb4e`, `SEARCH THREADID T64b478a75b7ea9`
    expect(parseOk('27 SEARCH EMAILID M6d99ac3275bb4e\r\n')).toMatchObject({
      criteria: { key: 'AND', operands: [{ key: 'EMAILID', id: 'M6d99ac3275bb4e' }] },
    });
    expect(parseOk('28 UID SEARCH NOT THREADID T64b478a75b7ea9\r\n')).toMatchObject({
      criteria: { operands: [{ key: 'NOT', operand: { key: 'THREADID', id: 'T64b478a75b7ea9' } }] },
    });
    // §7 objectid = 1*255(ALPHA / DIGIT / "_" / "-"): anything else is a syntax error.
    expect(parseErr('29 SEARCH EMAILID M6d.99\r\n').message).toMatch(/expected|unexpected|invalid/i);
    expect(parseErr(`29 SEARCH EMAILID ${'a'.repeat(256)}\r\n`).message).toMatch(/255/);
    expect(parseErr('29 SEARCH EMAILID\r\n')).toBeDefined();
  });

  it('writes MAILBOXID codes, STATUS MAILBOXID and FETCH EMAILID / THREADID (§4.1, §4.2, §5.3)', async () => {
    expect(
      s(
        serializeStatus({
          tag: '3',
          condition: 'OK',
          code: { code: 'MAILBOXID', id: 'F2212ea87-6097-4256-9d51-71338625' },
          text: 'Completed',
        }),
      ),
    ).toBe('3 OK [MAILBOXID (F2212ea87-6097-4256-9d51-71338625)] Completed\r\n');
    expect(s(serializeStatusData('foo', { MAILBOXID: 'F2212ea87-6097-4256-9d51-71338625' }))).toBe(
      '* STATUS foo (MAILBOXID (F2212ea87-6097-4256-9d51-71338625))\r\n',
    );
    expect(s(serializeStatusData('foo', { MESSAGES: 2, MAILBOXID: 'Fa' }))).toBe(
      '* STATUS foo (MESSAGES 2 MAILBOXID (Fa))\r\n',
    );
    const fetched = await collectOutput(
      serializeFetch(1, [
        { item: 'EMAILID', id: 'M6d99ac3275bb4e' },
        { item: 'THREADID', id: 'T64b478a75b7ea9' },
      ]),
    );
    expect(s(fetched)).toBe('* 1 FETCH (EMAILID (M6d99ac3275bb4e) THREADID (T64b478a75b7ea9))\r\n');
    // §5.2: THREADID NIL when the server does not thread the message.
    expect(s(await collectOutput(serializeFetch(2, [{ item: 'THREADID', id: null }])))).toBe(
      '* 2 FETCH (THREADID NIL)\r\n',
    );
  });
});
