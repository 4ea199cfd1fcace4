/**
 * The console's vacation reply and mail filters in real Chromium against the real admin, storage,
 * NATS and FerretDB: a mail user turns the vacation reply on, writes a filter with a mistake and
 * sees the line of it, fixes it and activates it; a domain-admin opens a user's filters from the
 * Users page. Each state checked with axe-core (0 violations), screenshots in
 * test-artifacts/admin-console/sieve/.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { repoRoot } from '@postmesh/testing';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, OWNER, startAdminHarness, type AdminHarness } from './harness.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(repoRoot(), 'test-artifacts', 'admin-console', 'sieve');
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const PASSWORD = 'sieve console password 2026';

let h: AdminHarness;
let browser: Browser;
let owner: ApiClient;
let noraId = '';

async function ok(response: Promise<{ status: number; text: string; body: unknown }>) {
  const r = await response;
  if (r.status >= 300) throw new Error(`${r.status} ${r.text}`);
  return r.body as Record<string, unknown>;
}

async function open(width: number): Promise<Page> {
  const context = await browser.newContext({ viewport: { width, height: width > 600 ? 800 : 844 } });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  return page;
}

async function signIn(page: Page, email: string): Promise<void> {
  await page.goto(h.baseUrl);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('nav#areas').waitFor({ state: 'attached' });
}

async function axeViolations(page: Page): Promise<string[]> {
  await page.evaluate(AXE);
  const result = await page.evaluate<{ violations: { id: string; nodes: { target: string[] }[] }[] }>(
    "axe.run({ resultTypes: ['violations'] })",
  );
  return result.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  h = await startAdminHarness();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
  });
  owner = new ApiClient(h.baseUrl);
  expect((await owner.login(OWNER.email, OWNER.password)).status).toBe(200);
  await ok(owner.post('/api/v1/domains', { name: 'filters.test' }));
  noraId = String(
    (await ok(owner.post('/api/v1/users', { address: 'nora@filters.test', password: PASSWORD }))).id,
  );
  await ok(
    owner.post('/api/v1/admins', {
      email: 'da@filters.test',
      password: PASSWORD,
      role: 'domain-admin',
      domains: ['filters.test'],
    }),
  );
}, 240_000);

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  await h?.stop();
});

describe('console: vacation reply and mail filters', () => {
  it('mail user: turns on a vacation reply, sees a filter mistake by line, activates the fixed filter', async () => {
    const page = await open(1366);
    await signIn(page, 'nora@filters.test');
    await page.getByRole('heading', { level: 1, name: 'My account' }).waitFor();
    const vacation = page.getByRole('region', { name: 'Vacation reply' });
    await vacation.getByLabel('Send a vacation reply').check();
    await vacation.getByLabel('Subject').fill('Out of office');
    await vacation.getByLabel('Message').fill('I am away until Monday.\nUrgent: ask Sam.');
    await vacation.getByLabel('Days between replies to the same sender').fill('3');
    await vacation.getByRole('button', { name: 'Save vacation reply' }).click();
    await vacation.getByRole('status').filter({ hasText: 'Vacation reply on.' }).waitFor();
    const filters = page.getByRole('region', { name: 'Mail filters (Sieve)' });
    await filters.getByRole('cell', { name: 'vacation', exact: true }).waitFor();
    await filters.getByText('active', { exact: true }).waitFor();
    expect(await axeViolations(page), 'vacation on').toEqual([]);

    // A filter with a mistake on line 3: the server's message, under the script.
    await filters.getByRole('button', { name: 'New filter' }).click();
    const editor = page.getByRole('form', { name: 'New filter' });
    await editor.getByLabel('Name').fill('newsletters');
    await editor
      .getByLabel('Sieve script')
      .fill('require ["fileinto"];\nif header :contains "subject" "[news]" {\n  fileinto "News"\n}\n');
    await editor.getByRole('button', { name: 'Save filter' }).click();
    await editor
      .getByRole('alert')
      .filter({ hasText: /^line 4, column 1: / })
      .waitFor();
    expect(await editor.getByLabel('Sieve script').getAttribute('aria-invalid')).toBe('true');
    expect(await axeViolations(page), 'filter error').toEqual([]);
    await page.screenshot({ path: join(ARTIFACTS, 'mail-user-filter-error.png'), fullPage: true });

    await editor
      .getByLabel('Sieve script')
      .fill('require ["fileinto"];\nif header :contains "subject" "[news]" {\n  fileinto "News";\n}\n');
    await editor.getByRole('button', { name: 'Save and activate' }).click();
    await filters.getByRole('status').filter({ hasText: 'Filter “newsletters” saved and active.' }).waitFor();
    // One active script: the vacation reply is off now, and the form says so.
    await expect.poll(() => vacation.getByLabel('Send a vacation reply').isChecked()).toBe(false);
    const api = new ApiClient(h.baseUrl);
    expect((await api.login('nora@filters.test', PASSWORD)).status).toBe(200);
    expect((await api.get(`/api/v1/users/${noraId}/sieve-scripts`)).body).toEqual({
      items: [
        { name: 'newsletters', active: true },
        { name: 'vacation', active: false },
      ],
      nextPageToken: '',
    });
    const stored = (await api.get(`/api/v1/users/${noraId}/sieve-scripts/newsletters`)).body as {
      content: string;
    };
    expect(stored.content).toBe(
      'require ["fileinto"];\r\nif header :contains "subject" "[news]" {\r\n  fileinto "News";\r\n}\r\n',
    );

    // The vacation script can be deleted once it is not the active one; the active one cannot.
    await filters.getByRole('button', { name: 'Delete vacation' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete filter' }).click();
    await filters.getByRole('status').filter({ hasText: 'Filter “vacation” deleted.' }).waitFor();
    expect(await filters.getByRole('button', { name: 'Delete newsletters' }).count()).toBe(0);
    await page.screenshot({ path: join(ARTIFACTS, 'mail-user-filters.png'), fullPage: true });
    await page.context().close();

    // On a phone, the same page passes axe too.
    const phone = await open(390);
    await signIn(phone, 'nora@filters.test');
    await phone
      .getByRole('region', { name: 'Mail filters (Sieve)' })
      .getByRole('cell', { name: 'newsletters', exact: true })
      .waitFor();
    expect(await axeViolations(phone), 'filters at 390 px').toEqual([]);
    await phone.context().close();
  }, 120_000);

  it("domain-admin: opens a user's filters from the Users page and turns one off", async () => {
    const page = await open(1366);
    await signIn(page, 'da@filters.test');
    await page
      .getByRole('navigation', { name: 'Areas' })
      .getByRole('link', { name: 'Users', exact: true })
      .click();
    await page.getByRole('heading', { level: 1, name: 'Users' }).waitFor();
    await page
      .getByRole('row', { name: /nora@filters\.test/ })
      .getByRole('button', { name: 'Filters' })
      .click();
    const filters = page.getByRole('region', { name: 'Mail filters (Sieve)' });
    await filters.getByRole('cell', { name: 'newsletters', exact: true }).waitFor();
    await filters.getByRole('button', { name: 'Turn off newsletters' }).click();
    await filters.getByRole('status').filter({ hasText: 'Filtering is off.' }).waitFor();
    expect(await axeViolations(page), 'domain-admin filters').toEqual([]);
    const audit = await owner.get('/api/v1/audit?action=sieve.');
    const entries = (audit.body as { items: { action: string; result: string; actor: string }[] }).items;
    expect(entries.some((e) => e.actor.includes('da@filters.test') && e.result === 'success')).toBe(true);
    await page.context().close();
  }, 120_000);
});
