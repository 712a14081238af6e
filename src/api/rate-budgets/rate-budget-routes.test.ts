// Rate budgets through the api role: a service creates, reads, changes and deletes its own;
// another service's key neither sees, changes, deletes nor sends under them (its sends naming
// them are refused, budget_not_found); bad input changes nothing. A send names a budget only
// in the bulk lane; a bulk send naming none falls under the service's `default` budget.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../../../test/helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../../../test/helpers/test-herald.js';
import { changedTables, tableSnapshot } from '../../../test/helpers/table-snapshot.js';
import { createApiKey, ensureService } from '../../db/stores/api-key-store.js';
import { permissions } from '../../domain/permissions.js';

let db: TestDatabase;
let api: TestHerald;
let otherKey: string;
let senderKey: string;

before(async () => {
  db = await createTestDatabase();
  api = await startTestHerald(db, { roles: ['api'] });
  otherKey = await createApiKey(db.pool, await ensureService(db.pool, 'other'), permissions);
  senderKey = await createApiKey(db.pool, await ensureService(db.pool, 'shop'), ['send']);
});
after(async () => {
  await api.stop();
  await db.drop();
});

const send = (body: Record<string, unknown>, key?: string) =>
  api.call(
    'POST',
    '/v1/notifications',
    { recipients: ['ann'], channels: ['in_app'], content: { default: { title: 'Hi' } }, ...body },
    key === undefined ? {} : { key },
  );

const budgetOfRecipients = async (id: string) =>
  (
    await db.pool.query<{ name: string | null }>(
      `SELECT b.name FROM recipients r LEFT JOIN rate_budgets b ON b.id = r.budget_id WHERE r.notification_id = $1`,
      [id],
    )
  ).rows.map((r) => r.name);

test('a service manages its budgets: create, list, read, change, delete', async () => {
  const put = await api.call('PUT', '/v1/rate-budgets/spring-sale', { per_second: 50 });
  assert.equal(put.status, 200);
  assert.equal(put.body.per_second, 50);
  assert.equal(
    (await api.call('PUT', '/v1/rate-budgets/spring-sale', { per_second: 80 })).body.per_second,
    80,
  );
  assert.deepEqual(
    (await api.call('GET', '/v1/rate-budgets')).body.items.map((b: { name: string }) => b.name),
    ['spring-sale'],
  );
  const read = await api.call('GET', '/v1/rate-budgets/spring-sale', undefined, { key: senderKey });
  assert.equal(read.body.per_second, 80);
  // A sending key reads budgets but does not change them.
  assert.equal(
    (await api.call('PUT', '/v1/rate-budgets/spring-sale', { per_second: 1 }, { key: senderKey })).status,
    403,
  );
  assert.equal((await api.call('DELETE', '/v1/rate-budgets/spring-sale')).status, 204);
  assert.equal((await api.call('GET', '/v1/rate-budgets/spring-sale')).body.code, 'not_found');
  const audit = await db.pool.query<{ action: string }>(
    `SELECT action FROM audit_log WHERE target = 'rate_budget:shop/spring-sale' ORDER BY id`,
  );
  assert.deepEqual(
    audit.rows.map((r) => r.action),
    ['rate_budget.update', 'rate_budget.update', 'rate_budget.delete'],
  );
});

test("another service cannot read, change, delete or send under a service's budget", async () => {
  assert.equal((await api.call('PUT', '/v1/rate-budgets/mine', { per_second: 10 })).status, 200);
  const before = await tableSnapshot(db.pool);
  const asOther = { key: otherKey };
  assert.equal((await api.call('GET', '/v1/rate-budgets/mine', undefined, asOther)).status, 404);
  assert.deepEqual((await api.call('GET', '/v1/rate-budgets', undefined, asOther)).body.items, []);
  assert.equal((await api.call('DELETE', '/v1/rate-budgets/mine', undefined, asOther)).status, 404);
  const sent = await send({ lane: 'bulk', budget: 'mine' }, otherKey);
  assert.equal(sent.status, 400);
  assert.equal(sent.body.code, 'budget_not_found');
  assert.deepEqual(changedTables(before, await tableSnapshot(db.pool)), []);
  // Its own budget of the same name is its own row; the first service's is unchanged.
  assert.equal((await api.call('PUT', '/v1/rate-budgets/mine', { per_second: 99 }, asOther)).status, 200);
  assert.equal((await api.call('GET', '/v1/rate-budgets/mine')).body.per_second, 10);
});

test('bad input is refused with a problem and changes nothing', async () => {
  const before = await tableSnapshot(db.pool);
  const cases: [string, string, unknown, string][] = [
    ['PUT', '/v1/rate-budgets/Bad%20Name', { per_second: 5 }, 'validation_failed'],
    ['PUT', '/v1/rate-budgets/ok', { per_second: 0 }, 'validation_failed'],
    ['PUT', '/v1/rate-budgets/ok', { per_second: 100_001 }, 'validation_failed'],
    ['PUT', '/v1/rate-budgets/ok', { per_second: 2.5 }, 'validation_failed'],
    ['PUT', '/v1/rate-budgets/ok', { per_second: 5, burst: 9 }, 'validation_failed'],
    ['DELETE', '/v1/rate-budgets/none', undefined, 'not_found'],
  ];
  for (const [method, path, body, code] of cases) {
    const res = await api.call(method, path, body);
    assert.equal(res.body.code, code, `${method} ${path} ${JSON.stringify(body)}`);
  }
  assert.equal((await send({ budget: 'mine' })).body.code, 'budget_not_bulk');
  assert.equal((await send({ lane: 'bulk', budget: 'nope' })).body.code, 'budget_not_found');
  assert.equal((await send({ lane: 'bulk', budget: 'UPPER' })).body.code, 'validation_failed');
  assert.deepEqual(changedTables(before, await tableSnapshot(db.pool)), []);
});

test("a bulk send is paced by the budget it names, else by the service's default budget", async () => {
  const named = await send({ lane: 'bulk', budget: 'mine' });
  assert.equal(named.status, 202);
  assert.deepEqual(await budgetOfRecipients(named.body.id), ['mine']);
  const plain = await send({ lane: 'bulk' });
  assert.deepEqual(await budgetOfRecipients(plain.body.id), [null]);
  assert.equal((await api.call('PUT', '/v1/rate-budgets/default', { per_second: 5 })).status, 200);
  const defaulted = await send({ lane: 'bulk' });
  assert.deepEqual(await budgetOfRecipients(defaulted.body.id), ['default']);
  const transactional = await send({});
  assert.deepEqual(await budgetOfRecipients(transactional.body.id), [null]);
  // Deleting a budget leaves its pending recipients unpaced.
  assert.equal((await api.call('DELETE', '/v1/rate-budgets/mine')).status, 204);
  assert.deepEqual(await budgetOfRecipients(named.body.id), [null]);
});
