// A template saved through one process's api is used at once by another api process that has
// the template's current version cached (invalidated by NOTIFY herald_settings at commit).
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

const template = (title: string) => ({
  category: 'orders',
  params: { name: 'string' },
  fallback_locale: 'en',
  variants: { in_app: { en: { title, body: 'Hello {{ name }}' } } },
});

before(async () => {
  db = await createTestDatabase();
  h = await startTestHerald(db, { roles: ['api'] });
});
after(async () => {
  api?.kill('SIGTERM');
  if (api !== undefined) await api.exited;
  await h.stop();
  await db.drop();
});

test("a template saved through one api process is used by another's cache at once", async () => {
  const port = await freePort();
  api = spawnHerald(['api'], { DATABASE_URL: db.url, API_PORT: String(port), QUERY_PORT: '0' });
  const other = `http://127.0.0.1:${String(port)}`;
  await waitFor('the second api process', () => api?.output().includes('Herald is running') === true, 60_000);
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
