/**
 * Inbound (MX) acceptance, happy paths: mail sent over SMTP (nodemailer, swaks) lands in the right
 * mailboxes with exactly the bytes sent plus our Received and Authentication-Results headers.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directory } from '@postmesh/contracts';
import { DEMO, Pipeline, call, splitAddedHeaders } from './pipeline.js';

const run = promisify(execFile);

describe('inbound pipeline: SMTP → JetStream → storage', () => {
  let p: Pipeline;
  beforeAll(async () => {
    p = await Pipeline.start();
  }, 90_000);
  afterAll(async () => {
    await p?.stop();
  });

  const transport = () =>
    nodemailer.createTransport({
      host: '127.0.0.1',
      port: p.smtpPort,
      secure: false,
      ignoreTLS: true,
      name: 'client.sender.test',
    });

  it('delivers to demo@example.test: stored bytes are the sent bytes plus Received and Authentication-Results', async () => {
    const token = randomBytes(8).toString('hex');
    const raw = Buffer.from(
      [
        'From: Alice <alice@sender.test>',
        `To: ${DEMO}`,
        `Subject: hello ${token}`,
        `Message-ID: <${token}@sender.test>`,
        'Date: Fri, 27 Nov 2026 10:00:00 +0000',
        'MIME-Version: 1.0',
        'Content-Type: text/plain; charset=utf-8',
        '',
        `Body line ${token}`,
        '.leading dot survives dot-stuffing',
        '',
      ].join('\r\n'),
    );
    const info = await transport().sendMail({ envelope: { from: 'alice@sender.test', to: [DEMO] }, raw });
    expect(info.response).toMatch(/^250 2\.0\.0 queued as [A-Za-z0-9_-]+/);
    const messages = await p.waitForMessages(DEMO, (m) => m.some((x) => x.bytes.includes(token)));
    const stored = messages.find((x) => x.bytes.includes(token));
    expect(stored).toBeDefined();
    const { added, rest } = splitAddedHeaders(stored?.bytes ?? Buffer.alloc(0), raw);
    expect(rest.equals(raw)).toBe(true);
    // Ours, in front: Authentication-Results (RFC 8601) and Received (RFC 5321 §4.4).
    expect(added).toMatch(/^Authentication-Results: mx\.example\.test;/m);
    expect(added).toMatch(/spf=none/);
    expect(added).toMatch(/^Received: from client\.sender\.test/m);
    expect(added).toMatch(/by mx\.example\.test/);
    expect(added.endsWith('\r\n')).toBe(true);
    expect(added.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
  });

  it('delivers one copy per user for several recipients, an alias of another user and a duplicate via alias', async () => {
    const bob = await p.createUser(`bob-${randomBytes(3).toString('hex')}@example.test`);
    const carol = await p.createUser(`carol-${randomBytes(3).toString('hex')}@example.test`);
    const bobAddress = bob.address;
    const carolAddress = carol.address;
    const alias = `team-${randomBytes(3).toString('hex')}@example.test`;
    await p.createAlias(alias, [carol.id]);
    const token = randomBytes(8).toString('hex');
    const info = await transport().sendMail({
      from: 'alice@sender.test',
      to: [DEMO, bobAddress, alias, carolAddress],
      subject: `team ${token}`,
      text: `hello ${token}`,
    });
    expect(info.accepted).toHaveLength(4);
    for (const address of [DEMO, bobAddress, carolAddress]) {
      const got = await p.waitForMessages(address, (m) => m.some((x) => x.bytes.includes(token)));
      // Carol is both an alias target and a direct recipient: one copy.
      expect(got.filter((x) => x.bytes.includes(token))).toHaveLength(1);
    }
  });

  it('accepts a 30 MB attachment through the object store and stores it intact', async () => {
    const attachment = randomBytes(22 * 1024 * 1024);
    const token = randomBytes(8).toString('hex');
    const info = await transport().sendMail({
      from: 'alice@sender.test',
      to: DEMO,
      subject: `big ${token}`,
      text: 'see attachment',
      attachments: [{ filename: 'big.bin', content: attachment }],
    });
    expect(info.response).toMatch(/^250 2\.0\.0 queued as/);
    const got = await p.waitForMessages(DEMO, (m) => m.some((x) => x.bytes.includes(token)), {
      timeoutMs: 60_000,
    });
    const stored = got.find((x) => x.bytes.includes(token))?.bytes ?? Buffer.alloc(0);
    expect(stored.length).toBeGreaterThan(30_000_000);
    const b64 = attachment.toString('base64');
    const body = stored.toString('latin1').replace(/\r\n/g, '');
    expect(body.includes(b64)).toBe(true);
  }, 90_000);

  it('offers STARTTLS and accepts mail over it (swaks)', async () => {
    const token = randomBytes(8).toString('hex');
    const { stdout } = await run('swaks', [
      '--server',
      `127.0.0.1:${p.smtpPort}`,
      '--tls',
      '--from',
      'alice@sender.test',
      '--to',
      DEMO,
      '--header',
      `Subject: tls ${token}`,
      '--body',
      `over TLS ${token}`,
    ]);
    expect(stdout).toMatch(/<~ +220 .*TLS|STARTTLS/);
    expect(stdout).toMatch(/<~ +250 2\.0\.0 queued as/);
    const got = await p.waitForMessages(DEMO, (m) => m.some((x) => x.bytes.includes(token)));
    const stored = got.find((x) => x.bytes.includes(token))?.bytes.toString('latin1') ?? '';
    expect(stored).toMatch(/with ESMTPS|TLS/);
  });

  it('answers 550 5.1.1 for an unknown recipient and keeps the others', async () => {
    const token = randomBytes(8).toString('hex');
    const info = await transport().sendMail({
      from: 'alice@sender.test',
      to: [DEMO, `nobody-${token}@example.test`],
      subject: `partial ${token}`,
      text: token,
    });
    expect(info.rejected).toEqual([`nobody-${token}@example.test`]);
    const errors = (info as { rejectedErrors?: { message: string }[] }).rejectedErrors;
    expect(errors?.[0]?.message).toMatch(/550 5\.1\.1/);
    await p.waitForMessages(DEMO, (m) => m.some((x) => x.bytes.includes(token)));
  });

  it('follows Directory changes at once: refused, then created and accepted, then deleted and refused', async () => {
    // smtp-inbound keeps Directory answers in memory (recipient-cache.ts); storage's
    // `directory.changed` announcement must drop them, or the first answer would stand.
    const token = randomBytes(8).toString('hex');
    const address = `late-${token}@example.test`;
    const send = () =>
      transport().sendMail({ from: 'alice@sender.test', to: [DEMO, address], subject: token, text: token });
    expect((await send()).rejected).toEqual([address]);
    const user = await p.createUser(address);
    const accepted = await send();
    expect(accepted.accepted).toEqual([DEMO, address]);
    await p.waitForMessages(address, (m) => m.some((x) => x.bytes.includes(token)));
    await call(
      p.directory.deleteUser.bind(p.directory),
      directory.DeleteUserRequest.fromPartial({ userId: user.id }),
    );
    expect((await send()).rejected).toEqual([address]);
  });
});
