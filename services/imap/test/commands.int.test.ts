/**
 * One scripted conversation per command against the real server over a socket (RFC 9051 §6),
 * with the exact server bytes expected. Each test logs in as a fresh user.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { TestClient, loggedIn, quote } from './client.js';
import { appendCommand, converse, type Step } from './conversation.js';
import { message, startImapStack, type ImapStack, type TestUser } from './harness.js';

const DATE = '"07-Feb-1994 21:52:25 -0800"';
const FIRST = message('first');
const MULTIPART = Buffer.from(
  'From: b@example.org\r\nSubject: second\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n' +
    '--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n' +
    '--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--XX--\r\n',
  'latin1',
);
const CAPS =
  'IMAP4rev2 IMAP4rev1 LITERAL+ SASL-IR ENABLE IDLE NAMESPACE UIDPLUS MOVE UNSELECT CHILDREN SPECIAL-USE CREATE-SPECIAL-USE ' +
  'LIST-EXTENDED LIST-STATUS ESEARCH ID BINARY STATUS=SIZE UTF8=ACCEPT COMPRESS=DEFLATE QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE ' +
  'SORT SORT=DISPLAY ESORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES WITHIN SEARCHRES CONDSTORE QRESYNC PREVIEW OBJECTID ACL RIGHTS=texk APPENDLIMIT=67108864';
/** Before authentication: LITERAL- instead of LITERAL+ (RFC 7888 §5). */
const PRE_CAPS = CAPS.replace('LITERAL+', 'LITERAL-');
const SELECT_FLAGS = [
  '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $MDNSent $Junk $NotJunk)',
  '* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $MDNSent $Junk $NotJunk \\*)] Flags permitted',
];
const DEFAULT_LIST = [
  '* LIST (\\HasNoChildren \\Archive) "/" Archive',
  '* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
  '* LIST (\\HasNoChildren) "/" INBOX',
  '* LIST (\\HasNoChildren \\Junk) "/" Junk',
  '* LIST (\\HasNoChildren \\Sent) "/" Sent',
  '* LIST (\\HasNoChildren \\Trash) "/" Trash',
];

describe('IMAP commands, exact bytes over a socket', () => {
  let stack: ImapStack;
  beforeAll(async () => {
    stack = await startImapStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  async function session(): Promise<{ client: TestClient; user: TestUser }> {
    const user = await stack.createUser();
    return { client: await loggedIn(stack.imapPort, user), user };
  }

  /** A session with two messages in INBOX (1: \Seen, dated 1994; 2: multipart) and INBOX selected. */
  async function selected(): Promise<TestClient> {
    const { client } = await session();
    await converse(
      client,
      [
        [appendCommand('INBOX', FIRST, ` (\\Seen) ${DATE}`), ['<tag> OK [APPENDUID <v> 1] APPEND completed']],
        [appendCommand('INBOX', MULTIPART), ['<tag> OK [APPENDUID <v> 2] APPEND completed']],
        [
          'SELECT INBOX',
          [
            '* 2 EXISTS',
            '* 2 RECENT',
            '* OK [UIDVALIDITY <v>] UIDs valid',
            '* OK [UIDNEXT 3] Predicted next UID',
            '* OK [MAILBOXID (<id>)] Mailbox id',
            ...SELECT_FLAGS,
            '* OK [UNSEEN 2] First unseen',
            '<tag> OK [READ-WRITE] SELECT completed',
          ],
        ],
      ],
      'S',
    );
    return client;
  }

  const run = async (steps: readonly Step[], client?: TestClient): Promise<void> => {
    const c = client ?? (await session()).client;
    try {
      await converse(c, steps);
    } finally {
      c.close();
    }
  };

  it('greets with its capabilities, and CAPABILITY lists them (RFC 9051 §6.1.1, §7.1.1)', async () => {
    const client = await TestClient.connect(stack.imapPort);
    const greeting = await client.readLine('* OK');
    // Plaintext is allowed in this test stack, so AUTH= mechanisms are offered before STARTTLS.
    if (greeting !== `* OK [CAPABILITY ${PRE_CAPS} STARTTLS AUTH=PLAIN AUTH=LOGIN] Postmesh IMAP ready\r\n`) {
      throw new Error(`unexpected greeting ${greeting}`);
    }
    await run(
      [
        [
          'CAPABILITY',
          [`* CAPABILITY ${PRE_CAPS} STARTTLS AUTH=PLAIN AUTH=LOGIN`, '<tag> OK CAPABILITY completed'],
        ],
      ],
      client,
    );
  });

  it('NOOP, ID, NAMESPACE, ENABLE (RFC 9051 §6.1.2, RFC 2971, §6.3.10, RFC 5161)', async () => {
    await run([
      ['NOOP', ['<tag> OK NOOP completed']],
      [
        'ID ("name" "test")',
        ['* ID ("name" "Postmesh IMAP" "vendor" "Postmesh" "version" "0.1.0")', '<tag> OK ID completed'],
      ],
      ['NAMESPACE', ['* NAMESPACE (("" "/")) (("Other Users/" "/")) NIL', '<tag> OK NAMESPACE completed']],
      ['ENABLE UTF8=ACCEPT X-UNKNOWN', ['* ENABLED UTF8=ACCEPT', '<tag> OK ENABLE completed']],
      ['ENABLE UTF8=ACCEPT', ['* ENABLED', '<tag> OK ENABLE completed']],
    ]);
  });

  it('LOGIN: good, bad and repeated (RFC 9051 §6.2.3, RFC 5530 AUTHENTICATIONFAILED)', async () => {
    const user = await stack.createUser();
    const client = await TestClient.connect(stack.imapPort);
    await client.readLine('* OK');
    await run(
      [
        [`LOGIN ${user.address} wrong`, ['<tag> NO [AUTHENTICATIONFAILED] Invalid credentials']],
        ['SELECT INBOX', ['<tag> BAD SELECT is not allowed in the not authenticated state']],
        [`LOGIN ${user.address} ${quote(user.password)}`, [`<tag> OK [CAPABILITY ${CAPS}] Logged in`]],
        [
          `LOGIN ${user.address} ${quote(user.password)}`,
          ['<tag> BAD LOGIN is not allowed in the authenticated state'],
        ],
      ],
      client,
    );
  });

  it('AUTHENTICATE PLAIN with SASL-IR and with a continuation, LOGIN, and cancel (RFC 9051 §6.2.2, RFC 4959)', async () => {
    const user = await stack.createUser();
    const plain = Buffer.from(`\0${user.address}\0${user.password}`).toString('base64');
    const ir = await TestClient.connect(stack.imapPort);
    await ir.readLine('* OK');
    await run([[`AUTHENTICATE PLAIN ${plain}`, [`<tag> OK [CAPABILITY ${CAPS}] Logged in`]]], ir);

    const cont = await TestClient.connect(stack.imapPort);
    await cont.readLine('* OK');
    cont.write('A1 AUTHENTICATE PLAIN\r\n');
    if ((await cont.readLine('+')) !== '+ \r\n') throw new Error('expected an empty challenge');
    cont.write(`${plain}\r\n`);
    if ((await cont.readLine('A1 ')) !== `A1 OK [CAPABILITY ${CAPS}] Logged in\r\n`)
      throw new Error('PLAIN failed');
    cont.close();

    const login = await TestClient.connect(stack.imapPort);
    await login.readLine('* OK');
    login.write('A1 AUTHENTICATE LOGIN\r\n');
    if ((await login.readLine('+')) !== `+ ${Buffer.from('Username:').toString('base64')}\r\n`)
      throw new Error('user');
    login.write(`${Buffer.from(user.address).toString('base64')}\r\n`);
    if ((await login.readLine('+')) !== `+ ${Buffer.from('Password:').toString('base64')}\r\n`)
      throw new Error('pw');
    login.write(`${Buffer.from('nope').toString('base64')}\r\n`);
    if ((await login.readLine('A1 ')) !== 'A1 NO [AUTHENTICATIONFAILED] Invalid credentials\r\n')
      throw new Error('LOGIN');
    login.write('A2 AUTHENTICATE PLAIN\r\n');
    await login.readLine('+');
    login.write('*\r\n');
    if ((await login.readLine('A2 ')) !== 'A2 BAD Authentication cancelled\r\n') throw new Error('cancel');
    await run([['AUTHENTICATE CRAM-MD5', ['<tag> NO [CANNOT] Unsupported authentication mechanism']]], login);
  });

  it('LIST: plain, delimiter, LIST-EXTENDED, SPECIAL-USE, LIST-STATUS (RFC 9051 §6.3.9, RFC 5258, 6154, 5819)', async () => {
    await run([
      ['LIST "" ""', ['* LIST (\\Noselect) "/" ""', '<tag> OK LIST completed']],
      ['LIST "" "*"', [...DEFAULT_LIST, '<tag> OK LIST completed']],
      ['LIST "" "I%"', ['* LIST (\\HasNoChildren) "/" INBOX', '<tag> OK LIST completed']],
      [
        'LIST (SUBSCRIBED) "" "*" RETURN (CHILDREN)',
        [
          ...DEFAULT_LIST.map((l) => l.replace('Children', 'Children \\Subscribed')),
          '<tag> OK LIST completed',
        ],
      ],
      [
        'LIST (SPECIAL-USE) "" "*"',
        [...DEFAULT_LIST.filter((l) => !l.endsWith('INBOX')), '<tag> OK LIST completed'],
      ],
      [
        'LIST "" ("INBOX" "Sent") RETURN (STATUS (MESSAGES UNSEEN SIZE))',
        [
          '* LIST (\\HasNoChildren) "/" INBOX',
          '* STATUS INBOX (MESSAGES 0 UNSEEN 0 SIZE 0)',
          '* LIST (\\HasNoChildren \\Sent) "/" Sent',
          '* STATUS Sent (MESSAGES 0 UNSEEN 0 SIZE 0)',
          '<tag> OK LIST completed',
        ],
      ],
    ]);
  });

  it('CREATE, RENAME, DELETE with children, special use and failures (RFC 9051 §6.3.4-§6.3.6, RFC 5530)', async () => {
    await run([
      ['CREATE Work/Projects', ['<tag> OK [MAILBOXID (<id>)] CREATE completed']],
      [
        'LIST "" "Work*"',
        [
          '* LIST (\\HasChildren) "/" Work',
          '* LIST (\\HasNoChildren) "/" Work/Projects',
          '<tag> OK LIST completed',
        ],
      ],
      ['CREATE Work', ['<tag> NO [ALREADYEXISTS] Mailbox already exists']],
      ['CREATE INBOX', ['<tag> NO [ALREADYEXISTS] Mailbox already exists']],
      ['CREATE Saved (USE (\\Archive))', ['<tag> NO [USEATTR] Special use already in use']],
      ['CREATE Later (USE (\\Important))', ['<tag> NO [USEATTR] Unsupported special use']],
      ['RENAME Work/Projects Work/Old', ['<tag> OK RENAME completed']],
      ['RENAME Nowhere Else', ['<tag> NO [NONEXISTENT] No such mailbox or message']],
      ['DELETE Work/Old', ['<tag> OK DELETE completed']],
      ['DELETE INBOX', ['<tag> NO [CANNOT] Operation not allowed on this mailbox']],
      ['LIST "" "Work*"', ['* LIST (\\HasNoChildren) "/" Work', '<tag> OK LIST completed']],
      ['CREATE "&AMk-t&AOk-"', ['<tag> OK [MAILBOXID (<id>)] CREATE completed']],
      ['LIST "" "&AMk-*"', ['* LIST (\\HasNoChildren) "/" &AMk-t&AOk-', '<tag> OK LIST completed']],
    ]);
  });

  it('SUBSCRIBE, UNSUBSCRIBE, LSUB (RFC 9051 §6.3.7-§6.3.8, RFC 3501 §6.3.9)', async () => {
    await run([
      ['CREATE Lists', ['<tag> OK [MAILBOXID (<id>)] CREATE completed']],
      ['SUBSCRIBE Lists', ['<tag> OK SUBSCRIBE completed']],
      ['LSUB "" "L*"', ['* LSUB () "/" Lists', '<tag> OK LSUB completed']],
      ['DELETE Lists', ['<tag> OK DELETE completed']],
      ['LSUB "" "L*"', ['* LSUB (\\Noselect) "/" Lists', '<tag> OK LSUB completed']],
      ['UNSUBSCRIBE Lists', ['<tag> OK UNSUBSCRIBE completed']],
      ['LSUB "" "L*"', ['<tag> OK LSUB completed']],
    ]);
  });

  it('STATUS with SIZE, DELETED, APPENDLIMIT (RFC 9051 §6.3.11, RFC 8438, RFC 7889)', async () => {
    await run([
      [appendCommand('INBOX', FIRST, ' (\\Deleted)'), ['<tag> OK [APPENDUID <v> 1] APPEND completed']],
      [
        'STATUS INBOX (MESSAGES UIDNEXT UNSEEN DELETED SIZE APPENDLIMIT)',
        [
          '* STATUS INBOX (MESSAGES 1 UIDNEXT 2 UNSEEN 1 DELETED 1 SIZE 164 APPENDLIMIT 67108864)',
          '<tag> OK STATUS completed',
        ],
      ],
      ['STATUS Missing (MESSAGES)', ['<tag> NO [NONEXISTENT] No such mailbox']],
    ]);
  });

  it('APPEND: flags, date, synchronizing literal, TRYCREATE, TOOBIG (RFC 9051 §6.3.12, RFC 4315, RFC 7889)', async () => {
    const { client } = await session();
    await converse(client, [
      [
        appendCommand('INBOX', FIRST, ` (\\Seen $Forwarded) ${DATE}`),
        ['<tag> OK [APPENDUID <v> 1] APPEND completed'],
      ],
      [appendCommand('Nope', FIRST), ['<tag> NO [TRYCREATE] No such mailbox']],
    ]);
    client.write(`B1 APPEND INBOX {${FIRST.length}}\r\n`);
    if ((await client.readLine('+')) !== '+ Ready\r\n') throw new Error('no continuation');
    client.write(Buffer.concat([FIRST, Buffer.from('\r\n')]));
    if (!(await client.readLine('B1 ')).startsWith('B1 OK [APPENDUID '))
      throw new Error('sync literal APPEND failed');
    client.write('B2 APPEND INBOX {67108865}\r\n');
    const toobig = await client.readLine('B2 ');
    if (!toobig.startsWith('B2 NO [TOOBIG] ')) throw new Error(`expected TOOBIG, got ${toobig}`);
    await converse(
      client,
      [
        [
          'EXAMINE INBOX',
          [
            '* 2 EXISTS',
            // RFC 3501 §2.3.2, §6.3.2: no session has seen them; EXAMINE shows them recent and
            // leaves them so.
            '* 2 RECENT',
            '* OK [UIDVALIDITY <v>] UIDs valid',
            '* OK [UIDNEXT 3] Predicted next UID',
            '* OK [MAILBOXID (<id>)] Mailbox id',
            SELECT_FLAGS[0]!,
            '* OK [PERMANENTFLAGS ()] No permanent flags permitted',
            '* OK [UNSEEN 2] First unseen',
            '<tag> OK [READ-ONLY] EXAMINE completed',
          ],
        ],
        [
          'FETCH 1 (FLAGS INTERNALDATE)',
          [
            '* 1 FETCH (FLAGS (\\Seen \\Recent $Forwarded) INTERNALDATE " 8-Feb-1994 05:52:25 +0000")',
            '<tag> OK FETCH completed',
          ],
        ],
      ],
      'C',
    );
    client.close();
  });

  it('SELECT and EXAMINE, CLOSED on reselect, EXAMINE is read-only (RFC 9051 §6.3.2-§6.3.3)', async () => {
    const client = await selected();
    await run(
      [
        [
          'EXAMINE INBOX',
          [
            '* OK [CLOSED] Previous mailbox closed',
            '* 2 EXISTS',
            '* 0 RECENT',
            '* OK [UIDVALIDITY <v>] UIDs valid',
            '* OK [UIDNEXT 3] Predicted next UID',
            '* OK [MAILBOXID (<id>)] Mailbox id',
            SELECT_FLAGS[0]!,
            '* OK [PERMANENTFLAGS ()] No permanent flags permitted',
            '* OK [UNSEEN 2] First unseen',
            '<tag> OK [READ-ONLY] EXAMINE completed',
          ],
        ],
        ['STORE 1 +FLAGS (\\Flagged)', ['<tag> NO [READ-ONLY] Mailbox is read-only']],
        ['FETCH 2 BODY[1]', ['* 2 FETCH (BODY[1] {5}', 'hello)', '<tag> OK FETCH completed']],
        ['FETCH 2 FLAGS', ['* 2 FETCH (FLAGS ())', '<tag> OK FETCH completed']],
        ['EXPUNGE', ['<tag> NO [READ-ONLY] Mailbox is read-only']],
        ['SELECT Nope', ['* OK [CLOSED] Previous mailbox closed', '<tag> NO [NONEXISTENT] No such mailbox']],
        ['FETCH 1 FLAGS', ['<tag> BAD FETCH is not allowed in the authenticated state']],
      ],
      client,
    );
  });

  it('FETCH: attributes, sections, partials, BINARY, and \\Seen from BODY[] (RFC 9051 §6.4.5, RFC 3516)', async () => {
    const client = await selected();
    await run(
      [
        [
          'FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)',
          [
            '* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent) RFC822.SIZE 164 INTERNALDATE " 8-Feb-1994 05:52:25 +0000")',
            '* 2 FETCH (UID 2 FLAGS (\\Recent) RFC822.SIZE 226 INTERNALDATE "<now>")',
            '<tag> OK FETCH completed',
          ],
        ],
        [
          'FETCH 1 ENVELOPE',
          [
            '* 1 FETCH (ENVELOPE ("Mon, 7 Feb 1994 21:52:25 -0800" "first" (("Alice" NIL "alice" "example.org")) (("Alice" NIL "alice" "example.org")) (("Alice" NIL "alice" "example.org")) (("Bob" NIL "bob" "example.test")) NIL NIL NIL "<first@example.org>"))',
            '<tag> OK FETCH completed',
          ],
        ],
        [
          'FETCH 2 (BODYSTRUCTURE BODY)',
          [
            '* 2 FETCH (BODYSTRUCTURE (("TEXT" "PLAIN" NIL NIL NIL "7BIT" 5 1 NIL NIL NIL NIL)("APPLICATION" "OCTET-STREAM" NIL NIL NIL "BASE64" 8 NIL NIL NIL NIL) "MIXED" ("BOUNDARY" "XX") NIL NIL NIL) BODY (("TEXT" "PLAIN" NIL NIL NIL "7BIT" 5 1)("APPLICATION" "OCTET-STREAM" NIL NIL NIL "BASE64" 8) "MIXED"))',
            '<tag> OK FETCH completed',
          ],
        ],
        [
          'FETCH 2 (BINARY.PEEK[2] BINARY.SIZE[2] BODY.PEEK[2.MIME] BODY.PEEK[1]<0.3>)',
          [
            '* 2 FETCH (BINARY[2] ~{4}',
            '\x00\x01\x02\x03 BINARY.SIZE[2] 4 BODY[2.MIME] {77}',
            'Content-Type: application/octet-stream',
            'Content-Transfer-Encoding: base64',
            '',
            ' BODY[1]<0> {3}',
            'hel)',
            '<tag> OK FETCH completed',
          ],
        ],
        [
          'UID FETCH 1 (BODY.PEEK[HEADER.FIELDS (Subject From)] BODY.PEEK[HEADER.FIELDS.NOT (Date Message-ID To)])',
          [
            '* 1 FETCH (UID 1 BODY[HEADER.FIELDS (SUBJECT FROM)] {51}',
            'From: Alice <alice@example.org>',
            'Subject: first',
            '',
            ' BODY[HEADER.FIELDS.NOT (DATE MESSAGE-ID TO)] {51}',
            'From: Alice <alice@example.org>',
            'Subject: first',
            '',
            ')',
            '<tag> OK UID FETCH completed',
          ],
        ],
        [
          'FETCH 2 (BODY[TEXT]<0.10> RFC822.SIZE)',
          [
            '* 2 FETCH (BODY[TEXT]<0> {10}',
            '--XX\r\nCont RFC822.SIZE 226 FLAGS (\\Seen \\Recent))',
            '<tag> OK FETCH completed',
          ],
        ],
        ['FETCH 2 FLAGS', ['* 2 FETCH (FLAGS (\\Seen \\Recent))', '<tag> OK FETCH completed']],
        ['FETCH 3 FLAGS', ['<tag> BAD Invalid message sequence number']],
        ['UID FETCH 3:9 FLAGS', ['<tag> OK UID FETCH completed']],
        [
          'FETCH 1 (RFC822.HEADER)',
          [
            '* 1 FETCH (RFC822.HEADER {150}',
            'From: Alice <alice@example.org>',
            'To: Bob <bob@example.test>',
            'Subject: first',
            'Date: Mon, 7 Feb 1994 21:52:25 -0800',
            'Message-ID: <first@example.org>',
            '',
            ')',
            '<tag> OK FETCH completed',
          ],
        ],
        // RFC 9051 §7.5.2: a part the message does not have is NIL, not a response left out.
        ['FETCH 1 (BODY[5])', ['* 1 FETCH (BODY[5] NIL)', '<tag> OK FETCH completed']],
      ],
      client,
    );
  });

  it('SEARCH and UID SEARCH with ESEARCH return options and charsets (RFC 9051 §6.4.4, RFC 4731)', async () => {
    const client = await selected();
    await run(
      [
        ['SEARCH UNSEEN', ['* SEARCH 2', '<tag> OK SEARCH completed']],
        ['SEARCH SUBJECT second', ['* SEARCH 2', '<tag> OK SEARCH completed']],
        ['SEARCH CHARSET UTF-8 FROM alice', ['* SEARCH 1', '<tag> OK SEARCH completed']],
        ['SEARCH OR SEEN SUBJECT second NOT DELETED', ['* SEARCH 1 2', '<tag> OK SEARCH completed']],
        ['SEARCH 2:* SINCE 1-Jan-2000', ['* SEARCH 2', '<tag> OK SEARCH completed']],
        ['SEARCH SENTBEFORE 1-Jan-1995', ['* SEARCH 1', '<tag> OK SEARCH completed']],
        ['SEARCH LARGER 200 SMALLER 1000', ['* SEARCH 2', '<tag> OK SEARCH completed']],
        ['SEARCH NEW', ['* SEARCH 2', '<tag> OK SEARCH completed']],
        [
          'UID SEARCH RETURN (COUNT MIN MAX) ALL',
          ['* ESEARCH (TAG "<tag>") UID MIN 1 MAX 2 COUNT 2', '<tag> OK UID SEARCH completed'],
        ],
        ['SEARCH RETURN () KEYWORD $Junk', ['* ESEARCH (TAG "<tag>")', '<tag> OK SEARCH completed']],
        ['SEARCH CHARSET KOI8-R ALL', ['<tag> NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset']],
        ['SEARCH FOO', ['<tag> BAD unknown search key FOO']],
      ],
      client,
    );
  });

  it('STORE and UID STORE: +, -, replace, .SILENT, keywords (RFC 9051 §6.4.6)', async () => {
    const client = await selected();
    await run(
      [
        ['STORE 1:2 +FLAGS.SILENT (\\Deleted)', ['<tag> OK STORE completed']],
        ['STORE 2 -FLAGS ($Junk \\Deleted)', ['* 2 FETCH (FLAGS (\\Recent))', '<tag> OK STORE completed']],
        [
          'UID STORE 2 FLAGS (\\Answered Custom)',
          [
            // RFC 9051 §7.3.5: a new keyword is in FLAGS before a FETCH shows it.
            '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $MDNSent $Junk $NotJunk Custom)',
            '* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $MDNSent $Junk $NotJunk Custom \\*)] Flags permitted',
            '* 2 FETCH (UID 2 FLAGS (\\Answered \\Recent Custom))',
            '<tag> OK UID STORE completed',
          ],
        ],
        [
          'STORE 1 +FLAGS (\\Deleted)',
          ['* 1 FETCH (FLAGS (\\Seen \\Deleted \\Recent))', '<tag> OK STORE completed'],
        ],
        ['STORE 1 FLAGS (\\Bogus)', ['* 1 FETCH (FLAGS (\\Recent))', '<tag> OK STORE completed']],
      ],
      client,
    );
  });

  it('COPY, MOVE, UID MOVE with COPYUID and TRYCREATE (RFC 9051 §6.4.7-§6.4.8, RFC 6851, RFC 4315)', async () => {
    const client = await selected();
    await run(
      [
        ['COPY 2 Nope', ['<tag> NO [TRYCREATE] No such mailbox']],
        ['COPY 1:2 Archive', ['<tag> OK [COPYUID <v> 1:2 1:2] COPY completed']],
        [
          'UID MOVE 2 Archive',
          ['* OK [COPYUID <v> 2 3] Moved', '* 2 EXPUNGE', '<tag> OK UID MOVE completed'],
        ],
        ['MOVE 1 Trash', ['* OK [COPYUID <v> 1 1] Moved', '* 1 EXPUNGE', '<tag> OK MOVE completed']],
        ['STATUS Archive (MESSAGES)', ['* STATUS Archive (MESSAGES 3)', '<tag> OK STATUS completed']],
      ],
      client,
    );
  });

  it('EXPUNGE, UID EXPUNGE, CLOSE, UNSELECT (RFC 9051 §6.4.1-§6.4.3, RFC 4315 §2.1)', async () => {
    const client = await selected();
    await run(
      [
        [
          appendCommand('INBOX', FIRST),
          // RFC 3501 §2.3.2: this session is the first told about it, so it is \Recent here.
          ['* 3 EXISTS', '* 3 RECENT', '<tag> OK [APPENDUID <v> 3] APPEND completed'],
        ],
        ['STORE 1:3 +FLAGS.SILENT (\\Deleted)', ['<tag> OK STORE completed']],
        ['UID EXPUNGE 2', ['* 2 EXPUNGE', '<tag> OK UID EXPUNGE completed']],
        ['EXPUNGE', ['* 2 EXPUNGE', '* 1 EXPUNGE', '<tag> OK EXPUNGE completed']],
        [
          appendCommand('INBOX', FIRST, ' (\\Deleted)'),
          ['* 1 EXISTS', '* 1 RECENT', '<tag> OK [APPENDUID <v> 4] APPEND completed'],
        ],
        ['UNSELECT', ['<tag> OK UNSELECT completed']],
        [
          'STATUS INBOX (MESSAGES RECENT)',
          ['* STATUS INBOX (MESSAGES 1 RECENT 0)', '<tag> OK STATUS completed'],
        ],
        // RFC 3501 §2.3.2: the session that had it selected saw it first, so no later one does.
        [
          'SELECT INBOX',
          [
            '* 1 EXISTS',
            '* 0 RECENT',
            '* OK [UIDVALIDITY <v>] UIDs valid',
            '* OK [UIDNEXT 5] Predicted next UID',
            '* OK [MAILBOXID (<id>)] Mailbox id',
            ...SELECT_FLAGS,
            '* OK [UNSEEN 1] First unseen',
            '<tag> OK [READ-WRITE] SELECT completed',
          ],
        ],
        ['CHECK', ['<tag> OK CHECK completed']],
        ['CLOSE', ['<tag> OK CLOSE completed']],
        ['STATUS INBOX (MESSAGES)', ['* STATUS INBOX (MESSAGES 0)', '<tag> OK STATUS completed']],
      ],
      client,
    );
  });

  it('IDLE announces a new message and ends on DONE (RFC 9051 §6.3.13, RFC 2177)', async () => {
    const { client, user } = await session();
    await converse(client, [
      [
        'SELECT Drafts',
        [
          '* 0 EXISTS',
          '* 0 RECENT',
          '* OK [UIDVALIDITY <v>] UIDs valid',
          '* OK [UIDNEXT 1] Predicted next UID',
          '* OK [MAILBOXID (<id>)] Mailbox id',
          ...SELECT_FLAGS,
          '<tag> OK [READ-WRITE] SELECT completed',
        ],
      ],
    ]);
    client.write('I1 IDLE\r\n');
    if ((await client.readLine('+')) !== '+ idling\r\n') throw new Error('no idling');
    await stack.grpc.mailstore.appendMessage({
      userId: user.id,
      mailbox: { selector: { $case: 'path', value: 'Drafts' } },
      flags: [],
      keywords: [],
      internalDate: undefined,
      message: FIRST,
    });
    if ((await client.readLine('* 1 EXISTS')) !== '* 1 EXISTS\r\n') throw new Error('no EXISTS');
    if ((await client.readLine('* 1 RECENT')) !== '* 1 RECENT\r\n') throw new Error('no RECENT');
    client.write('DONE\r\n');
    if ((await client.readLine('I1 ')) !== 'I1 OK IDLE terminated\r\n') throw new Error('IDLE did not end');
    client.write('I2 IDLE\r\n');
    await client.readLine('+');
    client.write('NOPE\r\n');
    if ((await client.readLine('I2 ')) !== 'I2 BAD Expected DONE\r\n') throw new Error('expected BAD');
    client.close();
  });

  it('syntax errors are BAD with a reason; LOGOUT says BYE and closes (RFC 9051 §7.1.3, §6.1.3)', async () => {
    const { client } = await session();
    await converse(client, [
      ['BOGUS', ['<tag> BAD unknown command BOGUS']],
      ['FETCH', ['<tag> BAD missing argument']],
      ['FETCH 1 FLAGS', ['<tag> BAD FETCH is not allowed in the authenticated state']],
      ['LIST "" "*" extra junk', ['<tag> BAD expected RETURN']],
      ['NOOP extra', ['<tag> BAD unexpected " extra" at end of command']],
    ]);
    client.write('* NOOP\r\n');
    const untagged = await client.readLine('* BAD');
    if (!untagged.startsWith('* BAD')) throw new Error(untagged);
    await converse(client, [['LOGOUT', ['* BYE Logging out', '<tag> OK LOGOUT completed']]], 'Z');
    await client.waitClosed();
  });
});
