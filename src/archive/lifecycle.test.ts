// The lifecycle job's edges: ctid walks over gaps, a month table left detached by a crash,
// the realtime stream's months, idempotency keys, the audit log, schema drift, and the dry run's
// lines.
// The end-to-end scenario is test/system/retention.test.ts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { rowsAsJson, seedHistory } from '../../test/helpers/history-data.js';
import type { Pool } from '../db/pools.js';
import {
  addMonths,
  ensureMonthPartitions,
  ensurePartitions,
  existingPartitions,
  monthOf,
  monthStartDate,
  partitionName,
} from '../db/partitions.js';
import { ensureService } from '../db/stores/api-key-store.js';
import { createLogger } from '../observability/logger.js';
import { archiveDatabaseUrl, openArchive } from './archive-store.js';
import { runLifecycle } from './lifecycle.js';
import type { LifecycleDeps } from './lifecycle-deps.js';
import { formatLifecycleReport } from './lifecycle-report.js';

const dayMs = 86_400_000;
const logger = createLogger('silent');
const now = new Date();
const current = monthOf(now);
const start = (back: number) => monthStartDate(addMonths(current, -back));
const settings = {
  serviceRetentionDays: 90,
  archiveRetentionMonths: 12,
  batchRows: 3,
  idempotencyKeyRetentionDays: 30,
};

let db: TestDatabase;
let archive: Pool;
let serviceId: number;
before(async () => {
  db = await createTestDatabase();
  archive = await openArchive({
    url: archiveDatabaseUrl(db.url, undefined),
    serviceUrl: db.url,
    poolSize: 2,
    logger,
  });
  serviceId = await ensureService(db.pool, 'shop');
});
after(async () => {
  await archive.end();
  await db.drop();
});

const deps = (extra: Partial<LifecycleDeps> = {}): LifecycleDeps => ({
  pool: db.pool,
  archivePool: archive,
  now: () => now,
  logger,
  settings,
  ...extra,
});

/** Each run drops every old month, so a test gives itself its months back first. */
const reopen = (back: number) => ensurePartitions(db.pool, now, 3, start(back));

const inMonth = (table: string, key: string, back: number) =>
  `(SELECT * FROM ${table} WHERE ${key} >= '${start(back).toISOString()}' AND ${key} < '${start(back - 1).toISOString()}')`;

test('delivery events are walked by ctid across deleted rows and empty blocks', async () => {
  await seedHistory(db.pool, {
    at: new Date(start(7).getTime() + dayMs),
    users: ['a', 'b'],
    perUser: 60,
    serviceId,
  });
  // Holes: single rows, and whole blocks (the walk must cross windows with no live row).
  const partition = partitionName('delivery_events', addMonths(current, -7));
  await db.pool.query(`DELETE FROM ${partition} WHERE state = 'sending' AND channel = 'webhook'`);
  const emptied = await db.pool.query(`DELETE FROM ${partition} WHERE ctid >= '(1,0)' AND ctid < '(3,0)'`);
  assert.ok((emptied.rowCount ?? 0) > 0);
  const events = await rowsAsJson(db.pool, inMonth('delivery_events', 'created_at', 7));
  const notifications = await rowsAsJson(db.pool, inMonth('notifications', 'created_at', 7));
  assert.ok(events.length > 100);
  const report = await runLifecycle(deps());
  assert.ok(report.actions.some((a) => a.action === 'copy' && a.table === 'delivery_events'));
  assert.deepEqual(await rowsAsJson(archive, inMonth('delivery_events', 'created_at', 7)), events);
  assert.deepEqual(await rowsAsJson(archive, inMonth('notifications', 'created_at', 7)), notifications);
  const left = await existingPartitions(db.pool);
  assert.ok(!left.has(partitionName('delivery_events', addMonths(current, -7))));
});

test('a month table left detached (a crash between detach and drop) is archived and dropped', async () => {
  await reopen(8);
  await seedHistory(db.pool, {
    at: new Date(start(8).getTime() + dayMs),
    users: ['c'],
    perUser: 4,
    serviceId,
  });
  const name = partitionName('recipients', addMonths(current, -8));
  const recipients = await rowsAsJson(db.pool, name);
  await db.pool.query(`ALTER TABLE recipients DETACH PARTITION ${name}`);
  await runLifecycle(deps());
  assert.deepEqual(
    await rowsAsJson(archive, inMonth('recipients', 'notification_created_at', 8)),
    recipients,
  );
  const gone = await db.pool.query(`SELECT to_regclass($1) IS NULL AS gone`, [name]);
  assert.equal(gone.rows[0]?.gone, true);
});

test('inbox events past retention are dropped without copying', async () => {
  await reopen(9);
  const old = new Date(start(9).getTime() + dayMs);
  await db.pool.query(
    `INSERT INTO inbox_events (user_id, seq, kind, created_at) VALUES ('a', 1, 'read_all', $1)`,
    [old],
  );
  const report = await runLifecycle(deps());
  assert.ok(
    report.actions.some(
      (a) => a.action === 'drop' && a.table === 'inbox_events' && a.store === 'service' && a.rows === 1,
    ),
  );
  assert.ok(!(await existingPartitions(db.pool)).has(partitionName('inbox_events', addMonths(current, -9))));
});

test('idempotency keys older than their retention are deleted in batches; newer ones stay', async () => {
  await db.pool.query(
    `INSERT INTO idempotency_keys (service_id, key, request_hash, notification_id, notification_created_at, created_at)
     SELECT $1, 'k' || g, '\\x00', 'shop#x', $2::timestamptz, $2::timestamptz - g * interval '1 day'
       FROM generate_series(1, 40) g`,
    [serviceId, now],
  );
  const dry = await runLifecycle(deps({ dryRun: true }));
  assert.ok(dry.actions.some((a) => a.action === 'delete_idempotency_keys' && a.rows === 10));
  assert.ok(formatLifecycleReport(dry).some((l) => /^would delete +10 idempotency keys/.test(l)));
  const report = await runLifecycle(deps());
  assert.ok(report.actions.some((a) => a.action === 'delete_idempotency_keys' && a.rows === 10));
  const left = await db.pool.query<{ n: number; oldest: Date }>(
    'SELECT count(*)::int AS n, min(created_at) AS oldest FROM idempotency_keys',
  );
  const [row] = left.rows;
  assert.ok(row !== undefined);
  assert.equal(row.n, 30);
  assert.ok(row.oldest.getTime() >= now.getTime() - 30 * dayMs);
});

test('the audit log keeps what the archive keeps: older entries are deleted, and nothing else may change it', async () => {
  await db.pool.query(
    `INSERT INTO audit_log (at, actor_kind, actor_id, action)
     SELECT $1::timestamptz - g * interval '1 month', 'system', 'test', 'test.entry' FROM generate_series(0, 15) g`,
    [now],
  );
  const dry = await runLifecycle(deps({ dryRun: true }));
  const due = dry.actions.find((a) => a.action === 'delete_audit_entries');
  assert.ok(due !== undefined && due.rows >= 3, JSON.stringify(due));
  assert.ok(formatLifecycleReport(dry).some((l) => /^would delete +\d+ audit log entries/.test(l)));
  const report = await runLifecycle(deps());
  assert.ok(report.actions.some((a) => a.action === 'delete_audit_entries' && a.rows === due.rows));
  const left = await db.pool.query<{ oldest: Date }>('SELECT min(at) AS oldest FROM audit_log');
  assert.ok((left.rows[0]?.oldest.getTime() ?? 0) >= start(12).getTime());
  // Append-only outside retention: an update or a delete is refused.
  await assert.rejects(db.pool.query("UPDATE audit_log SET action = 'forged'"), /append-only/);
  await assert.rejects(db.pool.query('DELETE FROM audit_log'), /append-only/);
});

test('the dry run prints what would move; a service column missing from the archive stops the run', async () => {
  await reopen(10);
  await seedHistory(db.pool, {
    at: new Date(start(10).getTime() + dayMs),
    users: ['d'],
    perUser: 2,
    serviceId,
  });
  const lines = formatLifecycleReport(await runLifecycle(deps({ dryRun: true })));
  assert.ok(
    lines.some((l) => /^would copy +notifications \d{4}-\d{2}: 2 rows to the archive$/.test(l)),
    lines.join('\n'),
  );
  assert.ok(lines.some((l) => /^would drop +service notifications \d{4}-\d{2} \(2 rows\)$/.test(l)));

  await db.pool.query('ALTER TABLE notifications ADD COLUMN tenant text');
  try {
    await assert.rejects(
      runLifecycle(deps()),
      /archive table notifications lacks the service column\(s\) tenant/,
    );
    const still = await existingPartitions(db.pool);
    assert.ok(still.has(partitionName('notifications', addMonths(current, -10))));
  } finally {
    await db.pool.query('ALTER TABLE notifications DROP COLUMN tenant');
  }
});

test('a copied month that gets live work again (a replayed dead letter) is copied afresh once done', async () => {
  await reopen(11);
  await seedHistory(db.pool, {
    at: new Date(start(11).getTime() + dayMs),
    users: ['e'],
    perUser: 5,
    serviceId,
  });
  const month = addMonths(current, -11);
  // An earlier run copied the month but did not drop it; then a delivery was replayed.
  const tables = ['notifications', 'recipients', 'deliveries', 'inbox_items'] as const;
  await ensureMonthPartitions(
    archive,
    [...tables, 'delivery_events'].map((table) => ({ table, month })),
  );
  await seedHistory(archive, {
    at: new Date(start(11).getTime() + dayMs),
    users: ['e'],
    perUser: 5,
    serviceId,
  });
  // (Events have months of their own, not part of this copy.)
  await archive.query(`DROP TABLE ${partitionName('delivery_events', month)}`);
  await archive.query(
    `INSERT INTO archive_progress (table_name, month, last_key, rows_copied)
     SELECT t, $2, '["~"]', 10 FROM unnest($1::text[]) t
     ON CONFLICT (table_name, month) DO UPDATE SET last_key = EXCLUDED.last_key, rows_copied = 10`,
    [tables, start(11)],
  );
  await db.pool.query(
    `WITH replayed AS (
       UPDATE deliveries SET state = 'pending'
        WHERE id = (SELECT id FROM ${partitionName('deliveries', month)} WHERE channel = 'webhook' LIMIT 1)
       RETURNING id, notification_created_at, user_id, lane, run_at
     )
     INSERT INTO delivery_queue (delivery_id, notification_created_at, user_id, lane, run_at)
     SELECT id, notification_created_at, user_id, lane, run_at FROM replayed`,
  );
  const skipped = await runLifecycle(deps());
  assert.ok(
    skipped.actions.some((a) => a.action === 'skip' && a.reason === 'live_work' && a.table === 'deliveries'),
  );
  const progress = await archive.query(
    'SELECT 1 FROM archive_progress WHERE month = $1 AND table_name = ANY($2::text[])',
    [start(11), tables],
  );
  assert.equal(progress.rowCount, 0, 'the stale copy is forgotten');
  assert.deepEqual(await rowsAsJson(archive, inMonth('notifications', 'created_at', 11)), []);

  await db.pool.query(
    `WITH sent AS (
       UPDATE ${partitionName('deliveries', month)} SET state = 'sent' WHERE state = 'pending'
       RETURNING id, notification_created_at
     )
     DELETE FROM delivery_queue q USING sent
      WHERE q.delivery_id = sent.id AND q.notification_created_at = sent.notification_created_at`,
  );
  const expected = await rowsAsJson(db.pool, inMonth('deliveries', 'notification_created_at', 11));
  await runLifecycle(deps());
  assert.deepEqual(await rowsAsJson(archive, inMonth('deliveries', 'notification_created_at', 11)), expected);
  assert.ok(!(await existingPartitions(db.pool)).has(partitionName('deliveries', month)));
});

test('a month with a recipient not yet fanned out (a send scheduled long ago, still queued) stays', async () => {
  await reopen(10);
  await seedHistory(db.pool, {
    at: new Date(start(10).getTime() + dayMs),
    users: ['f'],
    perUser: 2,
    serviceId,
  });
  // One more recipient of that month, still pending: its insert queues it.
  await db.pool.query(
    `INSERT INTO recipients (notification_id, notification_created_at, user_id, lane, state, send_at)
     SELECT notification_id, notification_created_at, 'g', lane, 'pending', send_at FROM recipients
      WHERE notification_created_at >= $1 AND notification_created_at < $2 LIMIT 1`,
    [start(10), start(9)],
  );
  const skipped = await runLifecycle(deps());
  const month = addMonths(current, -10);
  assert.ok(
    skipped.actions.some((a) => a.action === 'skip' && a.reason === 'live_work' && a.table === 'recipients'),
  );
  assert.ok((await existingPartitions(db.pool)).has(partitionName('recipients', month)));

  await db.pool.query(`DELETE FROM recipients WHERE user_id = 'g'`);
  await db.pool.query('DELETE FROM recipient_queue');
  await runLifecycle(deps());
  assert.ok(!(await existingPartitions(db.pool)).has(partitionName('recipients', month)));
});
