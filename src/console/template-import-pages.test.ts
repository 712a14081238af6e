// Template sheets in the console: download; upload for a dry run reported row by row (a bad row
// named on that row, nothing applied; garbled Korean warned, and applied only with "accept
// warnings"); Apply of the reviewed file; the imports list and Undo (a second undo is a clear
// 409); the audit log names the console user and address. A viewer sees no upload or undo
// control and is refused; an oversized file is 413.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import ExcelJS from 'exceljs';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../../test/helpers/test-herald.js';
import { ConsoleClient, signedInAs } from '../../test/helpers/console-browser.js';
import { asWindows1252 } from '../../test/helpers/garble.js';
import { templateCsv, templateWorkbook, type SheetRowCells } from '../../test/helpers/template-workbook.js';
import { withTransaction } from '../db/pools.js';
import { ensureService } from '../db/stores/api-key-store.js';
import { findTemplateVersion, saveTemplate } from '../db/stores/template-store.js';
import type { ConsoleRole } from '../domain/console-roles.js';

let db: TestDatabase;
let h: TestHerald;
let shop: number;
const password = 'imports passphrase';
const clients = new Map<ConsoleRole, ConsoleClient>();

const notice = (locale: string, text: string): SheetRowCells => ({
  key: 'bank.notice',
  category: 'account',
  lane: 'transactional',
  params: 'name:string',
  fallback_locale: 'en',
  channel: 'sms',
  locale,
  text,
});

async function signedIn(role: ConsoleRole): Promise<ConsoleClient> {
  const known = clients.get(role);
  if (known !== undefined) return known;
  const client = await signedInAs(db.pool, h.herald.consoleUrl ?? '', role, password);
  clients.set(role, client);
  return client;
}

async function upload(client: ConsoleClient, file: Buffer, name: string, csrf?: string) {
  const form = new FormData();
  form.append('_csrf', csrf ?? ConsoleClient.csrfOf((await client.get('/templates/shop/import')).text));
  form.append('file', new Blob([file]), name);
  const response = await client.send('/templates/shop/import', { body: form });
  return { status: response.status, text: await response.text() };
}

/** The report's row `n`, as its table row's HTML. */
function reportRow(page: string, n: number): string {
  const match = new RegExp(`<tr id="row-${String(n)}"[^>]*>([\\s\\S]*?)</td></tr>`).exec(page);
  assert.ok(match !== null, `the report has row ${String(n)}`);
  return match[0];
}

const uploadHash = (page: string) => /name="upload" value="([0-9a-f]{64})"/.exec(page)?.[1] ?? '';
const importCount = async () =>
  Number((await db.pool.query<{ n: string }>('SELECT count(*) AS n FROM template_imports')).rows[0]?.n);

before(async () => {
  db = await createTestDatabase();
  h = await startTestHerald(db, { roles: ['api', 'console'] });
  shop = await ensureService(db.pool, 'shop');
  await withTransaction(db.pool, (client) =>
    saveTemplate(client, shop, 'bank.notice', {
      category: 'account',
      lane: 'transactional',
      params: { name: 'string' },
      fallbackLocale: 'en',
      variants: { sms: { en: { text: 'Notice for {{ name }}' }, ko: { text: '[은행] {{ name }}님 안내' } } },
    }),
  );
});
after(async () => {
  await h.stop();
  await db.drop();
});

test('the export downloads as xlsx and CSV', async () => {
  const viewer = await signedIn('viewer');
  const xlsx = await viewer.send('/templates/shop/export?format=xlsx', { method: 'GET' });
  assert.equal(xlsx.status, 200);
  const workbook = new ExcelJS.Workbook();
  await workbook.xlsx.load(await xlsx.arrayBuffer());
  assert.equal(workbook.getWorksheet('templates')?.getRow(3).getCell(13).text, '[은행] {{ name }}님 안내');
  const csv = await viewer.send('/templates/shop/export?format=csv', { method: 'GET' });
  assert.match(await csv.text(), /bank\.notice,1,account/);
});

test('a bad row is reported on that row, blank required cells as missing, and nothing is applied', async () => {
  const operator = await signedIn('operator');
  const file = templateCsv([
    notice('en', 'Hello {{ name }}'),
    notice('ko', ''),
    { ...notice('ja', 'x'), lane: '' },
  ]);
  const answer = await upload(operator, file, 'templates.csv');
  assert.equal(answer.status, 200, 'the dry run ran: its report is the page');
  assert.match(answer.text, /the file has problems; nothing can be imported/);
  assert.match(reportRow(answer.text, 3), /row-error[\s\S]*bank\.notice[\s\S]*text: missing/);
  assert.match(reportRow(answer.text, 4), /lane: missing/);
  assert.doesNotMatch(reportRow(answer.text, 2), /row-error/);
  assert.doesNotMatch(answer.text, /action="\/templates\/shop\/import\/apply"/);
  assert.equal((await findTemplateVersion(db.pool, shop, 'bank.notice'))?.version, 1);
  assert.equal(await importCount(), 0);
});

test('garbled Korean is warned; Apply needs "accept warnings"; the import is audited and undone', async () => {
  const operator = await signedIn('operator');
  const garbled = asWindows1252('[은행] {{ name }}님 안내');
  const file = await templateWorkbook([notice('en', 'Notice for {{ name }}'), notice('ko', garbled)]);
  const review = await upload(operator, file, 'templates.xlsx');
  assert.equal(review.status, 200, review.text);
  const row = reportRow(review.text, 3);
  assert.match(row, /new version 2/);
  assert.match(row, /Warning, text: looks mis-decoded/);
  assert.match(row, /\[은행\] \{\{ name \}\}님 안내/, 'what it probably said');
  assert.match(review.text, /name="accept_warnings"/);
  const csrf = ConsoleClient.csrfOf(review.text);
  const hash = uploadHash(review.text);

  const unaccepted = await operator.request('POST', '/templates/shop/import/apply', {
    _csrf: csrf,
    upload: hash,
  });
  assert.equal(unaccepted.status, 400);
  assert.equal(await importCount(), 0);
  const forged = await operator.request('POST', '/templates/shop/import/apply', {
    _csrf: csrf,
    upload: 'f'.repeat(64),
    accept_warnings: '1',
  });
  assert.equal(forged.status, 404, 'only a reviewed upload is applied');

  const applied = await operator.request('POST', '/templates/shop/import/apply', {
    _csrf: csrf,
    upload: hash,
    accept_warnings: '1',
  });
  assert.equal(applied.status, 303, applied.text);
  assert.match(applied.headers.get('location') ?? '', /\/templates\/shop\/import\?applied=\d+/);
  assert.equal(
    (await findTemplateVersion(db.pool, shop, 'bank.notice'))?.variants.sms?.['ko']?.text,
    garbled,
  );

  const list = await operator.get('/templates/shop/import');
  assert.match(list.text, /<td>import<\/td><td>[^<]+<\/td><td>operator@example\.com<\/td>/, 'who imported');
  const importId = /Undo (\d+)/.exec(list.text)?.[1] ?? '';
  const undone = await operator.request('POST', `/templates/shop/imports/${importId}/undo`, { _csrf: csrf });
  assert.equal(undone.status, 303);
  const restored = await findTemplateVersion(db.pool, shop, 'bank.notice');
  assert.equal(restored?.version, 1);
  assert.equal(restored.variants.sms?.['ko']?.text, '[은행] {{ name }}님 안내');

  const again = await operator.request('POST', `/templates/shop/imports/${importId}/undo`, { _csrf: csrf });
  assert.equal(again.status, 409);
  assert.match(again.text, /was already undone/);

  const audit = await db.pool.query<{
    action: string;
    actor_kind: string;
    actor_name: string;
    client_address: string;
  }>(
    `SELECT action, actor_kind, actor_name, client_address FROM audit_log
      WHERE action LIKE 'template.import%' ORDER BY id`,
  );
  assert.deepEqual(
    audit.rows.map((r) => [r.action, r.actor_kind, r.actor_name]),
    [
      ['template.import', 'console_user', 'operator@example.com'],
      ['template.import_undo', 'console_user', 'operator@example.com'],
    ],
  );
  for (const r of audit.rows) assert.ok(r.client_address, 'the client address is recorded');
});

test('a viewer sees no upload or undo control, and its forged upload and undo are refused', async () => {
  const viewer = await signedIn('viewer');
  const page = await viewer.get('/templates/shop/import');
  assert.equal(page.status, 200);
  assert.doesNotMatch(page.text, /type="file"/);
  assert.doesNotMatch(page.text, /Undo \d/);
  const csrf = ConsoleClient.csrfOf(page.text);
  const before = await importCount();
  const file = templateCsv([notice('en', 'Viewer {{ name }}')]);
  assert.equal((await upload(viewer, file, 'templates.csv', csrf)).status, 403);
  const forgedUndo = await viewer.request('POST', '/templates/shop/imports/1/undo', { _csrf: csrf });
  assert.equal(forgedUndo.status, 403);
  assert.equal(await importCount(), before);
});

test('an upload over 10 MiB is refused with 413', async () => {
  const operator = await signedIn('operator');
  const answer = await upload(operator, Buffer.alloc(10 * 1024 * 1024 + 1, 0x61), 'big.csv');
  assert.equal(answer.status, 413);
  assert.equal(JSON.parse(answer.text).code, 'payload_too_large');
});

test('an upload without a live session, or from a role that may not import, is answered before its body is read', async () => {
  const viewer = await signedIn('viewer');
  const base = new URL(h.herald.consoleUrl ?? '');
  const cases: [string, string, number][] = [
    ['a made-up session', 'herald_console=forged-session-id', 401],
    ['a viewer', `herald_console=${viewer.cookie('herald_console') ?? ''}`, 403],
  ];
  for (const [what, cookie, status] of cases) {
    // Declares 9 MiB, sends 1 KiB, and waits: the answer must come without the rest.
    const answered = await new Promise<number>((resolve, reject) => {
      const req = request({
        host: base.hostname,
        port: base.port,
        method: 'POST',
        path: '/templates/shop/import',
        headers: {
          cookie,
          origin: base.origin,
          'content-type': 'multipart/form-data; boundary=x',
          'content-length': String(9 * 1024 * 1024),
        },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      req.on('error', reject);
      req.write(Buffer.alloc(1024, 0x61));
      setTimeout(() => reject(new Error(`${what}: no answer while the body was unsent`)), 5000).unref();
    });
    assert.equal(answered, status, what);
  }
});

test('a version saved and an import made through the API name their API key in the console', async () => {
  const put = await h.call('PUT', '/v1/templates/api.made', {
    category: 'account',
    lane: 'transactional',
    params: {},
    fallback_locale: 'en',
    variants: { sms: { en: { text: 'Made by a key' } } },
  });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  const prefix = (
    await db.pool.query<{ key_prefix: string }>('SELECT key_prefix FROM api_keys ORDER BY id DESC LIMIT 1')
  ).rows[0]?.key_prefix;
  assert.ok(prefix !== undefined && prefix.length > 3);
  const operator = await signedIn('operator');
  const page = await operator.get('/templates/shop/api.made');
  assert.ok(page.text.includes(`${prefix} (update)`), 'the key that saved version 1');

  const imported = await fetch(`${h.herald.apiUrl ?? ''}/v1/templates/import`, {
    method: 'POST',
    headers: { authorization: `Bearer ${h.apiKey}`, 'content-type': 'text/csv' },
    body: templateCsv([notice('en', 'From the API {{ name }}')]),
  });
  assert.equal(imported.status, 200, await imported.text());
  const list = await operator.get('/templates/shop/import');
  assert.ok(list.text.includes(`<td>${prefix}</td>`), 'the key that imported');
});
