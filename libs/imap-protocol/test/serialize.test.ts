import { describe, expect, it } from 'vitest';
import {
  ResponseBuilder,
  serializeCapability,
  serializeContinuation,
  serializeEnabled,
  serializeEsearch,
  serializeExists,
  serializeExpunge,
  serializeFlags,
  serializeId,
  serializeList,
  serializeNamespace,
  serializeRecent,
  serializeSearch,
  serializeStatus,
  serializeStatusData,
  serializeVanished,
  type ResponseCode,
} from '../src/index.js';

const s = (b: Uint8Array): string => Buffer.from(b).toString('utf8');

describe('status responses (RFC 9051 §7.1)', () => {
  it.each<[string, ResponseCode | null, string]>([
    ['OK', null, 'a1 OK NOOP completed\r\n'],
    ['OK', { code: 'READ-WRITE' }, 'a1 OK [READ-WRITE] NOOP completed\r\n'],
    ['OK', { code: 'UIDNEXT', value: 4392 }, 'a1 OK [UIDNEXT 4392] NOOP completed\r\n'],
    ['OK', { code: 'UIDVALIDITY', value: 3857529045 }, 'a1 OK [UIDVALIDITY 3857529045] NOOP completed\r\n'],
    [
      'OK',
      { code: 'HIGHESTMODSEQ', value: 715194045007n },
      'a1 OK [HIGHESTMODSEQ 715194045007] NOOP completed\r\n',
    ],
    [
      'OK',
      { code: 'PERMANENTFLAGS', flags: ['\\Deleted', '\\Seen', '\\*'] },
      'a1 OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] NOOP completed\r\n',
    ],
    [
      'OK',
      { code: 'CAPABILITY', capabilities: ['IMAP4rev2', 'AUTH=PLAIN'] },
      'a1 OK [CAPABILITY IMAP4rev2 AUTH=PLAIN] NOOP completed\r\n',
    ],
    [
      'OK',
      { code: 'APPENDUID', uidValidity: 38505, uids: [[3955, 3955]] },
      'a1 OK [APPENDUID 38505 3955] NOOP completed\r\n',
    ],
    [
      'OK',
      {
        code: 'COPYUID',
        uidValidity: 38505,
        source: [
          [304, 304],
          [319, 320],
        ],
        destination: [[3956, 3958]],
      },
      'a1 OK [COPYUID 38505 304,319:320 3956:3958] NOOP completed\r\n',
    ],
    ['NO', { code: 'TRYCREATE' }, 'a1 NO [TRYCREATE] NOOP completed\r\n'],
    ['NO', { code: 'TOOBIG' }, 'a1 NO [TOOBIG] NOOP completed\r\n'],
    ['NO', { code: 'AUTHENTICATIONFAILED' }, 'a1 NO [AUTHENTICATIONFAILED] NOOP completed\r\n'],
    ['NO', { code: 'OVERQUOTA' }, 'a1 NO [OVERQUOTA] NOOP completed\r\n'],
    [
      'NO',
      { code: 'BADCHARSET', charsets: ['UTF-8', 'US-ASCII'] },
      'a1 NO [BADCHARSET (UTF-8 US-ASCII)] NOOP completed\r\n',
    ],
    [
      'NO',
      {
        code: 'MODIFIED',
        set: [
          [7, 7],
          [9, 9],
        ],
      },
      'a1 NO [MODIFIED 7,9] NOOP completed\r\n',
    ],
    ['BAD', { code: 'CLIENTBUG' }, 'a1 BAD [CLIENTBUG] NOOP completed\r\n'],
  ])('%s, response code #%#', (condition, code, expected) => {
    const bytes = serializeStatus({
      tag: 'a1',
      condition: condition as 'OK' | 'NO' | 'BAD',
      code,
      text: 'NOOP completed',
    });
    expect(s(bytes)).toBe(expected);
  });

  it('writes untagged, PREAUTH and BYE responses with "*"', () => {
    expect(
      s(
        serializeStatus({
          tag: null,
          condition: 'OK',
          code: { code: 'UNSEEN', value: 12 },
          text: 'Message 12 is first unseen',
        }),
      ),
    ).toBe('* OK [UNSEEN 12] Message 12 is first unseen\r\n');
    expect(s(serializeStatus({ tag: 'x', condition: 'BYE', text: 'Autologout; idle for too long' }))).toBe(
      '* BYE Autologout; idle for too long\r\n',
    );
    expect(
      s(serializeStatus({ tag: null, condition: 'PREAUTH', text: 'IMAP4rev2 server logged in as Smith' })),
    ).toBe('* PREAUTH IMAP4rev2 server logged in as Smith\r\n');
  });

  it('keeps the text on one line and never empty', () => {
    expect(s(serializeStatus({ tag: 'a', condition: 'BAD', text: 'bad\r\n* OK injected' }))).toBe(
      'a BAD bad  * OK injected\r\n',
    );
    expect(s(serializeStatus({ tag: 'a', condition: 'OK', text: '' }))).toBe('a OK done\r\n');
    expect(s(serializeStatus({ tag: 'a', condition: 'NO', text: 'Grüße' }))).toBe('a NO Gr??e\r\n');
    expect(s(serializeStatus({ tag: 'a', condition: 'NO', text: 'Grüße' }, { utf8: true }))).toBe(
      'a NO Grüße\r\n',
    );
  });

  it('refuses an invalid tag or flag (a programming error, not client input)', () => {
    expect(() => serializeStatus({ tag: 'a b', condition: 'OK', text: 'x' })).toThrow(RangeError);
    expect(() => serializeFlags(['\\Seen', 'bad flag'])).toThrow(RangeError);
  });

  it('writes continuation requests (RFC 9051 §7.5)', () => {
    expect(s(serializeContinuation())).toBe('+ Ready\r\n');
    expect(s(serializeContinuation({ text: 'idling' }))).toBe('+ idling\r\n');
    expect(s(serializeContinuation({ base64: Buffer.from('challenge') }))).toBe('+ Y2hhbGxlbmdl\r\n');
    expect(s(serializeContinuation({ base64: Buffer.alloc(0) }))).toBe('+ \r\n');
  });
});

describe('untagged data (RFC 9051 §7.2-§7.4)', () => {
  it('CAPABILITY, ENABLED, FLAGS, EXISTS, RECENT, EXPUNGE, VANISHED', () => {
    expect(s(serializeCapability(['IMAP4rev2', 'STARTTLS', 'AUTH=GSSAPI', 'LOGINDISABLED']))).toBe(
      '* CAPABILITY IMAP4rev2 STARTTLS AUTH=GSSAPI LOGINDISABLED\r\n',
    );
    expect(s(serializeEnabled(['CONDSTORE', 'UTF8=ACCEPT']))).toBe('* ENABLED CONDSTORE UTF8=ACCEPT\r\n');
    expect(s(serializeEnabled([]))).toBe('* ENABLED\r\n');
    expect(
      s(serializeFlags(['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft', '$Forwarded'])),
    ).toBe('* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded)\r\n');
    expect(s(serializeExists(23))).toBe('* 23 EXISTS\r\n');
    expect(s(serializeRecent(5))).toBe('* 5 RECENT\r\n');
    expect(s(serializeExpunge(3))).toBe('* 3 EXPUNGE\r\n');
    expect(() => serializeExpunge(0)).toThrow(RangeError);
    expect(
      s(
        serializeVanished(
          [
            [41, 41],
            [43, 116],
          ],
          true,
        ),
      ),
    ).toBe('* VANISHED (EARLIER) 41,43:116\r\n');
    expect(s(serializeVanished([[405, 405]], false))).toBe('* VANISHED 405\r\n');
  });

  it('LIST with attributes, delimiter, names and extended data', () => {
    expect(
      s(serializeList({ kind: 'LIST', attributes: ['\\Noselect'], delimiter: '/', name: '~/Mail/foo' })),
    ).toBe('* LIST (\\Noselect) "/" ~/Mail/foo\r\n');
    expect(s(serializeList({ kind: 'LIST', attributes: [], delimiter: null, name: '' }))).toBe(
      '* LIST () NIL ""\r\n',
    );
    expect(
      s(serializeList({ kind: 'LIST', attributes: ['\\HasNoChildren'], delimiter: '.', name: 'INBOX' })),
    ).toBe('* LIST (\\HasNoChildren) "." INBOX\r\n');
    expect(
      s(
        serializeList({
          kind: 'LIST',
          attributes: ['\\Subscribed', '\\HasChildren'],
          delimiter: '/',
          name: 'Foo',
          extended: [{ item: 'CHILDINFO', options: ['SUBSCRIBED'] }],
        }),
      ),
    ).toBe('* LIST (\\Subscribed \\HasChildren) "/" Foo ("CHILDINFO" ("SUBSCRIBED"))\r\n');
    expect(
      s(
        serializeList({
          kind: 'LIST',
          attributes: [],
          delimiter: '/',
          name: 'Newbox',
          extended: [{ item: 'OLDNAME', name: 'Oldbox' }],
        }),
      ),
    ).toBe('* LIST () "/" Newbox ("OLDNAME" (Oldbox))\r\n');
    expect(
      s(serializeList({ kind: 'LSUB', attributes: [], delimiter: '.', name: '#news.comp.mail.misc' })),
    ).toBe('* LSUB () "." #news.comp.mail.misc\r\n');
  });

  it('encodes mailbox names per the session: modified UTF-7, UTF-8, quoted or literal', () => {
    const entry = { kind: 'LIST', attributes: [], delimiter: '/', name: 'Entwürfe' } as const;
    expect(s(serializeList(entry))).toBe('* LIST () "/" Entw&APw-rfe\r\n');
    expect(s(serializeList(entry, { utf8: true }))).toBe('* LIST () "/" "Entwürfe"\r\n');
    expect(s(serializeList({ ...entry, name: 'with space' }))).toBe('* LIST () "/" "with space"\r\n');
    expect(s(serializeList({ ...entry, name: 'a"b\\c' }))).toBe('* LIST () "/" "a\\"b\\\\c"\r\n');
    expect(s(serializeList({ ...entry, name: 'nil' }))).toBe('* LIST () "/" "nil"\r\n');
    expect(s(serializeList({ ...entry, name: 'line\nbreak' }, { utf8: true }))).toBe(
      '* LIST () "/" {10}\r\nline\nbreak\r\n',
    );
  });

  it('STATUS', () => {
    expect(s(serializeStatusData('blurdybloop', { MESSAGES: 231, UIDNEXT: 44292 }))).toBe(
      '* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n',
    );
    expect(s(serializeStatusData('a b', { SIZE: 12345678901, HIGHESTMODSEQ: 7011231777n }))).toBe(
      '* STATUS "a b" (SIZE 12345678901 HIGHESTMODSEQ 7011231777)\r\n',
    );
  });

  it('SEARCH and ESEARCH (RFC 4731 §3.1)', () => {
    expect(s(serializeSearch([2, 84, 882]))).toBe('* SEARCH 2 84 882\r\n');
    expect(s(serializeSearch([]))).toBe('* SEARCH\r\n');
    expect(s(serializeSearch([2, 5], 917162500n))).toBe('* SEARCH 2 5 (MODSEQ 917162500)\r\n');
    expect(s(serializeEsearch({ tag: 'A282', uid: false, min: 2, count: 3 }))).toBe(
      '* ESEARCH (TAG "A282") MIN 2 COUNT 3\r\n',
    );
    expect(s(serializeEsearch({ tag: 'A283', uid: true, all: [2, 10, 11, 4, 3] }))).toBe(
      '* ESEARCH (TAG "A283") UID ALL 2:4,10:11\r\n',
    );
    expect(s(serializeEsearch({ tag: 'A284', uid: false, count: 0, all: [] }))).toBe(
      '* ESEARCH (TAG "A284") COUNT 0\r\n',
    );
  });

  it('ID (RFC 2971 §3.2)', () => {
    expect(
      s(
        serializeId([
          ['name', 'Postmesh'],
          ['version', null],
        ]),
      ),
    ).toBe('* ID ("name" "Postmesh" "version" NIL)\r\n');
    expect(s(serializeId(null))).toBe('* ID NIL\r\n');
  });

  it('NAMESPACE (RFC 9051 §7.3.3)', () => {
    expect(s(serializeNamespace([{ prefix: '', delimiter: '/' }], [], []))).toBe(
      '* NAMESPACE (("" "/")) NIL NIL\r\n',
    );
    expect(
      s(
        serializeNamespace(
          [{ prefix: '', delimiter: '/' }],
          [{ prefix: '~', delimiter: '/' }],
          [
            { prefix: '#shared/', delimiter: '/' },
            { prefix: '#flat', delimiter: null },
          ],
        ),
      ),
    ).toBe('* NAMESPACE (("" "/")) (("~" "/")) (("#shared/" "/")("#flat" NIL))\r\n');
  });
});

describe('strings (RFC 9051 §4.3)', () => {
  const str = (value: string | Uint8Array, utf8 = false): string =>
    s(new ResponseBuilder({ utf8 }).string(value).bytes());

  it('quotes safe 7-bit text, escaping quote and backslash', () => {
    expect(str('hello world')).toBe('"hello world"');
    expect(str('')).toBe('""');
    expect(str('say "hi" \\o/')).toBe('"say \\"hi\\" \\\\o/"');
  });

  it('uses a literal for CR, LF, NUL, 8-bit without UTF-8, invalid UTF-8 and long text', () => {
    expect(str('a\r\nb')).toBe('{4}\r\na\r\nb');
    expect(str(Buffer.from([0x61, 0]))).toBe('{2}\r\na\0');
    expect(str('Grüße')).toBe('{7}\r\nGrüße');
    expect(str('Grüße', true)).toBe('"Grüße"');
    const invalid = new ResponseBuilder({ utf8: true }).string(Buffer.from([0x61, 0xff])).bytes();
    expect(invalid).toEqual(Buffer.from('{2}\r\na\xff', 'latin1'));
    expect(str('x'.repeat(2000)).startsWith('{2000}\r\nxxx')).toBe(true);
  });

  it('writes NIL and atoms for astrings', () => {
    expect(
      s(new ResponseBuilder({ utf8: false }).nstring(null).sp().astring('INBOX').sp().astring('').bytes()),
    ).toBe('NIL INBOX ""');
  });
});
