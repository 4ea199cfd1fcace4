/**
 * Bad input over a socket (issue item 6): random bytes and random sequences of IMAP tokens, sent
 * before and after login in random chunks, never crash the server or disturb another session.
 * Bounded: a fixed number of connections with a fixed seed, each closed after its input.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient, loggedIn, quote } from './client.js';
import { appendCommand } from './conversation.js';
import { message, startImapStack, type ImapStack, type TestUser } from './harness.js';

const TOKENS = [
  'a1',
  '*',
  ' ',
  '\r\n',
  'LOGIN',
  'SELECT',
  'INBOX',
  'FETCH',
  'UID',
  'STORE',
  'SEARCH',
  'APPEND',
  'IDLE',
  'DONE',
  'AUTHENTICATE',
  'PLAIN',
  'STARTTLS',
  'LIST',
  '""',
  '"*"',
  '(',
  ')',
  '[',
  ']',
  '<',
  '>',
  '{5}',
  '{3+}',
  '~{2}',
  '{99999999999}',
  'BODY[',
  'BODY.PEEK[HEADER.FIELDS (',
  'BINARY[1]',
  '1:*',
  '*:1',
  '$',
  '0',
  '4294967296',
  '+FLAGS',
  '\\Seen',
  '\\',
  '"',
  'CHARSET',
  'UTF-8',
  'OR',
  'NOT',
  'HEADER',
  'ENABLE',
  'IMAP4rev2',
  'RETURN',
  'STATUS',
  'MOVE',
  'COPY',
  'EXPUNGE',
  'NOOP',
  'LOGOUT',
  '\x00',
  '\xff',
  'é',
  '&AMk-',
  '&-',
  '&Zm9v',
];

describe('fuzzing over a socket', () => {
  let stack: ImapStack;
  let user: TestUser;
  let bystander: TestClient;

  beforeAll(async () => {
    stack = await startImapStack();
    user = await stack.createUser();
    bystander = await loggedIn(stack.imapPort, user);
    await bystander.command('p1', appendCommand('INBOX', message('fuzz target')));
    await bystander.command('p2', 'SELECT INBOX');
  });
  afterAll(async () => {
    bystander?.close();
    await stack?.stop();
  });

  const inputs = fc.sample(
    fc.record({
      login: fc.boolean(),
      chunks: fc.array(
        fc.oneof(
          fc.uint8Array({ minLength: 1, maxLength: 200 }).map((b) => Buffer.from(b)),
          fc
            .array(fc.constantFrom(...TOKENS), { minLength: 1, maxLength: 30 })
            .map((t) => Buffer.from(t.join(''), 'latin1')),
        ),
        { minLength: 1, maxLength: 12 },
      ),
    }),
    { numRuns: 120, seed: 20261127 },
  );

  it('survives 120 connections of random bytes and token soup, and other sessions carry on', async () => {
    for (let i = 0; i < inputs.length; i += 6) {
      await Promise.all(
        inputs.slice(i, i + 6).map(async (input) => {
          const client = input.login
            ? await loggedIn(stack.imapPort, user)
            : await TestClient.connect(stack.imapPort);
          for (const chunk of input.chunks) {
            client.write(chunk);
            await new Promise((r) => setTimeout(r, 2));
          }
          await client.drain(50);
          client.close();
        }),
      );
      expect(stack.imap.running).toBe(true);
    }
    expect(await bystander.command('b1', 'NOOP')).toMatch(/b1 OK NOOP completed\r\n$/);
    expect(await bystander.command('b2', 'FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])')).toContain(
      'Subject: fuzz target',
    );
    const fresh = await TestClient.connect(stack.imapPort);
    expect(await fresh.readLine('* OK')).toMatch(/^\* OK \[CAPABILITY /);
    expect(await fresh.command('c1', `LOGIN ${user.address} ${quote(user.password)}`)).toMatch(/^c1 OK/);
    fresh.close();
    // No crash, and no session ended by an internal error (those would log "session failed").
    expect(stack.log('imap')).not.toMatch(/"level":"fatal"|uncaught|unhandled|session failed|command failed/);
  }, 300_000);
});
