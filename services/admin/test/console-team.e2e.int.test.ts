/**
 * The console's team mailboxes and message count quota in real Chromium against the real admin,
 * storage, NATS and FerretDB: a domain-admin opens support@'s team mailboxes from the Users page,
 * adds a member to the INBOX, is told why a member from another domain is refused, creates a
 * nested team mailbox by adding its first member, takes a member off, and sets a message limit
 * that the list then shows with the usage. A helpdesk administrator sees the members but no way
 * to change them. Each state checked with axe-core (0 violations), screenshots in
 * test-artifacts/admin-console/team/.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { repoRoot } from '@postmesh/testing';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, OWNER, startAdminHarness, type AdminHarness } from './harness.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(repoRoot(), 'test-artifacts', 'admin-console', 'team');
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const PASSWORD = 'team console password 2026';

let h: AdminHarness;
let browser: Browser;
let owner: ApiClient;
let supportId = '';

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

async function usersPage(page: Page): Promise<void> {
  // On a phone the navigation is folded behind the Menu button.
  const menu = page.getByRole('button', { name: 'Menu' });
  if (await menu.isVisible()) await menu.click();
  await page
    .getByRole('navigation', { name: 'Areas' })
    .getByRole('link', { name: 'Users', exact: true })
    .click();
  await page.getByRole('heading', { level: 1, name: 'Users' }).waitFor();
}

const aclOf = async (path: string) =>
  (await ok(owner.get(`/api/v1/users/${supportId}/team-mailboxes/acl?path=${encodeURIComponent(path)}`)))
    .acl as { identifier: string; rights: string }[];

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  h = await startAdminHarness();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
  });
  owner = new ApiClient(h.baseUrl);
  expect((await owner.login(OWNER.email, OWNER.password)).status).toBe(200);
  for (const name of ['team.test', 'elsewhere.test']) await ok(owner.post('/api/v1/domains', { name }));
  for (const address of ['support@team.test', 'agent@team.test', 'viewer@team.test', 'bob@elsewhere.test']) {
    const created = await ok(owner.post('/api/v1/users', { address, password: PASSWORD }));
    if (address.startsWith('support@')) supportId = String(created.id);
  }
  for (const [email, role] of [
    ['da@team.test', 'domain-admin'],
    ['hd@team.test', 'helpdesk'],
  ] as const) {
    await ok(owner.post('/api/v1/admins', { email, password: PASSWORD, role, domains: ['team.test'] }));
  }
}, 240_000);

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  await h?.stop();
});

describe('console: team mailboxes and the message limit', () => {
  it('domain-admin: shares the INBOX, is refused another domain, creates a folder by adding a member, removes one', async () => {
    const page = await open(1366);
    await signIn(page, 'da@team.test');
    await usersPage(page);
    await page
      .getByRole('row', { name: /support@team\.test/ })
      .getByRole('button', { name: 'Team mailboxes' })
      .click();
    const team = page.getByRole('region', { name: 'Team mailboxes of support@team.test' });
    const inbox = team.getByRole('table', { name: 'Members of INBOX' });
    await inbox.getByRole('cell', { name: 'support@team.test', exact: true }).waitFor();

    const member = team.getByRole('form', { name: 'Add or change a member of INBOX' });
    await member.getByLabel('Member').fill('agent@team.test');
    await member.getByLabel('Rights').fill('lrs');
    await member.getByRole('button', { name: 'Save member' }).click();
    await member.getByRole('status').filter({ hasText: 'agent@team.test has lrs on INBOX.' }).waitFor();
    await inbox.getByRole('cell', { name: 'agent@team.test', exact: true }).waitFor();
    await inbox.getByText('(see, read, mark seen)').waitFor();
    expect(await axeViolations(page), 'INBOX shared').toEqual([]);

    // Checked in the browser first, then by the server: a user of another domain is not theirs.
    await member.getByLabel('Member').fill('viewer@team.test');
    await member.getByLabel('Rights').fill('lrZ');
    await member.getByRole('button', { name: 'Save member' }).click();
    await member.getByRole('alert').filter({ hasText: 'Use the letters l r s w i p k x t e a' }).waitFor();
    await member.getByLabel('Member').fill('bob@elsewhere.test');
    await member.getByLabel('Rights').fill('lr');
    await member.getByRole('button', { name: 'Save member' }).click();
    await member
      .getByRole('alert')
      .filter({ hasText: 'identifier: bob@elsewhere.test is outside your domains' })
      .waitFor();
    expect(await member.getByLabel('Member').getAttribute('aria-invalid')).toBe('true');
    expect(await axeViolations(page), 'member refused').toEqual([]);
    await page.screenshot({ path: join(ARTIFACTS, 'domain-admin-member-refused.png'), fullPage: true });
    expect((await aclOf('INBOX')).map((e) => e.identifier)).toEqual(['support@team.test', 'agent@team.test']);

    // A folder that does not exist yet is created with its first member.
    const mailbox = team.getByRole('form', { name: 'Mailbox' });
    await mailbox.getByLabel('Mailbox').fill('Queue/Escalations');
    await mailbox.getByRole('button', { name: 'Show members' }).click();
    await team.getByText('Queue/Escalations does not exist yet: adding a member creates it.').waitFor();
    const first = team.getByRole('form', { name: 'Add or change a member of Queue/Escalations' });
    await first.getByLabel('Member').fill('viewer@team.test');
    await first.getByLabel('Rights').fill('lr');
    await first.getByRole('button', { name: 'Save member' }).click();
    await team
      .getByRole('table', { name: 'Members of Queue/Escalations' })
      .getByRole('cell', { name: 'viewer@team.test', exact: true })
      .waitFor();
    expect((await aclOf('Queue/Escalations')).find((e) => e.identifier === 'viewer@team.test')?.rights).toBe(
      'lr',
    );

    // Back to the INBOX: take the agent off.
    await mailbox.getByLabel('Mailbox').fill('INBOX');
    await mailbox.getByRole('button', { name: 'Show members' }).click();
    await inbox.getByRole('button', { name: 'Remove agent@team.test' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Remove member' }).click();
    await team
      .getByRole('status')
      .filter({ hasText: 'agent@team.test no longer has access to INBOX.' })
      .waitFor();
    expect(await inbox.getByRole('cell', { name: 'agent@team.test', exact: true }).count()).toBe(0);
    expect((await aclOf('INBOX')).map((e) => e.identifier)).toEqual(['support@team.test']);
    expect(await axeViolations(page), 'member removed').toEqual([]);
    await page.screenshot({ path: join(ARTIFACTS, 'domain-admin-team-mailboxes.png'), fullPage: true });

    const audit = await owner.get('/api/v1/audit?action=teammailboxes.write');
    const entries = (audit.body as { items: { target: string; result: string; actor: string }[] }).items;
    expect(
      entries.filter((e) => e.actor.includes('da@team.test') && e.result === 'success').map((e) => e.target),
    ).toEqual(
      expect.arrayContaining([
        'support@team.test INBOX agent@team.test=lrs',
        'support@team.test Queue/Escalations',
        'support@team.test INBOX agent@team.test',
      ]),
    );
    await page.context().close();
  }, 120_000);

  it('domain-admin: sets a message limit, and the list shows it with the messages stored', async () => {
    const page = await open(1366);
    await signIn(page, 'da@team.test');
    await usersPage(page);
    const row = page.getByRole('row', { name: /support@team\.test/ });
    await row.getByRole('button', { name: 'Edit' }).click();
    const edit = page.getByRole('form', { name: 'Edit support@team.test' });
    await edit.getByLabel('Message limit').fill('ten');
    await edit.getByRole('button', { name: 'Save changes' }).click();
    await edit.getByRole('alert').filter({ hasText: 'Enter a whole number of messages' }).waitFor();
    await edit.getByLabel('Message limit').fill('1000');
    await edit.getByRole('button', { name: 'Save changes' }).click();
    await row.getByText('0 of 1000 messages (0%)').waitFor();
    await row.getByText('1000 messages').first().waitFor();
    expect(await ok(owner.get(`/api/v1/users/${supportId}`))).toMatchObject({ quotaMessages: 1000 });
    expect(await axeViolations(page), 'message limit').toEqual([]);
    await page.context().close();

    // On a phone, the team mailboxes section passes axe too.
    const phone = await open(390);
    await signIn(phone, 'da@team.test');
    await usersPage(phone);
    await phone
      .getByRole('row', { name: /support@team\.test/ })
      .getByRole('button', { name: 'Team mailboxes' })
      .click();
    await phone
      .getByRole('table', { name: 'Members of INBOX' })
      .getByRole('cell', { name: 'support@team.test', exact: true })
      .waitFor();
    expect(await axeViolations(phone), 'team mailboxes at 390 px').toEqual([]);
    await phone.context().close();
  }, 120_000);

  it('helpdesk: sees the members of a team mailbox but no way to change them', async () => {
    const page = await open(1366);
    await signIn(page, 'hd@team.test');
    await usersPage(page);
    await page
      .getByRole('row', { name: /support@team\.test/ })
      .getByRole('button', { name: 'Team mailboxes' })
      .click();
    const team = page.getByRole('region', { name: 'Team mailboxes of support@team.test' });
    const mailbox = team.getByRole('form', { name: 'Mailbox' });
    await mailbox.getByLabel('Mailbox').fill('Queue/Escalations');
    await mailbox.getByRole('button', { name: 'Show members' }).click();
    await team
      .getByRole('table', { name: 'Members of Queue/Escalations' })
      .getByRole('cell', { name: 'viewer@team.test', exact: true })
      .waitFor();
    expect(await team.getByRole('button', { name: /^Remove / }).count()).toBe(0);
    expect(await team.getByRole('button', { name: 'Save member' }).count()).toBe(0);
    expect(await axeViolations(page), 'helpdesk').toEqual([]);
    await page.context().close();
  }, 120_000);
});
