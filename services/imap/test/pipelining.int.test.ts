/**
 * Pipelined commands (RFC 9051 §5.5: a client may send several commands without waiting): the
 * server answers each in order, over plaintext and over TLS, as mbsync does when it downloads a
 * mailbox with one `UID FETCH n (BODY.PEEK[])` per message.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mailstore } from '@postmesh/contracts';
import { TestClient, quote } from './client.js';
import { message, startImapStack, type ImapStack, type TestUser } from './harness.js';

const COUNT = 100;

describe('pipelining', () => {
  let stack: ImapStack;
  let user: TestUser;
  beforeAll(async () => {
    stack = await startImapStack();
    user = await stack.createUser();
    for (let start = 1; start <= COUNT; start += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, k) =>
          stack.grpc.mailstore.appendMessage({
            userId: user.id,
            mailbox: { selector: { $case: 'path', value: 'INBOX' } },
            flags: (start + k) % 2 === 0 ? [mailstore.Flag.SEEN] : [],
            keywords: [],
            internalDate: undefined,
            message: message(`pipe ${start + k}`),
          }),
        ),
      );
    }
  });
  afterAll(async () => {
    await stack?.stop();
  });

  for (const tls of [false, true]) {
    it(`answers ${COUNT} pipelined UID FETCH BODY.PEEK[] in order (${tls ? 'STARTTLS' : 'plaintext'})`, async () => {
      const client = await TestClient.connect(stack.imapPort);
      await client.readLine('* OK');
      if (tls) {
        expect(await client.command('s', 'STARTTLS')).toBe('s OK Begin TLS negotiation now\r\n');
        await client.startTls();
      }
      expect(await client.command('l', `LOGIN ${user.address} ${quote(user.password)}`)).toMatch(/^l OK/);
      expect(await client.command('x', 'EXAMINE INBOX')).toContain(`* ${COUNT} EXISTS`);
      let commands = '';
      for (let i = 1; i <= COUNT; i++) commands += `f${i} UID FETCH ${i} (BODY.PEEK[])\r\n`;
      client.write(commands);
      const all = await client.readLine(`f${COUNT} `, 60_000);
      const tagged = all.match(/^f\d+ OK UID FETCH completed\r$/gm) ?? [];

      expect(tagged).toHaveLength(COUNT);
      expect(tagged[0]).toBe('f1 OK UID FETCH completed\r');
      expect(all).toContain(`Subject: pipe ${COUNT}\r\n`);
      client.close();
    });
  }
});
