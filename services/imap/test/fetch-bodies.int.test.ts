/**
 * A FETCH that asks only for bodies (`FETCH n BODY.PEEK[]`, the commonest "open this message")
 * reads each body with one storage call and skips the metadata call; anything that needs flags,
 * envelope or structure, or sets \Seen, still asks for metadata. Counted from storage's own gRPC
 * metrics; real storage and imap processes, real IMAP sessions.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loggedIn, type TestClient } from './client.js';
import { appendCommand } from './conversation.js';
import { message, startImapStack, type ImapStack, type TestUser } from './harness.js';

const FETCH_MESSAGES = '/postmesh.mailstore.v1.MailstoreService/FetchMessages';
const GET_CONTENT = '/postmesh.mailstore.v1.MailstoreService/GetMessageContent';

let stack: ImapStack;
let user: TestUser;
const open: TestClient[] = [];

beforeAll(async () => {
  stack = await startImapStack();
  user = await stack.createUser();
  const c = await loggedIn(stack.imapPort, user);
  open.push(c);
  for (let i = 1; i <= 3; i++) {
    const reply = await c.command(`P${i}`, appendCommand('INBOX', message(`body ${i}`, `text of ${i}\r\n`)));
    expect(reply).toContain(`P${i} OK`);
  }
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

describe('FETCH of bodies only', () => {
  it('reads the body without a metadata call, and the same bytes as before', async () => {
    const c = await session();
    const [metadataBefore, contentBefore] = [await calls(FETCH_MESSAGES), await calls(GET_CONTENT)];
    const reply = await c.command('F1', 'FETCH 2 BODY.PEEK[]');
    const expected = message('body 2', 'text of 2\r\n');
    expect(reply).toBe(
      `* 2 FETCH (BODY[] {${expected.length}}\r\n${expected.toString('latin1')})\r\nF1 OK FETCH completed\r\n`,
    );
    const uid = await c.command('F2', 'UID FETCH 1:3 (BODY.PEEK[TEXT])');
    expect(uid).toContain('* 3 FETCH (UID 3 BODY[TEXT] {11}\r\ntext of 3\r\n)');
    expect(await calls(FETCH_MESSAGES)).toBe(metadataBefore);
    expect(await calls(GET_CONTENT)).toBe(contentBefore + 4);
  });

  it('still asks for metadata when flags are wanted or \\Seen is set', async () => {
    const c = await session();
    const before = await calls(FETCH_MESSAGES);
    expect(await c.command('G1', 'FETCH 1 (FLAGS BODY.PEEK[TEXT])')).toContain(
      '* 1 FETCH (FLAGS () BODY[TEXT] {11}\r\ntext of 1\r\n)',
    );
    // A non-PEEK fetch sets \Seen and reports the new flags (RFC 9051 §6.4.5).
    expect(await c.command('G2', 'FETCH 1 BODY[TEXT]')).toContain(
      '* 1 FETCH (BODY[TEXT] {11}\r\ntext of 1\r\n FLAGS (\\Seen))',
    );
    expect(await c.command('G3', 'FETCH 1 (UID)')).toContain('* 1 FETCH (UID 1)');
    expect(await calls(FETCH_MESSAGES)).toBe(before + 3);
  });

  it("answers a part the message does not have as NIL, from storage's own refusal (RFC 9051 §7.5.2)", async () => {
    const c = await session();
    expect(await c.command('N1', 'FETCH 1 BODY.PEEK[4]')).toBe(
      '* 1 FETCH (BODY[4] NIL)\r\nN1 OK FETCH completed\r\n',
    );
  });

  it('leaves out a message another session expunged, and completes OK', async () => {
    const a = await session();
    const b = await session();
    expect(await b.command('X1', 'STORE 3 +FLAGS.SILENT (\\Deleted)')).toContain('X1 OK');
    expect(await b.command('X2', 'EXPUNGE')).toContain('* 3 EXPUNGE');
    // Session a still has message 3 (no EXPUNGE may be sent during FETCH, RFC 9051 §7.5.1).
    const reply = await a.command('X3', 'FETCH 2:3 BODY.PEEK[TEXT]');
    expect(reply).toContain('* 2 FETCH (BODY[TEXT] {11}\r\ntext of 2\r\n)');
    expect(reply).not.toContain('* 3 FETCH');
    expect(reply).toContain('X3 OK FETCH completed');
  });
});
