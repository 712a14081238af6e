// Categories in the console: every role reads a service's categories; an operator creates and
// changes one, checked as the API checks it and audited with the settings before and after; a
// viewer or support person sees no form, and their forged post is refused and changes nothing.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../../test/helpers/test-herald.js';
import { ConsoleClient, signedInAs } from '../../test/helpers/console-browser.js';
import { ensureService } from '../db/stores/api-key-store.js';
import { getCategory } from '../db/stores/category-store.js';
import type { ConsoleRole } from '../domain/console-roles.js';

let db: TestDatabase;
let h: TestHerald;
let shopId: number;
const password = 'categories passphrase';

function signedIn(role: ConsoleRole): Promise<ConsoleClient> {
  return signedInAs(db.pool, h.herald.consoleUrl ?? '', role, password);
}

const form = (csrf: string, fields: Record<string, string>) => ({
  _csrf: csrf,
  service: 'shop',
  caps: '',
  ...fields,
});

before(async () => {
  db = await createTestDatabase();
  h = await startTestHerald(db, { roles: ['api', 'console'] });
  shopId = await ensureService(db.pool, 'shop');
  await ensureService(db.pool, 'bank');
  const put = await h.call('PUT', '/v1/categories/security', { critical: true, defaults: { email: true } });
  assert.equal(put.status, 200);
});
after(async () => {
  await h.stop();
  await db.drop();
});

test("an operator reads a service's categories, creates one and changes it; each change is audited", async () => {
  const operator = await signedIn('operator');
  const page = await operator.get('/categories?service=shop');
  assert.equal(page.status, 200);
  assert.match(
    page.text,
    /<tr data-category="security">\s*<td>security<\/td><td>yes<\/td><td>no<\/td><td>email on<\/td>/,
  );
  assert.match(page.text, /method="post" action="\/categories"/);
  const csrf = ConsoleClient.csrfOf(page.text);

  const caps = JSON.stringify({ email: { bulk: { limit: 3, per: 'day', over: 'defer' } } });
  const created = await operator.request(
    'POST',
    '/categories',
    form(csrf, { category: 'promotions', marketing: 'on', default_sms: 'off', caps }),
  );
  assert.equal(created.status, 303, created.text);
  assert.equal(created.headers.get('location'), '/categories?service=shop&saved=promotions');
  const saved = await getCategory(db.pool, shopId, 'promotions');
  assert.deepEqual(
    saved && {
      critical: saved.critical,
      marketing: saved.marketing,
      defaults: saved.defaults,
      caps: saved.caps,
    },
    { critical: false, marketing: true, defaults: { sms: false }, caps: JSON.parse(caps) },
  );
  // The API reads what the console wrote.
  const read = await h.call('GET', '/v1/categories/promotions');
  assert.deepEqual(read.body.defaults, { sms: false });

  const edit = await operator.get('/categories?service=shop&edit=promotions');
  assert.match(edit.text, /name="category" value="promotions"/);
  assert.match(edit.text, /name="marketing" checked/);
  const changed = await operator.request('POST', '/categories', form(csrf, { category: 'promotions' }));
  assert.equal(changed.status, 303);

  const audit = await db.pool.query<{ actor_name: string; target: string; before: unknown; after: unknown }>(
    "SELECT actor_name, target, before, after, client_address FROM audit_log WHERE action = 'category.update' ORDER BY id",
  );
  const consoleEntries = audit.rows.filter((r) => r.actor_name === 'operator@example.com');
  assert.deepEqual(
    consoleEntries.map((r) => [r.target, r.before, r.after]),
    [
      [
        'category:shop/promotions',
        null,
        { critical: false, marketing: true, defaults: { sms: false }, caps: JSON.parse(caps) },
      ],
      [
        'category:shop/promotions',
        { critical: false, marketing: true, defaults: { sms: false }, caps: JSON.parse(caps) },
        { critical: false, marketing: false, defaults: {}, caps: {} },
      ],
    ],
  );
});

test('a category the API would refuse is refused with the reason, and nothing changes', async () => {
  const operator = await signedIn('operator');
  const csrf = ConsoleClient.csrfOf((await operator.get('/categories?service=shop')).text);
  const cases: Record<string, string>[] = [
    { category: 'both', critical: 'on', marketing: 'on' },
    { category: 'bad name!' },
    { category: 'caps', caps: '{"email": {"bulk": {"limit": 0, "per": "day", "over": "defer"}}}' },
    { category: 'caps', caps: '{"in_app": {}}' },
    { category: 'caps', caps: 'not json' },
    { category: 'caps', default_email: 'maybe' },
  ];
  const before = await db.pool.query(
    "SELECT count(*)::int AS n FROM audit_log WHERE action = 'category.update'",
  );
  for (const fields of cases) {
    const answer = await operator.request('POST', '/categories', form(csrf, fields));
    assert.equal(answer.status, 400, JSON.stringify(fields));
    assert.match(answer.text, /class="error" role="alert"/);
  }
  const unknown = await operator.request(
    'POST',
    '/categories',
    form(csrf, { service: 'nope', category: 'x' }),
  );
  assert.equal(unknown.status, 400);
  const rows = await db.pool.query("SELECT 1 FROM categories WHERE category IN ('both', 'caps', 'x')");
  assert.equal(rows.rowCount, 0);
  const afterCount = await db.pool.query(
    "SELECT count(*)::int AS n FROM audit_log WHERE action = 'category.update'",
  );
  assert.deepEqual(afterCount.rows, before.rows);
});

test('a viewer and a support person see the categories without a form; a forged post is refused', async () => {
  for (const role of ['viewer', 'support'] as const) {
    const person = await signedIn(role);
    const page = await person.get('/categories?service=shop');
    assert.equal(page.status, 200);
    assert.match(page.text, /data-category="security"/);
    assert.doesNotMatch(page.text, /method="post" action="\/categories"|Edit security/);
    const csrf = ConsoleClient.csrfOf(page.text);
    const forged = await person.request('POST', '/categories', form(csrf, { category: 'security' }));
    assert.equal(forged.status, 403);
  }
  const security = await getCategory(db.pool, shopId, 'security');
  assert.equal(security?.critical, true, 'unchanged');
});
