/**
 * Alerts end to end, against real NATS JetStream, FerretDB, storage, imap and admin processes:
 * imap serving a certificate issued for 3 days raises the certificate-expiry alert once (checked
 * at start and every 300 ms, and again after a restart), the postmaster's INBOX receives it
 * exactly once (read over IMAP), the REST API lists it (an owner sees it, a domain-admin of
 * another domain does not), and the console shows it on the overview and the Alerts page in
 * Chromium with axe-core reporting no violations.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, repoRoot, startService, type ManagedProcess } from '@postmesh/testing';
import { ImapFlow } from 'imapflow';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, OWNER, startAdminHarness, type AdminHarness } from './harness.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(repoRoot(), 'test-artifacts', 'admin-console', 'alerts');
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const DOMAIN = 'alerts.test';
const POSTMASTER = { address: `postmaster@${DOMAIN}`, password: 'notices inbox password 2026' };
const DOMAIN_ADMIN = { email: 'da@other.test', password: 'domain admin password 2026' };
const CERT_NAME = 'mail.alerts.test';

interface Alert {
  id: string;
  detail: string;
  attributes: Record<string, string>;
}

let h: AdminHarness;
let browser: Browser;
let owner: ApiClient;
let imap: { proc: ManagedProcess; port: number } | undefined;
const certDir = mkdtempSync(join(tmpdir(), 'postmesh-alerts-cert-'));

async function ok(response: Promise<{ status: number; text: string; body: unknown }>) {
  const r = await response;
  if (r.status >= 300) throw new Error(`${r.status} ${r.text}`);
  return r.body as Record<string, unknown>;
}

/** imap on free ports, serving the 3-day certificate and checking its expiry every 300 ms. */
async function startImap(): Promise<{ proc: ManagedProcess; port: number }> {
  const [port, tlsPort] = [await freePort(), await freePort()];
  const imap = await startService('imap', {
    env: h.env,
    dir: certDir,
    name: `imap-${port}`,
    vars: {
      POSTMESH_STORAGE_GRPC: h.storageGrpc,
      POSTMESH_IMAP_PORT: String(port),
      POSTMESH_IMAPS_PORT: String(tlsPort),
      POSTMESH_IMAP_DATA_DIR: join(certDir, 'imap-data'),
      POSTMESH_IMAP_ALLOW_PLAINTEXT: 'true',
      POSTMESH_TLS_CERT_FILE: join(certDir, 'tls.crt'),
      POSTMESH_TLS_KEY_FILE: join(certDir, 'tls.key'),
      POSTMESH_CERT_EXPIRY_WARN_DAYS: '14',
      POSTMESH_CERT_EXPIRY_CHECK_MS: '300',
    },
  });
  return { proc: imap.proc, port };
}

/** Subjects of the messages in the postmaster's INBOX, read over IMAP. */
async function postmasterSubjects(port: number): Promise<string[]> {
  const client = new ImapFlow({
    host: '127.0.0.1',
    port,
    secure: false,
    auth: { user: POSTMASTER.address, pass: POSTMASTER.password },
    tls: { rejectUnauthorized: false },
    logger: false,
  });
  await client.connect();
  try {
    const lock = await client.getMailboxLock('INBOX');
    try {
      const subjects: string[] = [];
      const exists = typeof client.mailbox === 'object' ? client.mailbox.exists : 0;
      if (exists === 0) return subjects;
      for await (const message of client.fetch('1:*', { envelope: true })) {
        subjects.push(message.envelope?.subject ?? '');
      }
      return subjects;
    } finally {
      lock.release();
    }
  } finally {
    await client.logout();
  }
}

async function certificateAlerts(client: ApiClient): Promise<Alert[]> {
  const body = await ok(client.get('/api/v1/alerts'));
  return (body.items as Alert[]).filter((a) => a.attributes.alert === 'certificate-expiry');
}

async function axeViolations(page: Page): Promise<string[]> {
  await page.evaluate(AXE);
  const result = await page.evaluate<{ violations: { id: string; nodes: { target: string[] }[] }[] }>(
    "axe.run({ resultTypes: ['violations'] })",
  );
  return result.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

async function signIn(email: string, password: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1366, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  await page.goto(h.baseUrl);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
  return page;
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  // Issued for 3 days: inside the 14-day warning period from the first check on.
  execFileSync('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    join(certDir, 'tls.key'),
    '-out',
    join(certDir, 'tls.crt'),
    '-days',
    '3',
    '-subj',
    `/CN=${CERT_NAME}`,
    '-addext',
    `subjectAltName=DNS:${CERT_NAME}`,
  ]);
  h = await startAdminHarness({ storageEnv: { POSTMESH_POSTMASTER: POSTMASTER.address } });
  owner = new ApiClient(h.baseUrl);
  expect((await owner.login(OWNER.email, OWNER.password)).status).toBe(200);
  await ok(owner.post('/api/v1/domains', { name: DOMAIN }));
  await ok(owner.post('/api/v1/domains', { name: 'other.test' }));
  await ok(owner.post('/api/v1/users', { address: POSTMASTER.address, password: POSTMASTER.password }));
  await ok(
    owner.post('/api/v1/admins', {
      email: DOMAIN_ADMIN.email,
      password: DOMAIN_ADMIN.password,
      role: 'domain-admin',
      domains: ['other.test'],
    }),
  );
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
  });
  // The postmaster's mailbox exists before the service that raises the alert starts.
  imap = await startImap();
}, 180_000);

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  await imap?.proc.stop(10_000).catch(() => imap?.proc.kill());
  await h?.stop();
  rmSync(certDir, { recursive: true, force: true });
});

describe('certificate expiry alert', () => {
  it('a 3-day certificate raises the alert once, listed by the API and mailed to the postmaster once', async () => {
    if (imap === undefined) throw new Error('imap not started');
    await expect.poll(() => certificateAlerts(owner), { timeout: 30_000, interval: 250 }).toHaveLength(1);
    const [alert] = await certificateAlerts(owner);
    expect(alert?.attributes).toMatchObject({
      severity: 'warning',
      about: CERT_NAME,
      certificate: CERT_NAME,
      days_left: '2',
    });
    expect(alert?.detail).toMatch(/^the TLS certificate for mail\.alerts\.test expires on /);

    const port = imap.port;
    await expect.poll(() => postmasterSubjects(port), { timeout: 30_000, interval: 250 }).toHaveLength(1);
    expect((await postmasterSubjects(port))[0]).toBe(
      `[Postmesh warning] a TLS certificate expires soon: ${CERT_NAME}`,
    );

    // Checked again every 300 ms, and at the start of another imap process: still one alert, one notice.
    await imap.proc.stop(10_000);
    imap = await startImap();
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await certificateAlerts(owner)).toHaveLength(1);
    expect(await postmasterSubjects(imap.port)).toHaveLength(1);

    // An installation-wide alert: a domain-admin (of another domain) does not see it.
    const domainAdmin = new ApiClient(h.baseUrl);
    expect((await domainAdmin.login(DOMAIN_ADMIN.email, DOMAIN_ADMIN.password)).status).toBe(200);
    expect(await certificateAlerts(domainAdmin)).toEqual([]);
    const overview = await ok(domainAdmin.get('/api/v1/overview'));
    expect(overview.alerts).toEqual({ recent: [], error: '' });
    const ownerOverview = await ok(owner.get('/api/v1/overview'));
    expect((ownerOverview.alerts as { recent: Alert[] }).recent.map((a) => a.attributes.alert)).toContain(
      'certificate-expiry',
    );
  }, 120_000);

  it('the console shows it on the overview and the Alerts page (axe-core: no violations)', async () => {
    const page = await signIn(OWNER.email, OWNER.password);
    const recent = page.getByRole('region', { name: 'Recent alerts' });
    await recent.getByText(/certificate-expiry/).waitFor();
    await recent
      .getByText(new RegExp(`the TLS certificate for ${CERT_NAME.replace(/\./g, '\\.')}`))
      .waitFor();
    await expect
      .poll(() => page.locator('[aria-busy="true"], .loading').count(), { timeout: 20_000 })
      .toBe(0);
    expect(await axeViolations(page), 'overview').toEqual([]);
    await page.screenshot({ path: join(ARTIFACTS, 'owner-overview.png'), fullPage: true });

    await page
      .getByRole('navigation', { name: 'Areas' })
      .getByRole('link', { name: 'Alerts', exact: true })
      .click();
    await page.getByRole('heading', { level: 1, name: 'Alerts' }).waitFor();
    const table = page.getByRole('table', { name: 'Alerts' });
    await table.getByRole('cell', { name: 'certificate-expiry' }).waitFor();
    await table.getByRole('cell', { name: CERT_NAME, exact: true }).waitFor();
    expect(await page.title()).toMatch(/ · Postmesh admin$/);
    expect(await axeViolations(page), 'alerts page').toEqual([]);
    await page.screenshot({ path: join(ARTIFACTS, 'owner-alerts.png'), fullPage: true });
    await page.context().close();

    const scoped = await signIn(DOMAIN_ADMIN.email, DOMAIN_ADMIN.password);
    await scoped
      .getByRole('region', { name: 'Recent alerts' })
      .getByText('No alerts in the last 7 days.')
      .waitFor();
    expect(await axeViolations(scoped), 'domain-admin overview').toEqual([]);
    await scoped.context().close();
  }, 120_000);
});
