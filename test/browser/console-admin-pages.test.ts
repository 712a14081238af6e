// Categories and providers in headless Chromium: an admin opens the categories of a service, sets
// one with the form (no script needed, none blocked by the Content Security Policy), and reads the
// providers page, where a credential is only "set". With HERALD_SCREENSHOTS=1 it saves
// docs/console/categories.png and docs/console/providers.png (the pictures in docs/console.md).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import type { Browser } from 'playwright-core';
import { consoleScreenshot, launchChromium } from '../helpers/chromium.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../helpers/test-herald.js';
import { createConsoleUser } from '../../src/db/stores/console-user-store.js';
import { hashPassword } from '../../src/console/passwords.js';
import { ensureService } from '../../src/db/stores/api-key-store.js';
import { withTransaction } from '../../src/db/pools.js';
import { putCategory, type CategoryCaps } from '../../src/db/stores/category-store.js';

const capsOf = (caps: object) => caps as CategoryCaps;

const password = 'a long admin passphrase';
const secret = 'canary-smtp-password-77ab';

let db: TestDatabase | undefined;
let h: TestHerald | undefined;
let browser: Browser | undefined;
let dir = '';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'herald-console-admin-'));
  await writeFile(join(dir, 'smtp-password.txt'), secret);
  const from = 'Herald <noreply@example.com>';
  await writeFile(
    join(dir, 'herald.json'),
    JSON.stringify({
      providers: [
        {
          type: 'smtp',
          name: 'relay',
          host: 'smtp.example.com',
          port: 587,
          user: 'mailer',
          password: { file: 'smtp-password.txt' },
          from,
          fallback: 'backup-relay',
          concurrency: 20,
          ratePerSecond: 50,
        },
        { type: 'smtp', name: 'backup-relay', host: 'smtp2.example.com', port: 587, from },
      ],
    }),
  );
  db = await createTestDatabase();
  h = await startTestHerald(db, {
    roles: ['console'],
    env: { HERALD_CONFIG_FILE: join(dir, 'herald.json') },
  });
  await createConsoleUser(db.pool, {
    email: 'lead@example.com',
    name: 'Ops lead',
    role: 'admin',
    passwordHash: await hashPassword(password),
  });
  const shop = await ensureService(db.pool, 'shop');
  await withTransaction(db.pool, async (client) => {
    await putCategory(client, shop, 'security', { critical: true, marketing: false, defaults: {}, caps: {} });
    await putCategory(client, shop, 'orders', {
      critical: false,
      marketing: false,
      defaults: { sms: false },
      // The caps schema is built from the channel list, so its static type is too loose to write here.
      caps: capsOf({ push: { bulk: { limit: 5, per: 'day', over: 'defer' } } }),
    });
  });
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await h?.stop();
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

const screenshot = consoleScreenshot;

test('an admin sets a category with the form and reads the providers, credentials hidden', async () => {
  assert.ok(browser !== undefined && h !== undefined);
  const errors: string[] = [];
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await page.goto(`${h.herald.consoleUrl ?? ''}/login`);
  await page.getByLabel('Email').fill('lead@example.com');
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((url) => url.pathname === '/');

  await page.getByRole('link', { name: 'Categories' }).click();
  await page.getByLabel('Category', { exact: true }).fill('promotions');
  await page.getByLabel('Marketing').check();
  await page.locator('select[name=default_email]').selectOption('off');
  await page.getByRole('button', { name: 'Save category' }).click();
  await page.waitForURL((url) => url.searchParams.get('saved') === 'promotions');
  assert.ok(await page.getByRole('status').filter({ hasText: 'Category promotions saved.' }).isVisible());
  const row = page.locator('tr[data-category=promotions]');
  assert.match((await row.textContent()) ?? '', /yes\s*email off/);
  await screenshot(page, 'categories');

  await page.getByRole('link', { name: 'Providers' }).click();
  assert.match(
    (await page.locator('tr[data-provider=relay]').textContent()) ?? '',
    /backup-relay.*password: set/s,
  );
  assert.ok(!(await page.content()).includes(secret), 'no credential in the page');
  await screenshot(page, 'providers');
  await context.close();
  assert.deepEqual(errors, [], 'no CSP violation or script error on the pages');
});
