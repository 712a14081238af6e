import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { QueryConfig } from 'pg';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { ensureService } from '../db/stores/api-key-store.js';
import { rescueExpiredLeases } from '../scheduler/lease-rescuer.js';
import { DeliveryClaimer, bulkCapacity } from './delivery-claimer.js';

let db: TestDatabase;
let serviceId: number;
const now = new Date();

before(async () => {
  db = await createTestDatabase();
  serviceId = await ensureService(db.pool, 'shop');
});
after(() => db.drop());
beforeEach(async () => {
  await db.pool.query('TRUNCATE notifications, deliveries, delivery_events');
});

/** Inserts a notification with `count` webhook deliveries in `lane`, all due now. */
async function pending(lane: 'bulk' | 'transactional', count: number): Promise<string> {
  const id = `shop#${randomUUID()}`;
  await db.pool.query(
    `INSERT INTO notifications (id, created_at, service_id, lane, category, channels, content, updated_at)
     VALUES ($1, $2, $3, $4, 'general', '{webhook}', '{"default":{"title":"t"}}', $2)`,
    [id, now, serviceId, lane],
  );
  await db.pool.query(
    `INSERT INTO deliveries (id, notification_id, notification_created_at, service_id, user_id, channel, target, lane, state, max_attempts, run_at)
     SELECT gen_random_uuid(), $1, $2, $3, 'u' || g, 'webhook', 'http://127.0.0.1:9/hook', $4, 'pending', 5, now() - interval '1 minute'
       FROM generate_series(1, $5) AS g`,
    [id, now, serviceId, lane, count],
  );
  return id;
}

const limits = { concurrency: 100, reservedShare: 0.25, batchSize: 100 };
const policy = { retry: { baseMs: 1000, maxMs: 60_000 }, circuitOpenMs: 30_000 };

test('with 10,000 bulk deliveries pending, a transactional one is claimed in the next batch', async () => {
  await pending('bulk', 10_000);
  const transactional = await pending('transactional', 1);
  const claimer = new DeliveryClaimer(db.pool, randomUUID(), limits, 60);
  const { deliveries: batch } = await claimer.claim(100, 0);
  // The transactional delivery first, then bulk up to its cap (75 of 100 slots).
  assert.equal(batch[0]?.notificationId, transactional);
  assert.equal(batch.filter((d) => d.lane === 'bulk').length, 75);
  assert.equal(batch.length, 76);
});

test('one statement claims both lanes: transactional first, then bulk into what is left, within its cap', async () => {
  await pending('bulk', 1000);
  const transactional = await pending('transactional', 30);
  let statements = 0;
  const counting = {
    query: (config: QueryConfig) => {
      statements += 1;
      return db.pool.query(config);
    },
  } as unknown as typeof db.pool;
  const claimer = new DeliveryClaimer(counting, randomUUID(), limits, 60);
  // 60 bulk already held: bulk may take 15 more of the 70 slots the transactional ones leave.
  const { deliveries, backlog } = await claimer.claim(100, 60);
  assert.equal(statements, 1);
  assert.deepEqual(
    deliveries.map((d) => d.lane),
    [...Array<string>(30).fill('transactional'), ...Array<string>(15).fill('bulk')],
  );
  assert.ok(deliveries.slice(0, 30).every((d) => d.notificationId === transactional));
  assert.equal(backlog, true);
  // The transactional lane fills the whole room: no bulk at all.
  await pending('transactional', 50);
  const { deliveries: full } = await claimer.claim(20, 0);
  assert.deepEqual(new Set(full.map((d) => d.lane)), new Set(['transactional']));
  assert.equal(full.length, 20);
});

test('bulk never takes the reserved share: with bulk at its cap, free slots stay for transactional work', async () => {
  await pending('bulk', 10_000);
  const claimer = new DeliveryClaimer(db.pool, randomUUID(), limits, 60);
  const cap = bulkCapacity(limits);
  assert.equal(cap, 75);
  const { deliveries: first } = await claimer.claim(100, 0);
  assert.equal(first.length, 75);
  // 25 slots are free but bulk is at its cap: nothing more is claimed until transactional work arrives.
  assert.equal((await claimer.claim(25, 75)).deliveries.length, 0);
  const transactional = await pending('transactional', 3);
  const { deliveries: next } = await claimer.claim(25, 75);
  assert.deepEqual(new Set(next.map((d) => d.notificationId)), new Set([transactional]));
});

test('concurrent claimers never take the same delivery', async () => {
  await pending('bulk', 2000);
  const claimers = Array.from(
    { length: 8 },
    () => new DeliveryClaimer(db.pool, randomUUID(), { ...limits, concurrency: 1000, batchSize: 100 }, 60),
  );
  const seen = new Set<string>();
  let total = 0;
  for (;;) {
    const batches = await Promise.all(claimers.map((c) => c.claim(100, 0)));
    const claimed = batches.flatMap((b) => b.deliveries);
    if (claimed.length === 0) break;
    for (const d of claimed) seen.add(d.id);
    total += claimed.length;
  }
  assert.equal(total, 2000);
  assert.equal(seen.size, 2000);
});

test('an expired lease makes the delivery claimable again; the last attempt becomes dead instead', async () => {
  const id = await pending('transactional', 2);
  const claimer = new DeliveryClaimer(db.pool, randomUUID(), limits, 60);
  const { deliveries: claimed } = await claimer.claim(10, 0);
  assert.equal(claimed.length, 2);
  // One of them already used its last attempt.
  await db.pool.query(
    `UPDATE delivery_queue q SET lease_expires_at = now() - interval '1 second'
       FROM deliveries d WHERE d.id = q.delivery_id AND d.notification_id = $1`,
    [id],
  );
  await db.pool.query('UPDATE deliveries SET max_attempts = 1 WHERE id = $1', [claimed[1]?.id]);
  assert.equal(
    (await claimer.claim(10, 0)).deliveries.length,
    0,
    'leased rows are not claimable before rescue',
  );
  assert.deepEqual(await rescueExpiredLeases({ pool: db.pool, policy, random: Math.random }, 100), {
    retried: 1,
    dead: 1,
  });
  const { deliveries: again } = await new DeliveryClaimer(db.pool, randomUUID(), limits, 60).claim(10, 0);
  assert.deepEqual(
    again.map((d) => d.id),
    [claimed[0]?.id],
  );
  assert.equal(again[0]?.attempt, 2);
});

test('the deliveries of one notification in a batch share its content, parsed once', async () => {
  const first = await pending('transactional', 3);
  const second = await pending('bulk', 2);
  const { deliveries } = await new DeliveryClaimer(db.pool, randomUUID(), limits, 60).claim(10, 0);
  assert.equal(deliveries.length, 5);
  assert.deepEqual(
    deliveries.map((d) => d.content),
    Array.from({ length: 5 }, () => ({ default: { title: 't' } })),
  );
  // A Set of objects counts identities: one object per notification.
  const objects = (id: string) =>
    new Set(deliveries.filter((d) => d.notificationId === id).map((d) => d.content)).size;
  assert.equal(objects(first), 1);
  assert.equal(objects(second), 1);
  assert.equal(new Set(deliveries.map((d) => d.content)).size, 2);
});
