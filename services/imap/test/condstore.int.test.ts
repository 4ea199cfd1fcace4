/**
 * CONDSTORE and QRESYNC (RFC 7162) against the real imap and storage services:
 * - exact-bytes conversations for MODSEQ in FETCH, CHANGEDSINCE, STORE UNCHANGEDSINCE with
 *   MODIFIED (including the RFC's UNCHANGEDSINCE 0), SEARCH MODSEQ (SEARCH and ESEARCH), STATUS
 *   HIGHESTMODSEQ, the CONDSTORE enabling commands and what they change, and, with QRESYNC,
 *   VANISHED instead of EXPUNGE, `UID FETCH … (CHANGEDSINCE n VANISHED)` and SELECT QRESYNC;
 * - the resync test: a client disconnects, another session expunges, moves, flags and appends,
 *   and the client reconnects with SELECT … QRESYNC: its cache patched with the answer equals a
 *   full fetch of the mailbox;
 * - imapflow with `qresync: true` doing the same through its public API, then, like a phone,
 *   waiting in IDLE over COMPRESS=DEFLATE for the next expunge.
 *
 * Mod-sequences are exact: a new mailbox starts at HIGHESTMODSEQ 1 and every append, flag change
 * and expunge takes the next value (ADR 0006), so the numbers below follow from the steps.
 */
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { mailstore } from '@postmesh/contracts';
import { loggedIn, type TestClient } from './client.js';
import { appendCommand, converse, normalize } from './conversation.js';
import { message, startImapStack, type ImapStack, type TestUser } from './harness.js';

const FLAGS = '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $MDNSent $Junk $NotJunk)';
const PERMANENT =
  '* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $MDNSent $Junk $NotJunk \\*)] Flags permitted';

describe('CONDSTORE and QRESYNC (RFC 7162)', () => {
  let stack: ImapStack;
  const open: TestClient[] = [];

  beforeAll(async () => {
    stack = await startImapStack();
  });
  afterAll(async () => {
    for (const c of open) c.close();
    await stack?.stop();
  });

  async function session(user: TestUser): Promise<TestClient> {
    const client = await loggedIn(stack.imapPort, user);
    open.push(client);
    return client;
  }

  async function deliver(
    user: TestUser,
    subjects: readonly string[],
    flags: mailstore.Flag[] = [],
  ): Promise<void> {
    for (const subject of subjects) {
      await stack.grpc.mailstore.appendMessage({
        userId: user.id,
        mailbox: { selector: { $case: 'path', value: 'INBOX' } },
        flags,
        keywords: [],
        internalDate: undefined,
        message: message(subject),
      });
    }
  }

  async function uidValidity(user: TestUser, path = 'INBOX'): Promise<number> {
    const response = await stack.grpc.mailstore.getMailboxStatus({
      userId: user.id,
      mailbox: { selector: { $case: 'path', value: path } },
      claimRecent: false,
    });
    return response.status!.uidValidity;
  }

  it('CONDSTORE: MODSEQ, CHANGEDSINCE, UNCHANGEDSINCE with MODIFIED, SEARCH MODSEQ, STATUS, enabling', async () => {
    const user = await stack.createUser();
    const a = await session(user);
    const b = await session(user);
    await converse(a, [
      // Appends take mod-sequences 2, 3, 4.
      [appendCommand('INBOX', message('one')), ['<tag> OK [APPENDUID <v> 1] APPEND completed']],
      [appendCommand('INBOX', message('two')), ['<tag> OK [APPENDUID <v> 2] APPEND completed']],
      [appendCommand('INBOX', message('three')), ['<tag> OK [APPENDUID <v> 3] APPEND completed']],
      // Not enabled yet: no HIGHESTMODSEQ in SELECT.
      [
        'SELECT INBOX',
        [
          '* 3 EXISTS',
          '* 3 RECENT',
          '* OK [UIDVALIDITY <v>] UIDs valid',
          '* OK [UIDNEXT 4] Predicted next UID',
          '* OK [MAILBOXID (<id>)] Mailbox id',
          FLAGS,
          PERMANENT,
          '* OK [UNSEEN 1] First unseen',
          '<tag> OK [READ-WRITE] SELECT completed',
        ],
      ],
      // §3.1: FETCH MODSEQ enables CONDSTORE; with a mailbox selected, HIGHESTMODSEQ comes first.
      [
        'FETCH 1:3 (FLAGS MODSEQ)',
        [
          '* OK [HIGHESTMODSEQ 4] Highest',
          '* 1 FETCH (FLAGS (\\Recent) MODSEQ (2))',
          '* 2 FETCH (FLAGS (\\Recent) MODSEQ (3))',
          '* 3 FETCH (FLAGS (\\Recent) MODSEQ (4))',
          '<tag> OK FETCH completed',
        ],
      ],
      // §3.1: once enabled, every untagged FETCH of a STORE carries UID and MODSEQ.
      [
        'STORE 1 +FLAGS (\\Seen)',
        ['* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent) MODSEQ (5))', '<tag> OK STORE completed'],
      ],
      // §3.1.3: message 1 (modseq 5) fails UNCHANGEDSINCE 4; .SILENT still reports the new MODSEQ.
      [
        'STORE 1:3 (UNCHANGEDSINCE 4) +FLAGS.SILENT (\\Flagged)',
        [
          '* 2 FETCH (UID 2 MODSEQ (6))',
          '* 3 FETCH (UID 3 MODSEQ (6))',
          '<tag> OK [MODIFIED 1] Conditional STORE failed for some messages',
        ],
      ],
      // §3.1.3: UNCHANGEDSINCE 0 always fails; UID STORE names UIDs in MODIFIED.
      [
        'UID STORE 2:3 (UNCHANGEDSINCE 0) +FLAGS (\\Draft)',
        ['<tag> OK [MODIFIED 2:3] Conditional STORE failed for some messages'],
      ],
      // §3.1.4.1: only messages whose modseq is greater than 5; MODSEQ is implied.
      [
        'FETCH 1:* (FLAGS) (CHANGEDSINCE 5)',
        [
          '* 2 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ (6))',
          '* 3 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ (6))',
          '<tag> OK FETCH completed',
        ],
      ],
      ['UID FETCH 1:* (FLAGS) (CHANGEDSINCE 6)', ['<tag> OK UID FETCH completed']],
      // §3.1.5: the highest mod-sequence of the messages found.
      ['SEARCH MODSEQ 6', ['* SEARCH 2 3 (MODSEQ 6)', '<tag> OK SEARCH completed']],
      ['SEARCH MODSEQ 7', ['* SEARCH', '<tag> OK SEARCH completed']],
      [
        'UID SEARCH RETURN (ALL) MODSEQ 5',
        ['* ESEARCH (TAG "<tag>") UID ALL 1:3 MODSEQ 6', '<tag> OK UID SEARCH completed'],
      ],
      [
        'UID SEARCH RETURN (COUNT) OR MODSEQ 6 SEEN',
        ['* ESEARCH (TAG "<tag>") UID COUNT 3 MODSEQ 6', '<tag> OK UID SEARCH completed'],
      ],
      // RFC 7162 §7 sort-data: SORT and ESORT carry the highest mod-sequence the same way.
      ['SORT (SUBJECT) UTF-8 MODSEQ 5', ['* SORT 1 3 2 (MODSEQ 6)', '<tag> OK SORT completed']],
      [
        'UID SORT RETURN (ALL) (REVERSE SUBJECT) UTF-8 MODSEQ 6',
        ['* ESEARCH (TAG "<tag>") UID ALL 2:3 MODSEQ 6', '<tag> OK UID SORT completed'],
      ],
      ['SORT (SUBJECT) UTF-8 MODSEQ 7', ['* SORT', '<tag> OK SORT completed']],
      [
        'STATUS INBOX (HIGHESTMODSEQ MESSAGES)',
        ['* STATUS INBOX (HIGHESTMODSEQ 6 MESSAGES 3)', '<tag> OK STATUS completed'],
      ],
    ]);
    // Session b has not enabled CONDSTORE: its SELECT and FETCH responses have no mod-sequences.
    await converse(
      b,
      [
        [
          'EXAMINE INBOX',
          [
            '* 3 EXISTS',
            '* 0 RECENT',
            '* OK [UIDVALIDITY <v>] UIDs valid',
            '* OK [UIDNEXT 4] Predicted next UID',
            '* OK [MAILBOXID (<id>)] Mailbox id',
            FLAGS,
            '* OK [PERMANENTFLAGS ()] No permanent flags permitted',
            '* OK [UNSEEN 2] First unseen',
            '<tag> OK [READ-ONLY] EXAMINE completed',
          ],
        ],
        ['FETCH 3 (FLAGS)', ['* 3 FETCH (FLAGS (\\Flagged))', '<tag> OK FETCH completed']],
        // §3.1.8: SELECT (CONDSTORE) enables it, and the SELECT reports HIGHESTMODSEQ.
        [
          'SELECT INBOX (CONDSTORE)',
          [
            '* OK [CLOSED] Previous mailbox closed',
            '* 3 EXISTS',
            '* 0 RECENT',
            '* OK [UIDVALIDITY <v>] UIDs valid',
            '* OK [UIDNEXT 4] Predicted next UID',
            '* OK [MAILBOXID (<id>)] Mailbox id',
            FLAGS,
            PERMANENT,
            '* OK [UNSEEN 2] First unseen',
            '* OK [HIGHESTMODSEQ 6] Highest',
            '<tag> OK [READ-WRITE] SELECT completed',
          ],
        ],
        [
          'STORE 3 +FLAGS (\\Answered)',
          ['* 3 FETCH (UID 3 FLAGS (\\Flagged \\Answered) MODSEQ (7))', '<tag> OK STORE completed'],
        ],
      ],
      'B',
    );
    await converse(a, [
      // Another session's change arrives with UID and MODSEQ (§3.1).
      [
        'NOOP',
        ['* 3 FETCH (UID 3 FLAGS (\\Flagged \\Answered \\Recent) MODSEQ (7))', '<tag> OK NOOP completed'],
      ],
      // A FETCH that sets \Seen reports the new flags with UID and MODSEQ (§3.1).
      [
        'FETCH 2 (BODY[HEADER.FIELDS (SUBJECT)])',
        [
          '* 2 FETCH (UID 2 BODY[HEADER.FIELDS (SUBJECT)] {16}',
          'Subject: two',
          '',
          ' FLAGS (\\Flagged \\Seen \\Recent) MODSEQ (8))',
          '<tag> OK FETCH completed',
        ],
      ],
      [
        'FETCH 2 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])',
        [
          '* 2 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {16}',
          'Subject: two',
          '',
          ')',
          '<tag> OK FETCH completed',
        ],
      ],
      // Without QRESYNC, expunges are still EXPUNGE responses.
      ['STORE 2 +FLAGS.SILENT (\\Deleted)', ['* 2 FETCH (UID 2 MODSEQ (9))', '<tag> OK STORE completed']],
      ['EXPUNGE', ['* 2 EXPUNGE', '<tag> OK EXPUNGE completed']],
      ['STATUS INBOX (HIGHESTMODSEQ)', ['* STATUS INBOX (HIGHESTMODSEQ 10)', '<tag> OK STATUS completed']],
    ]);
  });

  it('QRESYNC: ENABLE, VANISHED instead of EXPUNGE, UID FETCH VANISHED, SELECT QRESYNC', async () => {
    const user = await stack.createUser();
    await deliver(user, ['m1', 'm2', 'm3', 'm4', 'm5']); // modseq 2..6
    const validity = await uidValidity(user);
    const a = await session(user);
    const b = await session(user);
    await converse(a, [
      // §3.2.5: QRESYNC parameters without ENABLE QRESYNC are BAD.
      [`SELECT INBOX (QRESYNC (${validity} 1))`, ['<tag> BAD QRESYNC parameter requires ENABLE QRESYNC']],
      // §3.2.3: ENABLE QRESYNC also enables CONDSTORE.
      ['ENABLE QRESYNC', ['* ENABLED QRESYNC', '<tag> OK ENABLE completed']],
      ['ENABLE CONDSTORE QRESYNC', ['* ENABLED', '<tag> OK ENABLE completed']],
      // A UIDVALIDITY that does not match: a plain SELECT (§3.2.5.2).
      [
        `SELECT INBOX (QRESYNC (${validity + 1} 2 1:5))`,
        [
          '* 5 EXISTS',
          '* 5 RECENT',
          '* OK [UIDVALIDITY <v>] UIDs valid',
          '* OK [UIDNEXT 6] Predicted next UID',
          '* OK [MAILBOXID (<id>)] Mailbox id',
          FLAGS,
          PERMANENT,
          '* OK [UNSEEN 1] First unseen',
          '* OK [HIGHESTMODSEQ 6] Highest',
          '<tag> OK [READ-WRITE] SELECT completed',
        ],
      ],
      [
        'STORE 2,4 +FLAGS.SILENT (\\Deleted)',
        ['* 2 FETCH (UID 2 MODSEQ (7))', '* 4 FETCH (UID 4 MODSEQ (7))', '<tag> OK STORE completed'],
      ],
      // §3.2.10: VANISHED with the UIDs, not one EXPUNGE per message.
      ['EXPUNGE', ['* VANISHED 2,4', '<tag> OK EXPUNGE completed']],
      // MOVE (RFC 6851 §3.3) reports the moved messages the same way.
      ['UID MOVE 5 Archive', ['* OK [COPYUID <v> 5 1] Moved', '* VANISHED 5', '<tag> OK UID MOVE completed']],
    ]);
    await converse(
      b,
      [
        // Without ENABLE QRESYNC the VANISHED modifier is BAD (§3.2.6).
        [
          'SELECT INBOX',
          [
            '* 2 EXISTS',
            '* 0 RECENT',
            '* OK [UIDVALIDITY <v>] UIDs valid',
            '* OK [UIDNEXT 6] Predicted next UID',
            '* OK [MAILBOXID (<id>)] Mailbox id',
            FLAGS,
            PERMANENT,
            '* OK [UNSEEN 1] First unseen',
            '<tag> OK [READ-WRITE] SELECT completed',
          ],
        ],
        ['UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)', ['<tag> BAD VANISHED requires ENABLE QRESYNC']],
        ['STORE 1 +FLAGS (\\Seen)', ['* 1 FETCH (FLAGS (\\Seen))', '<tag> OK STORE completed']],
        ['STORE 2 +FLAGS.SILENT (\\Deleted)', ['<tag> OK STORE completed']],
        ['EXPUNGE', ['* 2 EXPUNGE', '<tag> OK EXPUNGE completed']],
      ],
      'B',
    );
    await converse(a, [
      // Another session's expunge and flag change: VANISHED and FETCH with UID and MODSEQ.
      [
        'NOOP',
        ['* VANISHED 3', '* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent) MODSEQ (10))', '<tag> OK NOOP completed'],
      ],
      // §3.2.6: the set's UIDs expunged since modseq 6, then the changed messages.
      [
        'UID FETCH 1:* (FLAGS) (CHANGEDSINCE 6 VANISHED)',
        [
          '* VANISHED (EARLIER) 2:5',
          '* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent) MODSEQ (10))',
          '<tag> OK UID FETCH completed',
        ],
      ],
      [
        'UID FETCH 3:4 (FLAGS) (CHANGEDSINCE 7 VANISHED)',
        ['* VANISHED (EARLIER) 3:4', '<tag> OK UID FETCH completed'],
      ],
      [
        'UID FETCH 1:* (FLAGS) (CHANGEDSINCE 10 VANISHED)',
        ['* VANISHED (EARLIER) 3', '<tag> OK UID FETCH completed'],
      ],
      ['UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12 VANISHED)', ['<tag> OK UID FETCH completed']],
      // §3.2.5.2: known UIDs limit the report; the RFC's form with sequence match data is accepted.
      [
        `EXAMINE INBOX (QRESYNC (${validity} 6 1:3 (1:3 1:3)))`,
        [
          '* OK [CLOSED] Previous mailbox closed',
          '* 1 EXISTS',
          '* 0 RECENT',
          '* OK [UIDVALIDITY <v>] UIDs valid',
          '* OK [UIDNEXT 6] Predicted next UID',
          '* OK [MAILBOXID (<id>)] Mailbox id',
          FLAGS,
          '* OK [PERMANENTFLAGS ()] No permanent flags permitted',
          '* OK [HIGHESTMODSEQ 12] Highest',
          '* VANISHED (EARLIER) 2:3',
          '* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ (10))',
          '<tag> OK [READ-ONLY] EXAMINE completed',
        ],
      ],
      ['SELECT INBOX (QRESYNC (0 2))', ['<tag> BAD UIDVALIDITY must not be zero']],
    ]);
  });
  /** `UID FETCH … (FLAGS)` lines → UID → flags (sorted, without \Recent). */
  function flagsByUid(text: string): Map<number, string> {
    const out = new Map<number, string>();
    for (const m of text.matchAll(/^\* \d+ FETCH \(UID (\d+) FLAGS \(([^)]*)\)/gm)) {
      out.set(Number(m[1]), canonicalFlags(m[2]!.split(' ')));
    }
    return out;
  }

  function canonicalFlags(flags: Iterable<string>): string {
    return [...flags]
      .filter((f) => f !== '' && f !== '\\Recent')
      .sort()
      .join(' ');
  }

  /** The UIDs of `* VANISHED (EARLIER) …` lines. */
  function vanishedEarlier(text: string): number[] {
    const out: number[] = [];
    for (const m of text.matchAll(/^\* VANISHED \(EARLIER\) ([\d:,]+)\r$/gm)) {
      for (const part of m[1]!.split(',')) {
        const [lo, hi = lo] = part.split(':').map(Number) as [number, number?];
        for (let uid = lo; uid <= (hi ?? lo); uid++) out.push(uid);
      }
    }
    return out;
  }

  it('QRESYNC resync: after a disconnect, SELECT QRESYNC brings the cache to exactly the server state', async () => {
    const user = await stack.createUser();
    await deliver(user, ['r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7', 'r8']); // UIDs 1..8, modseq 2..9
    const validity = await uidValidity(user);

    // The client's cache, as a QRESYNC client keeps it: UIDVALIDITY, HIGHESTMODSEQ, UIDNEXT, flags.
    const first = await session(user);
    expect(await first.command('E', 'ENABLE IMAP4rev2 QRESYNC')).toContain('E OK');
    const selected = await first.command('S', 'SELECT INBOX');
    const highest = Number(/\[HIGHESTMODSEQ (\d+)\]/.exec(selected)?.[1]);
    expect(highest).toBe(9);
    const cacheUidNext = Number(/\[UIDNEXT (\d+)\]/.exec(selected)?.[1]);
    const cached = flagsByUid(await first.command('F', 'UID FETCH 1:* (FLAGS)'));
    expect(cached.size).toBe(8);
    expect(await first.command('Z', 'LOGOUT')).toContain('Z OK');
    first.close();

    // Meanwhile another session flags, expunges, moves away and appends.
    const other = await session(user);
    for (const command of [
      'SELECT INBOX',
      'UID STORE 2 +FLAGS (\\Flagged)', // modseq 10
      'UID STORE 3,5 +FLAGS.SILENT (\\Deleted)', // 11
      'UID EXPUNGE 3,5', // 12
      'UID MOVE 8 Archive', // 13
      'UID STORE 7 +FLAGS (\\Seen $Label1)', // 14, a keyword new to the mailbox
    ]) {
      expect(await other.command('O', command)).toMatch(/^O OK /m);
    }
    expect(await other.command('O', appendCommand('INBOX', message('r9'), ' (\\Draft)'))).toContain('O OK'); // 15

    // Reconnect with the cached state: known UIDs and (unused by this server) sequence match data.
    const again = await session(user);
    expect(await again.command('E', 'ENABLE IMAP4rev2 QRESYNC')).toContain('E OK');
    const resync = await again.command('S', `SELECT INBOX (QRESYNC (${validity} ${highest} 1:8 (1:8 1:8)))`);
    const flagList =
      '\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $MDNSent $Junk $NotJunk $Label1';
    expect(normalize(resync)).toBe(
      [
        '* 6 EXISTS',
        '* OK [UIDVALIDITY <v>] UIDs valid',
        '* OK [UIDNEXT 10] Predicted next UID',
        '* OK [MAILBOXID (<id>)] Mailbox id',
        `* FLAGS (${flagList})`,
        `* OK [PERMANENTFLAGS (${flagList} \\*)] Flags permitted`,
        // RFC 9051 §6.3.2: the LIST response an IMAP4rev2 SELECT requires.
        '* LIST (\\HasNoChildren) "/" INBOX',
        '* OK [HIGHESTMODSEQ 15] Highest',
        '* VANISHED (EARLIER) 3,5,8',
        '* 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ (10))',
        '* 5 FETCH (UID 7 FLAGS (\\Seen $Label1) MODSEQ (14))',
        'S OK [READ-WRITE] SELECT completed',
        '',
      ].join('\r\n'),
    );

    // Without known UIDs the new message's flags come too (its modseq is above the client's).
    const third = await session(user);
    expect(await third.command('E', 'ENABLE QRESYNC')).toContain('E OK');
    const wide = await third.command('S', `EXAMINE INBOX (QRESYNC (${validity} ${highest}))`);
    expect(vanishedEarlier(wide)).toEqual([3, 5, 8]);
    expect([...flagsByUid(wide).keys()]).toEqual([2, 7, 9]);

    // Patching the cache with either answer (plus the new UIDs from the old UIDNEXT on) gives
    // exactly what a full fetch shows.
    const truth = flagsByUid(await again.command('T', 'UID FETCH 1:* (FLAGS)'));
    expect(truth.size).toBe(6);
    for (const [answer, client] of [
      [resync, again],
      [wide, third],
    ] as const) {
      const cache = new Map(cached);
      for (const uid of vanishedEarlier(answer)) cache.delete(uid);
      for (const [uid, flags] of flagsByUid(answer)) cache.set(uid, flags);
      for (const [uid, flags] of flagsByUid(
        await client.command('N', `UID FETCH ${cacheUidNext}:* (FLAGS)`),
      )) {
        cache.set(uid, flags);
      }
      expect(Number(/^\* (\d+) EXISTS/m.exec(answer)?.[1])).toBe(cache.size);
      expect(new Map([...cache].sort((x, y) => x[0] - y[0]))).toEqual(truth);
    }
  });

  it('imapflow with qresync: CONDSTORE fetch and store, then a reconnect resynchronizes through events', async () => {
    const user = await stack.createUser();
    await deliver(user, ['f1', 'f2', 'f3', 'f4', 'f5']); // modseq 2..6
    const logs: unknown[] = [];
    const log = (entry: unknown): void => void logs.push(entry);
    const connect = async (): Promise<ImapFlow> => {
      const client = new ImapFlow({
        host: '127.0.0.1',
        port: stack.imapPort,
        secure: false,
        auth: { user: user.address, pass: user.password },
        // STARTTLS with the suite's self-signed certificate.
        tls: { rejectUnauthorized: false },
        logger: { debug: log, info: log, warn: log, error: log },
        qresync: true,
      });
      await client.connect();
      return client;
    };
    const first = await connect();
    let highest: bigint;
    let validity: bigint;
    try {
      expect(first.enabled.has('QRESYNC')).toBe(true);
      const box = await first.mailboxOpen('INBOX');
      expect(box.highestModseq).toBe(6n);
      validity = box.uidValidity;
      // A conditional store that succeeds, and one that fails (the message changed since).
      expect(await first.messageFlagsAdd('1', ['\\Seen'], { uid: true, unchangedSince: 6 })).toBe(true);
      // imapflow resolves true whatever the MODIFIED code says; the flags show it was refused.
      await first.messageFlagsAdd('1', ['\\Flagged'], { uid: true, unchangedSince: 6 });
      const changed: [number, string, bigint | undefined][] = [];
      for await (const m of first.fetch('1:*', { uid: true, flags: true }, { uid: true, changedSince: 6n })) {
        changed.push([m.uid, canonicalFlags(m.flags ?? []), m.modseq]);
      }
      expect(changed).toEqual([[1, '\\Seen', 7n]]);
      const status = await first.status('INBOX', { highestModseq: true });
      if (status === false) throw new Error('STATUS failed');
      highest = status.highestModseq ?? 0n;
      expect(highest).toBe(7n);
    } finally {
      await first.logout();
    }

    const other = await session(user);
    for (const command of [
      'SELECT INBOX',
      'UID STORE 3 +FLAGS (\\Answered)',
      'UID STORE 2,4 +FLAGS.SILENT (\\Deleted)',
      'EXPUNGE',
    ]) {
      expect(await other.command('O', command)).toMatch(/^O OK /m);
    }

    const second = await connect();
    try {
      const expunged: { uid?: number; vanished: boolean; earlier?: boolean }[] = [];
      const flagged: { uid?: number; flags: Set<string>; modseq?: bigint }[] = [];
      second.on('expunge', (e: { uid?: number; vanished: boolean; earlier?: boolean }) => expunged.push(e));
      second.on('flags', (e: { uid?: number; flags: Set<string>; modseq?: bigint }) => flagged.push(e));
      const box = await second.mailboxOpen('INBOX', { changedSince: highest, uidValidity: validity });
      expect(box.exists).toBe(3);
      expect(expunged.map((e) => [e.uid, e.vanished, e.earlier])).toEqual([
        [2, true, true],
        [4, true, true],
      ]);
      expect(flagged.map((e) => [e.uid, canonicalFlags(e.flags), e.modseq])).toEqual([[3, '\\Answered', 8n]]);
      // Live, as a phone waits: an expunge in another session arrives during IDLE as VANISHED
      // (not EARLIER), over the compressed connection imapflow set up by itself.
      const live = new Promise<void>((resolve) => second.on('expunge', () => resolve()));
      const idle = second.idle();
      expect(await other.command('O', 'UID STORE 5 +FLAGS.SILENT (\\Deleted)')).toMatch(/^O OK /m);
      expect(await other.command('O', 'EXPUNGE')).toMatch(/^O OK /m);
      await live;
      expect(expunged.slice(2).map((e) => [e.uid, e.vanished, e.earlier])).toEqual([[5, true, false]]);
      expect(JSON.stringify(logs)).toMatch(/DEFLATE active/);
      void idle;
      const uids: number[] = [];
      for await (const m of second.fetch('1:*', { uid: true })) uids.push(m.uid);
      expect(uids).toEqual([1, 3]);
    } finally {
      await second.logout();
    }
  });
});
