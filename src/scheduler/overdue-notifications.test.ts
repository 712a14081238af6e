// The overdue-notifications job against the real database, with its clock two hours ahead of the
// rows it finds: a notification whose fan-out, delivery or lease has been due for over an hour is
// reported (gauge per lane, one warning line with a few ids and no user data); a finished one, a
// scheduled one whose time is still to come or came less than an hour ago, and deliveries put off
// on purpose (quiet hours, a retry's backoff) are not.
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { logLines } from '../../test/helpers/log-lines.js';
import { ensureService } from '../db/stores/api-key-store.js';
import { createLogger } from '../observability/logger.js';
import { createMetrics, type Metrics } from '../observability/metrics.js';
import { overdueNotifications } from './overdue-notifications.js';

let db: TestDatabase;
let serviceId: number;
const hour = 3_600_000;
/** When the rows were written; the job's clock is two hours later. */
const acceptedAt = new Date();
const clock = new Date(acceptedAt.getTime() + 2 * hour);
const at = (msFromClock: number) => new Date(clock.getTime() + msFromClock);

before(async () => {
  db = await createTestDatabase();
  serviceId = await ensureService(db.pool, 'shop');
});
after(() => db.drop());
beforeEach(async () => {
  await db.pool.query('TRUNCATE notifications, recipients, deliveries');
});

/** A notification for user `secret-user` (so the test can tell the log carries no user id). */
async function notification(lane: 'transactional' | 'bulk', createdAt = acceptedAt): Promise<string> {
  const id = `shop#${randomUUID()}`;
  await db.pool.query(
    `INSERT INTO notifications (id, created_at, service_id, lane, category, channels, content, updated_at)
     VALUES ($1, $2, $3, $4, 'general', '{webhook}', '{"default":{"title":"t"}}', $2)`,
    [id, createdAt, serviceId, lane],
  );
  return id;
}

async function recipient(id: string, state: 'pending' | 'fanned_out', sendAt: Date): Promise<void> {
  await db.pool.query(
    `INSERT INTO recipients (notification_id, notification_created_at, user_id, lane, state, send_at)
     SELECT id, created_at, 'secret-user', lane, $2, $3 FROM notifications WHERE id = $1`,
    [id, state, sendAt],
  );
}

async function delivery(
  id: string,
  state: 'pending' | 'retrying' | 'sending' | 'sent',
  runAt: Date,
  leaseExpiresAt: Date | null = null,
): Promise<void> {
  await db.pool.query(
    `INSERT INTO deliveries (id, notification_id, notification_created_at, service_id, user_id, channel, target,
                             lane, state, max_attempts, run_at, lease_owner, lease_expires_at)
     SELECT $2, id, created_at, service_id, 'secret-user', 'webhook', $3, lane, $4, 5, $5,
            CASE WHEN $6::timestamptz IS NULL THEN NULL ELSE gen_random_uuid() END, $6
       FROM notifications WHERE id = $1`,
    [id, randomUUID(), `https://${randomUUID()}.example/hook`, state, runAt, leaseExpiresAt],
  );
}

async function runJob(): Promise<{ metrics: Metrics; lines: Record<string, unknown>[] }> {
  const { sink, lines } = logLines();
  const metrics = createMetrics({ readPending: () => Promise.resolve([]) });
  const logger = createLogger('info', sink);
  await overdueNotifications({ pool: db.pool, now: () => clock, metrics, logger })();
  return { metrics, lines };
}

async function gauge(metrics: Metrics): Promise<Record<string, number>> {
  const { values } = await metrics.overdueNotifications.get();
  return Object.fromEntries(values.map((v) => [String(v.labels.lane), v.value]));
}

test('a notification whose fan-out, delivery or lease has been due for over an hour is reported', async () => {
  const neverFannedOut = await notification('bulk');
  await recipient(neverFannedOut, 'pending', acceptedAt);
  const neverClaimed = await notification('transactional');
  await recipient(neverClaimed, 'fanned_out', acceptedAt);
  await delivery(neverClaimed, 'sent', acceptedAt);
  await delivery(neverClaimed, 'pending', acceptedAt);
  const leaseNotRescued = await notification('transactional');
  await recipient(leaseNotRescued, 'fanned_out', acceptedAt);
  await delivery(leaseNotRescued, 'sending', acceptedAt, new Date(acceptedAt.getTime() + 60_000));

  const { metrics, lines } = await runJob();

  assert.deepEqual(await gauge(metrics), { transactional: 2, bulk: 1 });
  assert.equal(lines.length, 1);
  const [line] = lines;
  assert.equal(line?.['level'], 40, 'a warning');
  assert.equal(line['msg'], 'notifications accepted over an hour ago are not final');
  assert.deepEqual(line['overdue'], { transactional: 2, bulk: 1 });
  const sample = line['sample'] as { id: string; stage: string }[];
  assert.deepEqual(
    new Map(sample.map((s) => [s.id, s.stage])),
    new Map([
      [neverFannedOut, 'fan_out'],
      [neverClaimed, 'delivery'],
      [leaseNotRescued, 'lease'],
    ]),
  );
  assert.ok(!JSON.stringify(line).includes('secret-user'), 'no user id in the log');
  assert.ok(!JSON.stringify(line).includes('.example'), 'no target in the log');
});

test('finished, still scheduled and deliberately deferred notifications are not overdue', async () => {
  // Every part final.
  const finished = await notification('transactional');
  await recipient(finished, 'fanned_out', acceptedAt);
  await delivery(finished, 'sent', acceptedAt);
  // Scheduled for tomorrow.
  const scheduled = await notification('bulk');
  await recipient(scheduled, 'pending', at(24 * hour));
  // Scheduled for half an hour ago: due, but not for an hour yet.
  const justDue = await notification('bulk');
  await recipient(justDue, 'pending', at(-hour / 2));
  // Fanned out, then held for the user's quiet hours until three hours from now.
  const quietHours = await notification('bulk');
  await recipient(quietHours, 'fanned_out', acceptedAt);
  await delivery(quietHours, 'pending', at(3 * hour));
  // Failed once, retrying in ten minutes.
  const retrying = await notification('transactional');
  await recipient(retrying, 'fanned_out', acceptedAt);
  await delivery(retrying, 'retrying', at(10 * 60_000));
  // Accepted twenty minutes ago (by the job's clock), not fanned out yet.
  const recent = await notification('transactional', at(-20 * 60_000));
  await recipient(recent, 'pending', at(-20 * 60_000));

  const { metrics, lines } = await runJob();

  assert.deepEqual(await gauge(metrics), { transactional: 0, bulk: 0 });
  assert.deepEqual(lines, [], 'nothing logged');
});

test('the count is per notification, not per row; the log names at most five', async () => {
  for (let i = 0; i < 7; i++) {
    const id = await notification('bulk');
    await recipient(id, 'fanned_out', acceptedAt);
    await delivery(id, 'pending', acceptedAt);
    await delivery(id, 'retrying', acceptedAt);
  }
  const { metrics, lines } = await runJob();
  assert.deepEqual(await gauge(metrics), { transactional: 0, bulk: 7 });
  assert.equal((lines[0]?.['sample'] as unknown[]).length, 5);
});

test('a topic send whose subscribers are still not expanded an hour after its send time is overdue', async () => {
  await db.pool.query('TRUNCATE topic_sends');
  const topic = await db.pool.query<{ id: string }>(
    `INSERT INTO topics (service_id, key) VALUES ($1, 'overdue-news') RETURNING id`,
    [serviceId],
  );
  const stuck = await notification('bulk');
  const recent = await notification('bulk', new Date(clock.getTime() - 60_000));
  for (const [id, createdAt] of [
    [stuck, acceptedAt],
    [recent, new Date(clock.getTime() - 60_000)],
  ] as const)
    await db.pool.query(
      `INSERT INTO topic_sends (notification_id, notification_created_at, topic_id, lane, send_at)
       VALUES ($1, $2, $3, 'bulk', $2)`,
      [id, createdAt, topic.rows[0]?.id],
    );
  const { metrics, lines } = await runJob();
  assert.deepEqual(await gauge(metrics), { transactional: 0, bulk: 1 });
  assert.deepEqual(lines[0]?.['sample'], [{ id: stuck, stage: 'fan_out' }]);
});
