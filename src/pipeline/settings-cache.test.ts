// The settings cache's rate budget ids: a lookup is cached (hits, no statement), a cached "none"
// is trusted only for the implicit default, and a budget's herald_settings NOTIFY drops the entry.
// Budgets are inserted here behind the cache's back (plain SQL, no NOTIFY) to stand for a change
// whose NOTIFY has not arrived yet.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { waitFor } from '../../test/helpers/wait-for.js';
import { WakeListener } from '../db/wake-listener.js';
import { wakeChannels } from '../db/wake-notifier.js';
import { ensureService } from '../db/stores/api-key-store.js';
import { deleteRateBudget } from '../db/stores/rate-budget-store.js';
import { withTransaction } from '../db/pools.js';
import { createLogger } from '../observability/logger.js';
import { SettingsCache, settingsCacheLifetime } from './settings-cache.js';

let db: TestDatabase;
let listener: WakeListener;
let cache: SettingsCache;
let serviceId: number;

before(async () => {
  db = await createTestDatabase();
  listener = new WakeListener(db.url, [wakeChannels.settings], createLogger('silent'));
  await listener.start();
  cache = new SettingsCache(listener, {
    ...settingsCacheLifetime,
    maxEntries: 100,
    now: () => Date.now(),
    random: () => 0,
  });
  serviceId = await ensureService(db.pool, 'shop');
});
after(async () => {
  await listener.stop();
  await db.drop();
});

const insertBehindCache = async (name: string) =>
  Number(
    (
      await db.pool.query<{ id: string }>(
        'INSERT INTO rate_budgets (service_id, name, per_second) VALUES ($1, $2, 10) RETURNING id',
        [serviceId, name],
      )
    ).rows[0]?.id,
  );

test('a cached "none" stands for the default budget but not for a named one', async () => {
  assert.equal(await cache.rateBudgetId(db.pool, serviceId, 'default', true), undefined);
  const misses = cache.misses;
  assert.equal(await cache.rateBudgetId(db.pool, serviceId, 'default', true), undefined);
  assert.equal(cache.misses, misses, 'the second lookup is a hit');
  const id = await insertBehindCache('default');
  // No NOTIFY yet: the implicit default keeps the cached "none" (an unpaced send for a moment) ...
  assert.equal(await cache.rateBudgetId(db.pool, serviceId, 'default', true), undefined);
  // ... while a send naming it reads it again instead of being refused, and caches the id.
  assert.equal(await cache.rateBudgetId(db.pool, serviceId, 'default', false), id);
  assert.equal(await cache.rateBudgetId(db.pool, serviceId, 'default', true), id);
});

test("a budget's NOTIFY drops the cached id", async () => {
  const id = await insertBehindCache('campaign');
  assert.equal(await cache.rateBudgetId(db.pool, serviceId, 'campaign', false), id);
  await withTransaction(db.pool, (client) => deleteRateBudget(client, serviceId, 'campaign'));
  await waitFor(
    'the deletion to reach the cache',
    async () => (await cache.rateBudgetId(db.pool, serviceId, 'campaign', true)) === undefined,
    5000,
  );
});
