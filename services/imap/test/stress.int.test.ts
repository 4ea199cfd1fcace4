/**
 * Random multi-client stress against the real imap and storage services: 10 raw-socket sessions
 * over 5 users (two per user, on the same two mailboxes) select, examine, fetch, store keywords
 * and system flags, expunge, append, copy and move at random. Every response is checked by a
 * `SessionView` built only from the wire (session-view.ts): no EXISTS decrease, no EXPUNGE or
 * FETCH of a sequence number the session does not have, no keyword before its `* FLAGS`, no
 * \Recent in two sessions, no BAD, no BYE. At the end each session's view (after NOOP) holds
 * exactly the UIDs the server lists for the mailbox. The random choices come from a seed printed
 * on failure (POSTMESH_STRESS_SEED repeats a run).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loggedIn, type TestClient } from './client.js';
import { appendCommand } from './conversation.js';
import { message, startImapStack, type ImapStack } from './harness.js';
import { RecentRegistry, SessionView } from './session-view.js';

const USERS = 5;
const SESSIONS_PER_USER = 2;
const OPERATIONS = 40;
const MAILBOXES = ['INBOX', 'Work'];
const KEYWORDS = ['kwAlpha', 'kwBeta', 'kwGamma', 'kwDelta', 'kwEpsilon', 'kwZeta'];

/** mulberry32: a small seeded generator, so a failing run can be repeated. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Session {
  readonly client: TestClient;
  readonly view: SessionView;
  n: number;
}

async function run(session: Session, command: string | Buffer): Promise<string> {
  const tag = `${session.view.name}x${++session.n}`;
  const response = await session.client.command(tag, command, 30_000);
  const text = typeof command === 'string' ? command : command.subarray(0, 60).toString('latin1');
  session.view.consume(text, tag, response);
  return response;
}

describe('random multi-client stress: the protocol rules hold in every session', () => {
  let stack: ImapStack;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    stack = await startImapStack();
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await stack?.stop();
  });

  it('10 sessions over 5 users: no protocol error, and every view ends equal to the mailbox', async () => {
    const seed = Number(process.env.POSTMESH_STRESS_SEED ?? Date.now() % 1_000_000);
    const rand = random(seed);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)] as T;
    const recent = new RecentRegistry();
    const sessions: Session[] = [];
    for (let u = 0; u < USERS; u++) {
      const user = await stack.createUser(`stress${u}`);
      for (let s = 0; s < SESSIONS_PER_USER; s++) {
        const client = await loggedIn(stack.imapPort, user);
        clients.push(client);
        sessions.push({ client, view: new SessionView(`u${u}s${s}`, user.id, recent), n: 0 });
      }
      const first = sessions[sessions.length - SESSIONS_PER_USER]!;
      await run(first, 'CREATE Work');
      for (let m = 0; m < 3; m++) await run(first, appendCommand('INBOX', message(`seed ${m}`)));
    }

    const step = async (session: Session): Promise<void> => {
      const view = session.view;
      const count = view.count;
      const msn = () => 1 + Math.floor(rand() * count);
      const choice = rand();
      if (view.mailbox === null || choice < 0.1) {
        await run(session, `${rand() < 0.8 ? 'SELECT' : 'EXAMINE'} ${pick(MAILBOXES)}`);
      } else if (choice < 0.3) {
        if (count > 0) await run(session, `FETCH 1:* (UID FLAGS)`);
        else await run(session, 'NOOP');
      } else if (choice < 0.5) {
        if (count === 0 || view.readOnly) await run(session, 'NOOP');
        else {
          const flag = rand() < 0.6 ? pick(KEYWORDS) : pick(['\\Seen', '\\Flagged', '\\Deleted']);
          const command =
            rand() < 0.5
              ? `STORE ${msn()} ${rand() < 0.7 ? '+' : '-'}FLAGS (${flag})`
              : `STORE ${msn()} +FLAGS.SILENT (${flag})`;
          await run(session, command);
        }
      } else if (choice < 0.6) {
        await run(session, view.readOnly ? 'NOOP' : 'EXPUNGE');
      } else if (choice < 0.78) {
        const flags = rand() < 0.5 ? ` (${pick(KEYWORDS)})` : '';
        await run(session, appendCommand(pick(MAILBOXES), message(`stress ${session.n}`), flags));
      } else if (choice < 0.86) {
        if (count > 0) await run(session, `COPY ${msn()} ${pick(MAILBOXES)}`);
        else await run(session, 'NOOP');
      } else if (choice < 0.92) {
        if (count > 0 && !view.readOnly) await run(session, `MOVE ${msn()} ${pick(MAILBOXES)}`);
        else await run(session, 'NOOP');
      } else {
        await run(session, rand() < 0.5 ? 'NOOP' : `STATUS ${pick(MAILBOXES)} (MESSAGES RECENT UNSEEN)`);
      }
    };

    await Promise.all(
      sessions.map(async (session) => {
        for (let i = 0; i < OPERATIONS; i++) await step(session);
      }),
    );

    // Quiet now: after NOOP each view must hold exactly the mailbox's UIDs.
    for (const session of sessions) {
      if (session.view.mailbox === null) continue;
      await run(session, 'NOOP');
      await run(session, session.view.count > 0 ? 'FETCH 1:* (UID)' : 'NOOP');
    }
    for (const session of sessions) {
      const mailbox = session.view.mailbox;
      if (mailbox === null) continue;
      const status = await session.client.command('fin', `UID SEARCH ALL`);
      const uids = (/^\* SEARCH([\d ]*)\r$/m.exec(status)?.[1] ?? '').trim();
      expect(session.view.uids.join(' '), `${session.view.name} in ${mailbox} (seed ${seed})`).toBe(uids);
    }
    const violations = sessions.flatMap((s) => s.view.violations);
    expect(violations, `seed ${seed}`).toEqual([]);
  }, 120_000);
});
