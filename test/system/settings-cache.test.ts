// A template saved, or a rate budget created or deleted, through one process's api is used at
// once by another api process that has the template's current version or the budget's id
// cached (invalidated by NOTIFY herald_settings at commit).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { freePort } from '../helpers/free-port.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../helpers/test-herald.js';
import { spawnHerald, type HeraldProcess } from '../helpers/spawn-herald.js';
import { waitFor } from '../helpers/wait-for.js';

let db: TestDatabase;
let h: TestHerald;
let api: HeraldProcess | undefined;
let other: string;

const template = (title: string) => ({
  category: 'orders',
  params: { name: 'string' },
  fallback_locale: 'en',
  variants: { in_app: { en: { title, body: 'Hello {{ name }}' } } },
});

before(async () => {
  db = await createTestDatabase();
  h = await startTestHerald(db, { roles: ['api'] });
  const port = await freePort();
  api = spawnHerald(['api'], { DATABASE_URL: db.url, API_PORT: String(port), QUERY_PORT: '0' });
  other = `http://127.0.0.1:${String(port)}`;
  await waitFor('the second api process', () => api?.output().includes('Herald is running') === true, 60_000);
});
after(async () => {
  api?.kill('SIGTERM');
  if (api !== undefined) await api.exited;
  await h.stop();
  await db.drop();
});

test("a template saved through one api process is used by another's cache at once", async () => {
  assert.equal((await h.call('PUT', '/v1/templates/greeting', template('v1'))).status, 200);
  const sendThroughOther = async () => {
    const res = await h.call(
      'POST',
      '/v1/notifications',
      { recipients: ['ana'], channels: ['in_app'], template: 'greeting', params: { name: 'Ana' } },
      { base: other },
    );
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const view = await h.call('GET', `/v1/notifications/${encodeURIComponent(String(res.body.id))}`);
    return view.body.template.version as number;
  };
  // The other process caches version 1 (its TTL is a minute).
  assert.equal(await sendThroughOther(), 1);
  assert.equal(await sendThroughOther(), 1);
  assert.equal((await h.call('PUT', '/v1/templates/greeting', template('v2'))).body.version, 2);
  // Without the NOTIFY the other process would keep version 1 for up to a minute.
  await waitFor('version 2 through the other process', async () => (await sendThroughOther()) === 2, 5000);
});

test("a budget created or deleted through one api process applies to another's sends at once", async () => {
  /** Sends in the bulk lane through the other process; the name of the budget its recipient is paced by. */
  const budgetThroughOther = async (budget?: string) => {
    const res = await h.call(
      'POST',
      '/v1/notifications',
      {
        recipients: ['ana'],
        channels: ['in_app'],
        lane: 'bulk',
        content: { default: { title: 'Hi' } },
        budget,
      },
      { base: other },
    );
    if (res.status !== 202) return `${String(res.status)} ${String(res.body.code)}`;
    const found = await db.pool.query<{ name: string | null }>(
      `SELECT b.name FROM recipients r LEFT JOIN rate_budgets b ON b.id = r.budget_id WHERE r.notification_id = $1`,
      [res.body.id],
    );
    return found.rows[0]?.name ?? null;
  };
  // The other process caches "no default budget" and has been refused an unknown name.
  assert.equal(await budgetThroughOther(), null);
  assert.equal(await budgetThroughOther(), null);
  assert.equal(await budgetThroughOther('campaign'), '400 budget_not_found');
  assert.equal((await h.call('PUT', '/v1/rate-budgets/campaign', { per_second: 50 })).status, 200);
  assert.equal((await h.call('PUT', '/v1/rate-budgets/default', { per_second: 50 })).status, 200);
  // A send naming the new budget is not refused, NOTIFY or not: a cached "none" is read again.
  assert.equal(await budgetThroughOther('campaign'), 'campaign');
  // Without the NOTIFY the other process would send unpaced for up to a minute.
  await waitFor(
    'the default budget through the other process',
    async () => (await budgetThroughOther()) === 'default',
    5000,
  );
  // Deleted and created again (a new id): the other process drops the old id.
  assert.equal((await h.call('DELETE', '/v1/rate-budgets/default')).status, 204);
  assert.equal((await h.call('PUT', '/v1/rate-budgets/default', { per_second: 50 })).status, 200);
  await waitFor(
    'the new default budget through the other process',
    async () => (await budgetThroughOther()) === 'default',
    5000,
  );
});
