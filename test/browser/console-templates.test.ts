// The console's templates in headless Chromium, as an operator uses them: an admin creates the
// operator; the operator uploads a workbook with a bad row and reads the report naming it, fixes
// the workbook, uploads it again and applies it, then opens the template and previews the new
// version in Korean and in English as they type (the page's script, under the console's CSP),
// and edits the English text, seeing it rendered before saving.
// With HERALD_SCREENSHOTS=1 the walk saves docs/console/templates.png, template-import.png and
// template.png (the pictures in docs/console.md).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type Browser, type Page } from 'playwright-core';
import { consoleScreenshot, launchChromium } from '../helpers/chromium.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../helpers/test-herald.js';
import { templateWorkbook, type SheetRowCells } from '../helpers/template-workbook.js';
import { createConsoleUser } from '../../src/db/stores/console-user-store.js';
import { hashPassword } from '../../src/console/passwords.js';
import { withTransaction } from '../../src/db/pools.js';
import { ensureService } from '../../src/db/stores/api-key-store.js';
import { findTemplateVersion, saveTemplate } from '../../src/db/stores/template-store.js';

const adminPassword = 'a long admin passphrase';

let db: TestDatabase | undefined;
let h: TestHerald | undefined;
let browser: Browser | undefined;
let shop = 0;

const row = (locale: string, text: string): SheetRowCells => ({
  key: 'welcome',
  category: 'account',
  lane: 'transactional',
  params: 'name:string',
  fallback_locale: 'en',
  channel: 'sms',
  locale,
  text,
});

before(async () => {
  db = await createTestDatabase();
  h = await startTestHerald(db, { roles: ['console'] });
  await createConsoleUser(db.pool, {
    email: 'lead@example.com',
    name: 'Ops lead',
    role: 'admin',
    passwordHash: await hashPassword(adminPassword),
  });
  shop = await ensureService(db.pool, 'shop');
  await withTransaction(db.pool, async (client) => {
    await saveTemplate(client, shop, 'welcome', {
      category: 'account',
      lane: 'transactional',
      params: { name: 'string' },
      fallbackLocale: 'en',
      variants: { sms: { en: { text: 'Welcome {{ name }}' }, ko: { text: '{{ name }}님 환영합니다' } } },
    });
    await saveTemplate(client, shop, 'order.shipped', {
      category: 'orders',
      lane: 'bulk',
      params: { name: 'string' },
      fallbackLocale: 'en',
      variants: { in_app: { en: { title: 'Shipped', body: 'Your order is on its way, {{ name }}' } } },
    });
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
  await page.goto(`${h?.herald.consoleUrl ?? ''}/login`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((url) => url.pathname === '/');
}

async function createOperator(): Promise<string> {
  assert.ok(browser !== undefined);
  const context = await browser.newContext();
  const admin = await context.newPage();
  await signIn(admin, 'lead@example.com', adminPassword);
  await admin.getByRole('link', { name: 'People' }).click();
  await admin.getByLabel('Email').fill('operator@example.com');
  await admin.getByLabel('Name').fill('Operator');
  await admin.locator('form.stacked select[name=role]').selectOption('operator');
  await admin.getByRole('button', { name: 'Create account' }).click();
  const password = (await admin.locator('code.password').textContent()) ?? '';
  assert.ok(password.length >= 20, 'the new password is shown once');
  await context.close();
  return password;
}

async function uploadWorkbook(page: Page, rows: SheetRowCells[]): Promise<void> {
  await page.locator('input[type=file]').setInputFiles({
    name: 'templates.xlsx',
    mimeType: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
    buffer: await templateWorkbook(rows),
  });
  await page.getByRole('button', { name: 'Check the file' }).click();
  await page.waitForSelector('section.review');
}

test('an operator imports a workbook, fixing a bad row, and previews the new version in Korean and English', async () => {
  assert.ok(browser !== undefined && h !== undefined && db !== undefined);
  const password = await createOperator();
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await signIn(page, 'operator@example.com', password);

  await page.getByRole('link', { name: 'Templates' }).click();
  await page.getByLabel('Service').selectOption('shop');
  await page.getByRole('button', { name: 'Show templates' }).click();
  assert.ok(await page.getByRole('link', { name: 'welcome' }).isVisible());
  await screenshot(page, 'templates');

  await page.getByRole('link', { name: 'Import a sheet, and past imports' }).click();
  const fixed = [row('en', 'Welcome aboard, {{ name }}'), row('ko', '{{ name }}님, 가입을 환영합니다')];
  await uploadWorkbook(page, [fixed[0] ?? {}, row('ko', '')]);
  const bad = page.locator('#row-3');
  assert.equal(await bad.getAttribute('class'), 'row-error');
  assert.match((await bad.textContent()) ?? '', /welcome[\s\S]*text: missing/);
  assert.equal(
    await page.getByRole('button', { name: 'Apply' }).count(),
    0,
    'a file with a bad row cannot be applied',
  );

  await uploadWorkbook(page, fixed);
  assert.match((await page.locator('#row-3').textContent()) ?? '', /new version 2/);
  await screenshot(page, 'template-import');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL((url) => url.searchParams.has('applied'));
  assert.equal((await findTemplateVersion(db.pool, shop, 'welcome'))?.version, 2);

  await page.getByRole('link', { name: 'Templates of shop' }).click();
  await page.getByRole('link', { name: 'welcome' }).click();
  const result = page.locator('#preview-result');
  await page.getByLabel('Sample params (JSON)').fill('{"name": "김하나"}');
  await page.getByLabel('Locale', { exact: true }).first().fill('ko');
  await result.getByText('김하나님, 가입을 환영합니다').waitFor();
  assert.match((await result.textContent()) ?? '', /Rendered in ko[\s\S]*SMS segment/);
  await screenshot(page, 'template');
  await page.getByLabel('Sample params (JSON)').fill('{"name": "Kim"}');
  await page.getByLabel('Locale', { exact: true }).first().fill('en');
  await result.getByText('Welcome aboard, Kim').waitFor();
  // Typing in the edit form previews the unsaved text, with the provider limits, before a save.
  await page.locator('textarea[name="v|sms|en|text"]').fill('Welcome back, {{ name }}');
  await result.getByText('Welcome back, Kim').waitFor();
  assert.match((await result.textContent()) ?? '', /Your unsaved edit, rendered in en/);
  assert.equal((await findTemplateVersion(db.pool, shop, 'welcome'))?.version, 2, 'nothing saved');
  await context.close();
  assert.deepEqual(errors, [], 'no CSP violation or script error on the pages');
});
