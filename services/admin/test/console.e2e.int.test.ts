/**
 * The web console end to end in real Chromium (Debian's, driven by playwright-core; STACK.md):
 * the owner signs in, creates a domain and a user, sees the DNS records, a message sent to the
 * user over SMTP shows up in message trace; a domain-admin of another domain signs in and cannot
 * see the first one. Screenshots of the main screens go to test-artifacts/admin-console/.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@postmesh/testing';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, OWNER, startAdminHarness, type AdminHarness } from './harness.js';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];
const ARTIFACTS = join(repoRoot(), 'test-artifacts', 'admin-console');
const PASSWORD = 'console password 2026';

let h: AdminHarness;
const contexts: { context: BrowserContext; dir: string }[] = [];

async function browser(): Promise<Page> {
  const dir = mkdtempSync(join(tmpdir(), 'postmesh-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1366, height: 900 },
  });
  contexts.push({ context, dir });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(20_000);
  return page;
}

const shot = (page: Page, name: string) =>
  page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

/** A minimal SMTP client (RFC 5321 §3.3): one message, reply codes checked. */
async function sendMail(port: number, from: string, to: string, message: string): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  socket.setEncoding('utf8');
  let buffer = '';
  const replies: string[] = [];
  const waiters: ((line: string) => void)[] = [];
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    let end: number;
    while ((end = buffer.indexOf('\r\n')) >= 0) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      // The last line of a reply has a space after the code (RFC 5321 §4.2.1).
      if (/^\d{3} /.test(line)) {
        const waiter = waiters.shift();
        if (waiter) waiter(line);
        else replies.push(line);
      }
    }
  });
  const reply = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const queued = replies.shift();
      if (queued !== undefined) return resolve(queued);
      const timer = setTimeout(() => reject(new Error('SMTP reply timeout')), 20_000);
      waiters.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
    });
  const command = async (line: string, expected: string): Promise<string> => {
    socket.write(`${line}\r\n`);
    const r = await reply();
    if (!r.startsWith(expected)) throw new Error(`${line} → ${r}`);
    return r;
  };
  try {
    const greeting = await reply();
    if (!greeting.startsWith('220')) throw new Error(`greeting ${greeting}`);
    await command('EHLO client.example.net', '250');
    await command(`MAIL FROM:<${from}>`, '250');
    await command(`RCPT TO:<${to}>`, '250');
    await command('DATA', '354');
    return await command(`${message.replace(/\r?\n/g, '\r\n')}\r\n.`, '250');
  } finally {
    socket.end('QUIT\r\n');
  }
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  h = await startAdminHarness({
    smtp: true,
    adminEnv: { POSTMESH_TRACE_URL_TEMPLATE: 'https://tracing.example/trace/{traceId}' },
  });
});
afterAll(async () => {
  for (const { context, dir } of contexts) {
    await context.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
  await h?.stop();
});

describe('admin console in Chromium', () => {
  it('owner: sign in, create a domain and a user, DNS records, SMTP message found in trace', async () => {
    const page = await browser();
    await page.goto(h.baseUrl);
    await shot(page, '01-sign-in');
    await page.getByLabel('Email').fill(OWNER.email);
    await page.getByLabel('Password').fill('wrong password here');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('wrong email or password');
    await page.getByLabel('Password').fill(OWNER.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation', { name: 'Areas' }).waitFor();
    expect(await page.getByRole('link', { name: 'Audit log' }).isVisible()).toBe(true);
    // The landing page is the overview; the domains are one click away.
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    await page.getByRole('link', { name: 'Domains' }).click();

    // Validation: a bad domain name is refused with a message next to the field.
    await page.getByLabel('Domain name *').fill('not a domain');
    await page.getByRole('button', { name: 'Add domain' }).click();
    await page.getByText('Enter a domain name such as example.com.').waitFor();
    await page.getByLabel('Domain name *').fill('e2e.test');
    await page.getByLabel('Default quota for new users', { exact: true }).fill('50');
    await page.getByRole('button', { name: 'Add domain' }).click();
    await page.getByRole('cell', { name: 'e2e.test', exact: true }).waitFor();
    await page.getByLabel('Domain name *').fill('other.test');
    await page.getByRole('button', { name: 'Add domain' }).click();
    await page.getByRole('cell', { name: 'other.test', exact: true }).waitFor();
    await shot(page, '02-domains');

    // The DNS wizard: the exact records, including a DKIM key generated here.
    const row = page.getByRole('table', { name: 'Domains' }).getByRole('row', { name: /e2e\.test/ });
    await row.getByRole('button', { name: 'DNS and DKIM' }).click();
    const records = page.getByRole('table', { name: 'Records to publish' });
    await records.getByRole('cell', { name: '10 mail.example.test.' }).waitFor();
    await records.getByRole('cell', { name: 'v=spf1 mx -all' }).waitFor();
    await records.getByRole('cell', { name: /^_dmarc\.e2e\.test / }).waitFor();
    await records.getByRole('cell', { name: /^_smtp\._tls\.e2e\.test / }).waitFor();
    await page.getByRole('button', { name: 'Generate and activate' }).click();
    await page
      .getByRole('cell', { name: /\._domainkey\.e2e\.test/ })
      .first()
      .waitFor();
    await shot(page, '03-dns-records');

    // Suspending asks for confirmation; cancelling changes nothing.
    await row.getByRole('button', { name: 'Suspend' }).click();
    await page.getByRole('dialog').getByText('Suspend e2e.test?').waitFor();
    await shot(page, '04-confirm-suspend');
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
    expect(await row.getByText('active', { exact: true }).isVisible()).toBe(true);

    // A user.
    await page.getByRole('link', { name: 'Users' }).click();
    await page.getByLabel('Address *').fill('carol@e2e.test');
    await page.getByLabel('Display name').fill('Carol');
    await page.getByLabel('Initial password *').fill('short');
    await page.getByRole('button', { name: 'Create user' }).click();
    await page.getByText('The password must be at least 10 characters.').waitFor();
    await page.getByLabel('Initial password *').fill(PASSWORD);
    await page.getByRole('button', { name: 'Create user' }).click();
    await page.getByRole('cell', { name: 'carol@e2e.test' }).waitFor();
    await shot(page, '05-users');
    await page
      .getByRole('row', { name: /carol@e2e\.test/ })
      .getByRole('button', { name: 'Reset password' })
      .click();
    await page.getByLabel('New password *').fill('short');
    await page.getByRole('button', { name: 'Set password', exact: true }).click();
    await page.getByText('The password must be at least 10 characters.').waitFor();
    await page.getByLabel('New password *').fill('another console pass 1');
    await page.getByRole('button', { name: 'Set password', exact: true }).click();
    await page.getByRole('status').filter({ hasText: 'Password of carol@e2e.test changed.' }).waitFor();

    // Sending limits: the form shows the current values (0 = service default) and saves new ones.
    const carolRow = page.getByRole('row', { name: /carol@e2e\.test/ });
    await carolRow.getByRole('cell', { name: 'default messages/hour, default recipients/message' }).waitFor();
    await carolRow.getByRole('button', { name: 'Edit' }).click();
    const perHour = page.getByLabel('Messages per hour *', { exact: true });
    expect(await perHour.inputValue()).toBe('0');
    await perHour.fill('many');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByText('Enter a whole number (0 = the service default).').waitFor();
    await perHour.fill('30');
    await page.getByLabel('Recipients per message *', { exact: true }).fill('10');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('status').filter({ hasText: 'carol@e2e.test saved.' }).waitFor();
    await carolRow.getByRole('cell', { name: '30 messages/hour, 10 recipients/message' }).waitFor();
    const ownerApi = new ApiClient(h.baseUrl);
    expect((await ownerApi.login(OWNER.email, OWNER.password)).status).toBe(200);
    const saved = (await ownerApi.get('/api/v1/users?domain=e2e.test')).body as {
      items: { limits: unknown }[];
    };
    expect(saved.items[0]?.limits).toEqual({ messagesPerHour: 30, recipientsPerMessage: 10 });

    // A message over SMTP, then its trace.
    const queued = await sendMail(
      h.smtpPort ?? 0,
      'sender@example.net',
      'carol@e2e.test',
      'From: sender@example.net\nTo: carol@e2e.test\nSubject: hello from e2e\nMessage-ID: <e2e-1@example.net>\n\nHello Carol.',
    );
    expect(queued).toMatch(/^250 /);
    const api = new ApiClient(h.baseUrl);
    const signedIn = await api.login(OWNER.email, OWNER.password);
    expect(signedIn.status, signedIn.text).toBe(200);
    await expect
      .poll(async () => JSON.stringify((await api.get('/api/v1/trace?address=carol@e2e.test')).body), {
        timeout: 30_000,
      })
      .toContain('carol@e2e.test');
    await page.getByRole('link', { name: 'Message trace' }).click();
    await page.getByLabel('Value *').fill('carol@e2e.test');
    await page.getByRole('button', { name: 'Search' }).click();
    await page
      .getByRole('table', { name: 'Trace events' })
      .getByRole('cell', { name: 'sender@example.net' })
      .first()
      .waitFor();
    await shot(page, '06-trace');
    // Each event links to its trace in the operator's tracing UI (POSTMESH_TRACE_URL_TEMPLATE).
    const events = (await api.get('/api/v1/trace?address=carol@e2e.test')).body as {
      items: { traceId: string; traceUrl: string }[];
    };
    const traced = events.items.filter((e) => e.traceId !== '');
    expect(traced.length).toBeGreaterThan(0);
    for (const e of traced) expect(e.traceUrl).toBe(`https://tracing.example/trace/${e.traceId}`);
    const link = page
      .getByRole('table', { name: 'Trace events' })
      .getByRole('link', { name: traced[0]?.traceId ?? '' })
      .first();
    expect(await link.getAttribute('href')).toBe(`https://tracing.example/trace/${traced[0]?.traceId ?? ''}`);

    // The delivered message counts against carol's quota on the users screen.
    await expect
      .poll(async () => JSON.stringify((await api.get('/api/v1/users?domain=e2e.test')).body), {
        timeout: 30_000,
      })
      .toContain('"messages":1');
    await page.getByRole('link', { name: 'Users' }).click();
    const carol = page.getByRole('row', { name: /carol@e2e\.test/ });
    await carol.getByRole('cell', { name: /, 1 message$/ }).waitFor();
    expect(await carol.textContent()).toMatch(/\d+(\.\d)? (bytes|KiB) of 50 MiB \(\d+%\), 1 message/);
    await shot(page, '06b-users-quota-usage');

    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.getByRole('cell', { name: 'domains.create' }).first().waitFor();
    await shot(page, '07-audit');
    await page.getByRole('link', { name: 'Health' }).click();
    await page
      .getByRole('table', { name: 'Streams and consumer lag' })
      .getByRole('cell', { name: 'MAIL_INBOUND' })
      .waitFor();
    // The database's size, per collection, as storage reports it.
    const size = page.getByRole('table', { name: /^Storage size — database postmesh/ });
    await size.getByRole('cell', { name: 'messages', exact: true }).waitFor();
    expect(await size.getByRole('row', { name: /^messages 1 / }).count()).toBe(1);
    expect(await size.textContent()).toMatch(/\d+(\.\d)? (KiB|MiB) on disk/);
    // The key-encryption key: nothing under a previous KEK; the owner re-wraps anyway (confirmed).
    const kek = page.getByRole('table', { name: 'Keys wrapped by a previous KEK' });
    await kek.getByRole('cell', { name: /^local:[0-9a-f]{16}$/ }).waitFor();
    await page.getByText('Nothing is wrapped by a previous KEK: it can be removed.').waitFor();
    await page.getByRole('button', { name: 'Re-wrap keys under the current KEK' }).click();
    await page
      .getByRole('dialog')
      .getByRole('heading', { name: 'Re-wrap keys under the current KEK?' })
      .waitFor();
    await page.getByRole('dialog').getByRole('button', { name: 'Re-wrap now' }).click();
    await kek
      .getByRole('cell', { name: /^finished .* \(0 user keys, 0 DKIM keys, 0 TOTP seeds\)$/ })
      .waitFor();
    await shot(page, '08-health');
  });

  it('domain-admin of another domain: sees only their domain and is refused the first one', async () => {
    const api = new ApiClient(h.baseUrl);
    const signedIn = await api.login(OWNER.email, OWNER.password);
    expect(signedIn.status, signedIn.text).toBe(200);
    const created = await api.post('/api/v1/admins', {
      email: 'ops@other.test',
      password: PASSWORD,
      role: 'domain-admin',
      domains: ['other.test'],
    });
    expect(created.status, created.text).toBe(201);

    const page = await browser();
    await page.goto(h.baseUrl);
    await page.getByLabel('Email').fill('ops@other.test');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    await page.getByRole('link', { name: 'Domains' }).click();
    await page
      .getByRole('table', { name: 'Domains' })
      .getByRole('cell', { name: 'other.test', exact: true })
      .waitFor();
    expect(await page.getByText('e2e.test').count()).toBe(0);
    // No navigation to areas the role may not use.
    expect(await page.getByRole('link', { name: 'Audit log' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Add domain' }).count()).toBe(0);
    await shot(page, '09-domain-admin-domains');

    // The domain filter offers only the domains in scope; the other domain is not even named.
    await page.getByRole('link', { name: 'Users' }).click();
    const filter = page.getByLabel('Domain', { exact: true });
    await filter.locator('option', { hasText: 'other.test' }).waitFor({ state: 'attached' });
    expect(await filter.locator('option').allTextContents()).toEqual([
      'all domains you manage',
      'other.test',
    ]);
    expect(await page.getByText('carol@e2e.test').count()).toBe(0);
    // A page the role may not open says so instead of showing another page.
    await page.goto(`${h.baseUrl}/#/audit`);
    await page.getByRole('heading', { level: 1, name: 'Audit log: not available to you' }).waitFor();
    await page.getByText('Your role (domain-admin) cannot open Audit log.').waitFor();
    await shot(page, '10-domain-admin-refused');
  });
});
