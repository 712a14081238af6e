// The overview in headless Chromium: uPlot draws the chart under the console's Content Security
// Policy (no errors in the page's console), and the figures refresh by themselves: a notification
// sent while the page is open shows up in its totals without a reload. Then the viewer finds a
// user's notification and reads its timeline, and an admin creates a key on the Services page.
// With HERALD_SCREENSHOTS=1 it saves docs/console/overview.png, notifications.png,
// notification.png and services.png.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { consoleScreenshot, launchChromium } from '../helpers/chromium.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../helpers/test-herald.js';
import { createConsoleUser } from '../../src/db/stores/console-user-store.js';
import { hashPassword } from '../../src/console/passwords.js';
import { waitFor } from '../helpers/wait-for.js';

const password = 'an overview passphrase';
let db: TestDatabase | undefined;
let h: TestHerald | undefined;
let browser: Browser | undefined;

async function send(users: string[], lane: string): Promise<void> {
  const r = await h?.call('POST', '/v1/notifications', {
    recipients: users,
    channels: ['in_app'],
    lane,
    content: { default: { title: 'Statement ready', body: 'Your monthly statement is ready' } },
  });
  assert.equal(r?.status, 202, JSON.stringify(r?.body));
}

before(async () => {
  db = await createTestDatabase();
  h = await startTestHerald(db, { roles: ['api', 'worker', 'console'] });
  await createConsoleUser(db.pool, {
    email: 'watcher@example.com',
    name: 'Watcher',
    role: 'viewer',
    passwordHash: await hashPassword(password),
  });
  await send(['ann', 'bob', 'cid', 'dee'], 'transactional');
  await send(['ann', 'bob'], 'bulk');
  await waitFor('six in-app deliveries', async () => {
    const r = await db?.pool.query("SELECT 1 FROM deliveries WHERE state = 'delivered'");
    return r?.rowCount === 6;
  });
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await h?.stop();
  await db?.drop();
});

test('a viewer sees the chart drawn and the figures refresh while the page is open', async () => {
  assert.ok(browser !== undefined && h !== undefined && db !== undefined);
  const pool = db.pool;
  const delivered = async () => {
    const r = await pool.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM deliveries WHERE state = 'delivered'",
    );
    return r.rows[0]?.n ?? 0;
  };
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${h.herald.consoleUrl ?? ''}/overview?range=1h`);
  await page.getByLabel('Email').fill('watcher@example.com');
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((url) => url.pathname === '/overview');
  await page.locator('#chart[data-drawn="true"] canvas').waitFor();
  const shown = async () => Number(await page.locator('[data-total="delivered"]').textContent());
  assert.equal(await shown(), 6);

  await send(['eve', 'fay', 'gus'], 'transactional');
  await waitFor(
    'the page to show nine delivered without a reload',
    async () => (await shown()) === 9,
    25_000,
  );
  assert.equal(await delivered(), 9, 'the page shows what the database holds');
  assert.deepEqual(errors, [], 'no script or policy errors');
  await screenshot(page, 'overview');

  await page.getByRole('link', { name: 'Notifications' }).click();
  await page.getByLabel('User id').fill('eve');
  await page.getByRole('button', { name: 'Search' }).click();
  const rows = page.locator('table tbody tr');
  assert.equal(await rows.count(), 1, "only eve's notification");
  await screenshot(page, 'notifications');
  await rows.first().getByRole('link').first().click();
  await page.getByRole('heading', { name: 'Timeline' }).waitFor();
  const deliveries = await page.locator('main').textContent();
  assert.match(deliveries ?? '', /Statement ready/);
  assert.match(deliveries ?? '', /delivered/);
  await screenshot(page, 'notification');
  await context.close();
});

test('an admin creates a key on the Services page and reads it once', async () => {
  assert.ok(browser !== undefined && h !== undefined && db !== undefined);
  await createConsoleUser(db.pool, {
    email: 'lead@example.com',
    name: 'Lead',
    role: 'admin',
    passwordHash: await hashPassword(password),
  });
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${h.herald.consoleUrl ?? ''}/services`);
  await page.getByLabel('Email').fill('lead@example.com');
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((url) => url.pathname === '/services');
  await page.getByLabel('Service (a new name creates the service)').fill('billing');
  await page.getByLabel('Label').fill('invoices');
  await page.getByLabel('send', { exact: true }).check();
  await page.getByRole('button', { name: 'Create key' }).click();
  const key = await page.locator('code.secret').textContent();
  assert.match(key ?? '', /^hk_/);
  await screenshot(page, 'services');
  await page.goto(`${h.herald.consoleUrl ?? ''}/services`);
  assert.equal(await page.locator('code.secret').count(), 0, 'the key is shown once');
  await context.close();
});

const screenshot = consoleScreenshot;
