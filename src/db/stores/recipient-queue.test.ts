// The recipient queue (migration 0031) against the real database: marking a claimed recipient
// fanned out changes no indexed column of recipients (a heap-only update), and the queue holds
// exactly the pending recipients, with their budget, through fan-out, cancel, a workflow's
// release and a budget's deletion.
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '../../../test/helpers/test-database.js';
import { updatesSince, xactUpdates } from '../../../test/helpers/hot-updates.js';
import { withTransaction, type PoolClient } from '../pools.js';
import { monthOf, partitionName } from '../partitions.js';
import { ensureService } from './api-key-store.js';
import { claimDueRecipients, writeFanOut } from './fan-out-store.js';
import { cancelNotification } from './notification-store.js';
import {
  claimBudgetRecipients,
  deleteRateBudget,
  findRateBudgetId,
  lockOpenBudgets,
  putRateBudget,
} from './rate-budget-store.js';
import { releaseRecipient } from './workflow-store.js';

let db: TestDatabase;
let serviceId: number;
const createdAt = new Date();

before(async () => {
  db = await createTestDatabase();
  serviceId = await ensureService(db.pool, 'shop');
});
after(() => db.drop());
beforeEach(async () => {
  await db.pool.query('TRUNCATE notifications, recipients, rate_budgets');
});

/** A bulk notification with `count` recipients in `state`, due now, paced by `budgetId` if given. */
async function accepted(count: number, state = 'pending', budgetId: string | null = null): Promise<string> {
  const id = `shop#${randomUUID()}`;
  await db.pool.query(
    `INSERT INTO notifications (id, created_at, service_id, lane, category, channels, content, updated_at)
     VALUES ($1, $2, $3, 'bulk', 'general', '{in_app}', '{"default":{"title":"t"}}', $2)`,
    [id, createdAt, serviceId],
  );
  await db.pool.query(
    `INSERT INTO recipients (notification_id, notification_created_at, user_id, lane, state, send_at, budget_id)
     SELECT $1, $2, 'u' || g, 'bulk', $4, now() - interval '1 second', $5
       FROM generate_series(1, $3) AS g`,
    [id, createdAt, count, state, budgetId],
  );
  return id;
}

/** The queue as `notification:user:budget`, and the pending recipients the same way. */
async function queueAndPending(): Promise<{ queued: string[]; pending: string[] }> {
  const key = "notification_id || ':' || user_id || ':' || coalesce(budget_id::text, '-')";
  const q = await db.pool.query<{ k: string }>(`SELECT ${key} AS k FROM recipient_queue ORDER BY 1`);
  const r = await db.pool.query<{ k: string }>(
    `SELECT ${key} AS k FROM recipients WHERE state = 'pending' ORDER BY 1`,
  );
  return { queued: q.rows.map((x) => x.k), pending: r.rows.map((x) => x.k) };
}

async function assertQueueHoldsPending(): Promise<void> {
  const { queued, pending } = await queueAndPending();
  assert.deepEqual(queued, pending);
}

const recipientUpdates = (client: PoolClient) =>
  xactUpdates(client, partitionName('recipients', monthOf(createdAt)));

/** A rate budget of the service, created now; its id as the recipients' budget_id takes it. */
async function budget(name: string): Promise<string> {
  await withTransaction(db.pool, (client) => putRateBudget(client, serviceId, name, 10));
  const id = await findRateBudgetId(db.pool, serviceId, name);
  assert.ok(id !== undefined);
  return String(id);
}

test('fanning out a recipient is a heap-only update and takes it out of the queue', async () => {
  await accepted(40);
  await assertQueueHoldsPending();
  const client = await db.pool.connect();
  try {
    await client.query('BEGIN');
    const claimed = await claimDueRecipients(client, 'bulk', 100);
    assert.equal(claimed.length, 40);
    const before = await recipientUpdates(client);
    await writeFanOut(
      client,
      { deliveries: [], fannedOut: claimed.map((recipient) => ({ recipient, skipped: [] })), maxAttempts: 3 },
      Date.now(),
    );
    assert.deepEqual(updatesSince(await recipientUpdates(client), before), { updated: 40, hot: 40 });
    await client.query('COMMIT');
  } finally {
    client.release();
  }
  assert.deepEqual(await queueAndPending(), { queued: [], pending: [] });
});

test('a claim skips recipients another claim holds, and one canceled since the queue was read', async () => {
  const id = await accepted(3);
  const holder = await db.pool.connect();
  try {
    await holder.query('BEGIN');
    const held = await claimDueRecipients(holder, 'bulk', 1);
    assert.equal(held.length, 1);
    const others = await withTransaction(db.pool, (client) => claimDueRecipients(client, 'bulk', 10));
    assert.deepEqual(
      others.map((r) => r.userId).sort(),
      ['u1', 'u2', 'u3'].filter((u) => u !== held[0]?.userId),
    );
    await holder.query('ROLLBACK');
  } finally {
    holder.release();
  }
  // A canceled recipient's queue row gone astray (written by hand here) is never claimed.
  await db.pool.query(`UPDATE recipients SET state = 'canceled' WHERE user_id = 'u1'`);
  const claimed = await withTransaction(db.pool, (client) => claimDueRecipients(client, 'bulk', 10));
  assert.deepEqual(claimed.map((r) => r.userId).sort(), ['u2', 'u3']);
  await db.pool.query(`UPDATE recipients SET state = 'pending' WHERE user_id = 'u1'`);
  const result = await withTransaction(db.pool, (client) =>
    cancelNotification(client, id, createdAt, new Date()),
  );
  assert.equal(result.recipients, 3);
  assert.deepEqual(await queueAndPending(), { queued: [], pending: [] });
});

test("a workflow's release queues a held recipient, without the budget deleted while it was held", async () => {
  const budgetId = await budget('promo');
  const id = await accepted(2, 'held', budgetId);
  assert.deepEqual((await queueAndPending()).queued, [], 'held recipients wait outside the queue');
  const run = { notificationId: id, notificationCreatedAt: createdAt };
  await withTransaction(db.pool, (client) => releaseRecipient(client, { ...run, userId: 'u1' }, ['in_app']));
  assert.deepEqual((await queueAndPending()).queued, [`${id}:u1:${budgetId}`]);
  const paced = await withTransaction(db.pool, (client) =>
    claimBudgetRecipients(client, Number(budgetId), 10),
  );
  assert.deepEqual(
    paced.map((r) => [r.userId, r.channels]),
    [['u1', ['in_app']]],
  );

  await withTransaction(db.pool, (client) => deleteRateBudget(client, serviceId, 'promo'));
  assert.deepEqual((await queueAndPending()).queued, [`${id}:u1:-`], 'a deleted budget no longer paces');
  await withTransaction(db.pool, (client) => releaseRecipient(client, { ...run, userId: 'u2' }, null));
  assert.deepEqual((await queueAndPending()).queued, [`${id}:u1:-`, `${id}:u2:-`]);
  const unpaced = await withTransaction(db.pool, (client) => claimDueRecipients(client, 'bulk', 10));
  assert.deepEqual(unpaced.map((r) => r.userId).sort(), ['u1', 'u2']);
});

test('a recipient accepted naming a budget deleted meanwhile is queued unpaced, not stuck behind it', async () => {
  const budgetId = await budget('gone');
  await withTransaction(db.pool, (client) => deleteRateBudget(client, serviceId, 'gone'));
  // The accept resolved the budget before its deletion and commits after it.
  const id = await accepted(2, 'pending', budgetId);
  assert.deepEqual((await queueAndPending()).queued, [`${id}:u1:-`, `${id}:u2:-`]);
  const claimed = await withTransaction(db.pool, (client) => claimDueRecipients(client, 'bulk', 10));
  assert.deepEqual(claimed.map((r) => r.userId).sort(), ['u1', 'u2']);
});

test("an accept queuing a budget's recipients does not wait for a fan-out taking from that budget", async () => {
  const budgetId = await budget('promo');
  await accepted(1, 'pending', budgetId);
  const fanOut = await db.pool.connect();
  try {
    await fanOut.query('BEGIN');
    const { open } = await lockOpenBudgets(fanOut);
    assert.deepEqual(
      open.map((b) => b.id),
      [Number(budgetId)],
    );
    // With the budget locked by the fan-out, an accept for it commits at once.
    const accepting = accepted(3, 'pending', budgetId);
    const waited = await Promise.race([
      accepting.then(() => false),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 3000)),
    ]);
    assert.equal(waited, false, 'the accept waited for the fan-out');
    const id = await accepting;
    assert.equal((await queueAndPending()).queued.filter((k) => k.startsWith(id)).length, 3);
    await fanOut.query('ROLLBACK');
  } finally {
    fanOut.release();
  }
});
