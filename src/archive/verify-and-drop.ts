// Verifying a copied month by row counts, and dropping service partitions only once every table
// of the month verified and none of it has live work (docs/retention.md "Verify, then drop").
import { withTransaction, type Pool } from '../db/pools.js';
import { pgErrors, sqlState } from '../db/pg-errors.js';
import { addMonths, monthStartDate, partitionName } from '../db/partitions.js';
import { archivedTables, type ArchivedTable } from './archive-store.js';
import { countRows, type CopyCounts, type ServicePartition } from './copy-month.js';
import type { LifecycleDeps } from './lifecycle-deps.js';
import { addDrop, addSkip, monthLabel, type LifecycleReport } from './lifecycle-report.js';

/**
 * Compares the service partition's rows, the archive's rows in that month and the rows copied.
 * Returns the partition's row count when the archive holds exactly its rows (and marks the
 * month verified), undefined when it does not.
 */
export async function verifyMonth(
  deps: LifecycleDeps,
  report: LifecycleReport,
  p: ServicePartition,
  { serviceRows, copiedRows }: CopyCounts,
): Promise<number | undefined> {
  const month = monthLabel(p.month);
  const archived = await deps.archivePool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM ${p.table} WHERE ${partitionKey(p.table)} >= $1 AND ${partitionKey(p.table)} < $2`,
    [monthStartDate(p.month), monthStartDate(addMonths(p.month, 1))],
  );
  const archiveRows = archived.rows[0]?.n ?? 0;
  // A dry run checks what the copy would start from: the archive holds exactly what was copied.
  const serviceNow =
    deps.dryRun === true ? Math.max(serviceRows, copiedRows) : await countRows(deps.pool, p.name);
  const ok =
    deps.dryRun === true
      ? archiveRows === copiedRows && copiedRows <= serviceRows
      : serviceNow === archiveRows && archiveRows === copiedRows;
  if (!ok) {
    const detail = `service ${String(serviceNow)} rows, archive ${String(archiveRows)}, copied ${String(copiedRows)}`;
    addSkip(deps, report, p.table, p.month, 'count_mismatch', detail);
    if (deps.dryRun !== true)
      deps.logger.error(
        { table: p.table, month, serviceRows: serviceNow, archiveRows, copiedRows },
        'retention: archive counts do not match the service partition; it stays',
      );
    return undefined;
  }
  if (deps.dryRun === true) return serviceRows;
  await deps.archivePool.query(
    'UPDATE archive_progress SET verified_at = now(), updated_at = now() WHERE table_name = $1 AND month = $2',
    [p.table, monthStartDate(p.month)],
  );
  if (archiveRows > 0) {
    report.actions.push({ action: 'verify', table: p.table, month, rows: archiveRows });
    deps.logger.info({ table: p.table, month, rows: archiveRows }, 'retention: verified');
  }
  return archiveRows;
}

/** Whether the month has live work; if so it is reported as skipped and its archive copy forgotten. */
export async function skippedForLiveWork(
  deps: LifecycleDeps,
  report: LifecycleReport,
  group: ServicePartition[],
  why: string,
): Promise<boolean> {
  const live = await liveWork(deps.pool, group);
  const first = group[0];
  if (live === undefined || first === undefined) return false;
  const month = monthLabel(first.month);
  for (const p of group) addSkip(deps, report, p.table, first.month, 'live_work', live);
  deps.logger.warn({ month, live }, `retention: month skipped, ${why}`);
  await forgetArchiveCopy(deps, group);
  return true;
}

/**
 * A month with live work changes after it was copied (a replayed dead letter, say), so a copy
 * made earlier would be stale: its archive partitions and progress go, in one transaction, and
 * the month is copied afresh once its work is done.
 */
async function forgetArchiveCopy(deps: LifecycleDeps, group: ServicePartition[]): Promise<void> {
  const first = group[0];
  if (deps.dryRun === true || first === undefined) return;
  const tables = group.map((p) => p.table);
  const copied = await deps.archivePool.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM archive_progress WHERE table_name = ANY($1::text[]) AND month = $2',
    [tables, monthStartDate(first.month)],
  );
  if ((copied.rows[0]?.n ?? 0) === 0) return;
  await withTransaction(deps.archivePool, async (client) => {
    for (const table of tables)
      await client.query(`DROP TABLE IF EXISTS ${partitionName(table, first.month)}`);
    await client.query('DELETE FROM archive_progress WHERE table_name = ANY($1::text[]) AND month = $2', [
      tables,
      monthStartDate(first.month),
    ]);
  });
  deps.logger.info(
    { month: monthLabel(first.month), tables },
    'retention: dropped the archive copy of a month with live work',
  );
}

/** Deliveries still to send, or recipients still to fan out, in that month; undefined if none. */
async function liveWork(pool: Pool, group: ServicePartition[]): Promise<string | undefined> {
  const parts: string[] = [];
  const first = group[0];
  if (first === undefined) return undefined;
  // Read from the work queues (small), not by state from the month's partitions (no index reads state).
  const month = [monthStartDate(first.month), monthStartDate(addMonths(first.month, 1))];
  const deliveries = group.find((p) => p.table === 'deliveries');
  if (deliveries !== undefined) {
    const result = await pool.query<{ state: string; n: number }>(
      `SELECT d.state, count(*)::int AS n
         FROM delivery_queue q
         JOIN ${deliveries.name} d
           ON d.id = q.delivery_id AND d.notification_created_at = q.notification_created_at AND d.user_id = q.user_id
        WHERE q.notification_created_at >= $1 AND q.notification_created_at < $2
        GROUP BY d.state ORDER BY d.state`,
      month,
    );
    for (const r of result.rows) parts.push(`${String(r.n)} ${r.state} deliveries`);
  }
  if (group.some((p) => p.table === 'recipients')) {
    const result = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM recipient_queue
        WHERE notification_created_at >= $1 AND notification_created_at < $2`,
      month,
    );
    const n = result.rows[0]?.n ?? 0;
    if (n > 0) parts.push(`${String(n)} recipients not yet fanned out`);
  }
  return parts.length === 0 ? undefined : parts.join(', ');
}

export type DroppablePartition = Omit<ServicePartition, 'table'> & { table: string };

/** Drops a service partition and reports it, or reports the detach's lock timeout as a skip. */
export async function dropOrSkip(
  deps: LifecycleDeps,
  report: LifecycleReport,
  p: DroppablePartition,
  rows: number,
): Promise<void> {
  if (await dropServicePartition(deps, p)) addDrop(deps, report, 'service', p.table, p.month, rows);
  else
    addSkip(deps, report, p.table, p.month, 'lock_timeout', 'the detach waited too long for other sessions');
}

/** The work queue holding a partitioned table's rows that are not final (migrations 0030, 0031). */
const workQueues: Partial<Record<string, string>> = {
  deliveries: 'delivery_queue',
  recipients: 'recipient_queue',
};

/** Detaches (without blocking writers of other months) and drops; false on a lock timeout. */
async function dropServicePartition(deps: LifecycleDeps, p: DroppablePartition): Promise<boolean> {
  const client = await deps.pool.connect();
  let broken = false;
  try {
    await client.query("SET lock_timeout = '60s'");
    if (p.state === 'attached')
      await client.query(`ALTER TABLE ${p.table} DETACH PARTITION ${p.name} CONCURRENTLY`);
    // An interrupted DETACH … CONCURRENTLY leaves the partition pending: finish it.
    if (p.state === 'detach_pending')
      await client.query(`ALTER TABLE ${p.table} DETACH PARTITION ${p.name} FINALIZE`);
    await client.query(`DROP TABLE IF EXISTS ${p.name}`);
    // Only a month without live work is dropped, so this finds nothing unless that changed since.
    const queue = workQueues[p.table];
    if (queue !== undefined)
      await client.query(
        `DELETE FROM ${queue} WHERE notification_created_at >= $1 AND notification_created_at < $2`,
        [monthStartDate(p.month), monthStartDate(addMonths(p.month, 1))],
      );
    return true;
  } catch (error) {
    if (sqlState(error) === pgErrors.lockNotAvailable) return false;
    throw error;
  } finally {
    await client.query('RESET lock_timeout').catch(() => {
      broken = true;
    });
    client.release(broken);
  }
}

function partitionKey(table: ArchivedTable): string {
  return archivedTables.find((t) => t.table === table)?.partitionKey ?? 'created_at';
}
