import { describe, expect, it } from 'vitest';
import { isIdleDone, parseAuthenticateResponse, parseErrorResponse, type Command } from '../src/index.js';
import { parseErr, parseOk, rawOf } from './helpers.js';

const all = { kind: 'ranges', ranges: [{ start: 1, end: '*' }] } as const;

interface OkCase {
  readonly input: string;
  readonly expected: Command;
  readonly utf8?: boolean;
}

/** One or more accepted forms per command (RFC 9051 §6 examples where there is one). */
const okCases: readonly OkCase[] = [
  { input: 'a CAPABILITY\r\n', expected: { name: 'CAPABILITY', tag: 'a' } },
  { input: 'a001 noop\r\n', expected: { name: 'NOOP', tag: 'a001' } },
  { input: 'A023 LOGOUT\r\n', expected: { name: 'LOGOUT', tag: 'A023' } },
  { input: 'a STARTTLS\r\n', expected: { name: 'STARTTLS', tag: 'a' } },
  { input: 'a NAMESPACE\r\n', expected: { name: 'NAMESPACE', tag: 'a' } },
  { input: 'a IDLE\r\n', expected: { name: 'IDLE', tag: 'a' } },
  // RFC 3501 §6.4.1: IMAP4rev1 clients (mbsync) still send CHECK.
  { input: 'a CHECK\r\n', expected: { name: 'CHECK', tag: 'a' } },
  { input: 'a CLOSE\r\n', expected: { name: 'CLOSE', tag: 'a' } },
  { input: 'a UNSELECT\r\n', expected: { name: 'UNSELECT', tag: 'a' } },
  { input: 'a EXPUNGE\r\n', expected: { name: 'EXPUNGE', tag: 'a' } },
  {
    input: 'a AUTHENTICATE plain\r\n',
    expected: { name: 'AUTHENTICATE', tag: 'a', mechanism: 'PLAIN', initialResponse: null },
  },
  {
    input: 'a AUTHENTICATE PLAIN AHVzZXIAcGFzcw==\r\n',
    expected: {
      name: 'AUTHENTICATE',
      tag: 'a',
      mechanism: 'PLAIN',
      initialResponse: Buffer.from('\0user\0pass'),
    },
  },
  {
    input: 'a AUTHENTICATE EXTERNAL =\r\n',
    expected: { name: 'AUTHENTICATE', tag: 'a', mechanism: 'EXTERNAL', initialResponse: Buffer.alloc(0) },
  },
  {
    input: 'a001 LOGIN SMITH SESAME\r\n',
    expected: { name: 'LOGIN', tag: 'a001', username: 'SMITH', password: 'SESAME' },
  },
  {
    input: 'a LOGIN "j\\"d" {5}\r\np w\\"\r\n',
    expected: { name: 'LOGIN', tag: 'a', username: 'j"d', password: 'p w\\"' },
  },
  {
    input: 'a LOGIN "jörg" "pässwörd"\r\n',
    expected: { name: 'LOGIN', tag: 'a', username: 'jörg', password: 'pässwörd' },
  },
  {
    input: 't1 ENABLE CONDSTORE utf8=accept\r\n',
    expected: { name: 'ENABLE', tag: 't1', capabilities: ['CONDSTORE', 'UTF8=ACCEPT'] },
  },
  {
    input: 'A142 SELECT INBOX\r\n',
    expected: { name: 'SELECT', tag: 'A142', mailbox: 'INBOX', condstore: false, qresync: null },
  },
  {
    input: 'A142 SELECT inbox (CONDSTORE)\r\n',
    expected: { name: 'SELECT', tag: 'A142', mailbox: 'INBOX', condstore: true, qresync: null },
  },
  {
    input: 'A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n',
    expected: {
      name: 'SELECT',
      tag: 'A02',
      mailbox: 'INBOX',
      condstore: false,
      qresync: {
        uidValidity: 67890007,
        modseq: 20050715194045000n,
        knownUids: {
          kind: 'ranges',
          ranges: [
            { start: 41, end: 41 },
            { start: 43, end: 211 },
            { start: 214, end: 541 },
          ],
        },
        sequenceMatch: null,
      },
    },
  },
  {
    input: 'B01 EXAMINE "Sent &AOQ-" (QRESYNC (1 2 (1:3 5:7)))\r\n',
    expected: {
      name: 'EXAMINE',
      tag: 'B01',
      mailbox: 'Sent ä',
      condstore: false,
      qresync: {
        uidValidity: 1,
        modseq: 2n,
        knownUids: null,
        sequenceMatch: {
          sequences: { kind: 'ranges', ranges: [{ start: 1, end: 3 }] },
          uids: { kind: 'ranges', ranges: [{ start: 5, end: 7 }] },
        },
      },
    },
  },
  {
    input: 'A003 CREATE owatagusiam/\r\n',
    expected: { name: 'CREATE', tag: 'A003', mailbox: 'owatagusiam/', specialUse: [] },
  },
  {
    input: 't1 CREATE MySpecial (USE (\\Drafts \\Sent))\r\n',
    expected: { name: 'CREATE', tag: 't1', mailbox: 'MySpecial', specialUse: ['\\Drafts', '\\Sent'] },
  },
  {
    input: 'a CREATE "Entwürfe"\r\n',
    utf8: true,
    expected: { name: 'CREATE', tag: 'a', mailbox: 'Entwürfe', specialUse: [] },
  },
  { input: 'A683 DELETE blurdybloop\r\n', expected: { name: 'DELETE', tag: 'A683', mailbox: 'blurdybloop' } },
  {
    input: 'A683 RENAME blurdybloop sarasoop\r\n',
    expected: { name: 'RENAME', tag: 'A683', from: 'blurdybloop', to: 'sarasoop' },
  },
  {
    input: 'A002 SUBSCRIBE #news.comp.mail.mime\r\n',
    expected: { name: 'SUBSCRIBE', tag: 'A002', mailbox: '#news.comp.mail.mime' },
  },
  { input: 'A002 UNSUBSCRIBE "a b"\r\n', expected: { name: 'UNSUBSCRIBE', tag: 'A002', mailbox: 'a b' } },
  {
    input: 'A101 LIST "" ""\r\n',
    expected: {
      name: 'LIST',
      tag: 'A101',
      reference: '',
      patterns: [''],
      selectionOptions: [],
      returnOptions: [],
      extended: false,
    },
  },
  {
    input: 'A102 LIST #news.comp.mail.misc %\r\n',
    expected: {
      name: 'LIST',
      tag: 'A102',
      reference: '#news.comp.mail.misc',
      patterns: ['%'],
      selectionOptions: [],
      returnOptions: [],
      extended: false,
    },
  },
  {
    input:
      'A04 LIST (SUBSCRIBED RECURSIVEMATCH) "" (% "Other/*") RETURN (CHILDREN STATUS (MESSAGES UNSEEN SIZE) SPECIAL-USE)\r\n',
    expected: {
      name: 'LIST',
      tag: 'A04',
      reference: '',
      patterns: ['%', 'Other/*'],
      selectionOptions: ['SUBSCRIBED', 'RECURSIVEMATCH'],
      returnOptions: [
        { option: 'CHILDREN' },
        { option: 'STATUS', items: ['MESSAGES', 'UNSEEN', 'SIZE'] },
        { option: 'SPECIAL-USE' },
      ],
      extended: true,
    },
  },
  {
    input: 'a LIST () "" * RETURN ()\r\n',
    expected: {
      name: 'LIST',
      tag: 'a',
      reference: '',
      patterns: ['*'],
      selectionOptions: [],
      returnOptions: [],
      extended: true,
    },
  },
  {
    input: 'A002 LSUB "#news." "comp.mail.*"\r\n',
    expected: { name: 'LSUB', tag: 'A002', reference: '#news.', pattern: 'comp.mail.*' },
  },
  {
    input: 'A042 STATUS blurdybloop (UIDNEXT MESSAGES size highestmodseq)\r\n',
    expected: {
      name: 'STATUS',
      tag: 'A042',
      mailbox: 'blurdybloop',
      items: ['UIDNEXT', 'MESSAGES', 'SIZE', 'HIGHESTMODSEQ'],
    },
  },
  {
    input: 'A003 APPEND saved-messages (\\Seen) " 7-Feb-1994 21:52:25 -0800" {5}\r\nhello\r\n',
    expected: {
      name: 'APPEND',
      tag: 'A003',
      mailbox: 'saved-messages',
      flags: ['\\Seen'],
      internalDate: { date: new Date('1994-02-08T05:52:25Z'), offsetMinutes: -480 },
      message: Buffer.from('hello'),
      binary: false,
      utf8: false,
    },
  },
  {
    input: 'A APPEND INBOX "5-Mar-2024 10:00:00 +0000" {1}\r\nx\r\n',
    expected: {
      name: 'APPEND',
      tag: 'A',
      mailbox: 'INBOX',
      flags: [],
      internalDate: { date: new Date('2024-03-05T10:00:00Z'), offsetMinutes: 0 },
      message: Buffer.from('x'),
      binary: false,
      utf8: false,
    },
  },
  {
    input: 'A APPEND INBOX ~{3+}\r\n\0\0\0\r\n',
    expected: {
      name: 'APPEND',
      tag: 'A',
      mailbox: 'INBOX',
      flags: [],
      internalDate: null,
      message: Buffer.from([0, 0, 0]),
      binary: true,
      utf8: false,
    },
  },
  {
    input: 'A APPEND INBOX () UTF8 (~{2}\r\nhi)\r\n',
    expected: {
      name: 'APPEND',
      tag: 'A',
      mailbox: 'INBOX',
      flags: [],
      internalDate: null,
      message: Buffer.from('hi'),
      binary: true,
      utf8: true,
    },
  },
  {
    input: 'a UID EXPUNGE 3000:3002\r\n',
    expected: {
      name: 'UID EXPUNGE',
      tag: 'a',
      uids: { kind: 'ranges', ranges: [{ start: 3000, end: 3002 }] },
    },
  },
  {
    input: 'A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])\r\n',
    expected: {
      name: 'FETCH',
      tag: 'A654',
      uid: false,
      set: { kind: 'ranges', ranges: [{ start: 2, end: 4 }] },
      attributes: [
        { kind: 'FLAGS' },
        {
          kind: 'BODY[]',
          section: { part: [], text: { kind: 'HEADER.FIELDS', fields: ['DATE', 'FROM'] } },
          partial: null,
          peek: false,
        },
      ],
      macro: null,
      changedSince: null,
      vanished: false,
    },
  },
  {
    input: 'a UID FETCH 1:* FAST\r\n',
    expected: {
      name: 'FETCH',
      tag: 'a',
      uid: true,
      set: all,
      attributes: [{ kind: 'FLAGS' }, { kind: 'INTERNALDATE' }, { kind: 'RFC822.SIZE' }],
      macro: 'FAST',
      changedSince: null,
      vanished: false,
    },
  },
  {
    input: 'a UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n',
    expected: {
      name: 'FETCH',
      tag: 'a',
      uid: true,
      set: { kind: 'ranges', ranges: [{ start: 300, end: 500 }] },
      attributes: [{ kind: 'FLAGS' }, { kind: 'MODSEQ' }],
      macro: null,
      changedSince: 12345n,
      vanished: true,
    },
  },
  // RFC 8970 §7: PREVIEW and PREVIEW (LAZY); a list after a lone PREVIEW that does not start
  // with LAZY is the command's fetch-modifiers.
  {
    input: 'a FETCH 1 (UID PREVIEW (LAZY) FLAGS)\r\n',
    expected: {
      name: 'FETCH',
      tag: 'a',
      uid: false,
      set: { kind: 'ranges', ranges: [{ start: 1, end: 1 }] },
      attributes: [{ kind: 'UID' }, { kind: 'PREVIEW', lazy: true }, { kind: 'FLAGS' }],
      macro: null,
      changedSince: null,
      vanished: false,
    },
  },
  {
    input: 'a FETCH 1 preview (lazy)\r\n',
    expected: {
      name: 'FETCH',
      tag: 'a',
      uid: false,
      set: { kind: 'ranges', ranges: [{ start: 1, end: 1 }] },
      attributes: [{ kind: 'PREVIEW', lazy: true }],
      macro: null,
      changedSince: null,
      vanished: false,
    },
  },
  {
    input: 'a FETCH 1 PREVIEW (CHANGEDSINCE 5)\r\n',
    expected: {
      name: 'FETCH',
      tag: 'a',
      uid: false,
      set: { kind: 'ranges', ranges: [{ start: 1, end: 1 }] },
      attributes: [{ kind: 'PREVIEW', lazy: false }, { kind: 'MODSEQ' }],
      macro: null,
      changedSince: 5n,
      vanished: false,
    },
  },
  {
    input: 'A003 STORE 2:4 +FLAGS (\\Deleted)\r\n',
    expected: {
      name: 'STORE',
      tag: 'A003',
      uid: false,
      set: { kind: 'ranges', ranges: [{ start: 2, end: 4 }] },
      operation: 'add',
      silent: false,
      flags: ['\\Deleted'],
      unchangedSince: null,
    },
  },
  {
    input: 'a UID STORE $ -FLAGS.SILENT \\Seen $Forwarded\r\n',
    expected: {
      name: 'STORE',
      tag: 'a',
      uid: true,
      set: { kind: 'saved' },
      operation: 'remove',
      silent: true,
      flags: ['\\Seen', '$Forwarded'],
      unchangedSince: null,
    },
  },
  {
    input: 'd105 STORE 7,5,9 (UNCHANGEDSINCE 320162338) FLAGS ()\r\n',
    expected: {
      name: 'STORE',
      tag: 'd105',
      uid: false,
      set: {
        kind: 'ranges',
        ranges: [
          { start: 7, end: 7 },
          { start: 5, end: 5 },
          { start: 9, end: 9 },
        ],
      },
      operation: 'replace',
      silent: false,
      flags: [],
      unchangedSince: 320162338n,
    },
  },
  {
    input: 'A003 COPY 2:4 MEETING\r\n',
    expected: {
      name: 'COPY',
      tag: 'A003',
      uid: false,
      set: { kind: 'ranges', ranges: [{ start: 2, end: 4 }] },
      mailbox: 'MEETING',
    },
  },
  {
    input: 'a UID MOVE 42:69 foo\r\n',
    expected: {
      name: 'MOVE',
      tag: 'a',
      uid: true,
      set: { kind: 'ranges', ranges: [{ start: 42, end: 69 }] },
      mailbox: 'foo',
    },
  },
  {
    input: 'a ID ("name" "sodr" "version" NIL)\r\n',
    expected: {
      name: 'ID',
      tag: 'a',
      params: [
        ['name', 'sodr'],
        ['version', null],
      ],
    },
  },
  { input: 'a ID NIL\r\n', expected: { name: 'ID', tag: 'a', params: null } },
  { input: 'a ID ()\r\n', expected: { name: 'ID', tag: 'a', params: [] } },
];

describe('parseCommand: accepted commands', () => {
  it.each(okCases)('$input', ({ input, expected, utf8 }) => {
    expect(parseOk(input, { utf8: utf8 ?? false })).toEqual(expected);
  });
});

interface ErrCase {
  readonly input: string;
  readonly tag: string | null;
  readonly message: RegExp;
  readonly utf8?: boolean;
}

const errCases: readonly ErrCase[] = [
  { input: '\r\n', tag: null, message: /missing tag/ },
  { input: '+ NOOP\r\n', tag: null, message: /tag/ },
  { input: 'a\r\n', tag: 'a', message: /missing argument/ },
  { input: 'a FOO\r\n', tag: 'a', message: /unknown command FOO/ },
  { input: 'a NOOP extra\r\n', tag: 'a', message: /unexpected/ },
  { input: 'a NOOP \r\n', tag: 'a', message: /unexpected/ },
  { input: 'a  NOOP\r\n', tag: 'a', message: /command name/ },
  { input: 'a LOGIN user\r\n', tag: 'a', message: /missing argument/ },
  { input: 'a LOGIN "user pass\r\n', tag: 'a', message: /unterminated/ },
  { input: 'a LOGIN "a\\b" c\r\n', tag: 'a', message: /escape/ },
  { input: 'a AUTHENTICATE PLAIN ###\r\n', tag: 'a', message: /BASE64/ },
  { input: 'a ENABLE\r\n', tag: 'a', message: /missing argument/ },
  { input: 'a SELECT INBOX (FOO)\r\n', tag: 'a', message: /unknown select parameter/ },
  { input: 'a SELECT INBOX (QRESYNC (1 2 1:*))\r\n', tag: 'a', message: /"\*" is not allowed in known UIDs/ },
  { input: 'a SELECT "AT&T"\r\n', tag: 'a', message: /shift/ },
  { input: 'a SELECT "caf\u00e9"\r\n', tag: 'a', message: /modified UTF-7/ },
  { input: 'a SELECT {2}\r\n\xff\xfe\r\n', tag: 'a', message: /UTF-8/, utf8: true },
  { input: 'a CREATE x (USE (Drafts))\r\n', tag: 'a', message: /special-use/ },
  { input: 'a LIST (RECURSIVEMATCH) "" *\r\n', tag: 'a', message: /RECURSIVEMATCH/ },
  { input: 'a LIST (FOO) "" *\r\n', tag: 'a', message: /unknown LIST selection option/ },
  { input: 'a LIST "" * RETURN (FOO)\r\n', tag: 'a', message: /unknown LIST return option/ },
  { input: 'a LIST ""\r\n', tag: 'a', message: /missing argument/ },
  { input: 'a STATUS INBOX ()\r\n', tag: 'a', message: /status item/ },
  { input: 'a STATUS INBOX (MESSAGES FOO)\r\n', tag: 'a', message: /unknown status item FOO/ },
  { input: 'a APPEND INBOX "31-Feb-2020 00:00:00 +0000" {1}\r\nx\r\n', tag: 'a', message: /date-time/ },
  { input: 'a APPEND INBOX (\\Recent) {1}\r\nx\r\n', tag: 'a', message: /Recent/ },
  { input: 'a APPEND INBOX hello\r\n', tag: 'a', message: /message literal/ },
  { input: 'a APPEND INBOX {0}\r\n\r\n', tag: 'a', message: /empty/ },
  { input: 'a LOGIN {3}\r\na\0b x\r\n', tag: 'a', message: /NUL/ },
  { input: 'a LOGIN {x {1}\r\nb c\r\n', tag: 'a', message: /invalid literal/ },
  { input: 'a LOGIN {1} x\r\n', tag: 'a', message: /literal must end the line/ },
  { input: 'a FETCH 0 FLAGS\r\n', tag: 'a', message: /zero/ },
  { input: 'a FETCH 1:2, FLAGS\r\n', tag: 'a', message: /sequence number/ },
  { input: 'a FETCH 1 (FLAGS\r\n', tag: 'a', message: /missing argument/ },
  { input: 'a FETCH 1 BODY.PEEK\r\n', tag: 'a', message: /section/ },
  { input: 'a FETCH 1 BODY[MIME]\r\n', tag: 'a', message: /MIME needs a part/ },
  { input: 'a FETCH 1 BODY[1.]\r\n', tag: 'a', message: /section/ },
  { input: 'a FETCH 1 BODY[]<5>\r\n', tag: 'a', message: /"\."/ },
  { input: 'a FETCH 1 BODY[]<0.0>\r\n', tag: 'a', message: /zero/ },
  { input: 'a FETCH 1 BINARY[TEXT]\r\n', tag: 'a', message: /"\]"/ },
  { input: 'a FETCH 1 FOO\r\n', tag: 'a', message: /unknown fetch attribute FOO/ },
  { input: 'a FETCH 1 FLAGS (VANISHED)\r\n', tag: 'a', message: /VANISHED/ },
  { input: 'a FETCH 4294967296 FLAGS\r\n', tag: 'a', message: /out of range/ },
  { input: 'a STORE 1 FLAGS.FOO (\\Seen)\r\n', tag: 'a', message: /store item/ },
  { input: 'a STORE 1 +FLAGS (\\Recent)\r\n', tag: 'a', message: /Recent/ },
  { input: 'a COPY 1\r\n', tag: 'a', message: /missing argument/ },
  { input: 'a UID FROB 1\r\n', tag: 'a', message: /unknown UID command/ },
  { input: 'a UID EXPUNGE\r\n', tag: 'a', message: /missing argument/ },
  { input: 'a ID ("a")\r\n', tag: 'a', message: /expected space/ },
  { input: 'a ID (' + '"f" "v" '.repeat(31) + ')\r\n', tag: 'a', message: /30/ },
];

describe('parseCommand: syntax errors carry the tag and a reason', () => {
  it.each(errCases)('$input', ({ input, tag, message, utf8 }) => {
    const error = parseErr(Buffer.from(input, 'latin1'), { utf8: utf8 ?? false });
    expect(error.tag).toBe(tag);
    expect(error.message).toMatch(message);
  });
});

describe('mailbox names that are well-formed but badly encoded', () => {
  // Every atom-special a client may try as a name: valid astring / list-mailbox syntax, but `&`
  // starts a modified BASE64 shift that is not valid here.
  const name = "!#$&'+,-.0123456789:;<=>?@^_`|[}";
  it.each([
    [`a SELECT ${name}\r\n`, false],
    [`a CREATE "${name}"\r\n`, false],
    [`a LIST "" ${name}%*\r\n`, false],
    [`a SUBSCRIBE "${name}"\r\n`, false],
    ['a SELECT "caf\u00e9"\r\n', false],
    ['a SELECT {2}\r\n\xff\xfe\r\n', true],
  ])('%j is refused with NO [CANNOT], not BAD', (input, utf8) => {
    const error = parseErr(Buffer.from(input, 'latin1'), { utf8 });
    expect(parseErrorResponse(error)).toMatchObject({ tag: 'a', condition: 'NO', code: { code: 'CANNOT' } });
  });

  it('takes the same name as it is once UTF-8 is enabled', () => {
    const command = parseOk(`a CREATE "${name}"\r\n`, { utf8: true });
    expect(command).toMatchObject({ name: 'CREATE', mailbox: name });
  });
});

describe('FETCH attributes (RFC 9051 §6.4.5)', () => {
  it('parses every attribute and section form', () => {
    const command = parseOk(
      'a FETCH 1 (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY BODYSTRUCTURE RFC822 RFC822.HEADER ' +
        'RFC822.TEXT MODSEQ BODY[] BODY.PEEK[1.2.MIME] body[1.TEXT]<0.100> BODY[2.HEADER.FIELDS.NOT (X-A "x-b")] ' +
        'BINARY[1.2] BINARY.PEEK[]<10.20> BINARY.SIZE[3])\r\n',
    );
    if (command.name !== 'FETCH') throw new Error('not FETCH');
    expect(command.attributes).toEqual([
      { kind: 'UID' },
      { kind: 'FLAGS' },
      { kind: 'INTERNALDATE' },
      { kind: 'RFC822.SIZE' },
      { kind: 'ENVELOPE' },
      { kind: 'BODY' },
      { kind: 'BODYSTRUCTURE' },
      { kind: 'RFC822' },
      { kind: 'RFC822.HEADER' },
      { kind: 'RFC822.TEXT' },
      { kind: 'MODSEQ' },
      { kind: 'BODY[]', section: { part: [], text: { kind: 'none' } }, partial: null, peek: false },
      { kind: 'BODY[]', section: { part: [1, 2], text: { kind: 'MIME' } }, partial: null, peek: true },
      {
        kind: 'BODY[]',
        section: { part: [1], text: { kind: 'TEXT' } },
        partial: { origin: 0, length: 100 },
        peek: false,
      },
      {
        kind: 'BODY[]',
        section: { part: [2], text: { kind: 'HEADER.FIELDS.NOT', fields: ['X-A', 'x-b'] } },
        partial: null,
        peek: false,
      },
      { kind: 'BINARY[]', part: [1, 2], partial: null, peek: false },
      { kind: 'BINARY[]', part: [], partial: { origin: 10, length: 20 }, peek: true },
      { kind: 'BINARY.SIZE', part: [3] },
    ]);
  });

  it.each([
    ['ALL', ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE']],
    ['FULL', ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY']],
    ['fast', ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE']],
  ])('expands the %s macro', (macro, kinds) => {
    const command = parseOk(`a FETCH 1:* ${macro}\r\n`);
    if (command.name !== 'FETCH') throw new Error('not FETCH');
    expect(command.macro).toBe(macro.toUpperCase());
    expect(command.attributes.map((a) => a.kind)).toEqual(kinds);
  });

  it('does not allow a macro inside a list', () => {
    expect(parseErr('a FETCH 1 (ALL)\r\n').message).toMatch(/unknown fetch attribute ALL/);
  });

  it('parses a single section attribute without parentheses', () => {
    const command = parseOk('a UID FETCH 5 BODY.PEEK[HEADER]\r\n');
    expect(command).toMatchObject({
      uid: true,
      attributes: [{ kind: 'BODY[]', section: { part: [], text: { kind: 'HEADER' } }, peek: true }],
    });
  });
});

describe('IDLE and AUTHENTICATE continuation lines', () => {
  it('recognises DONE in any case, and nothing else', () => {
    expect(isIdleDone(rawOf('DONE\r\n'))).toBe(true);
    expect(isIdleDone(rawOf('done\r\n'))).toBe(true);
    expect(isIdleDone(rawOf('DONE \r\n'))).toBe(false);
    expect(isIdleDone(rawOf('a NOOP\r\n'))).toBe(false);
  });

  it('decodes a SASL response, a cancel and garbage', () => {
    expect(parseAuthenticateResponse(Buffer.from('dGVzdA=='))).toEqual({
      kind: 'response',
      data: Buffer.from('test'),
    });
    expect(parseAuthenticateResponse(Buffer.from(''))).toEqual({ kind: 'response', data: Buffer.alloc(0) });
    expect(parseAuthenticateResponse(Buffer.from('*'))).toEqual({ kind: 'cancel' });
    expect(parseAuthenticateResponse(Buffer.from('dGVzdA='))).toMatchObject({ kind: 'invalid' });
  });
});

describe('mailbox names', () => {
  it('decodes modified UTF-7 for IMAP4rev1 clients', () => {
    expect(parseOk('a SELECT "~peter/mail/&U,BTFw-/&ZeVnLIqe-"\r\n')).toMatchObject({
      mailbox: '~peter/mail/台北/日本語',
    });
  });

  it('takes UTF-8 as is when UTF-8 is enabled, and does not decode "&"', () => {
    expect(parseOk('a SELECT "台北/AT&T"\r\n', { utf8: true })).toMatchObject({ mailbox: '台北/AT&T' });
  });

  it('normalises INBOX in any case, but only the whole name', () => {
    expect(parseOk('a SELECT iNbOx\r\n')).toMatchObject({ mailbox: 'INBOX' });
    expect(parseOk('a SELECT inbox/sub\r\n')).toMatchObject({ mailbox: 'inbox/sub' });
    expect(parseOk('a RENAME Inbox Old\r\n')).toMatchObject({ from: 'INBOX', to: 'Old' });
  });
});
