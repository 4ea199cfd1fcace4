/**
 * DESIGN §2 step 4 under faults in the SMTP path: no 250 unless the message is durably queued.
 * - nats-server stops during a session: the client gets a 4xx, never 250; after NATS returns the
 *   resent message is delivered exactly once.
 * - smtp-inbound is killed (-9) in the middle of DATA: the client never sees 250 and nothing
 *   partial is delivered.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO, Pipeline } from './pipeline.js';
import { WireClient } from './smtp-wire.js';

describe('faults in the SMTP session', () => {
  let p: Pipeline;
  beforeAll(async () => {
    p = await Pipeline.start({ smtpEnv: { POSTMESH_SMTP_QUEUE_TIMEOUT_MS: '3000' } });
  }, 90_000);
  afterAll(async () => {
    await p?.stop();
  });

  async function openTransaction(): Promise<WireClient> {
    const { client } = await WireClient.open(p.smtpPort);
    expect((await client.command('EHLO client.test')).code).toBe(250);
    expect((await client.command('MAIL FROM:<a@sender.test>')).code).toBe(250);
    expect((await client.command(`RCPT TO:<${DEMO}>`)).code).toBe(250);
    expect((await client.command('DATA')).code).toBe(354);
    return client;
  }

  const body = (token: string) =>
    `Subject: ${token}\r\nMessage-ID: <${token}@t>\r\n\r\nbody ${token}\r\n.\r\n`;

  it('stopping nats-server mid-session gives 4xx, never 250; the resent message is delivered once', async () => {
    const nats = p.env.nats;
    if (nats === undefined) throw new Error('needs the local nats-server');
    const token = randomBytes(6).toString('hex');
    const c = await openTransaction();
    await nats.process.kill();
    c.write(body(token));
    const reply = await c.reply(30_000);
    expect(reply.code).toBeGreaterThanOrEqual(400);
    expect(reply.code).toBeLessThan(500);
    c.close();
    // A new session while NATS is still down: the same, 4xx.
    const c2 = await openTransaction();
    c2.write(body(token));
    const reply2 = await c2.reply(30_000);
    expect(reply2.code).toBeGreaterThanOrEqual(400);
    expect(reply2.code).toBeLessThan(500);
    c2.close();

    await nats.restart();
    await p.smtp.ready(30_000);
    // The sender retries, as a real MTA does after a 4xx.
    const deadline = Date.now() + 30_000;
    let accepted = false;
    while (!accepted && Date.now() < deadline) {
      const c3 = await openTransaction();
      c3.write(body(token));
      accepted = (await c3.reply(30_000)).code === 250;
      c3.close();
      if (!accepted) await new Promise((r) => setTimeout(r, 500));
    }
    expect(accepted).toBe(true);
    const inbox = await p.waitForMessages(DEMO, (m) => m.some((x) => x.bytes.includes(token)));
    await new Promise((r) => setTimeout(r, 2_000));
    const again = await p.messages(DEMO);
    expect(again.filter((x) => x.bytes.includes(`body ${token}`))).toHaveLength(1);
    expect(inbox.length).toBeGreaterThan(0);
  }, 120_000);

  it('kill -9 smtp-inbound in the middle of DATA: no 250, nothing partial delivered', async () => {
    const token = randomBytes(6).toString('hex');
    const c = await openTransaction();
    c.write(`Subject: ${token}\r\n\r\nfirst half of ${token}\r\n`);
    await new Promise((r) => setTimeout(r, 300));
    await p.smtp.proc.kill();
    c.write(`second half\r\n.\r\n`);
    await expect(c.reply(5_000)).rejects.toThrow(/closed/);
    await p.startSmtp();
    // A later message is delivered; the half message never is.
    const marker = randomBytes(6).toString('hex');
    const c2 = await openTransaction();
    c2.write(body(marker));
    expect((await c2.reply()).code).toBe(250);
    c2.close();
    const inbox = await p.waitForMessages(DEMO, (m) => m.some((x) => x.bytes.includes(marker)));
    expect(inbox.some((x) => x.bytes.includes(token))).toBe(false);
  }, 90_000);
});
