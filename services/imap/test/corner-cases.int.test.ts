/**
 * Corner cases an independent conformance suite found, each as an exact-bytes conversation over a
 * real socket to the real imap and storage services, several sessions at once where the rule is
 * about sessions:
 * - \Recent (RFC 3501 §2.3.2): a message is recent in exactly one session; STATUS RECENT, the
 *   `* n RECENT` of SELECT / EXAMINE and after COPY / APPEND agree with that;
 * - a keyword is announced in `* FLAGS` and PERMANENTFLAGS before a FETCH shows it, in every
 *   session that has the mailbox selected (RFC 9051 §7.3.5);
 * - LIST-EXTENDED `(SUBSCRIBED RECURSIVEMATCH)` and CHILDINFO (RFC 5258 §3.5), LSUB `%` with a
 *   `\Noselect` parent (RFC 3501 §6.3.9);
 * - COPY and MOVE into the selected mailbox (RFC 6851 §3.3);
 * - mailbox names made of atom-specials: NO, never BAD, and the connection stays;
 * - SEARCH on address keys with display names, comments and groups (RFC 9051 §6.4.4);
 * - BINARY: a part appended as literal8 comes back byte-exact (RFC 3516 §4.2, §4.4).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loggedIn, type TestClient } from './client.js';
import { appendCommand, converse } from './conversation.js';
import { message, startImapStack, type ImapStack, type TestUser } from './harness.js';

const SYSTEM = '\\Answered \\Flagged \\Deleted \\Seen \\Draft';
const COMMON = '$Forwarded $MDNSent $Junk $NotJunk';
function flagsLines(extra = ''): string[] {
  const all = `${SYSTEM} ${COMMON}${extra === '' ? '' : ` ${extra}`}`;
  return [`* FLAGS (${all})`, `* OK [PERMANENTFLAGS (${all} \\*)] Flags permitted`];
}
function selectLines(exists: number, recent: number, uidNext: number, extra = ''): string[] {
  return [
    `* ${exists} EXISTS`,
    `* ${recent} RECENT`,
    '* OK [UIDVALIDITY <v>] UIDs valid',
    `* OK [UIDNEXT ${uidNext}] Predicted next UID`,
    '* OK [MAILBOXID (<id>)] Mailbox id',
    ...flagsLines(extra),
  ];
}

describe('conformance corner cases, exact bytes', () => {
  let stack: ImapStack;
  const open: TestClient[] = [];

  beforeAll(async () => {
    stack = await startImapStack();
  });
  afterAll(async () => {
    for (const c of open) c.close();
    await stack?.stop();
  });

  async function clients(n: number): Promise<{ user: TestUser; c: TestClient[] }> {
    const user = await stack.createUser();
    const c: TestClient[] = [];
    for (let i = 0; i < n; i++) c.push(await loggedIn(stack.imapPort, user));
    open.push(...c);
    return { user, c };
  }

  it('\\Recent is seen by exactly one session: SELECT, EXAMINE, STATUS, APPEND (RFC 3501 §2.3.2)', async () => {
    const {
      c: [a, b, x],
    } = await clients(3);
    await converse(a!, [
      ['CREATE box', ['<tag> OK [MAILBOXID (<id>)] CREATE completed']],
      ['SELECT box', [...selectLines(0, 0, 1), '<tag> OK [READ-WRITE] SELECT completed']],
    ]);
    // Delivered while A has the mailbox selected: A is the first session told about it.
    await converse(b!, [
      [appendCommand('box', message('one')), ['<tag> OK [APPENDUID <v> 1] APPEND completed']],
    ]);
    await converse(a!, [
      ['NOOP', ['* 1 EXISTS', '* 1 RECENT', '<tag> OK NOOP completed']],
      ['FETCH 1 FLAGS', ['* 1 FETCH (FLAGS (\\Recent))', '<tag> OK FETCH completed']],
      ['SEARCH RECENT', ['* SEARCH 1', '<tag> OK SEARCH completed']],
    ]);
    // So nobody else sees it as recent: STATUS, EXAMINE and SELECT say 0.
    await converse(b!, [
      ['STATUS box (MESSAGES RECENT)', ['* STATUS box (MESSAGES 1 RECENT 0)', '<tag> OK STATUS completed']],
      [
        'EXAMINE box',
        [
          ...selectLines(1, 0, 2).slice(0, 6),
          '* OK [PERMANENTFLAGS ()] No permanent flags permitted',
          '* OK [UNSEEN 1] First unseen',
          '<tag> OK [READ-ONLY] EXAMINE completed',
        ],
      ],
      ['FETCH 1 FLAGS', ['* 1 FETCH (FLAGS ())', '<tag> OK FETCH completed']],
      [
        'SELECT box',
        [
          '* OK [CLOSED] Previous mailbox closed',
          ...selectLines(1, 0, 2),
          '* OK [UNSEEN 1] First unseen',
          '<tag> OK [READ-WRITE] SELECT completed',
        ],
      ],
    ]);
    // A message appended while no session has the mailbox selected: EXAMINE reports it recent
    // without taking \Recent away (RFC 3501 §6.3.2), STATUS still counts it, the next SELECT gets it.
    await converse(x!, [
      ['CREATE other', ['<tag> OK [MAILBOXID (<id>)] CREATE completed']],
      [appendCommand('other', message('two')), ['<tag> OK [APPENDUID <v> 1] APPEND completed']],
      [
        'EXAMINE other',
        [
          ...selectLines(1, 1, 2).slice(0, 6),
          '* OK [PERMANENTFLAGS ()] No permanent flags permitted',
          '* OK [UNSEEN 1] First unseen',
          '<tag> OK [READ-ONLY] EXAMINE completed',
        ],
      ],
      ['FETCH 1 FLAGS', ['* 1 FETCH (FLAGS (\\Recent))', '<tag> OK FETCH completed']],
      ['STATUS other (RECENT)', ['* STATUS other (RECENT 1)', '<tag> OK STATUS completed']],
    ]);
    await converse(a!, [
      [
        'SELECT other',
        [
          '* OK [CLOSED] Previous mailbox closed',
          ...selectLines(1, 1, 2),
          '* OK [UNSEEN 1] First unseen',
          '<tag> OK [READ-WRITE] SELECT completed',
        ],
      ],
      ['STATUS box (RECENT)', ['* STATUS box (RECENT 0)', '<tag> OK STATUS completed']],
    ]);
    await converse(x!, [
      ['STATUS other (RECENT)', ['* STATUS other (RECENT 0)', '<tag> OK STATUS completed']],
    ]);
    // Two sessions with the mailbox selected when a message arrives: only one of them gets it.
    await converse(b!, [
      [appendCommand('other', message('three')), ['<tag> OK [APPENDUID <v> 2] APPEND completed']],
    ]);
    await converse(a!, [['NOOP', ['* 2 EXISTS', '* 2 RECENT', '<tag> OK NOOP completed']]]);
    await converse(b!, [
      [
        'SELECT other',
        [
          '* OK [CLOSED] Previous mailbox closed',
          ...selectLines(2, 0, 3),
          '* OK [UNSEEN 1] First unseen',
          '<tag> OK [READ-WRITE] SELECT completed',
        ],
      ],
      [
        appendCommand('other', message('four')),
        ['* 3 EXISTS', '* 1 RECENT', '<tag> OK [APPENDUID <v> 3] APPEND completed'],
      ],
      [
        'FETCH 1:3 FLAGS',
        [
          '* 1 FETCH (FLAGS ())',
          '* 2 FETCH (FLAGS ())',
          '* 3 FETCH (FLAGS (\\Recent))',
          '<tag> OK FETCH completed',
        ],
      ],
    ]);
    await converse(a!, [
      ['NOOP', ['* 3 EXISTS', '* 2 RECENT', '<tag> OK NOOP completed']],
      [
        'FETCH 1:3 FLAGS',
        [
          '* 1 FETCH (FLAGS (\\Recent))',
          '* 2 FETCH (FLAGS (\\Recent))',
          '* 3 FETCH (FLAGS ())',
          '<tag> OK FETCH completed',
        ],
      ],
    ]);
  });

  it('COPY into a mailbox selected elsewhere: EXISTS, RECENT and \\Recent there (RFC 3501 §2.3.2, §6.4.7)', async () => {
    const {
      c: [a, b],
    } = await clients(2);
    await converse(a!, [
      ['CREATE src', ['<tag> OK [MAILBOXID (<id>)] CREATE completed']],
      [appendCommand('src', message('c1'), ' (\\Seen)'), ['<tag> OK [APPENDUID <v> 1] APPEND completed']],
      [
        appendCommand('src', message('c2'), ' (\\Draft \\Flagged)'),
        ['<tag> OK [APPENDUID <v> 2] APPEND completed'],
      ],
      [appendCommand('src', message('c3')), ['<tag> OK [APPENDUID <v> 3] APPEND completed']],
      ['CREATE dst', ['<tag> OK [MAILBOXID (<id>)] CREATE completed']],
      [
        'EXAMINE src',
        [
          ...selectLines(3, 3, 4).slice(0, 6),
          '* OK [PERMANENTFLAGS ()] No permanent flags permitted',
          '* OK [UNSEEN 2] First unseen',
          '<tag> OK [READ-ONLY] EXAMINE completed',
        ],
      ],
    ]);
    await converse(b!, [['SELECT dst', [...selectLines(0, 0, 1), '<tag> OK [READ-WRITE] SELECT completed']]]);
    await converse(a!, [['COPY 1:2 dst', ['<tag> OK [COPYUID <v> 1:2 1:2] COPY completed']]]);
    await converse(b!, [
      ['NOOP', ['* 2 EXISTS', '* 2 RECENT', '<tag> OK NOOP completed']],
      [
        'FETCH 1:2 FLAGS',
        [
          '* 1 FETCH (FLAGS (\\Seen \\Recent))',
          '* 2 FETCH (FLAGS (\\Draft \\Flagged \\Recent))',
          '<tag> OK FETCH completed',
        ],
      ],
    ]);
    await converse(a!, [
      ['STATUS dst (MESSAGES RECENT)', ['* STATUS dst (MESSAGES 2 RECENT 0)', '<tag> OK STATUS completed']],
    ]);
  });

  it('a new keyword is announced in FLAGS and PERMANENTFLAGS before FETCH shows it, in every session (RFC 9051 §7.3.5)', async () => {
    const {
      user,
      c: [a, b],
    } = await clients(2);
    await converse(a!, [
      [appendCommand('INBOX', message('k1'), ' (\\Seen)'), ['<tag> OK [APPENDUID <v> 1] APPEND completed']],
      ['SELECT INBOX', [...selectLines(1, 1, 2), '<tag> OK [READ-WRITE] SELECT completed']],
    ]);
    await converse(b!, [
      ['SELECT INBOX', [...selectLines(1, 0, 2), '<tag> OK [READ-WRITE] SELECT completed']],
    ]);
    await converse(a!, [
      [
        'STORE 1 +FLAGS (Alpha)',
        [...flagsLines('Alpha'), '* 1 FETCH (FLAGS (\\Seen \\Recent Alpha))', '<tag> OK STORE completed'],
      ],
      // Known now: not announced again.
      ['STORE 1 -FLAGS (Alpha)', ['* 1 FETCH (FLAGS (\\Seen \\Recent))', '<tag> OK STORE completed']],
      [
        'STORE 1 +FLAGS (alpha Beta)',
        [
          ...flagsLines('Alpha Beta'),
          '* 1 FETCH (FLAGS (\\Seen \\Recent alpha Beta))',
          '<tag> OK STORE completed',
        ],
      ],
    ]);
    await converse(b!, [
      [
        'NOOP',
        [
          ...flagsLines('alpha Beta'),
          '* 1 FETCH (UID 1 FLAGS (\\Seen alpha Beta))',
          '<tag> OK NOOP completed',
        ],
      ],
    ]);
    // An APPEND with a keyword into the mailbox the other session has selected.
    await converse(a!, [
      [
        appendCommand('INBOX', message('k2'), ' (Gamma)'),
        [
          ...flagsLines('Alpha Beta Gamma'),
          '* 2 EXISTS',
          '* 2 RECENT',
          '<tag> OK [APPENDUID <v> 2] APPEND completed',
        ],
      ],
    ]);
    await converse(b!, [
      ['NOOP', [...flagsLines('alpha Beta Gamma'), '* 2 EXISTS', '* 0 RECENT', '<tag> OK NOOP completed']],
      ['FETCH 2 FLAGS', ['* 2 FETCH (FLAGS (Gamma))', '<tag> OK FETCH completed']],
    ]);
    // A new session lists every keyword in use at SELECT.
    const fresh = await loggedIn(stack.imapPort, user);
    open.push(fresh);
    await converse(fresh, [
      [
        'EXAMINE INBOX',
        [
          '* 2 EXISTS',
          '* 0 RECENT',
          '* OK [UIDVALIDITY <v>] UIDs valid',
          '* OK [UIDNEXT 3] Predicted next UID',
          '* OK [MAILBOXID (<id>)] Mailbox id',
          `* FLAGS (${SYSTEM} ${COMMON} alpha Beta Gamma)`,
          '* OK [PERMANENTFLAGS ()] No permanent flags permitted',
          '* OK [UNSEEN 2] First unseen',
          '<tag> OK [READ-ONLY] EXAMINE completed',
        ],
      ],
    ]);
  });

  it('LIST (SUBSCRIBED RECURSIVEMATCH) gives CHILDINFO; RECURSIVEMATCH alone is BAD; LSUB % has \\Noselect parents (RFC 5258 §3, RFC 3501 §6.3.9)', async () => {
    const {
      c: [a],
    } = await clients(1);
    await converse(a!, [
      ['CREATE t/one', ['<tag> OK [MAILBOXID (<id>)] CREATE completed']],
      ['CREATE t/two/one', ['<tag> OK [MAILBOXID (<id>)] CREATE completed']],
      ['CREATE t/three', ['<tag> OK [MAILBOXID (<id>)] CREATE completed']],
      ['CREATE t/seven/seven', ['<tag> OK [MAILBOXID (<id>)] CREATE completed']],
      ['CREATE t/eight/eight', ['<tag> OK [MAILBOXID (<id>)] CREATE completed']],
      ['CREATE t/eight/nine', ['<tag> OK [MAILBOXID (<id>)] CREATE completed']],
      ['SUBSCRIBE t/one', ['<tag> OK SUBSCRIBE completed']],
      ['SUBSCRIBE t/two/one', ['<tag> OK SUBSCRIBE completed']],
      ['SUBSCRIBE t/seven/seven', ['<tag> OK SUBSCRIBE completed']],
      ['SUBSCRIBE t/eight/eight', ['<tag> OK SUBSCRIBE completed']],
      ['SUBSCRIBE t/eight/nine', ['<tag> OK SUBSCRIBE completed']],
      ['SUBSCRIBE gone/child', ['<tag> OK SUBSCRIBE completed']],
      ['LIST (RECURSIVEMATCH) "" "*"', ['<tag> BAD RECURSIVEMATCH needs another selection option']],
      ['LIST (RECURSIVEMATCH REMOTE) "" "*"', ['<tag> BAD RECURSIVEMATCH needs another selection option']],
      // The connection is still there after BAD.
      ['NOOP', ['<tag> OK NOOP completed']],
      [
        'LIST (SUBSCRIBED RECURSIVEMATCH) "" t/two%',
        ['* LIST (\\HasChildren) "/" t/two ("CHILDINFO" ("SUBSCRIBED"))', '<tag> OK LIST completed'],
      ],
      // A child that is listed itself does not make CHILDINFO of its parent.
      [
        'LIST (SUBSCRIBED RECURSIVEMATCH) "" *seven',
        ['* LIST (\\HasNoChildren \\Subscribed) "/" t/seven/seven', '<tag> OK LIST completed'],
      ],
      [
        'LIST (SUBSCRIBED RECURSIVEMATCH) "" *eight',
        [
          '* LIST (\\HasChildren) "/" t/eight ("CHILDINFO" ("SUBSCRIBED"))',
          '* LIST (\\HasNoChildren \\Subscribed) "/" t/eight/eight',
          '<tag> OK LIST completed',
        ],
      ],
      [
        'LIST (SUBSCRIBED RECURSIVEMATCH) "" (t/two t/two/one)',
        ['* LIST (\\HasNoChildren \\Subscribed) "/" t/two/one', '<tag> OK LIST completed'],
      ],
      // A parent that does not exist is \NonExistent.
      [
        'LIST (SUBSCRIBED RECURSIVEMATCH) "" %',
        [
          '* LIST (\\HasNoChildren \\Subscribed \\Archive) "/" Archive',
          '* LIST (\\HasNoChildren \\Subscribed \\Drafts) "/" Drafts',
          '* LIST (\\HasNoChildren \\Subscribed) "/" INBOX',
          '* LIST (\\HasNoChildren \\Subscribed \\Junk) "/" Junk',
          '* LIST (\\HasNoChildren \\Subscribed \\Sent) "/" Sent',
          '* LIST (\\HasNoChildren \\Subscribed \\Trash) "/" Trash',
          '* LIST (\\NonExistent) "/" gone ("CHILDINFO" ("SUBSCRIBED"))',
          '* LIST (\\HasChildren) "/" t ("CHILDINFO" ("SUBSCRIBED"))',
          '<tag> OK LIST completed',
        ],
      ],
      [
        'LSUB "" t/%',
        [
          '* LSUB (\\Noselect) "/" t/eight',
          '* LSUB () "/" t/one',
          '* LSUB (\\Noselect) "/" t/seven',
          '* LSUB (\\Noselect) "/" t/two',
          '<tag> OK LSUB completed',
        ],
      ],
      ['LSUB "" t/*/one', ['* LSUB () "/" t/two/one', '<tag> OK LSUB completed']],
    ]);
  });

  it('COPY and MOVE into the selected mailbox itself (RFC 9051 §6.4.7, RFC 6851 §3.3)', async () => {
    const {
      c: [a],
    } = await clients(1);
    await converse(a!, [
      [appendCommand('INBOX', message('m1'), ' (\\Seen)'), ['<tag> OK [APPENDUID <v> 1] APPEND completed']],
      [appendCommand('INBOX', message('m2'), ' (\\Seen)'), ['<tag> OK [APPENDUID <v> 2] APPEND completed']],
      ['SELECT INBOX', [...selectLines(2, 2, 3), '<tag> OK [READ-WRITE] SELECT completed']],
      ['COPY 1 INBOX', ['* 3 EXISTS', '* 3 RECENT', '<tag> OK [COPYUID <v> 1 3] COPY completed']],
      [
        'MOVE 1 INBOX',
        [
          '* OK [COPYUID <v> 1 4] Moved',
          '* 1 EXPUNGE',
          '* 3 EXISTS',
          '* 3 RECENT',
          '<tag> OK MOVE completed',
        ],
      ],
      [
        'UID MOVE 2 inbox',
        [
          '* OK [COPYUID <v> 2 5] Moved',
          '* 1 EXPUNGE',
          '* 3 EXISTS',
          '* 3 RECENT',
          '<tag> OK UID MOVE completed',
        ],
      ],
      [
        'FETCH 1:* (UID FLAGS)',
        [
          '* 1 FETCH (UID 3 FLAGS (\\Seen \\Recent))',
          '* 2 FETCH (UID 4 FLAGS (\\Seen \\Recent))',
          '* 3 FETCH (UID 5 FLAGS (\\Seen \\Recent))',
          '<tag> OK FETCH completed',
        ],
      ],
      [
        'STATUS INBOX (MESSAGES DELETED)',
        ['* STATUS INBOX (MESSAGES 3 DELETED 0)', '<tag> OK STATUS completed'],
      ],
    ]);
  });

  it('mailbox names made of atom-specials: NO or OK, never BAD, and the connection stays (RFC 9051 §5.1, §9)', async () => {
    const {
      c: [a],
    } = await clients(1);
    const name = "!#$&'+,-.0123456789:;<=>?@^_`|[}";
    const q = `"${name}"`;
    // IMAP4rev1 names are modified UTF-7, where "&" must start a valid shift sequence.
    await converse(a!, [
      [`CREATE ${name}`, ['<tag> NO [CANNOT] invalid modified BASE64 in mailbox name']],
      [`CREATE ${q}`, ['<tag> NO [CANNOT] invalid modified BASE64 in mailbox name']],
      [`LIST "" ${name}`, ['<tag> NO [CANNOT] invalid modified BASE64 in mailbox name']],
      [`SELECT ${name}`, ['<tag> NO [CANNOT] invalid modified BASE64 in mailbox name']],
      [`STATUS ${q} (MESSAGES)`, ['<tag> NO [CANNOT] invalid modified BASE64 in mailbox name']],
      [`CREATE ${name.replace('&', '&-')}`, ['<tag> OK [MAILBOXID (<id>)] CREATE completed']],
      [
        `LIST "" ${name.replace('&', '&-')}`,
        [`* LIST (\\HasNoChildren) "/" ${name.replace('&', '&-')}`, '<tag> OK LIST completed'],
      ],
      [`DELETE ${name.replace('&', '&-')}`, ['<tag> OK DELETE completed']],
      ['ENABLE UTF8=ACCEPT', ['* ENABLED UTF8=ACCEPT', '<tag> OK ENABLE completed']],
      [`CREATE ${name}`, ['<tag> OK [MAILBOXID (<id>)] CREATE completed']],
      [`LIST "" ${q}`, [`* LIST (\\HasNoChildren) "/" ${name}`, '<tag> OK LIST completed']],
      [`SELECT ${name}`, [...selectLines(0, 0, 1), '<tag> OK [READ-WRITE] SELECT completed']],
      ['NOOP', ['<tag> OK NOOP completed']],
    ]);
  });

  it('SEARCH address keys match addresses, display names, comments and groups (RFC 9051 §6.4.4)', async () => {
    const {
      c: [a],
    } = await clients(1);
    const raw = (headers: string): Buffer => Buffer.from(`${headers}\r\n\r\nbody\r\n`);
    const corpus = [
      raw(
        'From: one-from@example.net\r\nTo: one-to@example.net\r\nCc: one-cc@example.net\r\nBcc: one-bcc@example.net',
      ),
      raw(
        'From: Named Sender <one-from@example.net>\r\nTo: Named Rcpt <one-to@example.net>\r\nCc: Named Copy <one-cc@example.net>',
      ),
      raw('From: one-from@example.net (Commented Sender)\r\nTo: <one-to (note) @ (note) example.net>'),
      raw('From: first-a@example.net, first-b@example.net'),
      raw('To: crew: deck-one@example.net, deck-two@example.net;, galley: cook@example.net;'),
    ];
    const steps: [string | Buffer, string[]][] = corpus.map((m, i) => [
      appendCommand('INBOX', m),
      [`<tag> OK [APPENDUID <v> ${i + 1}] APPEND completed`],
    ]);
    await converse(a!, [
      ...steps,
      [
        'EXAMINE INBOX',
        [
          ...selectLines(5, 5, 6).slice(0, 6),
          '* OK [PERMANENTFLAGS ()] No permanent flags permitted',
          '* OK [UNSEEN 1] First unseen',
          '<tag> OK [READ-ONLY] EXAMINE completed',
        ],
      ],
      ['SEARCH FROM one-from@example.net', ['* SEARCH 1 2 3', '<tag> OK SEARCH completed']],
      ['SEARCH TO one-to@example.net', ['* SEARCH 1 2 3', '<tag> OK SEARCH completed']],
      ['SEARCH CC one-cc', ['* SEARCH 1 2', '<tag> OK SEARCH completed']],
      ['SEARCH BCC ne-bc', ['* SEARCH 1', '<tag> OK SEARCH completed']],
      ['SEARCH FROM "named sender"', ['* SEARCH 2', '<tag> OK SEARCH completed']],
      ['SEARCH TO rcpt', ['* SEARCH 2', '<tag> OK SEARCH completed']],
      ['SEARCH FROM first-b', ['* SEARCH 4', '<tag> OK SEARCH completed']],
      ['SEARCH TO crew', ['* SEARCH 5', '<tag> OK SEARCH completed']],
      ['SEARCH TO galley', ['* SEARCH 5', '<tag> OK SEARCH completed']],
      ['SEARCH TO deck-two@example.net', ['* SEARCH 5', '<tag> OK SEARCH completed']],
      ['SEARCH TO cook', ['* SEARCH 5', '<tag> OK SEARCH completed']],
      ['SEARCH TO nobody', ['* SEARCH', '<tag> OK SEARCH completed']],
      ['SEARCH HEADER TO ""', ['* SEARCH 1 2 3 5', '<tag> OK SEARCH completed']],
    ]);
  });

  it('BINARY: a part appended as literal8 is fetched back byte-exact (RFC 3516 §4.2, §4.4)', async () => {
    const {
      c: [a],
    } = await clients(1);
    const payload = Buffer.from([0x00, 0x01, 0xff, 0x0d, 0x0a, 0x00, 0x80, 0x41, 0x0a, 0x0d, 0x00]);
    const head = Buffer.from(
      'From: b@example.org\r\nSubject: bin\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=BB\r\n\r\n' +
        '--BB\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n',
    );
    const tail = Buffer.from('\r\n--BB--\r\n');
    const msg = Buffer.concat([head, payload, tail]);
    const append = Buffer.concat([Buffer.from(`APPEND INBOX ~{${msg.length}+}\r\n`), msg]);
    await converse(a!, [
      [append, ['<tag> OK [APPENDUID <v> 1] APPEND completed']],
      [
        'SELECT INBOX',
        [...selectLines(1, 1, 2), '* OK [UNSEEN 1] First unseen', '<tag> OK [READ-WRITE] SELECT completed'],
      ],
      [
        'FETCH 1 BINARY.SIZE[1]',
        [`* 1 FETCH (BINARY.SIZE[1] ${payload.length})`, '<tag> OK FETCH completed'],
      ],
    ]);
    const peek = await a!.command('B1', 'FETCH 1 BINARY.PEEK[1]');
    expect(Buffer.from(peek, 'latin1')).toEqual(
      Buffer.concat([
        Buffer.from(`* 1 FETCH (BINARY[1] ~{${payload.length}}\r\n`),
        payload,
        Buffer.from(')\r\nB1 OK FETCH completed\r\n'),
      ]),
    );
    const seen = await a!.command('B2', 'FETCH 1 BINARY[1]');
    expect(Buffer.from(seen, 'latin1')).toEqual(
      Buffer.concat([
        Buffer.from(`* 1 FETCH (BINARY[1] ~{${payload.length}}\r\n`),
        payload,
        Buffer.from(' FLAGS (\\Seen \\Recent))\r\nB2 OK FETCH completed\r\n'),
      ]),
    );
    // The stored message is the appended one, every octet of it.
    const whole = await a!.command('B3', 'FETCH 1 BODY.PEEK[]');
    expect(Buffer.from(whole, 'latin1').includes(msg)).toBe(true);
  });
});
