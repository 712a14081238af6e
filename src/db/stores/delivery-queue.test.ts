// The delivery queue (migration 0030) against the real database: a delivery's claim and outcome
// change no indexed column of deliveries (both are heap-only updates), and the queue holds
// exactly the deliveries that are not final, through retries, dead letters, replays and cancels.
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '../../../test/helpers/test-database.js';
import { updatesSince, xactUpdates } from '../../../test/helpers/hot-updates.js';
import { withTransaction, type PoolClient } from '../pools.js';
import { monthOf, partitionName } from '../partitions.js';
import type { Transition } from '../../domain/outcome-policy.js';
import { ensureService } from './api-key-store.js';
import { claimDeliveries, writeOutcomes, type ClaimedDelivery } from './delivery-store.js';
import { replayDeadLetters } from './dead-letter-store.js';
import { cancelNotification } from './notification-store.js';
import { applyStatusUpdates } from './receipt-store.js';

let db: TestDatabase;
let serviceId: number;
const createdAt = new Date();
const owner = randomUUID();

before(async () => {
  db = await createTestDatabase();
  serviceId = await ensureService(db.pool, 'shop');
});
after(() => db.drop());
beforeEach(async () => {
  await db.pool.query('TRUNCATE notifications, deliveries, delivery_events');
});

/** A notification with `count` pending webhook deliveries, due now. */
async function pending(count: number): Promise<string> {
  const id = `shop#${randomUUID()}`;
  await db.pool.query(
    `INSERT INTO notifications (id, created_at, service_id, lane, category, channels, content, updated_at)
     VALUES ($1, $2, $3, 'transactional', 'general', '{webhook}', '{"default":{"title":"t"}}', $2)`,
    [id, createdAt, serviceId],
  );
  await db.pool.query(
    `INSERT INTO deliveries (id, notification_id, notification_created_at, service_id, user_id, channel, target,
                             lane, state, max_attempts, run_at)
     SELECT gen_random_uuid(), $1, $2, $3, 'u' || g, 'webhook', 'https://receiver.example/hook', 'transactional',
            'pending', 3, now() - interval '1 second'
       FROM generate_series(1, $4) AS g`,
    [id, createdAt, serviceId, count],
  );
  return id;
}

const toState = (d: ClaimedDelivery, to: Transition['to'], delayMs: number | null = null) => ({
  id: d.id,
  notificationCreatedAt: d.notificationCreatedAt,
  channel: d.channel,
  target: d.target,
  provider: 'webhook',
  transition: {
    from: 'sending',
    fromAttempts: d.attempt,
    to,
    attempts: d.attempt,
    delayMs,
    lastError: to === 'sent' ? null : 'HTTP 503',
    providerMessageId: null,
    disableTarget: false,
    acceptedLate: false,
    event: { attempt: d.attempt, detail: null },
  } satisfies Transition,
});

const pendingUpdates = (client: PoolClient) =>
  xactUpdates(client, partitionName('deliveries', monthOf(createdAt)));

/** The queue as (delivery id → leased), and the deliveries that are not final, for comparison. */
async function queueAndOpen(): Promise<{ queued: string[]; open: string[] }> {
  const q = await db.pool.query<{ id: string }>(
    `SELECT delivery_id || ':' || (lease_owner IS NOT NULL) AS id FROM delivery_queue ORDER BY 1`,
  );
  const d = await db.pool.query<{ id: string }>(
    `SELECT id || ':' || (state = 'sending') AS id FROM deliveries
      WHERE state IN ('pending', 'retrying', 'sending') ORDER BY 1`,
  );
  return { queued: q.rows.map((r) => r.id), open: d.rows.map((r) => r.id) };
}

async function assertQueueHoldsOpenDeliveries(): Promise<void> {
  const { queued, open } = await queueAndOpen();
  assert.deepEqual(queued, open);
}

test('a claim and its outcome update deliveries without touching an index: both are heap-only', async () => {
  await pending(5);
  const client = await db.pool.connect();
  try {
    await client.query('BEGIN');
    let before = await pendingUpdates(client);
    const claimed = await claimDeliveries(client, { limit: 10, bulkLimit: 10 }, owner, 60);
    assert.equal(claimed.length, 5);
    assert.deepEqual(updatesSince(await pendingUpdates(client), before), { updated: 5, hot: 5 });
    await client.query('COMMIT');
    await assertQueueHoldsOpenDeliveries();

    await client.query('BEGIN');
    before = await pendingUpdates(client);
    const written = await writeOutcomes(
      client,
      owner,
      claimed.map((d) => toState(d, 'sent')),
    );
    assert.equal(written.size, 5);
    assert.deepEqual(updatesSince(await pendingUpdates(client), before), { updated: 5, hot: 5 });
    await client.query('COMMIT');
  } finally {
    client.release();
  }
  assert.deepEqual(await queueAndOpen(), { queued: [], open: [] });
});

test('a retry stays queued, unleased, at its new time; a dead letter leaves the queue until replayed', async () => {
  const id = await pending(2);
  const [retry, dead] = await claimDeliveries(db.pool, { limit: 10, bulkLimit: 10 }, owner, 60);
  assert.ok(retry !== undefined && dead !== undefined);
  await withTransaction(db.pool, (client) =>
    writeOutcomes(client, owner, [toState(retry, 'retrying', 60_000), toState(dead, 'dead')]),
  );
  await assertQueueHoldsOpenDeliveries();
  const q = await db.pool.query<{ queue_run_at: Date; run_at: Date; lease_owner: string | null }>(
    `SELECT q.run_at AS queue_run_at, d.run_at, q.lease_owner FROM delivery_queue q
       JOIN deliveries d ON d.id = q.delivery_id WHERE q.delivery_id = $1`,
    [retry.id],
  );
  const [queued] = q.rows;
  assert.ok(queued !== undefined);
  assert.equal(queued.lease_owner, null);
  assert.equal(queued.queue_run_at.getTime(), queued.run_at.getTime());
  assert.ok(queued.run_at.getTime() > Date.now() + 50_000, 'due again after the backoff');
  const deadRow = await db.pool.query<{ dead_at: Date | null }>(
    'SELECT dead_at FROM deliveries WHERE id = $1',
    [dead.id],
  );
  assert.ok(deadRow.rows[0]?.dead_at instanceof Date);

  const replayed = await replayDeadLetters(db.pool, serviceId, { notificationId: id }, 10, new Date(0));
  assert.deepEqual(replayed, [dead.id]);
  await assertQueueHoldsOpenDeliveries();
  const again = await claimDeliveries(db.pool, { limit: 10, bulkLimit: 10 }, owner, 60);
  assert.deepEqual(
    again.map((d) => d.id),
    [dead.id],
    'the replayed delivery is claimable now, the retry not before its time',
  );
});

test('a cancel takes the waiting deliveries out of the queue and leaves the one in flight', async () => {
  const id = await pending(3);
  const [inFlight] = await claimDeliveries(db.pool, { limit: 1, bulkLimit: 1 }, owner, 60);
  assert.ok(inFlight !== undefined);
  const result = await withTransaction(db.pool, (client) =>
    cancelNotification(client, id, createdAt, new Date()),
  );
  assert.equal(result.deliveries, 2);
  await assertQueueHoldsOpenDeliveries();
  const { queued } = await queueAndOpen();
  assert.deepEqual(queued, [`${inFlight.id}:true`]);
});

test("claims, outcomes, replays, cancels and receipts write events with their notification's time; all are counted", async () => {
  await db.pool.query('TRUNCATE engagement_counts');
  const id = await pending(3);
  const [sent, dead, waiting] = await claimDeliveries(db.pool, { limit: 2, bulkLimit: 2 }, owner, 60);
  assert.ok(sent !== undefined && dead !== undefined && waiting === undefined);
  const base = toState(sent, 'sent');
  const accepted = {
    ...base,
    provider: 'mail',
    transition: { ...base.transition, providerMessageId: 'm-1' },
  };
  await withTransaction(db.pool, (client) => writeOutcomes(client, owner, [accepted, toState(dead, 'dead')]));
  assert.deepEqual(await replayDeadLetters(db.pool, serviceId, { notificationId: id }, 10, new Date(0)), [
    dead.id,
  ]);
  await withTransaction(db.pool, (client) => cancelNotification(client, id, createdAt, new Date()));
  const receipt = await applyStatusUpdates(db.pool, 'mail', [
    { providerMessageId: 'm-1', state: 'delivered', detail: null },
  ]);
  assert.equal(receipt.applied, 1);

  const events = await db.pool.query<{ state: string; carried: boolean }>(
    `SELECT e.state, e.notification_created_at = d.notification_created_at AS carried
       FROM delivery_events e JOIN deliveries d ON d.id = e.delivery_id ORDER BY e.created_at, e.state`,
  );
  assert.deepEqual([...new Set(events.rows.map((e) => e.state))].sort(), [
    'canceled',
    'dead',
    'delivered',
    'pending',
    'sending',
    'sent',
  ]);
  assert.deepEqual(
    events.rows.filter((e) => !e.carried),
    [],
  );
  // An event without the time (written before it was carried, or by an earlier version during an
  // upgrade) is counted too, through the lookup by id alone.
  await db.pool.query(
    `INSERT INTO delivery_events (delivery_id, notification_id, channel, lane, state, attempt)
     VALUES ($1, $2, 'webhook', 'transactional', 'delivered', 1)`,
    [dead.id, id],
  );
  const counted = await db.pool.query<{ line: string }>(
    `SELECT metric || ' ' || sum(count) AS line FROM engagement_counts WHERE service_id = $1 GROUP BY metric ORDER BY 1`,
    [serviceId],
  );
  assert.deepEqual(
    counted.rows.map((r) => r.line),
    ['delivered 2', 'failed 1', 'sent 1'],
  );
});
