/**
 * IMAP extensions as exact-bytes conversations against the real imap and storage services:
 * - QUOTA (RFC 9208): GETQUOTAROOT / GETQUOTA from the user's storage and message quotas, APPEND and COPY
 *   over quota refused with `NO [OVERQUOTA]`, no quota root for a user without limits;
 * - COMPRESS=DEFLATE (RFC 4978) end to end with Python's zlib, in plaintext and over TLS,
 *   through SELECT, APPEND, FETCH and IDLE; and with imapflow, which turns it on by itself;
 * - SORT / ESORT (RFC 5256, RFC 5267, RFC 5957) and THREAD=ORDEREDSUBJECT / REFERENCES on a
 *   fixed corpus with Re:/Fwd:/[list]/(fwd) subjects, a missing Date: and a missing parent.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ErrorReason } from '@postmesh/contracts';
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loggedIn, type TestClient } from './client.js';
import { appendCommand, converse, normalize } from './conversation.js';
import { message, startImapStack, type ImapStack } from './harness.js';

const HERE = import.meta.dirname;

describe('QUOTA, COMPRESS, SORT and THREAD', () => {
  let stack: ImapStack;
  const open: TestClient[] = [];

  beforeAll(async () => {
    stack = await startImapStack();
  });
  afterAll(async () => {
    for (const c of open) c.close();
    await stack?.stop();
  });

  it('QUOTA MESSAGE: the message count limit, APPEND / COPY / delivery over it, MOVE and EXPUNGE (RFC 9208 §5.2)', async () => {
    const user = await stack.createUser(undefined, 10 * 1024, 3);
    const client = await loggedIn(stack.imapPort, user);
    open.push(client);
    const small = message('m', 'x\r\n');
    const overQuota = ['<tag> NO [OVERQUOTA] Quota exceeded'];
    await converse(client, [
      // RFC 9208 §5.2: MESSAGE counts the messages of every mailbox under the root.
      [
        'GETQUOTAROOT INBOX',
        ['* QUOTAROOT INBOX ""', '* QUOTA "" (STORAGE 0 10 MESSAGE 0 3)', '<tag> OK GETQUOTAROOT completed'],
      ],
      [appendCommand('INBOX', small), ['<tag> OK [APPENDUID <v> 1] APPEND completed']],
      [appendCommand('INBOX', small), ['<tag> OK [APPENDUID <v> 2] APPEND completed']],
      [appendCommand('Archive', small), ['<tag> OK [APPENDUID <v> 1] APPEND completed']],
      ['GETQUOTA ""', ['* QUOTA "" (STORAGE 1 10 MESSAGE 3 3)', '<tag> OK GETQUOTA completed']],
      // RFC 9208 §4.1: an APPEND or COPY that would go over the limit fails with OVERQUOTA.
      [appendCommand('INBOX', small), overQuota],
      [appendCommand('Drafts', small), overQuota],
    ]);
    expect(await client.command('s1', 'SELECT INBOX')).toContain('s1 OK [READ-WRITE] SELECT completed');
    await converse(client, [
      ['COPY 1 Archive', overQuota],
      // MOVE keeps the count: it is not refused.
      ['MOVE 1 Archive', ['* OK [COPYUID <v> 1 2] Moved', '* 1 EXPUNGE', '<tag> OK MOVE completed']],
      ['GETQUOTA ""', ['* QUOTA "" (STORAGE 1 10 MESSAGE 3 3)', '<tag> OK GETQUOTA completed']],
    ]);
    // A delivery over the limit is refused by storage as over quota (the over-quota delivery path:
    // retries and a delay notice), and RCPT TO is answered as for a full mailbox.
    await expect(
      stack.grpc.mailstore.appendMessage({
        userId: user.id,
        mailbox: { selector: { $case: 'path', value: 'INBOX' } },
        flags: [],
        keywords: [],
        internalDate: undefined,
        message: small,
      }),
    ).rejects.toMatchObject({ reason: ErrorReason.OVER_QUOTA });
    const resolved = await stack.grpc.directory.resolveRecipient({ address: user.address, messageSize: 10 });
    expect(resolved.result?.$case).toBe('overQuota');
    // EXPUNGE frees a message: the next delivery and APPEND fit again.
    await converse(client, [
      ['STORE 1 +FLAGS.SILENT (\\Deleted)', ['<tag> OK STORE completed']],
      ['EXPUNGE', ['* 1 EXPUNGE', '<tag> OK EXPUNGE completed']],
      ['GETQUOTA ""', ['* QUOTA "" (STORAGE 1 10 MESSAGE 2 3)', '<tag> OK GETQUOTA completed']],
    ]);
    const fits = await stack.grpc.directory.resolveRecipient({ address: user.address, messageSize: 10 });
    expect(fits.result?.$case).toBe('users');
    await converse(client, [
      [
        appendCommand('INBOX', small),
        ['* 1 EXISTS', '* 1 RECENT', '<tag> OK [APPENDUID <v> 3] APPEND completed'],
      ],
    ]);
  });

  it('QUOTA: GETQUOTAROOT, GETQUOTA, and NO [OVERQUOTA] for APPEND and COPY (RFC 9208)', async () => {
    const user = await stack.createUser(undefined, 10 * 1024);
    const client = await loggedIn(stack.imapPort, user);
    open.push(client);
    const body = (n: number): Buffer => message('q', `${'x'.repeat(n)}\r\n`);
    const three = body(3000 - message('q', '\r\n').length);
    expect(three.length).toBe(3000);
    await converse(client, [
      [
        'GETQUOTAROOT INBOX',
        ['* QUOTAROOT INBOX ""', '* QUOTA "" (STORAGE 0 10)', '<tag> OK GETQUOTAROOT completed'],
      ],
      [appendCommand('INBOX', three), ['<tag> OK [APPENDUID <v> 1] APPEND completed']],
      // 3000 octets are 2.93 units of 1024: reported as 3.
      ['GETQUOTA ""', ['* QUOTA "" (STORAGE 3 10)', '<tag> OK GETQUOTA completed']],
      [appendCommand('INBOX', body(8000)), ['<tag> NO [OVERQUOTA] Quota exceeded']],
      [
        'SELECT INBOX',
        [
          '* 1 EXISTS',
          '* 1 RECENT',
          '* OK [UIDVALIDITY <v>] UIDs valid',
          '* OK [UIDNEXT 2] Predicted next UID',
          '* OK [MAILBOXID (<id>)] Mailbox id',
          '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $MDNSent $Junk $NotJunk)',
          '* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $MDNSent $Junk $NotJunk \\*)] Flags permitted',
          '* OK [UNSEEN 1] First unseen',
          '<tag> OK [READ-WRITE] SELECT completed',
        ],
      ],
      ['COPY 1 Archive', ['<tag> OK [COPYUID <v> 1 1] COPY completed']],
      ['COPY 1 Archive', ['<tag> OK [COPYUID <v> 1 2] COPY completed']],
      [
        'GETQUOTAROOT Archive',
        ['* QUOTAROOT Archive ""', '* QUOTA "" (STORAGE 9 10)', '<tag> OK GETQUOTAROOT completed'],
      ],
      ['COPY 1 Archive', ['<tag> NO [OVERQUOTA] Quota exceeded']],
      ['GETQUOTA "other"', ['<tag> NO [NONEXISTENT] No such quota root']],
      ['GETQUOTAROOT Nope', ['<tag> NO [NONEXISTENT] No such mailbox']],
    ]);
    // Without a limit there is no quota root at all.
    const free = await loggedIn(stack.imapPort, await stack.createUser());
    open.push(free);
    await converse(free, [
      ['GETQUOTAROOT INBOX', ['* QUOTAROOT INBOX', '<tag> OK GETQUOTAROOT completed']],
      ['GETQUOTA ""', ['<tag> NO [NONEXISTENT] No such quota root']],
    ]);
  });

  /** Runs compress_check.py; delivers a message while it is in IDLE; returns its transcript. */
  async function pythonCompress(port: number, tls: boolean): Promise<string> {
    const user = await stack.createUser();
    const child = spawn(
      'python3',
      [
        join(HERE, 'clients', 'compress_check.py'),
        '127.0.0.1',
        String(port),
        user.address,
        user.password,
        tls ? '1' : '0',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    let delivered = false;
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const timer = setTimeout(() => child.kill(), 30_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString('latin1');
      if (!delivered && out.includes('IDLING\n')) {
        delivered = true;
        void stack.grpc.mailstore.appendMessage({
          userId: user.id,
          mailbox: { selector: { $case: 'path', value: 'INBOX' } },
          flags: [],
          keywords: [],
          internalDate: undefined,
          message: message('during idle'),
        });
      }
    });
    const code = await exited;
    clearTimeout(timer);
    expect(code, `${out}\n${err}`).toBe(0);
    const transcript = /TRANSCRIPT\n([\s\S]*)END\n$/.exec(out)?.[1];
    if (transcript === undefined) throw new Error(`no transcript:\n${out}`);
    return normalize(
      transcript.replace(/RFC822\.SIZE \d+ BODY\[\] \{\d+\}\r\n[\s\S]*?\)\r\n/, '<fetched>\r\n'),
    );
  }

  const COMPRESSED_TRANSCRIPT = [
    'a3 NO [COMPRESSIONACTIVE] Compression is already active',
    '* 0 EXISTS',
    '* 0 RECENT',
    '* OK [UIDVALIDITY <v>] UIDs valid',
    '* OK [UIDNEXT 1] Predicted next UID',
    '* OK [MAILBOXID (<id>)] Mailbox id',
    '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $MDNSent $Junk $NotJunk)',
    '* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $MDNSent $Junk $NotJunk \\*)] Flags permitted',
    'a4 OK [READ-WRITE] SELECT completed',
    '* 1 EXISTS',
    '* 1 RECENT',
    'a5 OK [APPENDUID <v> 1] APPEND completed',
    '* 1 FETCH (<fetched>',
    'a6 OK FETCH completed',
    '+ idling',
    '* 2 EXISTS',
    '* 2 RECENT',
    'a7 OK IDLE terminated',
    '* BYE Logging out',
    'a8 OK LOGOUT completed',
  ]
    .map((l) => `${l}\r\n`)
    .join('');

  it('COMPRESS=DEFLATE with Python zlib over plaintext: SELECT, APPEND, FETCH, IDLE (RFC 4978)', async () => {
    expect(await pythonCompress(stack.imapPort, false)).toBe(COMPRESSED_TRANSCRIPT);
  });

  it('COMPRESS=DEFLATE with Python zlib over TLS (RFC 4978 §4 with RFC 8314 implicit TLS)', async () => {
    expect(await pythonCompress(stack.imapsPort, true)).toBe(COMPRESSED_TRANSCRIPT);
  });

  it('COMPRESS=DEFLATE with imapflow: it compresses on its own, IDLE and FETCH work through it', async () => {
    const user = await stack.createUser();
    const logs: unknown[] = [];
    const client = new ImapFlow({
      host: '127.0.0.1',
      port: stack.imapsPort,
      secure: true,
      tls: { rejectUnauthorized: false },
      auth: { user: user.address, pass: user.password },
      logger: {
        debug: (entry: unknown) => logs.push(entry),
        info: (entry: unknown) => logs.push(entry),
        warn: (entry: unknown) => logs.push(entry),
        error: (entry: unknown) => logs.push(entry),
      },
    });
    await client.connect();
    try {
      const lock = await client.getMailboxLock('INBOX');
      try {
        const exists = new Promise<number>((resolve) =>
          client.on('exists', (e: { count: number }) => resolve(e.count)),
        );
        const idle = client.idle();
        await stack.grpc.mailstore.appendMessage({
          userId: user.id,
          mailbox: { selector: { $case: 'path', value: 'INBOX' } },
          flags: [],
          keywords: [],
          internalDate: undefined,
          message: message('imapflow idle', 'compressible\r\n'.repeat(100)),
        });
        expect(await exists).toBe(1);
        const fetched = await client.fetchOne('1', { source: true, envelope: true });
        expect(fetched !== false && fetched.envelope?.subject).toBe('imapflow idle');
        expect(fetched !== false && fetched.source?.includes('compressible\r\n'.repeat(100))).toBe(true);
        void idle;
      } finally {
        lock.release();
      }
      // imapflow sends COMPRESS DEFLATE after login when the server offers it.
      expect(JSON.stringify(logs)).toMatch(/COMPRESS DEFLATE/);
      expect(JSON.stringify(logs)).toMatch(/DEFLATE active/);
    } finally {
      await client.logout();
    }
  });

  /** The corpus: msn 1-6; sizes grow 4 < 2 < 6 < 3 < 5 < 1; msn 3 has no Date:. */
  const CORPUS: readonly [headers: string, bodySize: number, internalDate: string][] = [
    [
      'From: "Aaron Zed" <zed@example.org>\r\nTo: carol@example.net\r\nCc: bob@example.net\r\nSubject: Re: Budget\r\n' +
        'Date: Tue, 02 Jan 2024 10:00:00 +0000\r\nMessage-ID: <b2@x>\r\nIn-Reply-To: <b1@x>\r\nReferences: <b1@x>',
      5000,
      '05-Jan-2024 10:00:00 +0000',
    ],
    [
      'From: alice@example.org\r\nTo: "Bob" <bob@example.net>\r\nSubject: Budget\r\n' +
        'Date: Mon, 01 Jan 2024 09:00:00 +0000\r\nMessage-ID: <b1@x>',
      1000,
      '03-Jan-2024 10:00:00 +0000',
    ],
    [
      'From: "Mallory" <mal@example.org>\r\nTo: "Zoe" <alice@example.net>\r\nSubject: Fwd: lunch plans\r\nMessage-ID: <l1@x>',
      3000,
      '06-Jan-2024 10:00:00 +0000',
    ],
    [
      'From: "bob" <bob@example.org>\r\nSubject: [list] Re: Budget (fwd)\r\n' +
        'Date: Wed, 03 Jan 2024 08:00:00 +0000\r\nMessage-ID: <b3@x>\r\nReferences: <b1@x> <b2@x>',
      0,
      '01-Jan-2024 10:00:00 +0000',
    ],
    [
      'From: carol@example.org\r\nSubject: Lunch plans\r\nDate: Sun, 31 Dec 2023 12:00:00 -0500\r\nMessage-ID: <l0@x>',
      4000,
      '04-Jan-2024 10:00:00 +0000',
    ],
    [
      'From: dave@example.org\r\nSubject: Re: re: RE: Unrelated\r\nDate: Thu, 04 Jan 2024 00:00:00 +0000\r\n' +
        'Message-ID: <u2@x>\r\nIn-Reply-To: <missing@x>',
      2000,
      '02-Jan-2024 10:00:00 +0000',
    ],
  ];

  it('SORT, ESORT, DISPLAYFROM/DISPLAYTO and THREAD on a fixed corpus (RFC 5256, 5267, 5957)', async () => {
    const client = await loggedIn(stack.imapPort, await stack.createUser());
    open.push(client);
    await converse(
      client,
      CORPUS.map(([headers, size, date], i) => [
        appendCommand('INBOX', Buffer.from(`${headers}\r\n\r\n${'y'.repeat(size)}\r\n`), ` "${date}"`),
        [`<tag> OK [APPENDUID <v> ${i + 1}] APPEND completed`],
      ]),
      'P',
    );
    await converse(client, [
      [
        'EXAMINE INBOX',
        [
          '* 6 EXISTS',
          '* 6 RECENT',
          '* OK [UIDVALIDITY <v>] UIDs valid',
          '* OK [UIDNEXT 7] Predicted next UID',
          '* OK [MAILBOXID (<id>)] Mailbox id',
          '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $MDNSent $Junk $NotJunk)',
          '* OK [PERMANENTFLAGS ()] No permanent flags permitted',
          '* OK [UNSEEN 1] First unseen',
          '<tag> OK [READ-ONLY] EXAMINE completed',
        ],
      ],
      // Sent date in UTC; msn 3 has none, so its INTERNALDATE (6 Jan) counts.
      ['SORT (DATE) UTF-8 ALL', ['* SORT 5 2 1 4 6 3', '<tag> OK SORT completed']],
      ['SORT (REVERSE DATE) UTF-8 ALL', ['* SORT 3 6 4 1 2 5', '<tag> OK SORT completed']],
      ['SORT (ARRIVAL) US-ASCII ALL', ['* SORT 4 6 2 5 1 3', '<tag> OK SORT completed']],
      ['SORT (SIZE) UTF-8 ALL', ['* SORT 4 2 6 3 5 1', '<tag> OK SORT completed']],
      // Base subjects: Budget (1, 2, 4), lunch plans (3, 5), Unrelated (6); ties by number.
      ['SORT (SUBJECT) UTF-8 ALL', ['* SORT 1 2 4 3 5 6', '<tag> OK SORT completed']],
      ['SORT (SUBJECT REVERSE DATE) UTF-8 ALL', ['* SORT 4 1 2 3 5 6', '<tag> OK SORT completed']],
      ['SORT (FROM) UTF-8 ALL', ['* SORT 2 4 5 6 3 1', '<tag> OK SORT completed']],
      ['SORT (DISPLAYFROM) UTF-8 ALL', ['* SORT 1 2 4 5 6 3', '<tag> OK SORT completed']],
      // Messages without To: sort first (empty string).
      ['SORT (TO) UTF-8 ALL', ['* SORT 4 5 6 3 2 1', '<tag> OK SORT completed']],
      ['SORT (DISPLAYTO) UTF-8 ALL', ['* SORT 4 5 6 2 1 3', '<tag> OK SORT completed']],
      ['SORT (CC) UTF-8 ALL', ['* SORT 2 3 4 5 6 1', '<tag> OK SORT completed']],
      ['SORT (DATE) UTF-8 SUBJECT budget', ['* SORT 2 1 4', '<tag> OK SORT completed']],
      ['UID SORT (REVERSE SIZE) UTF-8 UID 2:5', ['* SORT 5 3 2 4', '<tag> OK UID SORT completed']],
      ['SORT (DATE) UTF-8 SUBJECT nothing', ['* SORT', '<tag> OK SORT completed']],
      [
        'SORT RETURN (MIN MAX COUNT) (DATE) UTF-8 ALL',
        ['* ESEARCH (TAG "<tag>") MIN 5 MAX 3 COUNT 6', '<tag> OK SORT completed'],
      ],
      [
        'SORT RETURN () (ARRIVAL) UTF-8 ALL',
        ['* ESEARCH (TAG "<tag>") ALL 4,6,2,5,1,3', '<tag> OK SORT completed'],
      ],
      [
        'SORT RETURN (ALL) (SIZE) UTF-8 1:3',
        ['* ESEARCH (TAG "<tag>") ALL 2:3,1', '<tag> OK SORT completed'],
      ],
      ['SORT (DATE) KOI8-R ALL', ['<tag> NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset']],
      ['SORT (BOGUS) UTF-8 ALL', ['<tag> BAD unknown sort key BOGUS']],
      ['THREAD ORDEREDSUBJECT UTF-8 ALL', ['* THREAD (5 3)(2 (1)(4))(6)', '<tag> OK THREAD completed']],
      ['THREAD REFERENCES UTF-8 ALL', ['* THREAD (5 3)(2 1 4)(6)', '<tag> OK THREAD completed']],
      ['UID THREAD REFERENCES UTF-8 NOT UID 2', ['* THREAD (5 3)(1 4)(6)', '<tag> OK UID THREAD completed']],
      ['THREAD REFERENCES UTF-8 SUBJECT nothing', ['* THREAD', '<tag> OK THREAD completed']],
      ['THREAD BOGUS UTF-8 ALL', ['<tag> BAD unknown thread algorithm BOGUS']],
    ]);
  });

  it('WITHIN: OLDER and YOUNGER by INTERNALDATE (RFC 5032 §3)', async () => {
    const client = await loggedIn(stack.imapPort, await stack.createUser());
    open.push(client);
    await converse(client, [
      [
        appendCommand('INBOX', message('old'), ' "07-Feb-1994 21:52:25 -0800"'),
        ['<tag> OK [APPENDUID <v> 1] APPEND completed'],
      ],
      [appendCommand('INBOX', message('new')), ['<tag> OK [APPENDUID <v> 2] APPEND completed']],
      [
        'EXAMINE INBOX',
        [
          '* 2 EXISTS',
          '* 2 RECENT',
          '* OK [UIDVALIDITY <v>] UIDs valid',
          '* OK [UIDNEXT 3] Predicted next UID',
          '* OK [MAILBOXID (<id>)] Mailbox id',
          '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $MDNSent $Junk $NotJunk)',
          '* OK [PERMANENTFLAGS ()] No permanent flags permitted',
          '* OK [UNSEEN 1] First unseen',
          '<tag> OK [READ-ONLY] EXAMINE completed',
        ],
      ],
      ['SEARCH YOUNGER 3600', ['* SEARCH 2', '<tag> OK SEARCH completed']],
      ['SEARCH OLDER 3600', ['* SEARCH 1', '<tag> OK SEARCH completed']],
      [
        'UID SEARCH RETURN (COUNT) OLDER 1 YOUNGER 4000000000',
        ['* ESEARCH (TAG "<tag>") UID COUNT 1', '<tag> OK UID SEARCH completed'],
      ],
      ['SEARCH YOUNGER 0', ['<tag> BAD interval must not be zero']],
    ]);
  });

  it('SEARCHRES: SEARCH RETURN (SAVE) and $ in FETCH, SEARCH, UID COPY, STORE, UID EXPUNGE (RFC 5182)', async () => {
    const client = await loggedIn(stack.imapPort, await stack.createUser());
    open.push(client);
    const from = (who: string, subject: string): Buffer =>
      Buffer.from(`From: ${who}@example.org\r\nSubject: ${subject}\r\n\r\nbody\r\n`);
    await converse(client, [
      [
        appendCommand('INBOX', from('smith', 's1'), ' (\\Flagged)'),
        ['<tag> OK [APPENDUID <v> 1] APPEND completed'],
      ],
      [
        appendCommand('INBOX', from('alice', 's2'), ' (\\Flagged)'),
        ['<tag> OK [APPENDUID <v> 2] APPEND completed'],
      ],
      [appendCommand('INBOX', from('alice', 's3')), ['<tag> OK [APPENDUID <v> 3] APPEND completed']],
      [
        appendCommand('INBOX', from('bob', 's4'), ' (\\Flagged)'),
        ['<tag> OK [APPENDUID <v> 4] APPEND completed'],
      ],
      [
        'SELECT INBOX',
        [
          '* 4 EXISTS',
          '* 4 RECENT',
          '* OK [UIDVALIDITY <v>] UIDs valid',
          '* OK [UIDNEXT 5] Predicted next UID',
          '* OK [MAILBOXID (<id>)] Mailbox id',
          '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $MDNSent $Junk $NotJunk)',
          '* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $MDNSent $Junk $NotJunk \\*)] Flags permitted',
          '* OK [UNSEEN 1] First unseen',
          '<tag> OK [READ-WRITE] SELECT completed',
        ],
      ],
      // RFC 5182 §2.1: SAVE alone sends no ESEARCH response.
      ['SEARCH RETURN (SAVE) FLAGGED NOT FROM "smith"', ['<tag> OK SEARCH completed']],
      ['FETCH $ (UID)', ['* 2 FETCH (UID 2)', '* 4 FETCH (UID 4)', '<tag> OK FETCH completed']],
      ['SEARCH $', ['* SEARCH 2 4', '<tag> OK SEARCH completed']],
      ['SEARCH NOT $', ['* SEARCH 1 3', '<tag> OK SEARCH completed']],
      // §2.4: with MIN (and not ALL or COUNT) only the minimum is saved.
      ['SEARCH RETURN (SAVE MIN) ALL', ['* ESEARCH (TAG "<tag>") MIN 1', '<tag> OK SEARCH completed']],
      ['FETCH $ (UID)', ['* 1 FETCH (UID 1)', '<tag> OK FETCH completed']],
      [
        'SEARCH RETURN (SAVE MIN MAX) FLAGGED',
        ['* ESEARCH (TAG "<tag>") MIN 1 MAX 4', '<tag> OK SEARCH completed'],
      ],
      ['UID SEARCH UID $', ['* SEARCH 1 4', '<tag> OK UID SEARCH completed']],
      [
        'SEARCH RETURN (SAVE MAX COUNT) FLAGGED',
        ['* ESEARCH (TAG "<tag>") MAX 4 COUNT 3', '<tag> OK SEARCH completed'],
      ],
      ['UID COPY $ Archive', ['<tag> OK [COPYUID <v> 1:2,4 1:3] UID COPY completed']],
      ['STORE $ +FLAGS.SILENT (\\Deleted)', ['<tag> OK STORE completed']],
      ['UID EXPUNGE $', ['* 4 EXPUNGE', '* 2 EXPUNGE', '* 1 EXPUNGE', '<tag> OK UID EXPUNGE completed']],
      // Expunged messages leave $ (RFC 5182 §2.1).
      ['FETCH $ (UID)', ['<tag> OK FETCH completed']],
      ['UID SEARCH RETURN (SAVE) ALL', ['<tag> OK UID SEARCH completed']],
      ['FETCH $ (UID FLAGS)', ['* 1 FETCH (UID 3 FLAGS (\\Recent))', '<tag> OK FETCH completed']],
      // A new SELECT starts with an empty $.
      [
        'SELECT Archive',
        [
          '* OK [CLOSED] Previous mailbox closed',
          '* 3 EXISTS',
          '* 3 RECENT',
          '* OK [UIDVALIDITY <v>] UIDs valid',
          '* OK [UIDNEXT 4] Predicted next UID',
          '* OK [MAILBOXID (<id>)] Mailbox id',
          '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $MDNSent $Junk $NotJunk)',
          '* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $MDNSent $Junk $NotJunk \\*)] Flags permitted',
          '* OK [UNSEEN 1] First unseen',
          '<tag> OK [READ-WRITE] SELECT completed',
        ],
      ],
      ['FETCH $ (UID)', ['<tag> OK FETCH completed']],
    ]);
  });
});
