// Customer support in the console: a support person finds a user by phone or email (exact
// values, shown masked), opens a five-month-old notification that retention moved to the
// archive and sees its attempts; lookups are audited; roles without support:lookup are refused.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../../test/helpers/test-herald.js';
import { ConsoleClient, signedInAs } from '../../test/helpers/console-browser.js';
import { seedHistory } from '../../test/helpers/history-data.js';
import { ensureService } from '../db/stores/api-key-store.js';
import { addMonths, ensureMonthPartitions, monthOf, monthStartDate } from '../db/partitions.js';
import { archivedTables } from '../archive/archive-store.js';
import type { ConsoleRole } from '../domain/console-roles.js';

let db: TestDatabase;
let h: TestHerald;
const password = 'support passphrase here';
const fiveMonthsAgo = addMonths(monthOf(new Date()), -5);

function signedIn(role: ConsoleRole): Promise<ConsoleClient> {
  return signedInAs(db.pool, h.herald.consoleUrl ?? '', role, password);
}

before(async () => {
  db = await createTestDatabase();
  h = await startTestHerald(db, { roles: ['console'] });
  const archive = h.herald.archivePool;
  assert.ok(archive !== undefined, 'the console role opens the archive store');
  const serviceId = await ensureService(db.pool, 'shop');
  await db.pool.query(
    `INSERT INTO users (id, email, phone) VALUES ('ann', 'ann.lee@example.com', '+821012345678')`,
  );
  // Five months back: retention has moved that month to the archive.
  await ensureMonthPartitions(
    archive,
    archivedTables.map(({ table }) => ({ table, month: fiveMonthsAgo })),
  );
  const tenth = new Date(monthStartDate(fiveMonthsAgo).getTime() + 9 * 86_400_000);
  await seedHistory(archive, { at: tenth, users: ['ann'], perUser: 1, serviceId });
});
after(async () => {
  await h.stop();
  await db.drop();
});

test('support finds a user by phone, opens their archived notification and sees its attempts', async () => {
  const support = await signedIn('support');
  const found = await support.get(`/support?q=${encodeURIComponent('+82 10-1234-5678')}`);
  assert.equal(found.status, 200);
  assert.match(found.text, /href="\/support\/users\/ann"/);
  assert.ok(
    !found.text.includes('ann.lee@example.com') && !found.text.includes('+821012345678'),
    'shown masked',
  );
  const byEmail = await support.get(`/support?q=${encodeURIComponent('Ann.Lee@Example.com')}`);
  assert.match(byEmail.text, /href="\/support\/users\/ann"/);
  const partial = await support.get('/support?q=ann.lee');
  assert.doesNotMatch(partial.text, /href="\/support\/users\/ann"/, 'exact values only');

  const history = await support.get('/support/users/ann');
  assert.equal(history.status, 200);
  const created = monthStartDate(fiveMonthsAgo).toISOString().slice(0, 7);
  assert.match(history.text, new RegExp(`<h2>${created}-10 00:01:00 · shop · orders`));
  assert.match(history.text, /webhook/);
  assert.match(history.text, /attempt 1/);

  const audit = await db.pool.query<{ action: string; target: string }>(
    "SELECT action, target FROM audit_log WHERE action LIKE 'support.%' ORDER BY id",
  );
  assert.deepEqual(
    audit.rows.map((r) => r.action),
    ['support.find_user', 'support.find_user', 'support.find_user', 'support.user_history'],
  );
  assert.ok(
    !audit.rows.some((r) => r.target.includes('ann.lee@example.com')),
    'the audit log keeps searches masked',
  );
});

test('an operator or a viewer cannot open customer support', async () => {
  for (const role of ['operator', 'viewer'] as const) {
    const c = await signedIn(role);
    assert.doesNotMatch((await c.get('/')).text, /href="\/support"/, role);
    assert.equal((await c.get('/support?q=ann')).status, 403, role);
    assert.equal((await c.get('/support/users/ann')).status, 403, role);
  }
});
