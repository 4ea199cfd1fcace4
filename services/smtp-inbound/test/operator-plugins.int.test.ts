/**
 * Operators' SMTP plugins (API version 1, docs/smtp-plugins.md) loaded from a directory into the
 * running smtp-inbound: the shipped example's verdicts are applied at MAIL, RCPT and end of DATA,
 * its header is added, and a plugin that throws or hangs costs a 451, never a crash or a lost
 * message.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeDnsServer, repoRoot } from '@postmesh/testing';
import { DEMO, Pipeline } from './pipeline.js';

const EXAMPLES = join(repoRoot(), 'services', 'smtp-inbound', 'examples', 'plugins');

function message(token: string, subject: string): Buffer {
  return Buffer.from(
    [
      'From: sender@elsewhere.test',
      `To: ${DEMO}`,
      `Subject: ${subject}`,
      `Message-ID: <${token}@elsewhere.test>`,
      '',
      `body ${token}`,
      '',
    ].join('\r\n'),
  );
}

describe('operator SMTP plugins', () => {
  let p: Pipeline;
  let dns: FakeDnsServer | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'postmesh-plugins-'));

  beforeAll(async () => {
    dns = await FakeDnsServer.start({});
    p = await Pipeline.start({
      smtpEnv: {
        POSTMESH_DNS_SERVERS: dns.address,
        POSTMESH_SMTP_PLUGIN_DIR: EXAMPLES,
        POSTMESH_EXAMPLE_BLOCKED_SENDER_DOMAINS: 'blocked.test',
        POSTMESH_EXAMPLE_PAUSED_LOCAL_PARTS: 'moving',
        POSTMESH_EXAMPLE_BLOCKED_SUBJECT_WORDS: 'forbidden',
      },
    });
  }, 120_000);
  afterAll(async () => {
    await p?.stop();
    await dns?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function send(from: string, to: string[], raw: Buffer): Promise<{ code: number; response: string }> {
    try {
      const info = await nodemailer
        .createTransport({ host: '127.0.0.1', port: p.smtpPort, secure: false, ignoreTLS: true })
        .sendMail({ envelope: { from, to }, raw });
      return { code: Number(info.response.slice(0, 3)), response: info.response };
    } catch (error) {
      const e = error as { responseCode?: number; response?: string };
      return { code: e.responseCode ?? 0, response: e.response ?? String(error) };
    }
  }

  it('loads the example and announces it in the log', () => {
    const line =
      p.smtp
        .log()
        .split('\n')
        .find((l) => l.includes('operator SMTP plugins loaded')) ?? '';
    expect(line).toContain('"local-policy"');
  });

  it("refuses a blocked sender domain at MAIL FROM with the plugin's answer", async () => {
    const reply = await send('someone@blocked.test', [DEMO], message('x', 'hello'));
    expect(reply.code).toBe(550);
    expect(reply.response).toMatch(/5\.7\.1 Mail from blocked\.test is not accepted here/);
  });

  it('defers a paused recipient at RCPT (before our own recipient checks)', async () => {
    const reply = await send('sender@elsewhere.test', ['moving@example.test'], message('y', 'hello'));
    expect(reply.code).toBe(451);
    expect(reply.response).toMatch(/4\.2\.1 Mailbox is being moved/);
  });

  it('refuses at end of DATA on the subject, and adds its header to what it accepts', async () => {
    const refused = randomBytes(6).toString('hex');
    const reply = await send('sender@elsewhere.test', [DEMO], message(refused, 'a forbidden word'));
    expect(reply.code).toBe(550);
    const token = randomBytes(6).toString('hex');
    expect((await send('sender@elsewhere.test', [DEMO], message(token, 'fine'))).code).toBe(250);
    const list = await p.waitForMessages(DEMO, (m) => m.some((x) => x.bytes.includes(token)));
    const raw = list.find((x) => x.bytes.includes(token))?.bytes.toString('latin1') ?? '';
    expect(raw).toMatch(/^X-Example-Policy: checked; spf=none; size=\d+$/m);
    expect((await p.messages(DEMO)).some((m) => m.bytes.includes(refused))).toBe(false);
  });

  it('a plugin that throws or hangs gets the command a 451; the session and the service carry on', async () => {
    const broken = join(dir, 'broken');
    rmSync(broken, { recursive: true, force: true });
    mkdirSync(broken);
    writeFileSync(
      join(broken, '10-throws.mjs'),
      `export default { apiVersion: 1, name: 'throws', hooks: { mail(s, t) { if (t.mailFrom.startsWith('boom')) throw new Error('bug'); } } };\n`,
    );
    writeFileSync(
      join(broken, '20-hangs.mjs'),
      `export default { apiVersion: 1, name: 'hangs', hooks: { rcpt(s, t, r) { return r.startsWith('slow') ? new Promise(() => {}) : undefined; } } };\n`,
    );
    await p.smtp.proc.stop(10_000);
    await p.startSmtp({ POSTMESH_SMTP_PLUGIN_DIR: broken, POSTMESH_SMTP_PLUGIN_TIMEOUT_MS: '300' });
    const thrown = await send('boom@elsewhere.test', [DEMO], message('z', 'x'));
    expect(thrown.code).toBe(451);
    expect(thrown.response).toMatch(/4\.3\.0/);
    const hung = await send('sender@elsewhere.test', ['slow@example.test'], message('w', 'x'));
    expect(hung.code).toBe(451);
    const token = randomBytes(6).toString('hex');
    expect((await send('sender@elsewhere.test', [DEMO], message(token, 'after'))).code).toBe(250);
    await p.waitForMessages(DEMO, (m) => m.some((x) => x.bytes.includes(token)));
    expect(p.smtp.log()).toMatch(/operator SMTP plugin failed/);
  }, 60_000);

  it('refuses to start with a plugin that breaks the contract, saying why', async () => {
    const bad = join(dir, 'bad');
    mkdirSync(bad, { recursive: true });
    writeFileSync(join(bad, 'old.mjs'), `export default { apiVersion: 2, name: 'future', hooks: {} };\n`);
    await p.smtp.proc.stop(10_000);
    await expect(p.startSmtp({ POSTMESH_SMTP_PLUGIN_DIR: bad })).rejects.toThrow(/apiVersion must be 1/);
  }, 60_000);
});
