import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import {
  addMonths,
  ensurePartitions,
  existingPartitions,
  monthOf,
  partitionName,
  partitionedTables,
} from './partitions.js';
import { partitionUpkeep } from '../scheduler/partition-upkeep.js';
import { createLogger } from '../observability/logger.js';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(() => db.drop());

test('month arithmetic crosses years', () => {
  assert.deepEqual(addMonths({ year: 2026, month: 11 }, 2), { year: 2027, month: 1 });
  assert.deepEqual(addMonths({ year: 2026, month: 1 }, -1), { year: 2025, month: 12 });
  assert.equal(partitionName('deliveries', { year: 2027, month: 3 }), 'deliveries_p2027_03');
});

test('the scheduler keeps every partitioned table created at least two months ahead', async () => {
  // A clock far in the future: none of its months exist yet.
  const future = new Date(Date.UTC(2031, 10, 15));
  await partitionUpkeep({
    pool: db.pool,
    monthsAhead: 2,
    now: () => future,
    logger: createLogger('silent'),
  })();
  const existing = await existingPartitions(db.pool);
  for (const { table } of partitionedTables) {
    for (let ahead = 0; ahead <= 2; ahead++) {
      const name = partitionName(table, addMonths(monthOf(future), ahead));
      assert.ok(existing.has(name), `${name} exists`);
    }
  }
  // A row dated two months ahead has a home.
  await db.pool.query(
    `INSERT INTO delivery_events (delivery_id, notification_id, channel, state, attempt, created_at)
     VALUES (gen_random_uuid(), 'x#y', 'in_app', 'delivered', 0, $1)`,
    [new Date(Date.UTC(2032, 0, 31, 23, 59))],
  );
  // Running again creates nothing new.
  assert.deepEqual(await ensurePartitions(db.pool, future, 2), []);
});
