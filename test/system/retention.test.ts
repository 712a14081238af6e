// Retention end to end (issue #7, docs/retention.md): with a controllable clock, five-month-old
// data moves to the archive and leaves the service store, three-week-old data sent through the
// API and the worker stays, a 13-month-old archive month is dropped, a month with a pending
// delivery waits, the support lookup answers the same before and after, and `herald retention`
// killed mid-copy and run again leaves every row exactly once in the archive.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { startTestHerald } from '../helpers/test-herald.js';
import { spawnHerald } from '../helpers/spawn-herald.js';
import { waitFor } from '../helpers/wait-for.js';
import { rowsAsJson, seedHistory } from '../helpers/history-data.js';
import type { Pool } from '../../src/db/pools.js';
import {
  addMonths,
  ensureMonthPartitions,
  listPartitions,
  monthOf,
  monthStartDate,
  partitionName,
} from '../../src/db/partitions.js';
import { ensureService } from '../../src/db/stores/api-key-store.js';
import { lookupUserHistory } from '../../src/db/stores/support-store.js';
import { archiveDatabaseUrl, archivedTables, openArchive } from '../../src/archive/archive-store.js';
import { lifecycleLockKey, runLifecycle } from '../../src/archive/lifecycle.js';
import type { LifecycleDeps } from '../../src/archive/lifecycle-deps.js';
import { monthLabel, type LifecycleAction } from '../../src/archive/lifecycle-report.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createLogger } from '../../src/observability/logger.js';

const dayMs = 86_400_000;
const logger = createLogger('silent');
const now = new Date();
const current = monthOf(now);
/** The 10th of the month `back` months before now. */
const at = (back: number) => new Date(monthStartDate(addMonths(current, -back)).getTime() + 9 * dayMs);
const start = (back: number) => monthStartDate(addMonths(current, -back));
const label = (back: number) => monthLabel(addMonths(current, -back));
const settings = {
  serviceRetentionDays: 90,
  archiveRetentionMonths: 12,
  batchRows: 7,
  idempotencyKeyRetentionDays: 30,
};

let db: TestDatabase;
let archive: Pool;
before(async () => {
  db = await createTestDatabase();
  archive = await openArchive({
    url: archiveDatabaseUrl(db.url, undefined),
    serviceUrl: db.url,
    poolSize: 4,
    logger,
  });
});
after(async () => {
  await archive.end();
  await db.drop();
});

function deps(extra: Partial<LifecycleDeps> = {}): LifecycleDeps {
  return { pool: db.pool, archivePool: archive, now: () => now, logger, settings, ...extra };
}

/** Each table's rows whose partition key lies in [from, to), as sorted JSON. */
async function monthRows(pool: Pool, from: Date, to: Date): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const { table, partitionKey } of archivedTables)
    out[table] = await rowsAsJson(
      pool,
      `(SELECT * FROM ${table} WHERE ${partitionKey} >= $1 AND ${partitionKey} < $2)`,
      [from, to],
    );
  return out;
}

async function partitionNames(pool: Pool): Promise<string[]> {
  return (await listPartitions(pool, [...archivedTables.map((t) => t.table), 'inbox_events'])).map(
    (p) => p.name,
  );
}

/** What a run did or would do, comparable between a dry run and a real one. */
function plan(actions: LifecycleAction[]): string[] {
  return actions
    .flatMap((a) => {
      if (a.action === 'copy') return [`copy ${a.table} ${a.month} ${String(a.rows)}`];
      if (a.action === 'drop') return [`drop ${a.store} ${a.table} ${a.month} ${String(a.rows)}`];
      if (a.action === 'skip') return [`skip ${a.table} ${a.month} ${a.reason}`];
      return [];
    })
    .sort();
}

test('months past retention move to the archive; recent ones stay; expired archive months go', async () => {
  const serviceId = await ensureService(db.pool, 'shop');
  // Five months ago: moves. Six months ago, with a delivery still pending: waits.
  await seedHistory(db.pool, { at: at(5), users: ['ann', 'bob', 'cid'], perUser: 6, serviceId });
  await seedHistory(db.pool, { at: at(6), users: ['ann'], perUser: 3, serviceId });
  // Three weeks ago: through the api and the worker.
  const h = await startTestHerald(db, {
    roles: ['api', 'worker'],
    now: () => new Date(Date.now() - 21 * dayMs),
  });
  try {
    const sent = await h.call('POST', '/v1/notifications', {
      recipients: ['ann', 'bob'],
      channels: ['in_app'],
      content: { default: { title: 'Three weeks ago' } },
    });
    assert.equal(sent.status, 202);
    await waitFor('the recent notification delivered', async () => {
      const r = await db.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM deliveries WHERE state = 'delivered' AND notification_created_at > $1`,
        [new Date(now.getTime() - 60 * dayMs)],
      );
      return r.rows[0]?.n === 2;
    });
  } finally {
    await h.stop();
  }
  // Set after the worker stopped, which would otherwise try to send it; queued, as a replay does.
  await db.pool.query(
    `WITH reopened AS (
       UPDATE deliveries SET state = 'pending' WHERE id = (
         SELECT id FROM deliveries WHERE notification_created_at >= $1 AND notification_created_at < $2
            AND channel = 'webhook' LIMIT 1)
       RETURNING id, notification_created_at, user_id, lane, run_at
     )
     INSERT INTO delivery_queue (delivery_id, notification_created_at, user_id, lane, run_at)
     SELECT id, notification_created_at, user_id, lane, run_at FROM reopened`,
    [start(6), start(5)],
  );
  // The archive already holds months 13 (past archive retention) and 12 months back, which an
  // earlier run moved: the service store no longer has them.
  for (const p of await listPartitions(
    db.pool,
    archivedTables.map((t) => t.table),
  ))
    if (monthStartDate(p.month) <= start(12)) await db.pool.query(`DROP TABLE ${p.name}`);
  await ensureMonthPartitions(
    archive,
    archivedTables.flatMap(({ table }) => [13, 12].map((b) => ({ table, month: addMonths(current, -b) }))),
  );
  await seedHistory(archive, { at: at(13), users: ['ann'], perUser: 2, serviceId });
  await seedHistory(archive, { at: at(12), users: ['ann'], perUser: 2, serviceId });
  await archive.query(
    `INSERT INTO archive_progress (table_name, month, rows_copied, verified_at)
     SELECT t, m, 0, now() FROM unnest($1::text[]) t, unnest($2::date[]) m`,
    [archivedTables.map((t) => t.table), [start(13), start(12)]],
  );

  const fiveMonths = await monthRows(db.pool, start(5), start(4));
  const sixMonths = await monthRows(db.pool, start(6), start(5));
  const recentFrom = new Date(now.getTime() - 60 * dayMs);
  const recent = await monthRows(db.pool, recentFrom, new Date(now.getTime() + 400 * dayMs));
  assert.ok((recent['inbox_items'] ?? []).length === 2, 'the recent notification is in the inboxes');
  const history = async (userId: string) =>
    lookupUserHistory(
      { service: db.pool, archive },
      { userId, from: start(7), to: new Date(now.getTime() + dayMs), limit: 100 },
    );
  const historyBefore = { ann: await history('ann'), bob: await history('bob') };
  assert.equal(historyBefore.ann.notifications.length, 6 + 3 + 1);

  // A dry run changes nothing and reports the plan.
  const snapshot = async () => ({
    service: await monthRows(db.pool, start(14), new Date(now.getTime() + 400 * dayMs)),
    archive: await monthRows(archive, start(14), new Date(now.getTime() + 400 * dayMs)),
    servicePartitions: await partitionNames(db.pool),
    archivePartitions: await partitionNames(archive),
    progress: await rowsAsJson(archive, 'archive_progress'),
  });
  const unchanged = await snapshot();
  const dry = await runLifecycle(deps({ dryRun: true }));
  assert.deepEqual(await snapshot(), unchanged);
  assert.equal(dry.dryRun, true);

  const metrics = createMetrics();
  const report = await runLifecycle(deps({ metrics }));
  assert.equal(report.ran, true);
  assert.deepEqual(plan(report.actions), plan(dry.actions), 'the dry run reported what the run did');

  const servicePartitions = new Set(await partitionNames(db.pool));
  const archivePartitions = new Set(await partitionNames(archive));
  for (const { table } of archivedTables) {
    // Five months ago: in the archive exactly, and gone from the service store.
    assert.ok(!servicePartitions.has(partitionName(table, addMonths(current, -5))), `${table} -5 dropped`);
    assert.deepEqual(
      (await monthRows(archive, start(5), start(4)))[table],
      fiveMonths[table],
      `${table}: the archive holds the five-month-old rows`,
    );
    // 13 months back: dropped from the archive; 12 months back: kept.
    assert.ok(!archivePartitions.has(partitionName(table, addMonths(current, -13))), `${table} -13 dropped`);
    assert.ok(archivePartitions.has(partitionName(table, addMonths(current, -12))), `${table} -12 kept`);
  }
  assert.ok((fiveMonths['delivery_events'] ?? []).length === 3 * 6 * 2 * 2);
  // Recent rows untouched.
  assert.deepEqual(await monthRows(db.pool, recentFrom, new Date(now.getTime() + 400 * dayMs)), recent);
  // The month with a pending delivery waits, and says why; its events (own month) moved.
  const skipped = report.actions.filter((a) => a.action === 'skip');
  assert.deepEqual(skipped.map((a) => `${a.table} ${a.month}`).sort(), [
    `deliveries ${label(6)}`,
    `inbox_items ${label(6)}`,
    `notifications ${label(6)}`,
    `recipients ${label(6)}`,
  ]);
  for (const a of skipped) assert.match(a.detail, /1 pending deliveries/);
  assert.deepEqual(await monthRows(db.pool, start(6), start(5)), {
    ...sixMonths,
    delivery_events: [],
  });
  assert.deepEqual(
    (await monthRows(archive, start(6), start(5)))['delivery_events'],
    sixMonths['delivery_events'],
  );
  // Progress rows of the expired archive month went with it.
  const progressMonths = await archive.query<{ m: string }>(
    `SELECT DISTINCT to_char(month, 'YYYY-MM') AS m FROM archive_progress ORDER BY 1`,
  );
  assert.ok(!progressMonths.rows.some((r) => r.m === label(13)));

  // Support sees the same history before and after the move.
  assert.deepEqual(await history('ann'), historyBefore.ann);
  assert.deepEqual(await history('bob'), historyBefore.bob);

  const text = await metrics.registry.metrics();
  assert.match(text, /herald_retention_runs_total\{result="success"\} 1/);
  assert.match(text, /herald_retention_rows_copied_total\{table="notifications"\} 18/);
  assert.match(text, /herald_retention_partitions_skipped_total\{reason="live_work"\} 4/);
  assert.match(text, /herald_retention_partitions_dropped_total\{store="archive"\} 5/);
  assert.doesNotMatch(text, /herald_retention_last_success_timestamp_seconds 0\n/);

  // Running again changes nothing (the waiting month is reported again).
  const again = await runLifecycle(deps());
  assert.deepEqual(
    again.actions.filter((a) => a.action !== 'skip'),
    [],
  );

  // Once the delivery is done, its month moves too, and support still sees the same.
  await db.pool.query(
    `WITH sent AS (
       UPDATE deliveries SET state = 'sent' WHERE state = 'pending' AND notification_created_at < $1
       RETURNING id, notification_created_at
     )
     DELETE FROM delivery_queue q USING sent
      WHERE q.delivery_id = sent.id AND q.notification_created_at = sent.notification_created_at`,
    [start(5)],
  );
  const sixMonthsDone = await monthRows(db.pool, start(6), start(5));
  const last = await runLifecycle(deps());
  assert.ok(
    last.actions.some((a) => a.action === 'copy' && a.table === 'deliveries' && a.month === label(6)),
  );
  const archivedSix = await monthRows(archive, start(6), start(5));
  assert.deepEqual(archivedSix, { ...sixMonthsDone, delivery_events: sixMonths['delivery_events'] ?? [] });
  assert.deepEqual(await monthRows(db.pool, start(6), start(5)), {
    notifications: [],
    recipients: [],
    deliveries: [],
    inbox_items: [],
    delivery_events: [],
  });
  const annAfter = await history('ann');
  const pending = historyBefore.ann.notifications
    .flatMap((n) => n.deliveries)
    .find((d) => d.state === 'pending');
  assert.ok(pending !== undefined);
  assert.equal(
    annAfter.notifications.flatMap((n) => n.deliveries).find((d) => d.id === pending.id)?.state,
    'sent',
  );
  assert.equal(annAfter.notifications.length, historyBefore.ann.notifications.length);
});

test('a run is refused while another process holds the retention lock', async () => {
  const holder = await db.pool.connect();
  await holder.query('SELECT pg_advisory_lock($1)', [lifecycleLockKey]);
  try {
    const metrics = createMetrics();
    const report = await runLifecycle(deps({ metrics }));
    assert.equal(report.ran, false);
    assert.deepEqual(report.actions, []);
    assert.match(await metrics.registry.metrics(), /herald_retention_runs_total\{result="locked"\} 1/);
  } finally {
    await holder.query('SELECT pg_advisory_unlock($1)', [lifecycleLockKey]);
    holder.release();
  }
});

test('`herald retention` killed mid-copy and run again archives every row exactly once', async () => {
  const crashDb = await createTestDatabase();
  const crashArchive = await openArchive({
    url: archiveDatabaseUrl(crashDb.url, undefined),
    serviceUrl: crashDb.url,
    poolSize: 2,
    logger,
  });
  try {
    const serviceId = await ensureService(crashDb.pool, 'shop');
    await seedHistory(crashDb.pool, { at: at(5), users: ['u1', 'u2', 'u3', 'u4'], perUser: 400, serviceId });
    const expected = await monthRows(crashDb.pool, start(5), start(4));
    const env = { DATABASE_URL: crashDb.url, RETENTION_BATCH_ROWS: '20', LOG_LEVEL: 'warn' };

    const first = spawnHerald(['retention'], env);
    const partial = await waitFor(
      'a partial copy',
      async () => {
        const r = await crashArchive.query<{ table_name: string; rows_copied: number }>(
          `SELECT table_name, rows_copied FROM archive_progress
            WHERE rows_copied > 0 AND verified_at IS NULL LIMIT 1`,
        );
        return r.rows[0];
      },
      60_000,
    );
    first.kill('SIGKILL');
    assert.equal(await first.exited, 'SIGKILL');
    const total = (expected[partial.table_name] ?? []).length;
    assert.ok(
      partial.rows_copied < total,
      `killed inside ${partial.table_name} (${String(partial.rows_copied)} of ${String(total)})`,
    );

    const second = spawnHerald(['retention'], env);
    assert.equal(await second.exited, 0, second.output());
    assert.match(second.output(), /copy +\w+ \d{4}-\d{2}: \d+ rows to the archive/);

    // Every row exactly once: the same multiset of rows, and no id twice.
    assert.deepEqual(await monthRows(crashArchive, start(5), start(4)), expected);
    for (const table of ['notifications', 'deliveries']) {
      const doubled = await crashArchive.query(`SELECT id FROM ${table} GROUP BY id HAVING count(*) <> 1`);
      assert.deepEqual(doubled.rows, [], `no ${table} row twice`);
    }
    const left = new Set(await partitionNames(crashDb.pool));
    for (const { table } of archivedTables)
      assert.ok(!left.has(partitionName(table, addMonths(current, -5))), `${table} -5 dropped`);

    // The dry run of a finished job has nothing to move.
    const dry = spawnHerald(['retention', '--dry-run'], env);
    assert.equal(await dry.exited, 0, dry.output());
    assert.doesNotMatch(dry.output(), /would copy/);
  } finally {
    await crashArchive.end();
    await crashDb.drop();
  }
});
