/**
 * Shared mailboxes: IMAP ACL (RFC 4314) and the "Other Users" namespace (RFC 2342 §5) against the
 * real imap and storage services, as exact-bytes conversations:
 * - SETACL / DELETEACL / GETACL / LISTRIGHTS / MYRIGHTS, with RFC 4314's own examples (the
 *   virtual "c" and "d" rights of §2.1.1, BAD for an unknown right in §3.1);
 * - enforcement on every command: a grantee with "lr" gets a READ-ONLY SELECT and cannot STORE,
 *   APPEND or COPY into the mailbox or EXPUNGE it; "s" alone allows \Seen and nothing else;
 *   without "l" the mailbox is not listed, without any right it does not exist;
 * - the same refusals through the Mailstore API directly (storage enforces, not just imap);
 * - an imapflow grantee in IDLE sees the owner's APPEND.
 */
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorReason, mailstore } from '@postmesh/contracts';
import { StorageError } from '@postmesh/storage-client';
import { loggedIn, type TestClient } from './client.js';
import { appendCommand, converse } from './conversation.js';
import { message, startImapStack, type ImapStack, type TestUser } from './harness.js';

async function refusal(run: () => Promise<unknown>): Promise<ErrorReason | 'resolved'> {
  try {
    await run();
    return 'resolved';
  } catch (error) {
    if (error instanceof StorageError) return error.reason;
    throw error;
  }
}

describe('IMAP ACL and shared mailboxes', () => {
  let stack: ImapStack;
  const open: TestClient[] = [];

  beforeAll(async () => {
    stack = await startImapStack();
  });
  afterAll(async () => {
    for (const c of open) c.close();
    await stack?.stop();
  });

  const login = async (user: TestUser): Promise<TestClient> => {
    const client = await loggedIn(stack.imapPort, user);
    open.push(client);
    return client;
  };

  it('SETACL, GETACL, DELETEACL, LISTRIGHTS and MYRIGHTS with the RFC 4314 examples', async () => {
    const fred = await stack.createUser('fred');
    const david = await stack.createUser('david');
    const chris = await stack.createUser('chris');
    const owner = await login(fred);
    await converse(owner, [
      ['CREATE INBOX/Drafts', ['<tag> OK [MAILBOXID (<id>)] CREATE completed']],
      ['MYRIGHTS INBOX', ['* MYRIGHTS INBOX lrswipkxteacd', '<tag> OK MYRIGHTS completed']],
      ['GETACL INBOX', ['* ACL INBOX fred@example.test lrswipkxteacd', '<tag> OK GETACL completed']],
      // §2.1.1: "d" expands to the "delete" rights (x t e here) and is shown again with them.
      [`SeTacl INBOX/Drafts ${david.address} lrswida`, ['<tag> OK SETACL completed']],
      [
        'getacl INBOX/Drafts',
        [
          '* ACL INBOX/Drafts fred@example.test lrswipkxteacd david@example.test lrswixtead',
          '<tag> OK GETACL completed',
        ],
      ],
      // §3.1: "+cda" adds k (the "create" right), x t e and a to Chris's lrswi.
      [`SETACL INBOX/Drafts ${chris.address} lrswi`, ['<tag> OK SETACL completed']],
      [`SETACL INBOX/Drafts ${chris.address} +cda`, ['<tag> OK SETACL completed']],
      [
        'GETACL INBOX/Drafts',
        [
          '* ACL INBOX/Drafts fred@example.test lrswipkxteacd chris@example.test lrswikxteacd david@example.test lrswixtead',
          '<tag> OK GETACL completed',
        ],
      ],
      [`SETACL INBOX/Drafts ${chris.address} -wkxtea`, ['<tag> OK SETACL completed']],
      // §3.1: an unrecognised right (upper case included) is BAD, never ignored.
      [
        `SETACL INBOX/Drafts ${david.address} lrQswicda`,
        ['<tag> BAD Unsupported right; this server knows lrswipkxtea and c, d'],
      ],
      [
        `SETACL INBOX/Drafts ${david.address} lrqswicda`,
        ['<tag> BAD Unsupported right; this server knows lrswipkxtea and c, d'],
      ],
      ['SETACL INBOX/Drafts nobody@example.test lr', ['<tag> NO No such user']],
      ['SETACL INBOX/Drafts fred@example.test lr', ["<tag> NO [CANNOT] The owner's rights cannot change"]],
      ['SETACL Nope anyone lr', ['<tag> NO [NONEXISTENT] No such mailbox']],
      [`DeleteAcl INBOX/Drafts ${david.address}`, ['<tag> OK DELETEACL completed']],
      [
        'GETACL INBOX/Drafts',
        [
          '* ACL INBOX/Drafts fred@example.test lrswipkxteacd chris@example.test lrsi',
          '<tag> OK GETACL completed',
        ],
      ],
      // §3.4: the identifier exactly as sent; no rights are tied, c and d stand alone (§2.1.1).
      [
        'LISTRIGHTS INBOX/Drafts Chris@Example.Test',
        [
          '* LISTRIGHTS INBOX/Drafts Chris@Example.Test "" l r s w i p k x t e a c d',
          '<tag> OK LISTRIGHTS completed',
        ],
      ],
      [
        'LISTRIGHTS INBOX/Drafts fred@example.test',
        ['* LISTRIGHTS INBOX/Drafts fred@example.test lrswipkxteacd', '<tag> OK LISTRIGHTS completed'],
      ],
      // An empty rights string removes the entry (§3.1 "replace").
      [`SETACL INBOX/Drafts ${chris.address} ""`, ['<tag> OK SETACL completed']],
      [
        'GETACL INBOX/Drafts',
        ['* ACL INBOX/Drafts fred@example.test lrswipkxteacd', '<tag> OK GETACL completed'],
      ],
      ['GETACL', ['<tag> BAD missing argument']],
    ]);
  });

  it('a grantee sees the mailbox under Other Users and "lr" is enforced on every command', async () => {
    const alice = await stack.createUser('alice');
    const bob = await stack.createUser('bob');
    const owner = await login(alice);
    await converse(owner, [
      ['CREATE Team', ['<tag> OK [MAILBOXID (<id>)] CREATE completed']],
      [
        appendCommand('Team', message('Hello team', 'first\r\n')),
        ['<tag> OK [APPENDUID <v> 1] APPEND completed'],
      ],
      [`SETACL Team ${bob.address} lr`, ['<tag> OK SETACL completed']],
    ]);
    const grantee = await login(bob);
    const shared = '"Other Users/alice@example.test/Team"';
    await converse(grantee, [
      ['NAMESPACE', ['* NAMESPACE (("" "/")) (("Other Users/" "/")) NIL', '<tag> OK NAMESPACE completed']],
      [
        'LIST "" "Other Users/*"',
        [
          '* LIST (\\Noselect \\HasChildren) "/" "Other Users/alice@example.test"',
          '* LIST (\\HasNoChildren) "/" "Other Users/alice@example.test/Team"',
          '<tag> OK LIST completed',
        ],
      ],
      [
        'LIST "" "Other Users"',
        ['* LIST (\\Noselect \\HasChildren) "/" "Other Users"', '<tag> OK LIST completed'],
      ],
      [`MYRIGHTS ${shared}`, [`* MYRIGHTS ${shared} lr`, '<tag> OK MYRIGHTS completed']],
      [`GETACL ${shared}`, ['<tag> NO [NOPERM] Permission denied']],
      [`SETACL ${shared} bob@example.test lrswi`, ['<tag> NO [NOPERM] Permission denied']],
      [
        `STATUS ${shared} (MESSAGES UIDNEXT)`,
        [`* STATUS ${shared} (MESSAGES 1 UIDNEXT 2)`, '<tag> OK STATUS completed'],
      ],
      // RFC 4314 §4: "i" for APPEND and for COPY into the mailbox.
      [appendCommand(shared, message('x', 'y\r\n')), ['<tag> NO [NOPERM] Permission denied']],
      [`CREATE "Other Users/alice@example.test/Team/Sub"`, ['<tag> NO [NOPERM] Permission denied']],
      [`DELETE ${shared}`, ['<tag> NO [NOPERM] Permission denied']],
      [
        `EXAMINE ${shared}`,
        [
          '* 1 EXISTS',
          '* 1 RECENT',
          '* OK [UIDVALIDITY <v>] UIDs valid',
          '* OK [UIDNEXT 2] Predicted next UID',
          '* OK [MAILBOXID (<id>)] Mailbox id',
          '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $MDNSent $Junk $NotJunk)',
          '* OK [PERMANENTFLAGS ()] No permanent flags permitted',
          '* OK [UNSEEN 1] First unseen',
          '<tag> OK [READ-ONLY] EXAMINE completed',
        ],
      ],
      // §5.2: without i, e, w, s or t even SELECT is READ-ONLY.
      [
        `SELECT ${shared}`,
        [
          '* OK [CLOSED] Previous mailbox closed',
          '* 1 EXISTS',
          '* 1 RECENT',
          '* OK [UIDVALIDITY <v>] UIDs valid',
          '* OK [UIDNEXT 2] Predicted next UID',
          '* OK [MAILBOXID (<id>)] Mailbox id',
          '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $MDNSent $Junk $NotJunk)',
          '* OK [PERMANENTFLAGS ()] No permanent flags permitted',
          '* OK [UNSEEN 1] First unseen',
          '<tag> OK [READ-ONLY] SELECT completed',
        ],
      ],
      [
        'FETCH 1 (UID FLAGS BODY[HEADER.FIELDS (SUBJECT)])',
        [
          '* 1 FETCH (UID 1 FLAGS (\\Recent) BODY[HEADER.FIELDS (SUBJECT)] {23}',
          'Subject: Hello team',
          '',
          ')',
          '<tag> OK FETCH completed',
        ],
      ],
      ['STORE 1 +FLAGS (\\Seen)', ['<tag> NO [READ-ONLY] Mailbox is read-only']],
      ['EXPUNGE', ['<tag> NO [READ-ONLY] Mailbox is read-only']],
      ['COPY 1 INBOX', ['<tag> OK [COPYUID <v> 1 1] COPY completed']],
      ['UNSELECT', ['<tag> OK UNSELECT completed']],
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
      [`COPY 1 ${shared}`, ['<tag> NO [NOPERM] Permission denied']],
      [`MOVE 1 ${shared}`, ['<tag> NO [NOPERM] Permission denied']],
    ]);

    // Storage itself refuses, whoever calls: the Mailstore API with bob acting on alice's mailbox.
    const api = stack.grpc.mailstore;
    const status = await api.getMailboxStatus({
      userId: alice.id,
      actingUserId: bob.id,
      mailbox: { selector: { $case: 'path', value: 'Team' } },
      claimRecent: false,
    });
    const teamId = status.status?.mailboxId ?? '';
    const one = { ranges: [{ first: 1, last: 1 }] };
    const store = (flag: mailstore.Flag) =>
      api.storeFlags({
        userId: alice.id,
        actingUserId: bob.id,
        mailboxId: teamId,
        uids: one,
        mode: mailstore.StoreMode.ADD,
        flags: [flag],
        keywords: [],
        unchangedSince: undefined,
      });
    expect(await refusal(() => store(mailstore.Flag.SEEN))).toBe(ErrorReason.PERMISSION_DENIED);
    expect(await refusal(() => store(mailstore.Flag.DELETED))).toBe(ErrorReason.PERMISSION_DENIED);
    expect(await refusal(() => store(mailstore.Flag.FLAGGED))).toBe(ErrorReason.PERMISSION_DENIED);
    expect(
      await refusal(() =>
        api.expunge({ userId: alice.id, actingUserId: bob.id, mailboxId: teamId, uids: undefined }),
      ),
    ).toBe(ErrorReason.PERMISSION_DENIED);
    expect(
      await refusal(() =>
        api.appendMessage({
          userId: alice.id,
          actingUserId: bob.id,
          mailbox: { selector: { $case: 'id', value: teamId } },
          flags: [],
          keywords: [],
          internalDate: undefined,
          message: message('x', 'y\r\n'),
        }),
      ),
    ).toBe(ErrorReason.PERMISSION_DENIED);
    // A copy within alice's mailboxes acting as bob: r on the source is not i on the destination.
    expect(
      await refusal(() =>
        api.copyMessages({
          userId: alice.id,
          actingUserId: bob.id,
          mailboxId: teamId,
          uids: one,
          destination: { selector: { $case: 'path', value: 'Team' } },
        }),
      ),
    ).toBe(ErrorReason.PERMISSION_DENIED);
    // alice's INBOX was never shared: as absent for bob as a mailbox that does not exist.
    expect(
      await refusal(() =>
        api.getMailboxStatus({
          userId: alice.id,
          actingUserId: bob.id,
          mailbox: { selector: { $case: 'path', value: 'INBOX' } },
          claimRecent: false,
        }),
      ),
    ).toBe(ErrorReason.NOT_FOUND);
    // The owner's own calls are unaffected.
    const owned = await api.storeFlags({
      userId: alice.id,
      mailboxId: teamId,
      uids: one,
      mode: mailstore.StoreMode.ADD,
      flags: [mailstore.Flag.FLAGGED],
      keywords: [],
      unchangedSince: undefined,
    });
    expect(owned.changed.map((c) => c.uid)).toEqual([1]);

    // Without "l" (but with "r") the mailbox is not listed; without any right it does not exist.
    await converse(owner, [[`SETACL Team ${bob.address} r`, ['<tag> OK SETACL completed']]]);
    await converse(grantee, [
      ['LIST "" "Other Users/*"', ['<tag> OK LIST completed']],
      [`MYRIGHTS ${shared}`, [`* MYRIGHTS ${shared} r`, '<tag> OK MYRIGHTS completed']],
    ]);
    await converse(owner, [[`DELETEACL Team ${bob.address}`, ['<tag> OK DELETEACL completed']]]);
    await converse(grantee, [
      [
        'LIST "" "*"',
        [
          '* LIST (\\HasNoChildren \\Archive) "/" Archive',
          '* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
          '* LIST (\\HasNoChildren) "/" INBOX',
          '* LIST (\\HasNoChildren \\Junk) "/" Junk',
          '* LIST (\\HasNoChildren \\Sent) "/" Sent',
          '* LIST (\\HasNoChildren \\Trash) "/" Trash',
          '<tag> OK LIST completed',
        ],
      ],
      // SELECT closes INBOX first (RFC 9051 §6.3.2), then finds nothing.
      [
        `SELECT ${shared}`,
        ['* OK [CLOSED] Previous mailbox closed', '<tag> NO [NONEXISTENT] No such mailbox'],
      ],
      [`MYRIGHTS ${shared}`, ['<tag> NO [NONEXISTENT] No such mailbox']],
    ]);
  });

  it('"s" allows only \\Seen, "i" allows APPEND and COPY in, "e" EXPUNGE; anyone covers the domain', async () => {
    const owner = await stack.createUser('olga');
    const member = await stack.createUser('mia');
    const colleague = await stack.createUser('carl');
    const o = await login(owner);
    await converse(o, [
      ['CREATE Support', ['<tag> OK [MAILBOXID (<id>)] CREATE completed']],
      [
        appendCommand('Support', message('Ticket 1', 'help\r\n')),
        ['<tag> OK [APPENDUID <v> 1] APPEND completed'],
      ],
      [`SETACL Support ${member.address} lrs`, ['<tag> OK SETACL completed']],
      ['SETACL Support anyone lri', ['<tag> OK SETACL completed']],
    ]);
    const shared = '"Other Users/olga@example.test/Support"';
    const m = await login(member);
    await converse(m, [
      // The union of mia's entry and anyone's: lrs + lri.
      [`MYRIGHTS ${shared}`, [`* MYRIGHTS ${shared} lrsi`, '<tag> OK MYRIGHTS completed']],
      [
        `SELECT ${shared}`,
        [
          '* 1 EXISTS',
          '* 1 RECENT',
          '* OK [UIDVALIDITY <v>] UIDs valid',
          '* OK [UIDNEXT 2] Predicted next UID',
          '* OK [MAILBOXID (<id>)] Mailbox id',
          '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $MDNSent $Junk $NotJunk)',
          '* OK [PERMANENTFLAGS (\\Seen)] Flags permitted',
          '* OK [UNSEEN 1] First unseen',
          '<tag> OK [READ-WRITE] SELECT completed',
        ],
      ],
      ['STORE 1 +FLAGS (\\Flagged)', ['<tag> NO [NOPERM] Permission denied']],
      ['STORE 1 +FLAGS (\\Deleted)', ['<tag> NO [NOPERM] Permission denied']],
      // RFC 4314 §4: the flags the user may change are changed, the others left alone.
      [
        'STORE 1 +FLAGS (\\Seen \\Flagged)',
        ['* 1 FETCH (FLAGS (\\Seen \\Recent))', '<tag> OK STORE completed'],
      ],
      ['EXPUNGE', ['<tag> NO [NOPERM] Permission denied']],
      [
        appendCommand(shared, message('Ticket 2', 'more\r\n'), ' (\\Seen \\Deleted)'),
        ['* 2 EXISTS', '* 2 RECENT', '<tag> OK [APPENDUID <v> 2] APPEND completed'],
      ],
      // APPEND kept \Seen (s) and dropped \Deleted (no t), as §4 requires.
      ['FETCH 2 (FLAGS)', ['* 2 FETCH (FLAGS (\\Seen \\Recent))', '<tag> OK FETCH completed']],
      // CLOSE without "e" closes without expunging, and still succeeds (§4).
      ['CLOSE', ['<tag> OK CLOSE completed']],
      // COPY from mia's own INBOX into the shared mailbox of another owner.
      [appendCommand('INBOX', message('Mine', 'x\r\n')), ['<tag> OK [APPENDUID <v> 1] APPEND completed']],
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
      [`COPY 1 ${shared}`, ['<tag> OK [COPYUID <v> 1 3] COPY completed']],
    ]);
    // anyone = every user of the owner's domain.
    const c = await login(colleague);
    await converse(c, [
      [`MYRIGHTS ${shared}`, [`* MYRIGHTS ${shared} lri`, '<tag> OK MYRIGHTS completed']],
      [`STATUS ${shared} (MESSAGES)`, [`* STATUS ${shared} (MESSAGES 3)`, '<tag> OK STATUS completed']],
    ]);
    // Grant "e" and "t": now mia can delete and expunge.
    await converse(o, [[`SETACL Support ${member.address} +te`, ['<tag> OK SETACL completed']]]);
    await converse(m, [
      [
        `SELECT ${shared}`,
        [
          '* OK [CLOSED] Previous mailbox closed',
          '* 3 EXISTS',
          // The copy from mia's INBOX arrived after her last SELECT of the mailbox.
          '* 1 RECENT',
          '* OK [UIDVALIDITY <v>] UIDs valid',
          '* OK [UIDNEXT 4] Predicted next UID',
          '* OK [MAILBOXID (<id>)] Mailbox id',
          '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $MDNSent $Junk $NotJunk)',
          '* OK [PERMANENTFLAGS (\\Deleted \\Seen)] Flags permitted',
          '* OK [UNSEEN 3] First unseen',
          '<tag> OK [READ-WRITE] SELECT completed',
        ],
      ],
      ['STORE 3 +FLAGS.SILENT (\\Deleted)', ['<tag> OK STORE completed']],
      ['EXPUNGE', ['* 3 EXPUNGE', '<tag> OK EXPUNGE completed']],
      ['STORE 1 +FLAGS (\\Deleted)', ['* 1 FETCH (FLAGS (\\Seen \\Deleted))', '<tag> OK STORE completed']],
    ]);
    // RFC 4314 §4 COPY: flags the user may not set at the destination are not stored there.
    await converse(o, [
      ['CREATE Support/Done', ['<tag> OK [MAILBOXID (<id>)] CREATE completed']],
      [`SETACL Support/Done ${member.address} lri`, ['<tag> OK SETACL completed']],
    ]);
    await converse(m, [
      ['COPY 1 "Other Users/olga@example.test/Support/Done"', ['<tag> OK [COPYUID <v> 1 1] COPY completed']],
    ]);
    const done = await stack.grpc.mailstore.getMailboxStatus({
      userId: owner.id,
      mailbox: { selector: { $case: 'path', value: 'Support/Done' } },
      claimRecent: false,
    });
    const copies = [];
    for await (const copy of stack.grpc.mailstore.fetchMessages({
      userId: owner.id,
      mailboxId: done.status?.mailboxId ?? '',
      uids: { ranges: [{ first: 1, last: 0 }] },
      changedSince: undefined,
      fields: [],
    })) {
      copies.push({ uid: copy.uid, flags: copy.flags, keywords: copy.keywords });
    }
    expect(copies).toEqual([{ uid: 1, flags: [], keywords: [] }]);
  });

  it('CreateSharedMailbox makes a team mailbox shared with its members, or changes nothing', async () => {
    const support = await stack.createUser('support');
    const agent = await stack.createUser('agent');
    const viewer = await stack.createUser('viewer');
    const api = stack.grpc.mailstore;
    // An unknown member: refused before anything is created.
    expect(
      await refusal(() =>
        api.createSharedMailbox({
          userId: support.id,
          path: 'Queue/Escalations',
          members: [
            { identifier: agent.address, rights: 'lrs' },
            { identifier: 'ghost@example.test', rights: 'lr' },
          ],
        }),
      ),
    ).toBe(ErrorReason.NOT_FOUND);
    expect(
      await refusal(() =>
        api.createSharedMailbox({
          userId: support.id,
          path: 'Queue/Escalations',
          members: [{ identifier: agent.address, rights: '+lr' }],
        }),
      ),
    ).toBe(ErrorReason.INVALID_ARGUMENT);
    const none = await api.listMailboxes({
      userId: support.id,
      reference: '',
      pattern: 'Queue*',
      subscribedOnly: false,
      specialUse: [],
    });
    expect(none.mailboxes).toEqual([]);
    const created = await api.createSharedMailbox({
      userId: support.id,
      path: 'Queue/Escalations',
      members: [
        { identifier: agent.address, rights: 'lrswitea' },
        { identifier: viewer.address, rights: 'lr' },
      ],
    });
    expect(created.mailbox?.path).toBe('Queue/Escalations');
    expect(created.entries).toEqual([
      { identifier: 'support@example.test', rights: 'lrswipkxteacd' },
      { identifier: 'agent@example.test', rights: 'lrswitead' },
      { identifier: 'viewer@example.test', rights: 'lr' },
    ]);
    // The INBOX of the account itself can be the team mailbox too (it exists already).
    const inbox = await api.createSharedMailbox({
      userId: support.id,
      path: 'INBOX',
      members: [{ identifier: agent.address, rights: 'lrsi' }],
    });
    expect(inbox.entries.map((e) => e.identifier)).toEqual(['support@example.test', 'agent@example.test']);
    const a = await login(agent);
    await converse(a, [
      [
        'LIST "" "Other Users/support@example.test/*"',
        [
          '* LIST (\\HasNoChildren) "/" "Other Users/support@example.test/INBOX"',
          '* LIST (\\Noselect \\HasChildren) "/" "Other Users/support@example.test/Queue"',
          '* LIST (\\HasNoChildren) "/" "Other Users/support@example.test/Queue/Escalations"',
          '<tag> OK LIST completed',
        ],
      ],
      [
        'MYRIGHTS "Other Users/support@example.test/Queue/Escalations"',
        [
          '* MYRIGHTS "Other Users/support@example.test/Queue/Escalations" lrswitead',
          '<tag> OK MYRIGHTS completed',
        ],
      ],
    ]);
  });

  it('an imapflow grantee in IDLE on the shared mailbox sees the owner append', async () => {
    const owner = await stack.createUser('owen');
    const grantee = await stack.createUser('gina');
    const o = await login(owner);
    await converse(o, [
      ['CREATE Shared', ['<tag> OK [MAILBOXID (<id>)] CREATE completed']],
      [`SETACL Shared ${grantee.address} lrs`, ['<tag> OK SETACL completed']],
    ]);
    const client = new ImapFlow({
      host: '127.0.0.1',
      port: stack.imapPort,
      secure: false,
      tls: { rejectUnauthorized: false },
      auth: { user: grantee.address, pass: grantee.password },
      logger: false,
      disableAutoIdle: false,
    });
    await client.connect();
    try {
      const namespaces = await client.list();
      expect(namespaces.map((n) => n.path)).toContain('Other Users/owen@example.test/Shared');
      const lock = await client.getMailboxLock('Other Users/owen@example.test/Shared');
      try {
        const exists = new Promise<number>((resolve) => {
          client.on('exists', (data: { count: number }) => resolve(data.count));
        });
        const idle = client.idle();
        // Give the IDLE command time to reach the server before the owner appends.
        await new Promise((r) => setTimeout(r, 300));
        await converse(o, [
          [
            appendCommand('Shared', message('Ping', 'pong\r\n')),
            ['<tag> OK [APPENDUID <v> 1] APPEND completed'],
          ],
        ]);
        expect(await exists).toBe(1);
        void idle;
      } finally {
        lock.release();
      }
    } finally {
      await client.logout();
    }
  });
});
