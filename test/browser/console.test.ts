// The console in headless Chromium, as people use it: an admin signs in with the form, creates an
// operator and reads its password off the page; the operator signs in with it and sees no
// controls to manage people, and the console refuses the page. With HERALD_SCREENSHOTS=1 the
// walk saves a screenshot of each page to docs/console/ (the pictures in docs/console.md).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type Browser, type Page } from 'playwright-core';
import { consoleScreenshot, launchChromium } from '../helpers/chromium.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../helpers/test-herald.js';
import { createConsoleUser } from '../../src/db/stores/console-user-store.js';
import { hashPassword } from '../../src/console/passwords.js';
import { ensureService } from '../../src/db/stores/api-key-store.js';
import { addMonths, ensureMonthPartitions, monthOf, monthStartDate } from '../../src/db/partitions.js';
import { archivedTables } from '../../src/archive/archive-store.js';
import type { ConsoleRole } from '../../src/domain/console-roles.js';
import { seedHistory } from '../helpers/history-data.js';

const adminPassword = 'a long admin passphrase';

let db: TestDatabase | undefined;
let h: TestHerald | undefined;
let browser: Browser | undefined;

before(async () => {
  db = await createTestDatabase();
  h = await startTestHerald(db, { roles: ['console'] });
  const people: [string, string, ConsoleRole][] = [
    ['lead@example.com', 'Ops lead', 'admin'],
    ['desk@example.com', 'Support desk', 'support'],
    ['watcher@example.com', 'Watcher', 'viewer'],
  ];
  for (const [email, name, role] of people)
    await createConsoleUser(db.pool, { email, name, role, passwordHash: await hashPassword(adminPassword) });
  // A customer whose notification of five months ago retention has moved to the archive.
  const archive = h.herald.archivePool;
  assert.ok(archive !== undefined);
  const month = addMonths(monthOf(new Date()), -5);
  await db.pool.query(`INSERT INTO users (id, phone) VALUES ('ann', '+821012345678')`);
  await ensureMonthPartitions(
    archive,
    archivedTables.map(({ table }) => ({ table, month })),
  );
  const serviceId = await ensureService(db.pool, 'shop');
  await seedHistory(archive, {
    at: new Date(monthStartDate(month).getTime() + 9 * 86_400_000),
    users: ['ann'],
    perUser: 1,
    serviceId,
  });
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await h?.stop();
  await db?.drop();
});

const screenshot = consoleScreenshot;

async function signIn(page: Page, email: string, password: string): Promise<void> {
  await page.goto(`${h?.herald.consoleUrl ?? ''}/`);
  assert.match(page.url(), /\/login\?next=/, 'an anonymous visit goes to the sign-in form');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((url) => url.pathname === '/');
}

test('an admin creates an operator in the browser; the operator signs in and cannot manage people', async () => {
  assert.ok(browser !== undefined && h !== undefined);
  const errors: string[] = [];
  const adminContext = await browser.newContext();
  const admin = await adminContext.newPage();
  admin.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await admin.goto(`${h.herald.consoleUrl ?? ''}/login`);
  await screenshot(admin, 'sign-in');
  await signIn(admin, 'lead@example.com', adminPassword);
  await screenshot(admin, 'home');
  await admin.getByRole('link', { name: 'People' }).click();
  await admin.getByLabel('Email').fill('operator@example.com');
  await admin.getByLabel('Name').fill('Operator');
  await admin.locator('form.stacked select[name=role]').selectOption('operator');
  await admin.getByRole('button', { name: 'Create account' }).click();
  const password = (await admin.locator('code.password').textContent()) ?? '';
  assert.ok(password.length >= 20, 'the new password is shown once');
  await screenshot(admin, 'people');
  await admin.getByRole('link', { name: 'Audit log' }).click();
  assert.ok(await admin.getByRole('cell', { name: 'console_user.create' }).isVisible());
  await screenshot(admin, 'audit-log');
  await admin.getByRole('button', { name: 'Sign out' }).click();
  await admin.waitForURL((url) => url.pathname === '/login');
  await adminContext.close();

  const operatorContext = await browser.newContext();
  const operator = await operatorContext.newPage();
  await signIn(operator, 'operator@example.com', password);
  assert.equal(await operator.getByRole('link', { name: 'People' }).count(), 0);
  assert.equal(await operator.getByRole('link', { name: 'Audit log' }).count(), 0);
  const refused = await operator.goto(`${h.herald.consoleUrl ?? ''}/console-users`);
  assert.equal(refused?.status(), 403);
  await operatorContext.close();
  assert.deepEqual(errors, [], 'no CSP violation or script error on the pages');
});

test('support finds a customer by phone and reads a five-month-old notification from the archive, attempts and all', async () => {
  assert.ok(browser !== undefined);
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, 'desk@example.com', adminPassword);
  await page.getByRole('link', { name: 'Support' }).click();
  await page.getByLabel('User id, email or phone').fill('+82 10-1234-5678');
  await page.getByRole('button', { name: 'Find' }).click();
  assert.ok(await page.getByRole('cell', { name: '+82********78' }).isVisible(), 'the phone is shown masked');
  await screenshot(page, 'support');
  await page.getByRole('link', { name: 'ann' }).click();
  const section = page.locator('section.notification').first();
  assert.match((await section.locator('h2').textContent()) ?? '', /· shop · orders/);
  assert.ok((await section.locator('ol.events li').count()) >= 2, 'every attempt and state change');
  await screenshot(page, 'support-user');
  await context.close();
});

test('a viewer finds no control that changes anything, and the console refuses a forged change', async () => {
  assert.ok(browser !== undefined && h !== undefined);
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, 'watcher@example.com', adminPassword);
  await page.getByRole('link', { name: 'Dead letters' }).click();
  await screenshot(page, 'dead-letters');
  // Sign out is the only form that posts.
  assert.deepEqual(await page.locator('form[method="post"] button').allTextContents(), ['Sign out']);
  assert.equal(await page.getByRole('link', { name: 'People' }).count(), 0);
  const csrf = await page.locator('input[name="_csrf"]').first().inputValue();
  // Runs in the page: the browser sends the session cookie, as a forged form post would.
  const status = await page.evaluate(
    async (token) =>
      (
        await fetch('/dead-letters/replay', {
          method: 'POST',
          body: new URLSearchParams({ _csrf: token, scope: 'matching' }),
        })
      ).status,
    csrf,
  );
  assert.equal(status, 403);
  await context.close();
});
