// Session leases (docs/decisions/0011-session-leases.md) against the real database: a worker's
// deliveries are taken back once its database session ended (after a grace), not while it lives; a worker whose
// session was terminated registers a new owner, and its old owner's late outcomes are fenced.
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { waitFor } from '../../test/helpers/wait-for.js';
import { ensureService } from '../db/stores/api-key-store.js';
import { WorkerSession } from '../db/worker-session.js';
import { createLogger } from '../observability/logger.js';
import { DeliveryClaimer } from '../pipeline/delivery-claimer.js';
import { OutcomeRecorder } from '../pipeline/outcome-recorder.js';
import { rescueEndedSessions } from './lease-rescuer.js';

let db: TestDatabase;
let serviceId: number;
const logger = createLogger('silent');
const policy = { retry: { baseMs: 1000, maxMs: 60_000 }, circuitOpenMs: 30_000 };
const limits = { concurrency: 100, reservedShare: 0, batchSize: 100 };
const sessions: WorkerSession[] = [];

before(async () => {
  db = await createTestDatabase();
  serviceId = await ensureService(db.pool, 'shop');
});
after(async () => {
  await Promise.all(sessions.map((s) => s.stop()));
  await db.drop();
});
beforeEach(async () => {
  await db.pool.query('TRUNCATE notifications, deliveries, delivery_events, worker_sessions');
});

/** `count` due webhook deliveries. */
async function pending(count: number): Promise<void> {
  const id = `shop#${randomUUID()}`;
  const now = new Date();
  await db.pool.query(
    `INSERT INTO notifications (id, created_at, service_id, lane, category, channels, content, updated_at)
     VALUES ($1, $2, $3, 'transactional', 'general', '{webhook}', '{"default":{"title":"t"}}', $2)`,
    [id, now, serviceId],
  );
  await db.pool.query(
    `INSERT INTO deliveries (id, notification_id, notification_created_at, service_id, user_id, channel, target, lane, state, max_attempts, run_at)
     SELECT gen_random_uuid(), $1, $2, $3, 'u' || g, 'webhook', 'http://127.0.0.1:9/hook', 'transactional', 'pending', 5, now() - interval '1 minute'
       FROM generate_series(1, $4) AS g`,
    [id, now, serviceId, count],
  );
}

async function registered(): Promise<{ session: WorkerSession; owner: string }> {
  const session = new WorkerSession(db.url, logger);
  sessions.push(session);
  await session.start();
  const owner = session.owner;
  assert.ok(owner !== undefined, 'the session registered an owner');
  return { session, owner };
}

const rescue = (graceSeconds = 0) =>
  rescueEndedSessions({ pool: db.pool, policy, random: () => 0.5 }, 1000, graceSeconds);

/** Rescues until an ended session is found (PostgreSQL ends a closed session's backend soon after). */
const rescueEnded = () =>
  waitFor('an ended session', async () => {
    const r = await rescue();
    return r.ended > 0 ? r : undefined;
  });

async function states(): Promise<Record<string, number>> {
  const r = await db.pool.query<{ state: string; n: number }>(
    'SELECT state, count(*)::int AS n FROM deliveries GROUP BY state',
  );
  return Object.fromEntries(r.rows.map((x) => [x.state, x.n]));
}

async function sessionRows(): Promise<string[]> {
  const r = await db.pool.query<{ owner: string }>('SELECT owner FROM worker_sessions ORDER BY owner');
  return r.rows.map((x) => x.owner);
}

test('a live session keeps its leases; once it ends they are taken back and its row deleted', async () => {
  await pending(3);
  const { session, owner } = await registered();
  const { deliveries } = await new DeliveryClaimer(db.pool, owner, limits, 60).claim(10, 0);
  assert.equal(deliveries.length, 3);
  assert.deepEqual(await rescue(), { retried: 0, dead: 0, ended: 0 });
  assert.deepEqual(await states(), { sending: 3 });

  await session.stop();
  // Found ended, but taken back only once the grace has passed.
  await waitFor('the session to be found ended', async () => {
    assert.deepEqual(await rescue(60), { retried: 0, dead: 0, ended: 0 });
    const r = await db.pool.query('SELECT owner FROM worker_sessions WHERE ended_at IS NOT NULL');
    return r.rows.length === 1;
  });
  assert.deepEqual(await states(), { sending: 3 });
  assert.deepEqual(await rescue(), { retried: 3, dead: 0, ended: 1 });
  assert.deepEqual(await states(), { retrying: 3 });
  assert.deepEqual(await sessionRows(), []);
  const events = await db.pool.query<{ detail: string }>(
    "SELECT detail FROM delivery_events WHERE state = 'retrying'",
  );
  assert.deepEqual(
    events.rows.map((e) => e.detail),
    ['lease expired', 'lease expired', 'lease expired'],
  );
});

test('a terminated session registers a new owner; the old owner’s late outcome is fenced', async () => {
  await pending(1);
  const { session, owner } = await registered();
  const [claimed] = (await new DeliveryClaimer(db.pool, owner, limits, 60).claim(10, 0)).deliveries;
  assert.ok(claimed !== undefined);
  await db.pool.query('SELECT pg_terminate_backend(backend_pid) FROM worker_sessions WHERE owner = $1', [
    owner,
  ]);
  const renewed = await waitFor('a new owner', () => {
    const now = session.owner;
    return now !== undefined && now !== owner ? now : undefined;
  });
  // The process lives on and its call answers late: the rescuer took the delivery back first.
  assert.deepEqual(await rescueEnded(), { retried: 1, dead: 0, ended: 1 });
  const recorder = new OutcomeRecorder({ pool: db.pool, owner, logger, policy, random: () => 0.5 });
  const late = await recorder.record({
    delivery: claimed,
    result: { kind: 'retry', reason: 'HTTP 503' },
    provider: 'webhook',
    aborted: false,
  });
  assert.deepEqual(late, { kind: 'fenced' });
  const row = await db.pool.query<{ state: string; attempts: number; last_error: string }>(
    'SELECT state, attempts, last_error FROM deliveries WHERE id = $1',
    [claimed.id],
  );
  assert.deepEqual(row.rows[0], {
    state: 'retrying',
    attempts: 1,
    last_error: 'lease expired (worker stopped or hung)',
  });
  // Claims under the new owner are the live session's: not taken back.
  const again = await new DeliveryClaimer(db.pool, renewed, limits, 60).claim(10, 0);
  assert.equal(again.deliveries.length, 1);
  assert.deepEqual(await rescue(), { retried: 0, dead: 0, ended: 0 });
  assert.deepEqual(await sessionRows(), [renewed]);
});

test('several schedulers take each ended session’s deliveries back once', async () => {
  await pending(300);
  const workers = await Promise.all([registered(), registered(), registered()]);
  for (const w of workers)
    assert.equal(
      (await new DeliveryClaimer(db.pool, w.owner, limits, 60).claim(100, 0)).deliveries.length,
      100,
    );
  const live = await registered();
  await Promise.all(workers.map((w) => w.session.stop()));
  let retried = 0;
  await waitFor('every ended session taken back', async () => {
    const runs = await Promise.all(Array.from({ length: 4 }, () => rescue()));
    retried += runs.reduce((sum, r) => sum + r.retried, 0);
    return (await sessionRows()).length === 1;
  });
  assert.equal(retried, 300);
  assert.deepEqual(await states(), { retrying: 300 });
  const events = await db.pool.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM delivery_events WHERE state = 'retrying'",
  );
  assert.equal(events.rows[0]?.n, 300);
  assert.deepEqual(await sessionRows(), [live.owner]);
});
