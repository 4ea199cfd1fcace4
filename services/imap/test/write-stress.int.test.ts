/**
 * Ten sessions writing to one mailbox through real IMAP, storage and FerretDB, across a background
 * compaction of more flag records than FerretDB has connections (100): every SELECT, STORE,
 * EXPUNGE, APPEND and NOOP gets its tagged OK, and a new session still logs in. Storage used to
 * hang here — FerretDB keeps a connection per matched statement of one `update` command, and the
 * compaction's single bulk update of 114 records took them all, so every later database command,
 * LOGIN's included, waited forever (services/storage/src/db/bulk-updates.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loggedIn, type TestClient } from './client.js';
import { appendCommand } from './conversation.js';
import { message, startImapStack, type ImapStack, type TestUser } from './harness.js';

const SESSIONS = 10;
const PER_SESSION = 15;
const MESSAGES = SESSIONS * PER_SESSION;
const COMMAND_MS = 20_000;

const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The tagged response line of `reply`, which must be OK. */
function expectOk(reply: string, tag: string, what: string): void {
  const tagged = reply.split('\r\n').find((line) => line.startsWith(`${tag} `)) ?? '';
  expect(tagged, `${what}: ${reply.slice(-300)}`).toMatch(new RegExp(`^${tag} OK`));
}

describe('ten sessions writing to one mailbox during compaction', () => {
  let stack: ImapStack;
  let user: TestUser;
  const sessions: TestClient[] = [];

  beforeAll(async () => {
    stack = await startImapStack();
    user = await stack.createUser();
  }, 120_000);
  afterAll(async () => {
    for (const s of sessions) s.close();
    await stack?.stop();
  });

  it('every command completes and a new session logs in', async () => {
    const filler = await loggedIn(stack.imapPort, user);
    sessions.push(filler);
    for (let n = 1; n <= MESSAGES; n++) {
      expectOk(
        await filler.command('A', appendCommand('INBOX', message(`m${n}`)), COMMAND_MS),
        'A',
        'APPEND',
      );
    }
    for (let i = 0; i < SESSIONS; i++) {
      const s = await loggedIn(stack.imapPort, user);
      sessions.push(s);
      expectOk(await s.command('S', 'SELECT INBOX', COMMAND_MS), 'S', 'SELECT');
    }
    const writers = sessions.slice(1);
    // One flag record per message, each session flagging its own fifteen.
    await Promise.all(
      writers.map(async (s, i) => {
        for (let k = 1; k <= PER_SESSION; k++) {
          const uid = i * PER_SESSION + k;
          expectOk(
            await s.command('F', `UID STORE ${uid} +FLAGS.SILENT (\\Flagged)`, COMMAND_MS),
            'F',
            'STORE',
          );
        }
      }),
    );
    // Writes pause: storage compacts the 150 records in the background (after 2 s of quiet).
    await settle(3_000);

    await Promise.all(
      writers.map(async (s, i) => {
        for (let round = 0; round < 3; round++) {
          const uid = i * PER_SESSION + round + 1;
          expectOk(await s.command('S', 'SELECT INBOX', COMMAND_MS), 'S', 'SELECT');
          expectOk(await s.command('T', `UID STORE ${uid} +FLAGS.SILENT (\\Seen)`, COMMAND_MS), 'T', 'STORE');
          expectOk(
            await s.command('D', `UID STORE ${uid} +FLAGS.SILENT (\\Deleted)`, COMMAND_MS),
            'D',
            'STORE',
          );
          expectOk(await s.command('E', 'EXPUNGE', COMMAND_MS), 'E', 'EXPUNGE');
          expectOk(
            await s.command('A', appendCommand('INBOX', message(`s${i}r${round}`)), COMMAND_MS),
            'A',
            'APPEND',
          );
          expectOk(await s.command('N', 'NOOP', COMMAND_MS), 'N', 'NOOP');
        }
      }),
    );

    const late = await loggedIn(stack.imapPort, user);
    sessions.push(late);
    const status = await late.command('Q', 'STATUS INBOX (MESSAGES)', COMMAND_MS);
    expectOk(status, 'Q', 'STATUS');
    // 150 appended, 3 expunged and 3 appended by each session.
    expect(status).toContain(`(MESSAGES ${MESSAGES})`);
    const flags = await late.command('R', 'SELECT INBOX', COMMAND_MS);
    expectOk(flags, 'R', 'SELECT');
    const fetched = await late.command('G', 'UID FETCH 1:* (FLAGS)', COMMAND_MS);
    expectOk(fetched, 'G', 'FETCH');
    // Every flag that got its OK is there: the 120 flagged messages not expunged.
    expect(fetched.match(/\\Flagged/g) ?? []).toHaveLength(MESSAGES - SESSIONS * 3);
  }, 300_000);
});
