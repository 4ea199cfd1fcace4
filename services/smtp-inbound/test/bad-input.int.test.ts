/**
 * Bad input (DESIGN §5: always a protocol-correct error, never a crash, never accepted mail lost):
 * each case gets its reply code, and the server keeps serving other clients.
 * RFC 5321 §4.2 (reply codes), §4.5.3.1 (size limits), §2.3.8 (CRLF only), RFC 2920 (pipelining).
 */
import { randomBytes } from 'node:crypto';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO, Pipeline } from './pipeline.js';
import { WireClient, type Reply } from './smtp-wire.js';

const LIMIT = 1024 * 1024;

describe('smtp-inbound under bad input', () => {
  let p: Pipeline;
  beforeAll(async () => {
    p = await Pipeline.start({ smtpEnv: { POSTMESH_SMTP_MAX_MESSAGE_BYTES: String(LIMIT) } });
  }, 90_000);
  afterAll(async () => {
    await p?.stop();
  });

  async function session(): Promise<WireClient> {
    const { client, greeting } = await WireClient.open(p.smtpPort);
    expect(greeting.code).toBe(220);
    expect((await client.command('EHLO client.test')).code).toBe(250);
    return client;
  }

  /** A normal client still gets its mail delivered (the server kept serving). */
  async function stillServes(): Promise<void> {
    const token = randomBytes(6).toString('hex');
    const info = await nodemailer
      .createTransport({ host: '127.0.0.1', port: p.smtpPort, secure: false, ignoreTLS: true })
      .sendMail({ from: 'ok@sender.test', to: DEMO, subject: `ok ${token}`, text: token });
    expect(info.response).toMatch(/^250 /);
    await p.waitForMessages(DEMO, (m) => m.some((x) => x.bytes.includes(token)));
  }

  it('malformed and out-of-sequence commands: 500, 501, 503', async () => {
    const c = await session();
    expect((await c.command('FOO BAR')).code).toBe(500);
    expect((await c.command('MAIL FROM:<bad')).code).toBe(501);
    expect((await c.command(`RCPT TO:<${DEMO}>`)).code).toBe(503);
    expect((await c.command('DATA')).code).toBe(503);
    expect((await c.command('DATA now')).code).toBe(501);
    expect((await c.command('NOOP')).code).toBe(250);
    c.close();
    await stillServes();
  });

  it('a bare LF inside DATA is refused with 451 and the connection closed, nothing stored', async () => {
    const token = randomBytes(6).toString('hex');
    const c = await session();
    expect((await c.command('MAIL FROM:<a@sender.test>')).code).toBe(250);
    expect((await c.command(`RCPT TO:<${DEMO}>`)).code).toBe(250);
    expect((await c.command('DATA')).code).toBe(354);
    c.write(`Subject: ${token}\r\n\r\nbare\nLF smuggling\r\n.\r\n`);
    const reply = await c.reply();
    expect(reply.code).toBe(451);
    expect(await c.waitClosed()).toBe(true);
    await stillServes();
    const inbox = await p.messages(DEMO);
    expect(inbox.some((m) => m.bytes.includes(token))).toBe(false);
  });

  it('a command line over 512 octets (RFC 5321 §4.5.3.1.4) is refused and the session closed', async () => {
    const c = await session();
    c.write(`MAIL FROM:<${'x'.repeat(600)}@sender.test>\r\n`);
    const reply = await c.reply();
    expect(reply.code).toBe(521);
    expect(await c.waitClosed()).toBe(true);
    await stillServes();
  });

  it('NUL bytes in commands are syntax errors', async () => {
    const { client: c } = await WireClient.open(p.smtpPort);
    expect((await c.command('EHLO a\u0000b')).code).toBe(501);
    expect((await c.command('EHLO client.test')).code).toBe(250);
    expect((await c.command('MAIL FROM:<a\u0000b@sender.test>')).code).toBeGreaterThanOrEqual(500);
    c.close();
    await stillServes();
  });

  it('commands pipelined after the end of DATA are refused (SMTP smuggling defence), the message is queued once', async () => {
    const token = randomBytes(6).toString('hex');
    const { client: c } = await WireClient.open(p.smtpPort);
    // RFC 2920 §3.1: EHLO..DATA may be sent as one group.
    c.write(`EHLO client.test\r\nMAIL FROM:<a@sender.test>\r\nRCPT TO:<${DEMO}>\r\nDATA\r\n`);
    const replies: Reply[] = [];
    for (let i = 0; i < 4; i++) replies.push(await c.reply());
    expect(replies.map((r) => r.code)).toEqual([250, 250, 250, 354]);
    c.write(`Subject: ${token}\r\n\r\nbody\r\n.\r\nMAIL FROM:<evil@sender.test>\r\nRCPT TO:<${DEMO}>\r\n`);
    expect((await c.reply()).code).toBe(250);
    expect((await c.reply()).code).toBe(503);
    expect((await c.reply()).code).toBe(503);
    c.close();
    const inbox = await p.waitForMessages(DEMO, (m) => m.some((x) => x.bytes.includes(token)));
    expect(inbox.filter((m) => m.bytes.includes(token))).toHaveLength(1);
  });

  it('SIZE: a declared size over the limit is refused at MAIL, a larger body at the end of DATA', async () => {
    const c = await session();
    expect((await c.command(`MAIL FROM:<a@sender.test> SIZE=${LIMIT + 1}`)).code).toBe(550);
    expect((await c.command('MAIL FROM:<a@sender.test>')).code).toBe(250);
    expect((await c.command(`RCPT TO:<${DEMO}>`)).code).toBe(250);
    expect((await c.command('DATA')).code).toBe(354);
    const line = `${'y'.repeat(998)}\r\n`;
    c.write(`Subject: too big\r\n\r\n${line.repeat(Math.ceil((LIMIT + 10_000) / line.length))}.\r\n`);
    const reply = await c.reply();
    expect(reply.code).toBe(550);
    expect(reply.text).toMatch(/too big/i);
    expect((await c.command('NOOP')).code).toBe(250);
    c.close();
    await stillServes();
  });

  it('1,000 RCPTs: the first 100 are accepted, the rest get 452 4.5.3, and the message is delivered once', async () => {
    const token = randomBytes(6).toString('hex');
    const c = await session();
    expect((await c.command('MAIL FROM:<a@sender.test>')).code).toBe(250);
    // Pipelined in batches (RFC 2920) so the test stays fast.
    const codes: number[] = [];
    for (let batch = 0; batch < 10; batch++) {
      c.write(Array.from({ length: 100 }, () => `RCPT TO:<${DEMO}>\r\n`).join(''));
      for (let i = 0; i < 100; i++) codes.push((await c.reply()).code);
    }
    expect(codes.filter((x) => x === 250)).toHaveLength(100);
    expect(codes.slice(100).every((x) => x === 452)).toBe(true);
    expect((await c.command('DATA')).code).toBe(354);
    c.write(`Subject: many ${token}\r\n\r\n${token}\r\n.\r\n`);
    expect((await c.reply()).code).toBe(250);
    c.close();
    const inbox = await p.waitForMessages(DEMO, (m) => m.some((x) => x.bytes.includes(token)));
    expect(inbox.filter((m) => m.bytes.includes(token))).toHaveLength(1);
  });

  it('invalid addresses get 501; a UTF-8 address (SMTPUTF8, RFC 6531) is handled like any other', async () => {
    const c = await session();
    expect((await c.command('MAIL FROM:<ünï@sender.test> SMTPUTF8')).code).toBe(250);
    expect((await c.command('RCPT TO:<a b@example.test>')).code).toBe(501);
    expect((await c.command('RCPT TO:<demo@>')).code).toBe(501);
    expect((await c.command('RCPT TO:demo')).code).toBe(501);
    const unknown = await c.command('RCPT TO:<üser@example.test>');
    expect(unknown.code).toBe(550);
    expect(unknown.text).toMatch(/^5\.1\.1/);
    expect((await c.command(`RCPT TO:<${DEMO}>`)).code).toBe(250);
    c.close();
    await stillServes();
  });

  it('broken MIME is accepted and stored as sent (it is the sender’s problem, not a reason to lose mail)', async () => {
    const token = randomBytes(6).toString('hex');
    const raw = [
      'From: a@sender.test',
      `To: ${DEMO}`,
      `Subject: broken ${token}`,
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="never-closed"',
      '',
      '--never-closed',
      'Content-Type: text/plain; charset=bogus-charset',
      'Content-Transfer-Encoding: base64',
      '',
      '!!!not base64!!!',
      '--never-closed',
      'Content-Type: message/rfc822',
      '',
      'Garbage-Header without colon',
      '',
    ].join('\r\n');
    const info = await nodemailer
      .createTransport({ host: '127.0.0.1', port: p.smtpPort, secure: false, ignoreTLS: true })
      .sendMail({ envelope: { from: 'a@sender.test', to: [DEMO] }, raw });
    expect(info.response).toMatch(/^250 /);
    const inbox = await p.waitForMessages(DEMO, (m) => m.some((x) => x.bytes.includes(token)));
    expect(
      inbox
        .find((m) => m.bytes.includes(token))
        ?.bytes.toString('latin1')
        .endsWith(raw),
    ).toBe(true);
  });
});
