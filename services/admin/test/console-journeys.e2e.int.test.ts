/**
 * The console as each role meets it, in real Chromium against the real admin, storage, NATS and
 * FerretDB: every page each role can open, at 1366 px and at 390 px (a phone), checked with
 * axe-core (0 violations) and saved as screenshots in test-artifacts/admin-console/journeys/. Then
 * the journeys that once went wrong: destructive dialogs take the focus on Cancel, a new search
 * starts at page one, the overview's setup checklist, a mail user's own account, an administrator
 * enrolling an authenticator and signing in with it, a session that ends, a forbidden page.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { repoRoot } from '@postmesh/testing';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, OWNER, startAdminHarness, totp, type AdminHarness } from './harness.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(repoRoot(), 'test-artifacts', 'admin-console', 'journeys');
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const PASSWORD = 'journey password 2026';
const WIDTHS = [1366, 390] as const;

let h: AdminHarness;
let browser: Browser;
let owner: ApiClient;

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

async function signIn(page: Page, email: string, password: string, code?: string): Promise<void> {
  await page.goto(h.baseUrl);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  if (code !== undefined) {
    await page.getByLabel('Authenticator code').fill(code);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }
  // Attached, not visible: on a phone the navigation is folded behind the Menu button.
  await page.locator('nav#areas').waitFor({ state: 'attached' });
}

/** axe-core's WCAG 2.x A/AA rules and best practices on the page as it is now: the violations. */
async function axeViolations(page: Page): Promise<string[]> {
  // Evaluated over the DevTools protocol, which the console's CSP (script-src 'self') allows.
  await page.evaluate(AXE);
  const result = await page.evaluate<{ violations: { id: string; nodes: { target: string[] }[] }[] }>(
    "axe.run({ resultTypes: ['violations'] })",
  );
  return result.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

/** The text of the element that has the keyboard focus. */
const focused = (page: Page): Promise<unknown> => page.evaluate('document.activeElement?.textContent');

/** Opens an area through the navigation (the Menu button first on a phone), waits until it has loaded. */
async function visit(page: Page, label: string, heading: string | RegExp): Promise<void> {
  const toggle = page.getByRole('button', { name: 'Menu' });
  if (await toggle.isVisible()) await toggle.click();
  await page
    .getByRole('navigation', { name: 'Areas' })
    .getByRole('link', { name: label, exact: true })
    .click();
  await page.getByRole('heading', { level: 1, name: heading }).waitFor();
  // Loading states are visible (never a blank page) and gone once the data is there.
  await expect.poll(() => page.locator('[aria-busy="true"], .loading').count(), { timeout: 20_000 }).toBe(0);
}

async function checkPage(page: Page, role: string, width: number, name: string): Promise<void> {
  expect(await page.title()).toMatch(/ · Postmesh admin$/);
  expect(await page.locator('h1').count()).toBe(1);
  expect(await axeViolations(page), `${role} ${name} at ${width}px`).toEqual([]);
  await page.screenshot({ path: join(ARTIFACTS, `${role}-${width}-${name}.png`), fullPage: true });
}

const AREAS: Record<string, [string, string | RegExp][]> = {
  owner: [
    ['Overview', 'Overview'],
    ['Domains', 'Domains'],
    ['Users', 'Users'],
    ['Aliases', 'Aliases and forwards'],
    ['Queue', 'Outbound queue'],
    ['Message trace', 'Message trace'],
    ['Dead letters', 'Dead-letter queue'],
    ['Audit log', 'Audit log'],
    ['Administrators', 'Administrators'],
    ['API tokens', 'API tokens'],
    ['Health', 'System health'],
    ['My account', 'My account'],
  ],
  'domain-admin': [
    ['Overview', 'Overview'],
    ['Domains', 'Domains'],
    ['Users', 'Users'],
    ['Aliases', 'Aliases and forwards'],
    ['Administrators', 'Administrators'],
    ['My account', 'My account'],
  ],
  helpdesk: [
    ['Overview', 'Overview'],
    ['Users', 'Users'],
    ['Message trace', 'Message trace'],
    ['My account', 'My account'],
  ],
  auditor: [
    ['Overview', 'Overview'],
    ['Audit log', 'Audit log'],
    ['Health', 'System health'],
  ],
  user: [['My account', 'My account']],
};
const LOGIN: Record<string, string> = {
  owner: OWNER.email,
  'domain-admin': 'da@journey.test',
  helpdesk: 'help@journey.test',
  auditor: 'audit@example.test',
  user: 'mia@journey.test',
};

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  h = await startAdminHarness();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
  });
  owner = new ApiClient(h.baseUrl);
  expect((await owner.login(OWNER.email, OWNER.password)).status).toBe(200);
  await ok(owner.post('/api/v1/domains', { name: 'journey.test' }));
  await ok(owner.post('/api/v1/domains', { name: 'quiet.test' }));
  for (const [email, role] of [
    ['da@journey.test', 'domain-admin'],
    ['help@journey.test', 'helpdesk'],
    ['audit@example.test', 'auditor'],
  ] as const) {
    await ok(
      owner.post('/api/v1/admins', {
        email,
        password: PASSWORD,
        role,
        domains: role === 'auditor' ? [] : ['journey.test'],
      }),
    );
  }
  await ok(
    owner.post('/api/v1/users', { address: 'mia@journey.test', password: PASSWORD, displayName: 'Mia' }),
  );
  // 22 more users: the users list (20 a page) has a second page.
  for (let i = 0; i < 22; i++) {
    await ok(
      owner.post('/api/v1/users', {
        address: `page${String(i).padStart(2, '0')}@journey.test`,
        password: PASSWORD,
      }),
    );
  }
}, 240_000);

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  await h?.stop();
});

describe('every page of every role, at 1366 and 390 px, passes axe-core', () => {
  for (const role of Object.keys(AREAS)) {
    it(`${role}`, async () => {
      for (const width of WIDTHS) {
        const page = await open(width);
        await signIn(page, LOGIN[role] ?? '', role === 'owner' ? OWNER.password : PASSWORD);
        // Every page at desktop width; on a phone the first four (the layout is shared).
        const areas = (AREAS[role] ?? []).slice(0, width === 390 ? 4 : undefined);
        for (const [label, heading] of areas) {
          await visit(page, label, heading);
          await checkPage(page, role, width, label.toLowerCase().replace(/\s+/g, '-'));
        }
        await page.context().close();
      }
    }, 180_000);
  }
});

describe('journeys', () => {
  it('owner: overview with the setup checklist, which clears once a postmaster exists', async () => {
    const page = await open(1366);
    await signIn(page, OWNER.email, OWNER.password);
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    const setup = page.getByRole('region', { name: 'Left to set up' });
    await setup.getByText('No active DKIM key: outgoing mail is not signed.').first().waitFor();
    await setup.getByText('No postmaster@quiet.test (RFC 5321 §4.5.1 requires one): add an alias.').waitFor();
    // The harness's mail host does not resolve: no certificate can be trusted there.
    await setup.getByText(/No trusted TLS certificate on mail\.example\.test:993: /).waitFor();
    // DNS is looked up live (the harness points at a closed port): the check says what failed.
    await setup.getByText(/DNS: MX quiet\.test \(lookup failed: /).waitFor();
    await page.getByRole('region', { name: 'Services' }).getByText('storage').waitFor();
    await page.getByRole('region', { name: 'Dead letters' }).waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'journey-overview.png'), fullPage: true });

    await visit(page, 'Aliases', 'Aliases and forwards');
    await page.getByLabel('Domain', { exact: true }).selectOption('quiet.test');
    await page.getByLabel('Address *').fill('postmaster@quiet.test');
    await page.getByLabel('Delivers to', { exact: true }).selectOption('other addresses (forward)');
    await page.getByLabel('Addresses it delivers to *').fill('ops@example.net');
    await page.getByRole('button', { name: 'Add', exact: true }).click();
    await page.getByRole('status').filter({ hasText: 'postmaster@quiet.test added.' }).waitFor();
    await page.getByRole('cell', { name: 'postmaster@quiet.test' }).waitFor();
    await visit(page, 'Overview', 'Overview');
    await setup.getByText('postmaster@quiet.test receives mail.').waitFor();

    // Deleting the forward: the dialog's focus is on Cancel (Enter does not delete), Cancel keeps it.
    await visit(page, 'Aliases', 'Aliases and forwards');
    await page.getByLabel('Domain', { exact: true }).selectOption('quiet.test');
    const row = page.getByRole('row', { name: /postmaster@quiet\.test/ });
    await row.getByRole('button', { name: 'Delete' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('heading', { name: 'Delete postmaster@quiet.test?' }).waitFor();
    expect(await focused(page)).toBe('Cancel');
    await page.keyboard.press('Enter');
    await dialog.waitFor({ state: 'hidden' });
    await row.waitFor();
    await row.getByRole('button', { name: 'Delete' }).click();
    await dialog.getByRole('button', { name: 'Delete forward' }).click();
    await page.getByRole('status').filter({ hasText: 'postmaster@quiet.test deleted.' }).waitFor();
    await page.context().close();
  }, 120_000);

  it('owner: destructive dialogs focus Cancel; a new search starts at page one', async () => {
    const page = await open(1366);
    await signIn(page, OWNER.email, OWNER.password);
    await visit(page, 'Users', 'Users');
    await page.getByLabel('Domain', { exact: true }).selectOption('journey.test');
    const users = page.getByRole('region', { name: 'Users' });
    await users.getByRole('cell', { name: 'mia@journey.test' }).waitFor();
    for (const action of ['Suspend', 'Delete']) {
      await page
        .getByRole('row', { name: /mia@journey\.test/ })
        .getByRole('button', { name: action })
        .click();
      await page.getByRole('dialog').waitFor();
      expect(await focused(page)).toBe('Cancel');
      await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
    }
    expect(
      await page
        .getByRole('row', { name: /mia@journey\.test/ })
        .getByText('active', { exact: true })
        .isVisible(),
    ).toBe(true);

    await users.getByRole('button', { name: 'Next page' }).click();
    await users.getByText('Page 2').waitFor();
    await expect.poll(() => users.locator('tbody[class="stale"]').count()).toBe(0);
    await page.getByLabel('Find addresses starting with').fill('page2');
    await page.getByRole('button', { name: 'Search' }).click();
    await users.getByText('Page 1').waitFor();
    await users.getByRole('cell', { name: 'page20@journey.test' }).waitFor();
    await expect.poll(() => users.getByRole('row').count()).toBe(3); // the header, page20 and page21
    await page.screenshot({ path: join(ARTIFACTS, 'journey-search-page-one.png'), fullPage: true });

    // The audit log: page two, then a new filter starts at page one again.
    await visit(page, 'Audit log', 'Audit log');
    const audit = page.getByRole('region', { name: 'Audit entries' });
    await audit.getByRole('button', { name: 'Next page' }).click();
    await audit.getByText('Page 2').waitFor();
    await page.getByLabel('Who (address)').fill(OWNER.email);
    await page.getByRole('button', { name: 'Apply filter' }).click();
    await audit.getByText('Page 1').waitFor();
    await audit
      .getByRole('cell', { name: `admin:${OWNER.email} (owner)` })
      .first()
      .waitFor();
    await page.context().close();
  }, 120_000);

  it('owner at 390 px: the navigation folds, the users table is cards, quota is set in GiB', async () => {
    const page = await open(390);
    await signIn(page, OWNER.email, OWNER.password);
    expect(await page.getByRole('link', { name: 'Users' }).isVisible()).toBe(false);
    await visit(page, 'Users', 'Users');
    await page.getByLabel('Find addresses starting with').fill('mia');
    await page.getByRole('button', { name: 'Search' }).click();
    const card = page.getByRole('row', { name: /mia@journey\.test/ });
    await card.waitFor();
    // The card shows the address first and its actions right under it.
    const [identity, actions] = await Promise.all([
      card.locator('td.identity').boundingBox(),
      card.locator('td.actions-cell').boundingBox(),
    ]);
    expect(identity !== null && actions !== null && actions.y > identity.y).toBe(true);
    expect(actions !== null && identity !== null && actions.y - (identity.y + identity.height) < 10).toBe(
      true,
    );
    await card.getByRole('button', { name: 'Edit' }).click();
    const edit = page.getByRole('form', { name: 'Edit mia@journey.test' });
    await edit.getByLabel('Quota *').fill('1.5');
    await edit.getByLabel('Quota unit').selectOption('GiB');
    await edit.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('status').filter({ hasText: 'mia@journey.test saved.' }).waitFor();
    await card.getByText('1.5 GiB').first().waitFor();
    const saved = (await owner.get('/api/v1/users?q=mia')).body as { items: { quotaBytes: number }[] };
    expect(saved.items[0]?.quotaBytes).toBe(1.5 * 1024 ** 3);
    await page.screenshot({ path: join(ARTIFACTS, 'journey-phone-users.png'), fullPage: true });
    await page.context().close();
  }, 120_000);

  it('owner: administrators are edited, disabled and deleted; unknown domains are refused', async () => {
    const created = await ok(
      owner.post('/api/v1/admins', {
        email: 'temp@journey.test',
        password: PASSWORD,
        role: 'helpdesk',
        domains: ['journey.test'],
      }),
    );
    const refused = await owner.patch(`/api/v1/admins/${String(created.id)}`, { domains: ['nowhere.test'] });
    expect(refused.status).toBe(400);
    expect((refused.body as { error: { field: string } }).error.field).toBe('domains');
    const page = await open(1366);
    await signIn(page, OWNER.email, OWNER.password);
    await visit(page, 'Administrators', 'Administrators');
    const row = page.getByRole('row', { name: /temp@journey\.test/ });
    await row.getByRole('button', { name: 'Edit' }).click();
    const edit = page.getByRole('form', { name: 'Edit temp@journey.test' });
    await edit.getByLabel('Role').selectOption('domain-admin');
    await edit.getByRole('checkbox', { name: 'quiet.test' }).check();
    await edit.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('status').filter({ hasText: 'temp@journey.test saved.' }).waitFor();
    await row.getByRole('cell', { name: 'journey.test, quiet.test' }).waitFor();
    await row.getByRole('button', { name: 'Disable' }).click();
    expect(await focused(page)).toBe('Cancel');
    await page.getByRole('dialog').getByRole('button', { name: 'Disable administrator' }).click();
    await row.getByText('disabled').waitFor();
    await row.getByRole('button', { name: 'Delete' }).click();
    expect(await focused(page)).toBe('Cancel');
    await page.getByRole('dialog').getByRole('button', { name: 'Delete administrator' }).click();
    await page.getByRole('status').filter({ hasText: 'temp@journey.test deleted.' }).waitFor();
    await expect.poll(() => row.count()).toBe(0);
    await page.context().close();
  }, 120_000);

  it('mail user: own account, password change asking for the current one, app passwords', async () => {
    const page = await open(390);
    await signIn(page, 'mia@journey.test', PASSWORD);
    await page.getByRole('heading', { level: 1, name: 'My account' }).waitFor();
    // No admin table for a mail user, and their addresses by address.
    expect(await page.getByRole('link', { name: 'Users' }).count()).toBe(0);
    await page.getByText('mia@journey.test — your address').waitFor();
    await page.getByText(/of 1\.5 GiB|no limit/).waitFor();
    const form = page.getByRole('form', { name: 'Change your password' });
    await form.getByLabel('Current password *').fill('not my password 1');
    await form.getByLabel('New password *', { exact: true }).fill('a new journey pass 7');
    await form.getByLabel('New password again *').fill('a new journey pass 7');
    await form.getByRole('button', { name: 'Change password' }).click();
    await form.getByText('currentPassword: is not your current password').waitFor();
    await form.getByLabel('Current password *').fill(PASSWORD);
    await form.getByLabel('New password *', { exact: true }).fill('password123');
    await form.getByLabel('New password again *').fill('password123');
    await form.getByRole('button', { name: 'Change password' }).click();
    await form.getByText('The password is a commonly used password.').waitFor();
    await form.getByLabel('New password *', { exact: true }).fill('a new journey pass 7');
    await form.getByLabel('New password again *').fill('a new journey pass 7');
    await form.getByRole('button', { name: 'Change password' }).click();
    await form.getByRole('status').filter({ hasText: 'Password changed.' }).waitFor();
    const api = new ApiClient(h.baseUrl);
    expect((await api.login('mia@journey.test', 'a new journey pass 7')).status).toBe(200);
    // Without the current password the API refuses a user's own change.
    const self = ((await api.get('/api/v1/me')).body as { user: { id: string } }).user.id;
    const bare = await api.post(`/api/v1/users/${self}/password`, { password: 'another journey pass 8' });
    expect(bare.status, bare.text).toBe(400);
    expect((bare.body as { error: { field: string } }).error.field).toBe('currentPassword');

    const apps = page.getByRole('region', { name: 'App passwords of mia@journey.test' });
    await page.getByLabel('Name *').fill('Phone mail app');
    await page.getByRole('button', { name: 'Create app password' }).click();
    await page
      .getByRole('status')
      .filter({ hasText: 'App password “Phone mail app” (shown only now' })
      .waitFor();
    await apps.getByRole('cell', { name: 'Phone mail app' }).waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'journey-mail-user-account.png'), fullPage: true });
    await apps.getByRole('button', { name: 'Revoke' }).click();
    expect(await focused(page)).toBe('Cancel');
    await page.getByRole('dialog').getByRole('button', { name: 'Revoke app password' }).click();
    await page.getByRole('status').filter({ hasText: 'App password “Phone mail app” revoked.' }).waitFor();
    await page.context().close();
  }, 120_000);

  it('mail user: enrols an authenticator on a phone and signs in with it', async () => {
    await ok(owner.post('/api/v1/users', { address: 'tia@journey.test', password: PASSWORD }));
    const page = await open(390);
    await signIn(page, 'tia@journey.test', PASSWORD);
    await page.getByRole('heading', { level: 1, name: 'My account' }).waitFor();
    const section = page.getByRole('region', { name: 'Authenticator code (two-factor sign-in)' });
    await section.getByText('mail programs (IMAP and SMTP) sign in with app passwords only').waitFor();
    await section.getByRole('button', { name: 'Set up an authenticator' }).click();
    const key = (await page.getByLabel('Authenticator key').textContent())?.replace(/\s+/g, '') ?? '';
    expect(key).toMatch(/^[A-Z2-7]{16,}$/);
    await page.getByLabel('Code from the app *').fill(totp(key));
    await page.getByRole('button', { name: 'Turn on' }).click();
    await page.getByText('The authenticator code is on').waitFor();
    await section.getByText('on', { exact: true }).waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'journey-mail-user-totp.png'), fullPage: true });
    await page.context().close();

    // A new sign-in asks for the code after the password, and takes it.
    const again = await open(390);
    await signIn(again, 'tia@journey.test', PASSWORD, totp(key, Date.now() + 30_000));
    await again.getByRole('heading', { level: 1, name: 'My account' }).waitFor();
    await again.context().close();
    // Without the code the API says a code is needed, not that the password is wrong.
    const bare = await new ApiClient(h.baseUrl).login('tia@journey.test', PASSWORD);
    expect(bare.status).toBe(401);
    expect((bare.body as { error: { field: string } }).error.field).toBe('totp');
  }, 120_000);

  it('helpdesk: enrols an authenticator, signs in with it; a session that ends returns to sign-in', async () => {
    const page = await open(1366);
    await signIn(page, 'help@journey.test', PASSWORD);
    await visit(page, 'My account', 'My account');
    await page.getByRole('button', { name: 'Set up an authenticator' }).click();
    const key = (await page.getByLabel('Authenticator key').textContent())?.replace(/\s+/g, '') ?? '';
    expect(key).toMatch(/^[A-Z2-7]{16,}$/);
    await page.getByLabel('Code from the app *').fill('000000' === totp(key) ? '111111' : '000000');
    await page.getByRole('button', { name: 'Turn on' }).click();
    await page.getByRole('form', { name: 'Confirm the authenticator' }).getByRole('alert').waitFor();
    await page.getByLabel('Code from the app *').fill(totp(key));
    await page.getByRole('button', { name: 'Turn on' }).click();
    await page.getByText('The authenticator code is on').waitFor();
    await checkPage(page, 'helpdesk', 1366, 'totp-on');

    // The session ends elsewhere (signed out with the same cookie): the next action shows sign-in.
    const session = (await (await page.request.get(`${h.baseUrl}/api/v1/me`)).json()) as {
      csrfToken: string;
    };
    const out = await page.request.post(`${h.baseUrl}/api/v1/auth/logout`, {
      headers: { 'x-csrf-token': session.csrfToken },
      data: {},
    });
    expect(out.status()).toBe(200);
    await page.getByRole('link', { name: 'Users' }).click();
    await page.getByText('Your session ended. Sign in again to continue.').waitFor();
    await page.getByLabel('Email').fill('help@journey.test');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    // Step 30 s on when the enrolment code's own step is still current (a code is good once).
    await page.getByLabel('Authenticator code').fill(totp(key, Date.now() + 30_000));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('nav#areas').waitFor({ state: 'attached' });
    await page.getByRole('heading', { level: 1 }).waitFor();
    await page.context().close();
  }, 120_000);

  it('domain-admin: adds a webhook, sees its secret once, rotates it and removes it', async () => {
    const page = await open(1366);
    await signIn(page, 'da@journey.test', PASSWORD);
    await visit(page, 'Domains', 'Domains');
    await page
      .getByRole('table', { name: 'Domains' })
      .getByRole('row', { name: /journey\.test/ })
      .getByRole('button', { name: 'DNS and DKIM' })
      .click();
    const section = page.getByRole('region', { name: 'Webhooks of journey.test' });
    await section.getByText('No webhook yet.').waitFor();
    // The URL is checked next to the field, and so are internal addresses (by the server).
    await section.getByLabel('Endpoint URL *').fill('ftp://hooks.example.com/');
    await section.getByRole('button', { name: 'Add webhook' }).click();
    await section.getByText('An http:// or https:// URL.').waitFor();
    await section.getByLabel('Endpoint URL *').fill('http://10.0.0.7/hook');
    await section.getByRole('button', { name: 'Add webhook' }).click();
    await section.getByText(/internal address/).waitFor();
    await section.getByLabel('Endpoint URL *').fill('https://hooks.example.com/journey');
    await section.getByRole('checkbox', { name: 'spam-rejected' }).check();
    await section.getByRole('button', { name: 'Add webhook' }).click();
    const secret = section.getByRole('status').filter({ hasText: 'shown only now' });
    await secret.waitFor();
    const first = (await secret.locator('code').textContent()) ?? '';
    expect(first).toMatch(/^whsec_/);
    const row = section.getByRole('row', { name: /hooks\.example\.com\/journey/ });
    await row.getByRole('cell', { name: 'delivered, bounced, spam-rejected' }).waitFor();
    expect(await axeViolations(page), 'webhooks section').toEqual([]);
    await page.screenshot({ path: join(ARTIFACTS, 'journey-webhooks.png'), fullPage: true });

    await row.getByRole('button', { name: /^Disable webhook/ }).click();
    await row.getByText('disabled', { exact: true }).waitFor();
    expect(await section.getByText(first).count()).toBe(0);
    await row.getByRole('button', { name: /^Rotate secret of webhook/ }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Rotate secret' }).click();
    await secret.waitFor();
    expect(await secret.locator('code').textContent()).not.toBe(first);
    await row.getByRole('button', { name: /^Remove webhook/ }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Remove webhook' }).click();
    await section.getByText('No webhook yet.').waitFor();
    await page.context().close();
  }, 120_000);
});
