/**
 * Change notifications name the mailbox and its HIGHESTMODSEQ: a session that made the change
 * itself, or has another mailbox selected, does not ask storage for changes it already knows or
 * that are not in its mailbox, while another session on the mailbox still learns of every change.
 * Counted from storage's own gRPC metrics; real storage, NATS and imap processes, real sessions.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loggedIn, type TestClient } from './client.js';
import { appendCommand } from './conversation.js';
import { message, startImapStack, type ImapStack, type TestUser } from './harness.js';

const GET_CHANGES = '/postmesh.mailstore.v1.MailstoreService/GetChanges';

let stack: ImapStack;
let user: TestUser;
const open: TestClient[] = [];

beforeAll(async () => {
  stack = await startImapStack();
  user = await stack.createUser();
  const c = await loggedIn(stack.imapPort, user);
  open.push(c);
  for (let i = 1; i <= 4; i++) {
    expect(await c.command(`P${i}`, appendCommand('INBOX', message(`m${i}`)))).toContain(`P${i} OK`);
  }
  expect(await c.command('C', 'CREATE Projects')).toContain('C OK');
}, 120_000);
afterAll(async () => {
  for (const c of open) c.close();
  await stack?.stop();
});

/** Calls of one storage RPC answered so far (its duration histogram's count, all codes). */
async function calls(method: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${stack.storageOpsPort}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('postmesh_grpc_server_duration_seconds_count{') && line.includes(`"${method}"`))
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

async function session(): Promise<TestClient> {
  const c = await loggedIn(stack.imapPort, user);
  open.push(c);
  expect(await c.command('S', 'SELECT INBOX')).toContain('S OK [READ-WRITE]');
  return c;
}

/** Long enough for a notification to cross NATS to the imap process. */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 500));

describe('mailbox change notifications', () => {
  it("the writer's own STORE and EXPUNGE ask storage nothing; the other session learns both", async () => {
    const writer = await session();
    const watcher = await session();
    expect(await writer.command('T1', 'UID STORE 2 +FLAGS (\\Flagged)')).toMatch(
      /\* 2 FETCH \(UID 2 FLAGS \(\\Flagged[^)]*\)\)/,
    );
    await settle();
    const before = await calls(GET_CHANGES);
    expect(await writer.command('F1', 'UID FETCH 2 (FLAGS)')).toMatch(
      /\* 2 FETCH \(UID 2 FLAGS \(\\Flagged[^)]*\)\)/,
    );
    expect(await calls(GET_CHANGES)).toBe(before);

    expect(await writer.command('T2', 'UID STORE 3 +FLAGS.SILENT (\\Deleted)')).toContain('T2 OK');
    expect(await writer.command('E', 'EXPUNGE')).toContain('* 3 EXPUNGE');
    await settle();
    const afterExpunge = await calls(GET_CHANGES);
    expect(await writer.command('F2', 'UID FETCH 1:* (FLAGS)')).not.toContain('EXPUNGE');
    expect(await calls(GET_CHANGES)).toBe(afterExpunge);

    // The other session catches up on all of it (one GetChanges), as before.
    const noop = await watcher.command('N', 'NOOP');
    expect(noop).toContain('* 3 EXPUNGE');
    expect(noop).toMatch(/\* 2 FETCH \(UID 2 FLAGS \(\\Flagged[^)]*\)\)/);
    expect(await calls(GET_CHANGES)).toBe(afterExpunge + 1);
  });

  it('a change to another mailbox does not make a session with INBOX selected ask for changes', async () => {
    const reader = await session();
    const other = await session();
    await settle();
    const before = await calls(GET_CHANGES);
    expect(await other.command('A', appendCommand('Projects', message('archived')))).toContain('A OK');
    await settle();
    expect(await reader.command('F', 'UID FETCH 1 (FLAGS)')).toContain('F OK');
    expect(await other.command('G', 'UID FETCH 1 (FLAGS)')).toContain('G OK');
    expect(await calls(GET_CHANGES)).toBe(before);
    // A new message in the selected mailbox still reaches both.
    expect(await other.command('B', appendCommand('INBOX', message('new')))).toContain('B OK');
    await settle();
    expect(await reader.command('H', 'UID FETCH 1 (FLAGS)')).toMatch(/\* \d+ EXISTS/);
    expect(await calls(GET_CHANGES)).toBeGreaterThan(before);
  });
});
