// Recurring schedules through the API and the scheduler's job, on an injected clock: an
// occurrence fires at the local time of each recipient's zone (times checked against
// cron-parser and against the zones' known offsets), DST gaps and overlaps fire once, missed
// runs follow the grace policy, pause/resume/delete work, and racing schedulers never send an
// occurrence twice. Invalid input is refused with a problem and stores nothing.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../../test/helpers/test-herald.js';
import { createApiKey, ensureService } from '../db/stores/api-key-store.js';
import { withTransaction } from '../db/pools.js';
import { advanceTopicSend, claimTopicPage } from '../db/stores/topic-store.js';
import { permissions } from '../domain/permissions.js';
import { nextOccurrence } from '../domain/schedule.js';
import { createLogger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import { fireDueRuns } from './recurring-schedules.js';

let db: TestDatabase;
let h: TestHerald;
let otherKey: string;
let clock = new Date('2026-05-31T12:00:00Z');
const metrics = createMetrics({ readPending: () => Promise.resolve([]) });
const logger = createLogger('silent');
const hour = 3_600_000;

before(async () => {
  db = await createTestDatabase();
  h = await startTestHerald(db, { roles: ['api'], now: () => clock });
  otherKey = await createApiKey(db.pool, await ensureService(db.pool, 'other'), permissions);
  await db.pool.query(
    `INSERT INTO users (id, time_zone) VALUES ('seoul-1', 'Asia/Seoul'), ('ny-1', 'America/New_York'),
       ('ny-2', 'America/New_York'), ('utc-1', 'UTC')`,
  );
});

after(async () => {
  await h.stop();
  await db.drop();
});

beforeEach(async () => {
  await db.pool.query('DELETE FROM schedules');
});

const fire = (at: Date, graceMs = hour) =>
  withTransaction(db.pool, (client) => fireDueRuns(client, { now: () => at, graceMs, metrics, logger }));

/** Notifications a schedule wrote, oldest first, with their recipients. */
async function sent(): Promise<{ id: string; users: string[] }[]> {
  const result = await db.pool.query<{ id: string; users: string[] | null }>(
    `SELECT n.id, array_agg(r.user_id ORDER BY r.user_id) FILTER (WHERE r.user_id IS NOT NULL) AS users
       FROM idempotency_keys k JOIN notifications n ON n.id = k.notification_id
       LEFT JOIN recipients r ON r.notification_id = n.id
      WHERE k.key LIKE 'schedule:%' GROUP BY n.id, n.created_at ORDER BY n.created_at, n.id`,
  );
  return result.rows.map((r) => ({ id: r.id, users: r.users ?? [] }));
}

async function create(body: Record<string, unknown>, key?: string) {
  return h.call(
    'POST',
    '/v1/schedules',
    {
      notification: {
        recipients: ['seoul-1', 'ny-1', 'ny-2'],
        channels: ['in_app'],
        content: { default: { title: 'Good morning' } },
      },
      ...body,
    },
    key === undefined ? {} : { key },
  );
}

describe('schedules', () => {
  test("every day at 09:00 fires at 09:00 in each recipient's own zone", async () => {
    clock = new Date('2026-05-31T12:00:00Z');
    await db.pool.query('DELETE FROM idempotency_keys');
    const created = await create({ cron: '0 9 * * *' });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    // 09:00 KST (+09:00) and 09:00 EDT (−04:00), as the library computes them.
    const runs = Object.fromEntries(
      created.body.runs.map((r: { time_zone: string; next_run_at: string }) => [r.time_zone, r.next_run_at]),
    );
    assert.deepEqual(runs, {
      'America/New_York': '2026-05-31T13:00:00.000Z',
      'Asia/Seoul': '2026-06-01T00:00:00.000Z',
    });
    assert.equal(runs['Asia/Seoul'], nextOccurrence('0 9 * * *', 'Asia/Seoul', clock).toISOString());

    assert.deepEqual(await fire(new Date('2026-05-31T12:59:59Z')), { claimed: 0, sent: 0 });
    assert.deepEqual(await fire(new Date('2026-05-31T13:00:00Z')), { claimed: 1, sent: 1 });
    assert.deepEqual(
      (await sent()).map((n) => n.users),
      [['ny-1', 'ny-2']],
    );
    assert.deepEqual(await fire(new Date('2026-06-01T00:00:05Z')), { claimed: 1, sent: 1 });
    assert.deepEqual(
      (await sent()).map((n) => n.users),
      [['ny-1', 'ny-2'], ['seoul-1']],
    );
    const read = await h.call('GET', `/v1/schedules/${created.body.id as string}`);
    const next = Object.fromEntries(
      read.body.runs.map((r: { time_zone: string; next_run_at: string }) => [r.time_zone, r.next_run_at]),
    );
    assert.deepEqual(next, {
      'America/New_York': '2026-06-01T13:00:00.000Z',
      'Asia/Seoul': '2026-06-02T00:00:00.000Z',
    });
  });

  test('two schedulers racing, and a run read stale, send an occurrence once', async () => {
    clock = new Date('2026-06-10T00:00:00Z');
    await db.pool.query('DELETE FROM idempotency_keys');
    const created = await create({ cron: '0 * * * *', time_zone: 'UTC' });
    assert.equal(created.status, 201);
    const due = new Date('2026-06-10T01:00:00Z');
    // Scheduler A holds the claim while scheduler B runs: B finds nothing to claim.
    let releaseA: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (releaseA = resolve));
    const a = withTransaction(db.pool, async (client) => {
      const result = await fireDueRuns(client, { now: () => due, graceMs: hour, metrics, logger });
      await held;
      return result;
    });
    await new Promise((r) => setTimeout(r, 100));
    const b = await fire(due);
    releaseA();
    assert.deepEqual(
      [await a, b],
      [
        { claimed: 1, sent: 1 },
        { claimed: 0, sent: 0 },
      ],
    );
    // A scheduler that read the run before A moved it (set back here) replays the key: nothing new.
    await db.pool.query('UPDATE schedule_runs SET next_run_at = $1', [due]);
    assert.deepEqual(await fire(due), { claimed: 1, sent: 0 });
    assert.equal((await sent()).length, 1);
    assert.equal((await sent())[0]?.users.length, 3, 'a fixed zone sends to every recipient at once');
  });

  test('DST: the skipped 02:30 fires once an hour later; the repeated 01:30 fires once', async () => {
    await db.pool.query('DELETE FROM idempotency_keys');
    clock = new Date('2026-03-07T12:00:00Z');
    const gap = await create({ cron: '30 2 * * *', time_zone: 'America/New_York' });
    // 2026-03-08 02:30 does not exist in New York (02:00 → 03:00): 03:30 EDT = 07:30Z.
    assert.equal(gap.body.runs[0].next_run_at, '2026-03-08T07:30:00.000Z');
    assert.deepEqual(await fire(new Date('2026-03-08T07:30:00Z')), { claimed: 1, sent: 1 });
    const afterGap = await h.call('GET', `/v1/schedules/${gap.body.id as string}`);
    assert.equal(afterGap.body.runs[0].next_run_at, '2026-03-09T06:30:00.000Z', '02:30 EDT the day after');

    await h.call('DELETE', `/v1/schedules/${gap.body.id as string}`);
    clock = new Date('2026-10-31T12:00:00Z');
    const overlap = await create({ cron: '30 1 * * *', time_zone: 'America/New_York' });
    // 2026-11-01 01:30 happens twice (EDT then EST): the first, 05:30Z, fires; 06:30Z does not.
    assert.equal(overlap.body.runs[0].next_run_at, '2026-11-01T05:30:00.000Z');
    assert.deepEqual(await fire(new Date('2026-11-01T05:30:00Z')), { claimed: 1, sent: 1 });
    assert.deepEqual(await fire(new Date('2026-11-01T06:30:00Z')), { claimed: 0, sent: 0 });
    const afterOverlap = await h.call('GET', `/v1/schedules/${overlap.body.id as string}`);
    assert.equal(afterOverlap.body.runs[0].next_run_at, '2026-11-02T06:30:00.000Z');
    assert.equal((await sent()).length, 2);
  });

  test('missed runs: only the latest within the grace period is sent; older ones are skipped', async () => {
    await db.pool.query('DELETE FROM idempotency_keys');
    clock = new Date('2026-07-01T00:00:00Z');
    const every10 = await create({ cron: '*/10 * * * *', time_zone: 'UTC' });
    // Down from 00:10 until 03:05: of 18 missed occurrences only 03:00 is sent.
    assert.deepEqual(await fire(new Date('2026-07-01T03:05:00Z')), { claimed: 1, sent: 1 });
    const run = (await h.call('GET', `/v1/schedules/${every10.body.id as string}`)).body.runs[0];
    assert.equal(run.last_run_at, '2026-07-01T03:00:00.000Z');
    assert.equal(run.next_run_at, '2026-07-01T03:10:00.000Z');
    assert.equal((await sent()).length, 1);
    await h.call('DELETE', `/v1/schedules/${every10.body.id as string}`);

    const daily = await create({ cron: '0 6 * * *', time_zone: 'UTC' });
    // Down over 06:00 and back at 08:00, two hours later: beyond the hour's grace, none is sent.
    assert.deepEqual(await fire(new Date('2026-07-01T08:00:00Z')), { claimed: 1, sent: 0 });
    const skipped = (await h.call('GET', `/v1/schedules/${daily.body.id as string}`)).body.runs[0];
    assert.equal(skipped.next_run_at, '2026-07-02T06:00:00.000Z');
    assert.equal((await sent()).length, 1);
  });

  test('pause, resume (from the next occurrence), list and cancel', async () => {
    clock = new Date('2026-08-01T00:00:00Z');
    const created = await create({ cron: '0 12 * * *', time_zone: 'UTC' });
    const id = created.body.id as string;
    const paused = await h.call('POST', `/v1/schedules/${id}/pause`);
    assert.equal(paused.body.state, 'paused');
    assert.deepEqual(await fire(new Date('2026-08-01T12:00:00Z')), { claimed: 0, sent: 0 });
    clock = new Date('2026-08-03T09:00:00Z');
    const resumed = await h.call('POST', `/v1/schedules/${id}/resume`);
    assert.equal(resumed.body.state, 'active');
    assert.equal(resumed.body.runs[0].next_run_at, '2026-08-03T12:00:00.000Z', 'no catch-up of paused days');
    const list = await h.call('GET', '/v1/schedules');
    assert.deepEqual(
      list.body.schedules.map((s: { id: string }) => s.id),
      [id],
    );
    assert.equal((await h.call('DELETE', `/v1/schedules/${id}`)).status, 204);
    assert.equal((await h.call('GET', `/v1/schedules/${id}`)).status, 404);
    assert.equal((await db.pool.query('SELECT 1 FROM schedule_runs')).rowCount, 0);
  });

  test("a topic's schedule sends each zone's occurrence to that zone's subscribers only", async () => {
    await db.pool.query('DELETE FROM idempotency_keys');
    await h.call('POST', '/v1/topics', { key: 'digest' });
    await h.call('POST', '/v1/topics/digest/subscribers', { user_ids: ['seoul-1', 'ny-1', 'ny-2'] });
    clock = new Date('2026-05-31T12:00:00Z');
    const created = await create({
      cron: '0 9 * * *',
      notification: { topic: 'digest', channels: ['in_app'], content: { default: { title: 'Digest' } } },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.runs.length, 2);
    assert.deepEqual(await fire(new Date('2026-05-31T13:00:00Z')), { claimed: 1, sent: 1 });
    assert.equal((await sent()).length, 1);
    // The fan-out's page of the topic send holds New York's subscribers only.
    const page = await withTransaction(db.pool, async (c) => {
      const claimed = await claimTopicPage(c, 100);
      if (claimed !== undefined) await advanceTopicSend(c, claimed, 100, claimed.userIds.length);
      return claimed;
    });
    assert.deepEqual(page?.userIds, ['ny-1', 'ny-2']);
  });
});

describe('refused', () => {
  test('an invalid cron or time zone is a cron_invalid problem and stores nothing', async () => {
    for (const body of [
      { cron: '61 * * * *' },
      { cron: '0 9 * *' },
      { cron: '0 0 9 * * *' },
      { cron: '@daily x y z w' },
      { cron: 'H 9 * * *' },
      { cron: '0 9 * * *', time_zone: 'Mars/Olympus' },
    ]) {
      const res = await create(body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.body.code, 'cron_invalid', JSON.stringify(res.body));
    }
    assert.equal((await db.pool.query('SELECT 1 FROM schedules')).rowCount, 0);
    const thu = await create({ cron: '0 9 * * THU' });
    assert.equal(thu.status, 201, 'day names are not mistaken for H');
  });

  test("another service cannot read, pause, resume or delete a schedule, nor schedule to a service's topic: 404", async () => {
    clock = new Date('2026-08-01T00:00:00Z');
    const id = (await create({ cron: '0 9 * * *' })).body.id as string;
    for (const [method, path] of [
      ['GET', `/v1/schedules/${id}`],
      ['POST', `/v1/schedules/${id}/pause`],
      ['POST', `/v1/schedules/${id}/resume`],
      ['DELETE', `/v1/schedules/${id}`],
    ] as const) {
      const res = await h.call(method, path, undefined, { key: otherKey });
      assert.equal(res.status, 404, `${method} ${path}`);
    }
    assert.deepEqual((await h.call('GET', '/v1/schedules', undefined, { key: otherKey })).body.schedules, []);
    assert.equal((await h.call('GET', `/v1/schedules/${id}`)).body.state, 'active');
    await h.call('POST', '/v1/topics', { key: 'mine' });
    const foreign = await create(
      {
        cron: '0 9 * * *',
        notification: { topic: 'mine', channels: ['in_app'], content: { default: { title: 'x' } } },
      },
      otherKey,
    );
    assert.equal(foreign.status, 404);
    assert.equal(foreign.body.code, 'topic_not_found');
    assert.equal((await db.pool.query('SELECT 1 FROM schedules')).rowCount, 1);
  });
});
