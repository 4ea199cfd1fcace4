/**
 * SPF (RFC 7208), DKIM (RFC 6376), DMARC (RFC 7489) and ARC (RFC 8617) through a fake DNS
 * (libs/testing's FakeDnsServer, via POSTMESH_DNS_SERVERS) with messages signed in the test; the verdict is recorded in
 * Authentication-Results (RFC 8601) and the DMARC policy is enforced.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dkimSign, sealMessage } from 'mailauth';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeDnsServer } from '@postmesh/testing';
import { DEMO, Pipeline } from './pipeline.js';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const publicB64 = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
const dkimTxt = [[`v=DKIM1; k=rsa; p=${publicB64.slice(0, 200)}`, publicB64.slice(200)]];

const dns = {
  TXT: {
    'good.test': [['v=spf1 ip4:127.0.0.1 -all']],
    's1._domainkey.good.test': dkimTxt,
    '_dmarc.good.test': [['v=DMARC1; p=reject']],
    'strict.test': [['v=spf1 ip4:192.0.2.1 -all']],
    '_dmarc.strict.test': [['v=DMARC1; p=reject']],
    'quar.test': [['v=spf1 ip4:192.0.2.1 -all']],
    '_dmarc.quar.test': [['v=DMARC1; p=quarantine']],
    'flaky.test': 'TEMPERROR',
    's1._domainkey.arc.test': dkimTxt,
  },
};

function message(from: string, token: string, extraHeaders: string[] = []): Buffer {
  return Buffer.from(
    [
      ...extraHeaders,
      `From: ${from}`,
      `To: ${DEMO}`,
      `Subject: auth ${token}`,
      `Message-ID: <${token}@test>`,
      'Date: Fri, 27 Nov 2026 10:00:00 +0000',
      '',
      `body ${token}`,
      '',
    ].join('\r\n'),
  );
}

async function signed(raw: Buffer, domain: string): Promise<Buffer> {
  const result = await dkimSign(raw, {
    signingDomain: domain,
    selector: 's1',
    privateKey: privatePem,
    signatureData: [{ signingDomain: domain, selector: 's1', privateKey: privatePem }],
  });
  expect(result.signatures).toMatch(/^DKIM-Signature: /);
  return Buffer.concat([Buffer.from(result.signatures), raw]);
}

describe('sender authentication with a fake resolver', () => {
  let p: Pipeline;
  let dnsServer: FakeDnsServer | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'postmesh-dns-'));
  beforeAll(async () => {
    dnsServer = await FakeDnsServer.start(dns);
    p = await Pipeline.start({ smtpEnv: { POSTMESH_DNS_SERVERS: dnsServer.address } });
  }, 90_000);
  afterAll(async () => {
    await p?.stop();
    await dnsServer?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function send(mailFrom: string, raw: Buffer): Promise<{ code: number; response: string }> {
    try {
      const info = await nodemailer
        .createTransport({
          host: '127.0.0.1',
          port: p.smtpPort,
          secure: false,
          ignoreTLS: true,
          name: 'mta.good.test',
        })
        .sendMail({ envelope: { from: mailFrom, to: [DEMO] }, raw });
      return { code: Number(info.response.slice(0, 3)), response: info.response };
    } catch (error) {
      const e = error as { responseCode?: number; response?: string };
      return { code: e.responseCode ?? 0, response: e.response ?? String(error) };
    }
  }

  async function storedHeader(token: string, path = 'INBOX'): Promise<string> {
    const inbox = await p.waitForMessages(DEMO, (m) => m.some((x) => x.bytes.includes(token)), { path });
    const bytes = inbox.find((x) => x.bytes.includes(token))?.bytes.toString('latin1') ?? '';
    return bytes.slice(0, bytes.indexOf('\r\n\r\n'));
  }

  it('SPF, DKIM and DMARC pass for an aligned, signed message from an authorised IP', async () => {
    const token = randomBytes(6).toString('hex');
    const reply = await send(
      'bounce@good.test',
      await signed(message('Alice <alice@good.test>', token), 'good.test'),
    );
    expect(reply.code).toBe(250);
    const header = await storedHeader(token);
    expect(header).toMatch(/^Authentication-Results: mx\.example\.test;/);
    expect(header).toMatch(/dkim=pass[^;]*header\.i=@good\.test/);
    expect(header).toMatch(/spf=pass[^;]*smtp\.mailfrom=bounce@good\.test/);
    expect(header).toMatch(/dmarc=pass[^;]*header\.from=good\.test/);
  });

  it('DKIM fails when the body was changed after signing; DMARC still passes on aligned SPF', async () => {
    const token = randomBytes(6).toString('hex');
    const raw = await signed(message('alice@good.test', token), 'good.test');
    const tampered = Buffer.from(raw.toString('latin1').replace(`body ${token}`, `BODY ${token}`), 'latin1');
    expect((await send('bounce@good.test', tampered)).code).toBe(250);
    const header = await storedHeader(token);
    expect(header).toMatch(/dkim=(fail|neutral)/);
    expect(header).toMatch(/dmarc=pass/);
  });

  it('DMARC p=reject failure is refused with 550 5.7.1 and nothing is stored', async () => {
    const token = randomBytes(6).toString('hex');
    const reply = await send('someone@elsewhere.test', message('ceo@strict.test', token));
    expect(reply.code).toBe(550);
    expect(reply.response).toMatch(/5\.7\.1/);
    await new Promise((r) => setTimeout(r, 500));
    expect((await p.messages(DEMO)).some((m) => m.bytes.includes(token))).toBe(false);
  });

  it('DMARC p=quarantine failure is accepted into Junk', async () => {
    const token = randomBytes(6).toString('hex');
    expect((await send('someone@elsewhere.test', message('news@quar.test', token))).code).toBe(250);
    const header = await storedHeader(token, 'Junk');
    expect(header).toMatch(/dmarc=fail[^;]*header\.from=quar\.test/);
    expect((await p.messages(DEMO)).some((m) => m.bytes.includes(token))).toBe(false);
  });

  it('no records at all: none, none, none, delivered to INBOX', async () => {
    const token = randomBytes(6).toString('hex');
    expect((await send('x@nowhere.test', message('x@nowhere.test', token))).code).toBe(250);
    const header = await storedHeader(token);
    expect(header).toMatch(/spf=none/);
    expect(header).toMatch(/dkim=none/);
    expect(header).toMatch(/dmarc=none/);
  });

  it('a DNS timeout is a temperror, recorded, and the mail still delivered', async () => {
    const token = randomBytes(6).toString('hex');
    expect((await send('x@flaky.test', message('x@flaky.test', token))).code).toBe(250);
    const header = await storedHeader(token);
    expect(header).toMatch(/spf=temperror/);
  });

  it('ARC: a valid seal by an intermediary verifies as arc=pass', async () => {
    const token = randomBytes(6).toString('hex');
    const raw = message('x@nowhere.test', token);
    const seal = await sealMessage(raw, {
      signingDomain: 'arc.test',
      selector: 's1',
      privateKey: privatePem,
      ...({ authResults: 'arc.test; spf=pass smtp.mailfrom=x@nowhere.test', cv: 'none' } as object),
    });
    expect((await send('x@nowhere.test', Buffer.concat([seal, raw]))).code).toBe(250);
    const header = await storedHeader(token);
    expect(header).toMatch(/arc=pass/);
  });

  it('removes a forged Authentication-Results claiming our hostname and keeps others (RFC 8601 §5)', async () => {
    const token = randomBytes(6).toString('hex');
    const raw = message('x@nowhere.test', token, [
      'Authentication-Results: mx.example.test; dkim=pass header.d=bank.test; dmarc=pass',
      'Authentication-Results: other.example; spf=pass smtp.mailfrom=x@nowhere.test',
    ]);
    expect((await send('x@nowhere.test', raw)).code).toBe(250);
    const header = await storedHeader(token);
    expect(header).not.toMatch(/header\.d=bank\.test/);
    expect(header).toMatch(/^Authentication-Results: other\.example; spf=pass/m);
    expect(header.match(/^Authentication-Results: mx\.example\.test;/gm)).toHaveLength(1);
  });

  it('unauthenticated mail claiming one of our own domains is refused with 550 5.7.1', async () => {
    const token = randomBytes(6).toString('hex');
    const fromHeader = await send('x@nowhere.test', message('Boss <boss@example.test>', token));
    expect(fromHeader.code).toBe(550);
    expect(fromHeader.response).toMatch(/5\.7\.1/);
    const envelope = await send('boss@example.test', message('x@nowhere.test', token));
    expect(envelope.code).toBe(550);
  });
});
