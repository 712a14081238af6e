// What a lifecycle run did, or in a dry run would do (docs/retention.md "Dry run"): the actions
// it records as it goes, with their metrics and log lines, its summary, and the plain lines
// `herald retention [--dry-run]` prints.
import type { Logger } from 'pino';
import type { Month } from '../db/partitions.js';
import type { ArchivedTable } from './archive-store.js';
import type { LifecycleDeps } from './lifecycle-deps.js';

export type SkipReason = 'live_work' | 'count_mismatch' | 'lock_timeout';

/** One thing the run did (in a dry run: would do), per table and month ('YYYY-MM'). */
export type LifecycleAction =
  | { action: 'copy'; table: ArchivedTable; month: string; rows: number }
  | { action: 'verify'; table: ArchivedTable; month: string; rows: number }
  | { action: 'drop'; store: 'service' | 'archive'; table: string; month: string; rows: number }
  | { action: 'skip'; table: string; month: string; reason: SkipReason; detail: string }
  | { action: 'delete_idempotency_keys'; rows: number }
  | { action: 'delete_audit_entries'; rows: number };

export interface LifecycleReport {
  dryRun: boolean;
  /** false: another process held the retention lock, and nothing was done. */
  ran: boolean;
  /** true: the run stopped early at shutdown; the next run continues where it stopped. */
  interrupted: boolean;
  /** Service months ending at or before this leave the service store. */
  serviceCutoff: Date;
  /** Archive months ending at or before this are dropped. */
  archiveCutoff: Date;
  /** Idempotency keys created before this are deleted. */
  idempotencyCutoff: Date;
  actions: LifecycleAction[];
}

/** Records a dropped partition (in a dry run: one it would drop); a real drop is counted and logged. */
export function addDrop(
  deps: LifecycleDeps,
  report: LifecycleReport,
  store: 'service' | 'archive',
  table: string,
  month: Month,
  rows: number,
): void {
  report.actions.push({ action: 'drop', store, table, month: monthLabel(month), rows });
  if (deps.dryRun === true) return;
  deps.metrics?.retentionPartitionsDropped.inc({ store });
  deps.logger.info({ store, table, month: monthLabel(month), rows }, 'retention: dropped partition');
}

/** Records a partition left in place, and counts it unless this is a dry run. */
export function addSkip(
  deps: LifecycleDeps,
  report: LifecycleReport,
  table: string,
  month: Month,
  reason: SkipReason,
  detail: string,
): void {
  report.actions.push({ action: 'skip', table, month: monthLabel(month), reason, detail });
  if (deps.dryRun !== true) deps.metrics?.retentionPartitionsSkipped.inc({ reason });
}

export function logSummary(logger: Logger, report: LifecycleReport): void {
  const count = (a: LifecycleAction['action']) => report.actions.filter((x) => x.action === a).length;
  logger.info(
    {
      dryRun: report.dryRun,
      interrupted: report.interrupted,
      rowsCopied: report.actions.reduce((n, a) => n + (a.action === 'copy' ? a.rows : 0), 0),
      partitionsDropped: count('drop'),
      partitionsSkipped: count('skip'),
      idempotencyKeysDeleted: report.actions.reduce(
        (n, a) => n + (a.action === 'delete_idempotency_keys' ? a.rows : 0),
        0,
      ),
      auditEntriesDeleted: report.actions.reduce(
        (n, a) => n + (a.action === 'delete_audit_entries' ? a.rows : 0),
        0,
      ),
    },
    report.dryRun ? 'retention dry run finished' : 'retention run finished',
  );
}

export function monthLabel(m: Month): string {
  return `${String(m.year)}-${String(m.month).padStart(2, '0')}`;
}

/** The report as plain lines, for `herald retention [--dry-run]`. */
export function formatLifecycleReport(report: LifecycleReport): string[] {
  if (!report.ran) return ['retention: another process is running it; nothing done'];
  const would = report.dryRun ? 'would ' : '';
  const lines = [
    `${report.dryRun ? 'dry run: ' : ''}service store keeps months ending after ${report.serviceCutoff.toISOString()}, the archive months ending after ${report.archiveCutoff.toISOString()}`,
  ];
  for (const a of report.actions) {
    switch (a.action) {
      case 'copy':
        lines.push(`${would}copy    ${a.table} ${a.month}: ${String(a.rows)} rows to the archive`);
        break;
      case 'verify':
        lines.push(`verified ${a.table} ${a.month}: ${String(a.rows)} rows in both stores`);
        break;
      case 'drop':
        lines.push(`${would}drop    ${a.store} ${a.table} ${a.month} (${String(a.rows)} rows)`);
        break;
      case 'skip':
        lines.push(`skip    ${a.table} ${a.month}: ${a.reason.replace('_', ' ')} (${a.detail})`);
        break;
      case 'delete_idempotency_keys':
        lines.push(
          `${would}delete  ${String(a.rows)} idempotency keys created before ${report.idempotencyCutoff.toISOString()}`,
        );
        break;
      case 'delete_audit_entries':
        lines.push(
          `${would}delete  ${String(a.rows)} audit log entries from before ${report.archiveCutoff.toISOString()}`,
        );
        break;
    }
  }
  if (report.actions.length === 0) lines.push('nothing to do');
  return lines;
}
