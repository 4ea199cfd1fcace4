/**
 * Two sessions on one mailbox (issue item 3): deliveries, flag changes and expunges made in one
 * session or by storage appear in the other, as EXISTS / FETCH FLAGS / EXPUNGE, only where
 * RFC 9051 §7.5.1 allows (never while answering FETCH, STORE or SEARCH by sequence number).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loggedIn, type TestClient } from './client.js';
import { appendCommand, converse, normalize } from './conversation.js';
import { message, startImapStack, type ImapStack, type TestUser } from './harness.js';

const settle = (ms = 400): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('two sessions on one mailbox', () => {
  let stack: ImapStack;
  let user: TestUser;
  let a: TestClient;
  let b: TestClient;

  beforeAll(async () => {
    stack = await startImapStack();
    user = await stack.createUser();
    a = await loggedIn(stack.imapPort, user);
    b = await loggedIn(stack.imapPort, user);
    for (const [client, prefix] of [
      [a, 'A'],
      [b, 'B'],
    ] as const) {
      await converse(
        client,
        [['ENABLE IMAP4rev2', ['* ENABLED IMAP4rev2', '<tag> OK ENABLE completed']]],
        prefix,
      );
    }
    for (const n of [1, 2, 3]) {
      await converse(
        a,
        [[appendCommand('INBOX', message(`m${n}`)), [`<tag> OK [APPENDUID <v> ${n}] APPEND completed`]]],
        'P',
      );
    }
    for (const client of [a, b]) {
      const selected = normalize(await client.command('S', 'SELECT INBOX'));
      expect(selected).toContain('* 3 EXISTS\r\n');
      expect(selected).not.toContain('RECENT');
    }
  });
  afterAll(async () => {
    a?.close();
    b?.close();
    await stack?.stop();
  });

  it('a flag change in one session reaches the other at its next NOOP', async () => {
    await converse(
      b,
      [['STORE 2 +FLAGS (\\Flagged)', ['* 2 FETCH (FLAGS (\\Flagged))', '<tag> OK STORE completed']]],
      'C',
    );
    await settle();
    await converse(a, [['NOOP', ['* 2 FETCH (UID 2 FLAGS (\\Flagged))', '<tag> OK NOOP completed']]], 'D');
    // Already reported: not repeated.
    await converse(a, [['NOOP', ['<tag> OK NOOP completed']]], 'E');
    // B's own change is not echoed back to B either.
    await converse(b, [['NOOP', ['<tag> OK NOOP completed']]], 'F');
  });

  it('a delivery through storage is announced to both sessions', async () => {
    await stack.grpc.mailstore.appendMessage({
      userId: user.id,
      mailbox: { selector: { $case: 'path', value: 'INBOX' } },
      flags: [],
      keywords: [],
      internalDate: undefined,
      message: message('delivered'),
    });
    await settle();
    await converse(a, [['NOOP', ['* 4 EXISTS', '<tag> OK NOOP completed']]], 'G');
    await converse(
      b,
      // IMAP4rev2 sessions: ESEARCH (RFC 9051 §6.4.4).
      [
        [
          'UID SEARCH SUBJECT delivered',
          ['* 4 EXISTS', '* ESEARCH (TAG "<tag>") UID ALL 4', '<tag> OK UID SEARCH completed'],
        ],
      ],
      'H',
    );
  });

  it('an expunge waits during FETCH/STORE/SEARCH by sequence number and arrives at NOOP', async () => {
    await converse(
      b,
      [
        ['STORE 1 +FLAGS.SILENT (\\Deleted)', ['<tag> OK STORE completed']],
        ['EXPUNGE', ['* 1 EXPUNGE', '<tag> OK EXPUNGE completed']],
      ],
      'I',
    );
    await settle();
    // RFC 9051 §7.5.1: no EXPUNGE while answering FETCH by MSN; the expunged message is omitted.
    await converse(
      a,
      [
        [
          'FETCH 1:* (UID)',
          ['* 2 FETCH (UID 2)', '* 3 FETCH (UID 3)', '* 4 FETCH (UID 4)', '<tag> OK FETCH completed'],
        ],
        ['SEARCH ALL', ['* ESEARCH (TAG "<tag>") ALL 2:4', '<tag> OK SEARCH completed']],
        ['STORE 2 -FLAGS.SILENT (\\Flagged)', ['<tag> OK STORE completed']],
        ['NOOP', ['* 1 EXPUNGE', '<tag> OK NOOP completed']],
        [
          'FETCH 1:* (UID FLAGS)',
          [
            '* 1 FETCH (UID 2 FLAGS ())',
            '* 2 FETCH (UID 3 FLAGS ())',
            '* 3 FETCH (UID 4 FLAGS ())',
            '<tag> OK FETCH completed',
          ],
        ],
      ],
      'J',
    );
    // B learns about A's flag removal.
    await settle();
    await converse(b, [['NOOP', ['* 1 FETCH (UID 2 FLAGS ())', '<tag> OK NOOP completed']]], 'K');
  });

  it('UID commands may carry pending updates (RFC 9051 §7.5.1)', async () => {
    await converse(
      b,
      [
        ['UID STORE 3 +FLAGS.SILENT (\\Deleted)', ['<tag> OK UID STORE completed']],
        ['UID EXPUNGE 3', ['* 2 EXPUNGE', '<tag> OK UID EXPUNGE completed']],
      ],
      'L',
    );
    await settle();
    await converse(
      a,
      [
        [
          'UID FETCH 4 (FLAGS)',
          ['* 2 EXPUNGE', '* 2 FETCH (UID 4 FLAGS ())', '<tag> OK UID FETCH completed'],
        ],
      ],
      'M',
    );
  });

  it('an idling session is told about deliveries, flag changes and expunges as they happen', async () => {
    a.write('N1 IDLE\r\n');
    await a.readLine('+ idling');
    await converse(
      b,
      [['UID STORE 2 +FLAGS (\\Seen)', ['* 1 FETCH (UID 2 FLAGS (\\Seen))', '<tag> OK UID STORE completed']]],
      'O',
    );
    expect(await a.readLine('* 1 FETCH')).toBe('* 1 FETCH (UID 2 FLAGS (\\Seen))\r\n');
    await stack.grpc.mailstore.appendMessage({
      userId: user.id,
      mailbox: { selector: { $case: 'path', value: 'INBOX' } },
      flags: [],
      keywords: [],
      internalDate: undefined,
      message: message('while idle'),
    });
    expect(await a.readLine('* 3 EXISTS')).toBe('* 3 EXISTS\r\n');
    await converse(
      b,
      [
        ['UID STORE 2 +FLAGS.SILENT (\\Deleted)', ['* 3 EXISTS', '<tag> OK UID STORE completed']],
        ['EXPUNGE', ['* 1 EXPUNGE', '<tag> OK EXPUNGE completed']],
      ],
      'Q',
    );
    const pushed = await a.readUntil((t) =>
      t.includes('* 1 EXPUNGE\r\n') ? t.indexOf('* 1 EXPUNGE\r\n') + 13 : -1,
    );
    expect(pushed).toContain('* 1 EXPUNGE\r\n');
    a.write('DONE\r\n');
    expect(await a.readLine('N1 ')).toBe('N1 OK IDLE terminated\r\n');
    await converse(
      a,
      [['FETCH 1:* UID', ['* 1 FETCH (UID 4)', '* 2 FETCH (UID 5)', '<tag> OK FETCH completed']]],
      'R',
    );
  });
});
