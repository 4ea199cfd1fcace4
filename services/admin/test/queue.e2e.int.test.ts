/**
 * The outbound queue screen in real Chromium (Debian's, driven by playwright-core; STACK.md) with
 * the real mta-delivery: a message deferred by a remote 451 (RFC 5321 §4.2.1) is listed with its
 * last error; the owner clicks Retry and then Cancel, each behind its confirmation dialog, sees
 * the effect on the screen, and finds both actions in the audit log. Screenshots go to
 * test-artifacts/admin-console/.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@postmesh/testing';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, OWNER, startAdminHarness, type AdminHarness } from './harness.js';
import { startDeferringMta, until, type DeferringMta } from './mta.js';

const ARTIFACTS = join(repoRoot(), 'test-artifacts', 'admin-console');
const SENDER = 'ann@queue.test';

let h: AdminHarness;
let mta: DeferringMta;
let api: ApiClient;
let context: BrowserContext | undefined;
const profile = mkdtempSync(join(tmpdir(), 'postmesh-chromium-'));

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  h = await startAdminHarness();
  api = new ApiClient(h.baseUrl);
  expect((await api.login(OWNER.email, OWNER.password)).status).toBe(200);
  expect((await api.post('/api/v1/domains', { name: 'queue.test' })).status).toBe(201);
  mta = await startDeferringMta(h);
}, 120_000);
afterAll(async () => {
  await context?.close().catch(() => undefined);
  rmSync(profile, { recursive: true, force: true });
  await mta?.stop();
  await h?.stop();
});

async function browser(): Promise<Page> {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--no-first-run',
    ],
    viewport: { width: 1366, height: 900 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(20_000);
  return page;
}

const shot = (page: Page, name: string) =>
  page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

interface Listed {
  id: string;
  attempts: number;
  lastError: string;
}
const listed = async (id: string): Promise<Listed | undefined> =>
  ((await api.get('/api/v1/queue')).body as { items?: Listed[] }).items?.find((e) => e.id === id);

/** The queue screen loads its list when opened: leave it and come back to see the latest. */
async function reopenQueue(page: Page): Promise<void> {
  await page
    .getByRole('navigation', { name: 'Areas' })
    .getByRole('link', { name: 'Health', exact: true })
    .click();
  await page.getByRole('heading', { name: 'System health' }).waitFor();
  await page
    .getByRole('navigation', { name: 'Areas' })
    .getByRole('link', { name: 'Queue', exact: true })
    .click();
  await page.getByRole('heading', { name: 'Outbound queue' }).waitFor();
}

describe('outbound queue screen in Chromium', () => {
  it('owner retries and cancels a deferred message behind confirmation dialogs; both are audited', async () => {
    const id = await mta.queueOne('deferred in the console', SENDER);
    const spoolId = id.slice(0, id.indexOf(':'));
    const deferred = await until('the deferred entry', async () => {
      const e = await listed(id);
      return e !== undefined && e.attempts >= 1 ? e : undefined;
    });

    const page = await browser();
    await page.goto(h.baseUrl);
    await page.getByLabel('Email').fill(OWNER.email);
    await page.getByLabel('Password').fill(OWNER.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    // The overview after sign-in links to the queue too: use the navigation's link.
    const areas = page.getByRole('navigation', { name: 'Areas' });
    await areas.waitFor();
    await areas.getByRole('link', { name: 'Queue', exact: true }).click();

    const table = page.getByRole('table', { name: 'Deferred messages' });
    const row = table.getByRole('row', { name: new RegExp(SENDER.replace('.', '\\.')) });
    await row.waitFor();
    expect(await row.getByRole('cell', { name: 'bob@example.org', exact: true }).count()).toBe(1);
    await row.getByRole('cell', { name: /451 .*try again later/ }).waitFor();
    await row.getByRole('cell', { name: String(deferred.attempts), exact: true }).waitFor();
    await shot(page, '11-queue-deferred');

    // Retry: the dialog names the message; the retry runs within a queue tick and is deferred again.
    await row.getByRole('button', { name: 'Retry' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('heading', { name: `Retry ${id} now?` }).waitFor();
    await shot(page, '12-queue-confirm-retry');
    await dialog.getByRole('button', { name: 'Retry now' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await page
      .getByRole('status')
      .filter({ hasText: `${id}: a new delivery attempt starts` })
      .waitFor();
    await until('a second attempt', async () => {
      const e = await listed(id);
      return e !== undefined && e.attempts > deferred.attempts ? e : undefined;
    });
    await reopenQueue(page);
    await row.getByRole('cell', { name: String(deferred.attempts + 1), exact: true }).waitFor();

    // Cancel: "Keep it queued" changes nothing; "Cancel silently" removes the message.
    await row.getByRole('button', { name: 'Cancel' }).click();
    await dialog.getByRole('heading', { name: `Cancel ${id}?` }).waitFor();
    await dialog.getByText('The message is not delivered to bob@example.org.').waitFor();
    await shot(page, '13-queue-confirm-cancel');
    await dialog.getByRole('button', { name: 'Keep it queued' }).click();
    await dialog.waitFor({ state: 'hidden' });
    expect(await listed(id)).toBeDefined();
    await row.getByRole('button', { name: 'Cancel' }).click();
    await dialog.getByRole('button', { name: 'Cancel silently' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await page
      .getByRole('status')
      .filter({ hasText: `${id} cancelled.` })
      .waitFor();
    await until('the entry to leave the queue', async () =>
      (await listed(id)) === undefined ? true : undefined,
    );
    await reopenQueue(page);
    await table.getByRole('cell', { name: 'Nothing here yet.' }).waitFor();
    expect(await row.count()).toBe(0);
    await shot(page, '14-queue-after-cancel');

    // The audit log has both actions on this message, by the owner, successful.
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.getByLabel('Action or prefix (e.g. users.)').fill('queue.');
    await page.getByRole('button', { name: 'Apply filter' }).click();
    const entries = page
      .getByRole('table', { name: 'Audit entries' })
      .getByRole('row', { name: new RegExp(spoolId) });
    await expect.poll(() => entries.count()).toBe(2);
    // The filter stays visible after it is applied.
    expect(await page.getByLabel('Action or prefix (e.g. users.)').inputValue()).toBe('queue.');
    for (const text of await entries.allTextContents()) {
      expect(text).toContain('queue.write');
      expect(text).toContain(`admin:${OWNER.email}`);
      expect(text).toContain('success');
    }
    await shot(page, '15-audit-queue');
  });
});
