// A dead letter is not replayed once its notification is nearly as old as the service retention:
// its month may be being copied to the archive and dropped, which would take the replayed
// delivery from under the worker (docs/retention.md).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../helpers/test-herald.js';
import { seedHistory } from '../helpers/history-data.js';
import { ensurePartitions } from '../../src/db/partitions.js';

let db: TestDatabase;
let h: TestHerald;
const dayMs = 86_400_000;

before(async () => {
  db = await createTestDatabase();
  h = await startTestHerald(db, { roles: ['api'], env: { SERVICE_RETENTION_DAYS: '90' } });
});
after(async () => {
  await h.stop();
  await db.drop();
});

test('dead letters older than the service retention less a day stay dead; younger ones are replayed', async () => {
  const { rows } = await db.pool.query<{ id: number }>("SELECT id FROM services WHERE name = 'shop'");
  const serviceId = rows[0]?.id ?? 0;
  const now = Date.now();
  const old = new Date(now - 89.5 * dayMs);
  const young = new Date(now - 10 * dayMs);
  await ensurePartitions(db.pool, new Date(now), 1, old);
  await seedHistory(db.pool, { at: old, users: ['ann'], perUser: 1, serviceId });
  await seedHistory(db.pool, { at: young, users: ['bob'], perUser: 1, serviceId });
  await db.pool.query("UPDATE deliveries SET state = 'dead', dead_at = now() WHERE channel = 'webhook'");

  const replay = await h.call('POST', '/v1/dead-letters/replay', { all: true });
  assert.equal(replay.status, 200);
  assert.equal(replay.body.replayed, 1);
  const states = await db.pool.query<{ user_id: string; state: string }>(
    "SELECT user_id, state FROM deliveries WHERE channel = 'webhook' ORDER BY user_id",
  );
  assert.deepEqual(
    states.rows.map((r) => [r.user_id, r.state]),
    [
      ['ann', 'dead'],
      ['bob', 'pending'],
    ],
  );
});
