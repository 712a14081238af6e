// What leaves without a copy (docs/retention.md "The job"): archive months past
// ARCHIVE_RETENTION_MONTHS, the realtime stream's months past SERVICE_RETENTION_DAYS, and
// idempotency keys past IDEMPOTENCY_KEY_RETENTION_DAYS, and audit log entries older than the
// archive keeps its months (ARCHIVE_RETENTION_MONTHS).
import { withTransaction, type Pool } from '../db/pools.js';
import { pgErrors, sqlState } from '../db/pg-errors.js';
import {
  listPartitions,
  monthEndsBy,
  monthOf,
  monthStartDate,
  partitionName,
  type PartitionInfo,
} from '../db/partitions.js';
import { archivedTables } from './archive-store.js';
import { countRows } from './copy-month.js';
import type { LifecycleDeps } from './lifecycle-deps.js';
import { addDrop, addSkip, type LifecycleReport } from './lifecycle-report.js';
import { dropOrSkip } from './verify-and-drop.js';

/** Drops archive partitions past ARCHIVE_RETENTION_MONTHS, each with its progress rows. */
export async function dropArchiveMonths(deps: LifecycleDeps, report: LifecycleReport): Promise<void> {
  const tables = archivedTables.map((t) => t.table);
  const due = await partitionsEndingBy(deps.archivePool, tables, report.archiveCutoff);
  for (const p of due) {
    const rows = await countRows(deps.archivePool, p.name);
    if (deps.dryRun === true) {
      addDrop(deps, report, 'archive', p.table, p.month, rows);
      continue;
    }
    // One transaction: the partition and its progress rows go together, so a later copy of
    // that month (had it come back to the service store) starts from nothing.
    const dropped = await withTransaction(deps.archivePool, async (client) => {
      await client.query("SET LOCAL lock_timeout = '10s'");
      await client.query(`DROP TABLE ${p.name}`);
      await client.query('DELETE FROM archive_progress WHERE table_name = $1 AND month = $2', [
        p.table,
        monthStartDate(p.month),
      ]);
      return true;
    }).catch((error: unknown) => {
      if (sqlState(error) === pgErrors.lockNotAvailable) return false;
      throw error;
    });
    if (dropped) addDrop(deps, report, 'archive', p.table, p.month, rows);
    else addSkip(deps, report, p.table, p.month, 'lock_timeout', 'support lookups held the archive table');
  }
  if (deps.dryRun !== true) {
    // Months that had no rows (so no archive partition) keep a verified progress row: forget it too.
    const left = new Set((await listPartitions(deps.archivePool, tables)).map((p) => p.name));
    const old = await deps.archivePool.query<{ table_name: string; month: Date }>(
      `SELECT table_name, month FROM archive_progress
        WHERE verified_at IS NOT NULL AND (month + interval '1 month') <= $1`,
      [report.archiveCutoff],
    );
    for (const r of old.rows) {
      if (left.has(partitionName(r.table_name, monthOf(r.month)))) continue;
      await deps.archivePool.query('DELETE FROM archive_progress WHERE table_name = $1 AND month = $2', [
        r.table_name,
        r.month,
      ]);
    }
  }
}

/** The realtime stream and engagement events are not archived: their months past service retention are dropped. */
export async function dropInboxEvents(deps: LifecycleDeps, report: LifecycleReport): Promise<void> {
  const due = await partitionsEndingBy(
    deps.pool,
    ['inbox_events', 'engagement_events'],
    report.serviceCutoff,
  );
  for (const p of due) {
    const rows = await countRows(deps.pool, p.name);
    const state = p.detachPending ? 'detach_pending' : 'attached';
    if (deps.dryRun === true) addDrop(deps, report, 'service', p.table, p.month, rows);
    else await dropOrSkip(deps, report, { name: p.name, table: p.table, month: p.month, state }, rows);
  }
}

/** The partitions of `tables` whose whole month ends at or before `cutoff`. */
async function partitionsEndingBy(
  pool: Pool,
  tables: readonly string[],
  cutoff: Date,
): Promise<PartitionInfo[]> {
  return (await listPartitions(pool, tables)).filter((p) => monthEndsBy(p.month, cutoff));
}

/**
 * idempotency_keys is unpartitioned (a key must be unique across months) and holds one row per
 * request and day, so old keys go by a bounded DELETE on its created_at index.
 */
export async function deleteIdempotencyKeys(deps: LifecycleDeps, report: LifecycleReport): Promise<void> {
  const before = report.idempotencyCutoff;
  if (deps.dryRun === true) {
    const result = await deps.pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM idempotency_keys WHERE created_at < $1',
      [before],
    );
    const rows = result.rows[0]?.n ?? 0;
    if (rows > 0) report.actions.push({ action: 'delete_idempotency_keys', rows });
    return;
  }
  let total = 0;
  for (;;) {
    const result = await deps.pool.query(
      `DELETE FROM idempotency_keys WHERE (service_id, key) IN (
         SELECT service_id, key FROM idempotency_keys WHERE created_at < $1 ORDER BY created_at LIMIT $2)`,
      [before, deps.settings.batchRows],
    );
    const n = result.rowCount ?? 0;
    total += n;
    deps.metrics?.retentionIdempotencyKeysDeleted.inc(n);
    if (n < deps.settings.batchRows) break;
  }
  if (total > 0) {
    report.actions.push({ action: 'delete_idempotency_keys', rows: total });
    deps.logger.info({ rows: total, before }, 'retention: deleted old idempotency keys');
  }
}

/**
 * The audit log is kept as long as the archive keeps notifications: entries older than the
 * archive cutoff are deleted in batches. The table refuses deletes unless a transaction says it
 * is retention's (migrations/0011_console.sql).
 */
export async function deleteOldAuditEntries(deps: LifecycleDeps, report: LifecycleReport): Promise<void> {
  const before = report.archiveCutoff;
  if (deps.dryRun === true) {
    const result = await deps.pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM audit_log WHERE at < $1',
      [before],
    );
    const rows = result.rows[0]?.n ?? 0;
    if (rows > 0) report.actions.push({ action: 'delete_audit_entries', rows });
    return;
  }
  let total = 0;
  for (;;) {
    const n = await withTransaction(deps.pool, async (client) => {
      await client.query("SET LOCAL herald.audit_retention = 'on'");
      const result = await client.query(
        'DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < $1 ORDER BY at LIMIT $2)',
        [before, deps.settings.batchRows],
      );
      return result.rowCount ?? 0;
    });
    total += n;
    if (n < deps.settings.batchRows) break;
  }
  if (total > 0) {
    report.actions.push({ action: 'delete_audit_entries', rows: total });
    deps.logger.info({ rows: total, before }, 'retention: deleted old audit log entries');
  }
}
