// The lifecycle job (docs/retention.md): months past SERVICE_RETENTION_DAYS are copied to the
// archive in bounded batches, verified by row counts, then detached and dropped from the service
// store; archive months past ARCHIVE_RETENTION_MONTHS are dropped; old idempotency keys are
// deleted. Data leaves by whole partitions, never by a mass DELETE. One run at a time across
// processes (advisory lock). A dry run reports the same plan and changes nothing. This module
// holds the lock and runs the steps in order (copy-month.ts, verify-and-drop.ts,
// drop-expired.ts); lifecycle-report.ts records what they did.
import type { Pool } from '../db/pools.js';
import { listPartitions, monthEndsBy, parsePartitionName, type Month } from '../db/partitions.js';
import { archivedTables, type ArchivedTable } from './archive-store.js';
import { checkSignal, copyMonth, Interrupted, type ServicePartition } from './copy-month.js';
import {
  deleteIdempotencyKeys,
  deleteOldAuditEntries,
  dropArchiveMonths,
  dropInboxEvents,
} from './drop-expired.js';
import type { LifecycleDeps } from './lifecycle-deps.js';
import { addDrop, addSkip, logSummary, monthLabel, type LifecycleReport } from './lifecycle-report.js';
import { dropOrSkip, skippedForLiveWork, verifyMonth } from './verify-and-drop.js';

export const lifecycleLockKey = 7_261_003; // arbitrary, constant: "herald retention"

const dayMs = 86_400_000;

export async function runLifecycle(deps: LifecycleDeps): Promise<LifecycleReport> {
  const now = deps.now();
  const report: LifecycleReport = {
    dryRun: deps.dryRun === true,
    ran: true,
    interrupted: false,
    serviceCutoff: new Date(now.getTime() - deps.settings.serviceRetentionDays * dayMs),
    archiveCutoff: monthsBefore(now, deps.settings.archiveRetentionMonths),
    idempotencyCutoff: new Date(now.getTime() - deps.settings.idempotencyKeyRetentionDays * dayMs),
    actions: [],
  };
  if (report.dryRun) {
    await runSteps(deps, report);
    logSummary(deps.logger, report);
    return report;
  }
  const lock = await deps.pool.connect();
  let broken = false;
  try {
    const got = await lock.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [
      lifecycleLockKey,
    ]);
    if (got.rows[0]?.ok !== true) {
      deps.logger.info('retention: another process is running it; skipped');
      deps.metrics?.retentionRuns.inc({ result: 'locked' });
      return { ...report, ran: false };
    }
    try {
      await runSteps(deps, report);
      deps.metrics?.retentionRuns.inc({ result: 'success' });
      deps.metrics?.retentionLastSuccess.set(Date.now() / 1000);
    } catch (error) {
      if (!(error instanceof Interrupted)) {
        deps.metrics?.retentionRuns.inc({ result: 'failed' });
        throw error;
      }
      report.interrupted = true;
      deps.metrics?.retentionRuns.inc({ result: 'interrupted' });
    } finally {
      deps.metrics?.retentionCopyRowsDone.set(0);
      deps.metrics?.retentionCopyRowsTotal.set(0);
      await lock.query('SELECT pg_advisory_unlock($1)', [lifecycleLockKey]).catch(() => {
        broken = true; // the session is gone, and its lock with it
      });
    }
  } finally {
    lock.release(broken);
  }
  logSummary(deps.logger, report);
  return report;
}

async function runSteps(deps: LifecycleDeps, report: LifecycleReport): Promise<void> {
  await checkColumns(deps);
  await dropArchiveMonths(deps, report);
  await moveServiceMonths(deps, report);
  await dropInboxEvents(deps, report);
  await deleteIdempotencyKeys(deps, report);
  await deleteOldAuditEntries(deps, report);
}

/** A service column the archive lacks would be dropped silently by the copy: refuse instead. */
async function checkColumns(deps: LifecycleDeps): Promise<void> {
  const tables = archivedTables.map((t) => t.table);
  const [service, archive] = await Promise.all([
    columnsOf(deps.pool, tables),
    columnsOf(deps.archivePool, tables),
  ]);
  for (const table of tables) {
    const missing = [...(service.get(table) ?? [])].filter((c) => archive.get(table)?.has(c) !== true);
    if (missing.length > 0)
      throw new Error(
        `archive table ${table} lacks the service column(s) ${missing.join(', ')}: add them in a migrations/archive/ migration`,
      );
  }
}

async function columnsOf(pool: Pool, tables: readonly string[]): Promise<Map<string, Set<string>>> {
  const result = await pool.query<{ table_name: string; column_name: string }>(
    `SELECT table_name, column_name FROM information_schema.columns
      WHERE table_schema = 'public' AND table_name = ANY($1::text[])`,
    [tables],
  );
  const columns = new Map<string, Set<string>>();
  for (const r of result.rows) {
    const set = columns.get(r.table_name) ?? new Set<string>();
    set.add(r.column_name);
    columns.set(r.table_name, set);
  }
  return columns;
}

async function moveServiceMonths(deps: LifecycleDeps, report: LifecycleReport): Promise<void> {
  const due = (await servicePartitions(deps.pool)).filter((p) => monthEndsBy(p.month, report.serviceCutoff));
  const byMonth = new Map<string, ServicePartition[]>();
  for (const p of due) {
    if (p.table === 'delivery_events') {
      // Events are partitioned by their own time: each month moves on its own.
      await moveGroup(deps, report, [p], false);
      continue;
    }
    const key = monthLabel(p.month);
    byMonth.set(key, [...(byMonth.get(key) ?? []), p]);
  }
  for (const group of byMonth.values()) await moveGroup(deps, report, group, true);
}

/**
 * Copies and verifies every partition of the group; drops none unless all verify. A drop that
 * meets a lock timeout leaves that table (and the ones after it) for the next run.
 */
async function moveGroup(
  deps: LifecycleDeps,
  report: LifecycleReport,
  group: ServicePartition[],
  checkLiveWork: boolean,
): Promise<void> {
  const first = group[0];
  if (first === undefined) return;
  checkSignal(deps);
  if (checkLiveWork && (await skippedForLiveWork(deps, report, group, 'it has work in progress'))) return;
  const rows = new Map<ServicePartition, number>();
  for (const p of group) {
    const verified = await verifyMonth(deps, report, p, await copyMonth(deps, report, p));
    if (verified !== undefined) rows.set(p, verified);
  }
  const unverified = group.filter((p) => !rows.has(p)).map((p) => p.table);
  if (unverified.length > 0) {
    // The month's tables go together or not at all.
    for (const p of group)
      if (rows.has(p))
        addSkip(
          deps,
          report,
          p.table,
          first.month,
          'count_mismatch',
          `${unverified.join(', ')} did not verify`,
        );
    return;
  }
  if (deps.dryRun === true) {
    for (const p of group) addDrop(deps, report, 'service', p.table, p.month, rows.get(p) ?? 0);
    return;
  }
  // A dead letter replayed while the month was copied would be dropped with it: look again.
  if (checkLiveWork && (await skippedForLiveWork(deps, report, group, 'work started while it was copied')))
    return;
  for (const p of group) await dropOrSkip(deps, report, p, rows.get(p) ?? 0);
}

/** Partitions of the archived tables, and month tables a crash left detached but not dropped. */
async function servicePartitions(pool: Pool): Promise<ServicePartition[]> {
  const tables = archivedTables.map((t) => t.table);
  const attached: ServicePartition[] = (await listPartitions(pool, tables)).map((p) => ({
    name: p.name,
    table: p.table as ArchivedTable,
    month: p.month,
    state: p.detachPending ? 'detach_pending' : 'attached',
  }));
  const loose = await pool.query<{ name: string }>(
    `SELECT relname AS name FROM pg_class
      WHERE relkind = 'r' AND NOT relispartition AND relnamespace = 'public'::regnamespace
        AND relname ~ $1`,
    [`^(${tables.join('|')})_p[0-9]{4}_[0-9]{2}$`],
  );
  const detached = loose.rows.flatMap((r): ServicePartition[] => {
    const parsed = parsePartitionName(r.name);
    if (parsed === undefined || !tables.includes(parsed.table as ArchivedTable)) return [];
    return [{ name: r.name, table: parsed.table as ArchivedTable, month: parsed.month, state: 'detached' }];
  });
  return [...attached, ...detached].sort((a, b) => monthIndex(a.month) - monthIndex(b.month));
}

function monthsBefore(date: Date, months: number): Date {
  const d = new Date(date.getTime());
  d.setUTCMonth(d.getUTCMonth() - months);
  return d;
}

function monthIndex(m: Month): number {
  return m.year * 12 + m.month - 1;
}
