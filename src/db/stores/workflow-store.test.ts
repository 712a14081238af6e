// The digest's exactly-one-summary under a race: four connections add items while two others
// close due digests as fast as they can, with windows short enough that items keep arriving
// while digests close. Every item must end in exactly one sent digest, and every digest must
// have exactly one summary listing exactly its items.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../../../test/helpers/test-database.js';
import { createPool, withTransaction, type Pool } from '../pools.js';
import { createLogger } from '../../observability/logger.js';
import { ensureService } from './api-key-store.js';
import { closeDueDigests, joinDigest, type ClaimedRun } from './workflow-store.js';

let db: TestDatabase;
let pool: Pool;

before(async () => {
  db = await createTestDatabase();
  pool = createPool(db.url, 8, createLogger('silent'), 'race');
});
after(async () => {
  await pool.end();
  await db.drop();
});

test('items racing closers: each item in exactly one summary, one summary per digest', async () => {
  const serviceId = await ensureService(db.pool, 'racer');
  const createdAt = new Date();
  const items = 240;
  const ids = Array.from({ length: items }, (_, i) => `racer#item-${String(i).padStart(4, '0')}`);
  await db.pool.query(
    `INSERT INTO notifications (id, created_at, service_id, lane, category, channels, content, updated_at, template, params)
     SELECT id, $2, $3, 'bulk', 'general', ARRAY['in_app'], '{}'::jsonb, $2, 't', jsonb_build_object('n', id)
       FROM unnest($1::text[]) AS id`,
    [ids, createdAt, serviceId],
  );
  const run = (id: string): ClaimedRun => ({
    notificationId: id,
    notificationCreatedAt: createdAt,
    userId: 'racer-user',
    serviceId,
    steps: [],
    step: 0,
    phase: 'start',
    lastOutcome: null,
    sentVersion: null,
    waitUntil: null,
    sent: false,
    timeZone: 'UTC',
    attributes: {},
    version: 1,
  });
  let joining = true;
  const joiners = [0, 1, 2, 3].map(async (lane) => {
    for (let i = lane; i < items; i += 4) {
      const id = ids[i] ?? '';
      await withTransaction(pool, (client) =>
        joinDigest(client, run(id), { key: 'race', windowMs: 30, maxItems: 7 }),
      );
    }
  });
  const closers = [0, 1].map(async () => {
    for (;;) {
      const closed = await withTransaction(pool, (client) => closeDueDigests(client, 50, new Date()));
      if (!joining && closed === 0) {
        const open = await pool.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM digests WHERE state = 'open'",
        );
        if (open.rows[0]?.n === 0) return;
        await new Promise((r) => setTimeout(r, 40));
      }
    }
  });
  await Promise.all(joiners);
  joining = false;
  await Promise.all(closers);

  const placed = await db.pool.query<{ notification_id: string; n: number }>(
    `SELECT i.notification_id, count(*)::int AS n FROM digest_items i JOIN digests d ON d.id = i.digest_id
      WHERE d.state = 'sent' GROUP BY i.notification_id`,
  );
  assert.equal(placed.rows.length, items, 'every item is in a sent digest');
  assert.ok(
    placed.rows.every((r) => r.n === 1),
    'no item is in two digests',
  );
  const digests = await db.pool.query<{
    id: string;
    item_count: number;
    summary_id: string;
    listed: string[];
  }>(
    `SELECT d.id, d.item_count, d.summary_id,
            ARRAY(SELECT jsonb_array_elements(n.params->'items')->>'n') AS listed
       FROM digests d JOIN notifications n ON n.id = d.summary_id`,
  );
  const all = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM digests');
  assert.equal(digests.rows.length, all.rows[0]?.n, 'every digest has its summary');
  assert.ok(digests.rows.length > 1, 'the race spanned several windows');
  const summaries = await db.pool.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM notifications WHERE id NOT LIKE 'racer#item-%'",
  );
  assert.equal(summaries.rows[0]?.n, digests.rows.length, 'one summary per digest, no more');
  for (const d of digests.rows) {
    const own = await db.pool.query<{ notification_id: string }>(
      'SELECT notification_id FROM digest_items WHERE digest_id = $1 ORDER BY notification_id',
      [d.id],
    );
    assert.deepEqual(
      [...d.listed].sort(),
      own.rows.map((r) => r.notification_id),
    );
    assert.equal(d.item_count, own.rows.length);
    assert.ok(d.item_count <= 7, `a digest of ${String(d.item_count)} items, over max_items`);
  }
  const recipients = await db.pool.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM recipients WHERE user_id = 'racer-user' AND state = 'pending'",
  );
  assert.equal(recipients.rows[0]?.n, digests.rows.length);
});
