// The lifecycle job (docs/retention.md): months past SERVICE_RETENTION_DAYS are copied to the
// archive in bounded batches, verified by row counts, then detached and dropped from the service
// store; archive months past ARCHIVE_RETENTION_MONTHS are dropped; old idempotency keys are
// deleted. Data leaves by whole partitions, never by a mass DELETE. One run at a time across
// processes (advisory lock). A dry run reports the same plan and changes nothing.
import type { Logger } from 'pino';
import { withTransaction, type Pool } from '../db/pools.js';
import { sqlState } from '../db/pg-errors.js';
import {
  addMonths,
  ensureMonthPartitions,
  listPartitions,
  monthOf,
  monthStartDate,
  parsePartitionName,
  partitionName,
  type Month,
} from '../db/partitions.js';
import type { Metrics } from '../observability/metrics.js';
import { archivedTables, type ArchivedTable } from './archive-store.js';

export const lifecycleLockKey = 7_261_003; // arbitrary, constant: "herald retention"

export interface LifecycleSettings {
  serviceRetentionDays: number;
  archiveRetentionMonths: number;
  batchRows: number;
  idempotencyKeyRetentionDays: number;
}

export interface LifecycleDeps {
  pool: Pool;
  archivePool: Pool;
  now: () => Date;
  logger: Logger;
  metrics?: Metrics | undefined;
  settings: LifecycleSettings;
  dryRun?: boolean;
  /** Aborted at shutdown: the run stops after the batch in progress (nothing half-written). */
  signal?: AbortSignal | undefined;
}

export type SkipReason = 'live_work' | 'count_mismatch' | 'lock_timeout';

/** One thing the run did (in a dry run: would do), per table and month ('YYYY-MM'). */
export type LifecycleAction =
  | { action: 'copy'; table: ArchivedTable; month: string; rows: number }
  | { action: 'verify'; table: ArchivedTable; month: string; rows: number }
  | { action: 'drop'; store: 'service' | 'archive'; table: string; month: string; rows: number }
  | { action: 'skip'; table: string; month: string; reason: SkipReason; detail: string }
  | { action: 'delete_idempotency_keys'; rows: number };

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

const dayMs = 86_400_000;

/** How each table's rows are walked in a service partition: its primary key, or ctid. */
const copyKeys: Record<ArchivedTable, readonly (readonly [column: string, type: string])[] | 'ctid'> = {
  notifications: [
    ['id', 'text'],
    ['created_at', 'timestamptz'],
  ],
  recipients: [
    ['notification_id', 'text'],
    ['user_id', 'text'],
    ['notification_created_at', 'timestamptz'],
  ],
  deliveries: [
    ['id', 'uuid'],
    ['notification_created_at', 'timestamptz'],
  ],
  inbox_items: [
    ['user_id', 'text'],
    ['notification_id', 'text'],
    ['notification_created_at', 'timestamptz'],
  ],
  // Append-only and never updated, without a key: walked by physical position (TID range scans).
  delivery_events: 'ctid',
};

/** A service partition past retention: attached, being detached, or detached but not dropped. */
interface ServicePartition {
  name: string;
  table: ArchivedTable;
  month: Month;
  state: 'attached' | 'detach_pending' | 'detached';
}

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

class Interrupted extends Error {
  override readonly name = 'Interrupted';
}

function checkSignal(deps: LifecycleDeps): void {
  if (deps.signal?.aborted === true) throw new Interrupted('retention run stopped at shutdown');
}

async function runSteps(deps: LifecycleDeps, report: LifecycleReport): Promise<void> {
  await checkColumns(deps);
  await dropArchiveMonths(deps, report);
  await moveServiceMonths(deps, report);
  await dropInboxEvents(deps, report);
  await deleteIdempotencyKeys(deps, report);
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

// ---------------------------------------------------------------------------------------------
// Service store → archive

async function moveServiceMonths(deps: LifecycleDeps, report: LifecycleReport): Promise<void> {
  const due = (await servicePartitions(deps.pool)).filter((p) => endsBy(p.month, report.serviceCutoff));
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
  const month = monthLabel(first.month);
  if (checkLiveWork && (await skippedForLiveWork(deps, report, group, 'it has work in progress'))) return;
  const rows = new Map<ServicePartition, number>();
  for (const p of group) {
    const verified = await archivePartition(deps, report, p);
    if (verified !== undefined) rows.set(p, verified);
  }
  const unverified = group.filter((p) => !rows.has(p)).map((p) => p.table);
  if (unverified.length > 0) {
    // The month's tables go together or not at all.
    for (const p of group)
      if (rows.has(p))
        skip(deps, report, p.table, month, 'count_mismatch', `${unverified.join(', ')} did not verify`);
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

/** Whether the month has live work; if so it is reported as skipped and its archive copy forgotten. */
async function skippedForLiveWork(
  deps: LifecycleDeps,
  report: LifecycleReport,
  group: ServicePartition[],
  why: string,
): Promise<boolean> {
  const live = await liveWork(deps.pool, group);
  const first = group[0];
  if (live === undefined || first === undefined) return false;
  const month = monthLabel(first.month);
  for (const p of group) skip(deps, report, p.table, month, 'live_work', live);
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
  const deliveries = group.find((p) => p.table === 'deliveries');
  if (deliveries !== undefined) {
    const result = await pool.query<{ state: string; n: number }>(
      `SELECT state, count(*)::int AS n FROM ${deliveries.name}
        WHERE state IN ('pending', 'retrying', 'sending') GROUP BY state ORDER BY state`,
    );
    for (const r of result.rows) parts.push(`${String(r.n)} ${r.state} deliveries`);
  }
  const recipients = group.find((p) => p.table === 'recipients');
  if (recipients !== undefined) {
    const result = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${recipients.name} WHERE state = 'pending'`,
    );
    const n = result.rows[0]?.n ?? 0;
    if (n > 0) parts.push(`${String(n)} recipients not yet fanned out`);
  }
  return parts.length === 0 ? undefined : parts.join(', ');
}

/**
 * Copies what is left of one service partition and verifies the counts. Returns its row count
 * when the archive holds exactly that partition's rows, undefined when it does not.
 */
async function archivePartition(
  deps: LifecycleDeps,
  report: LifecycleReport,
  p: ServicePartition,
): Promise<number | undefined> {
  const month = monthLabel(p.month);
  const progress = await readProgress(deps.archivePool, p.table, p.month);
  const serviceRows = await countRows(deps.pool, p.name);
  let copiedRows = progress?.rowsCopied ?? 0;
  if (deps.dryRun === true) {
    const rows = Math.max(0, serviceRows - copiedRows);
    if (rows > 0) report.actions.push({ action: 'copy', table: p.table, month, rows });
  } else {
    deps.metrics?.retentionCopyRowsTotal.set(serviceRows);
    deps.metrics?.retentionCopyRowsDone.set(copiedRows);
    const copied = await copyPartition(deps, p, progress?.lastKey ?? null);
    if (copied > 0) {
      report.actions.push({ action: 'copy', table: p.table, month, rows: copied });
      deps.logger.info({ table: p.table, month, rows: copied }, 'retention: copied to the archive');
    }
    copiedRows = (await readProgress(deps.archivePool, p.table, p.month))?.rowsCopied ?? 0;
  }
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
    skip(deps, report, p.table, month, 'count_mismatch', detail);
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

/**
 * Copies the partition's rows after `lastKey` in batches of batchRows. Each batch is read from
 * the service store and written to the archive in one archive transaction together with its
 * progress row, so a crash leaves both consistent and the next run continues after the last
 * committed batch: every row exactly once. Returns the rows copied by this call.
 */
async function copyPartition(
  deps: LifecycleDeps,
  p: ServicePartition,
  lastKey: string | null,
): Promise<number> {
  const month = monthStartDate(p.month);
  await deps.archivePool.query(
    'INSERT INTO archive_progress (table_name, month) VALUES ($1, $2) ON CONFLICT DO NOTHING',
    [p.table, month],
  );
  const reader = batchReader(deps, p);
  let stored = lastKey;
  let cursor = lastKey;
  let copied = 0;
  let partitionReady = false;
  for (;;) {
    checkSignal(deps);
    const batch = await reader(cursor);
    if (batch === undefined) return copied;
    cursor = batch.last;
    if (batch.n === 0) continue; // an empty stretch of blocks (ctid walk)
    if (!partitionReady) {
      await ensureMonthPartitions(deps.archivePool, [{ table: p.table, month: p.month }]);
      partitionReady = true;
    }
    const expected = stored;
    await withTransaction(deps.archivePool, async (client) => {
      const current = await client.query<{ last_key: string | null }>(
        'SELECT last_key FROM archive_progress WHERE table_name = $1 AND month = $2 FOR UPDATE',
        [p.table, month],
      );
      if ((current.rows[0]?.last_key ?? null) !== expected)
        throw new Error(
          `archive progress of ${p.name} moved during this run: is another retention run copying it?`,
        );
      await client.query(
        `INSERT INTO ${p.table} SELECT * FROM json_populate_recordset(NULL::${p.table}, $1::json)`,
        [batch.rows],
      );
      await client.query(
        `UPDATE archive_progress SET last_key = $3, rows_copied = rows_copied + $4, verified_at = NULL,
                updated_at = now()
          WHERE table_name = $1 AND month = $2`,
        [p.table, month, batch.last, batch.n],
      );
    });
    stored = batch.last;
    copied += batch.n;
    deps.metrics?.retentionRowsCopied.inc({ table: p.table }, batch.n);
    deps.metrics?.retentionCopyRowsDone.inc(batch.n);
  }
}

interface Batch {
  /** The rows as one JSON array (text, so values pass through unparsed). */
  rows: string;
  n: number;
  /** Where the next batch starts: the last row's key (or ctid). */
  last: string;
}

/** Reads the next batch after a cursor; undefined once the partition is exhausted. */
function batchReader(
  deps: LifecycleDeps,
  p: ServicePartition,
): (cursor: string | null) => Promise<Batch | undefined> {
  const keys = copyKeys[p.table];
  const limit = deps.settings.batchRows;
  if (keys !== 'ctid') {
    const columns = keys.map(([c]) => c).join(', ');
    return async (cursor) => {
      const values = cursor === null ? [] : (JSON.parse(cursor) as string[]);
      const after =
        cursor === null
          ? ''
          : `WHERE (${columns}) > (${keys.map(([, type], i) => `$${String(i + 2)}::${type}`).join(', ')})`;
      const result = await deps.pool.query<{ rows: string; n: number; last: string | null }>(
        `WITH batch AS (SELECT ${columns}, to_json(t) AS r FROM ${p.name} t ${after} ORDER BY ${columns} LIMIT $1)
         SELECT coalesce(json_agg(r), '[]')::text AS rows, count(*)::int AS n,
                (SELECT json_build_array(${columns})::text FROM batch
                  ORDER BY ${keys.map(([c]) => `${c} DESC`).join(', ')} LIMIT 1) AS last
           FROM batch`,
        [limit, ...values],
      );
      const row = result.rows[0];
      if (row === undefined || row.n === 0 || row.last === null) return undefined;
      return { rows: row.rows, n: row.n, last: row.last };
    };
  }
  // ctid: a TID range scan over a window of blocks sized to hold about one batch, walked to the
  // partition's last block (counted once: the month is closed, so nothing is appended).
  let size: { blocks: number; window: number } | undefined;
  return async (cursor) => {
    size ??= await blockWindow(deps.pool, p.name, limit);
    const from = cursor ?? '(0,0)';
    const block = blockOf(from);
    if (block >= size.blocks) return undefined;
    const to = `(${String(block + size.window)},0)`;
    const result = await deps.pool.query<{ rows: string; n: number; last: string | null }>(
      `WITH batch AS (SELECT t.ctid AS c, to_json(t) AS r FROM ${p.name} t
                       WHERE t.ctid > $2::tid AND t.ctid < $3::tid ORDER BY t.ctid LIMIT $1)
       SELECT coalesce(json_agg(r), '[]')::text AS rows, count(*)::int AS n, max(c)::text AS last FROM batch`,
      [limit, from, to],
    );
    const row = result.rows[0];
    const n = row?.n ?? 0;
    // A full batch may stop inside the window; otherwise the whole window is done.
    const last = n === limit && row?.last != null ? row.last : to;
    return { rows: row?.rows ?? '[]', n, last };
  };
}

async function blockWindow(
  pool: Pool,
  name: string,
  batchRows: number,
): Promise<{ blocks: number; window: number }> {
  const result = await pool.query<{ blocks: number; per_block: number }>(
    `SELECT (pg_relation_size($1::regclass) / current_setting('block_size')::int)::int AS blocks,
            CASE WHEN relpages > 0 AND reltuples > 0 THEN reltuples / relpages ELSE 50 END AS per_block
       FROM pg_class WHERE oid = $1::regclass`,
    [name],
  );
  const row = result.rows[0];
  const perBlock = Math.max(1, row?.per_block ?? 50);
  return { blocks: row?.blocks ?? 0, window: Math.max(1, Math.ceil(batchRows / perBlock)) };
}

function blockOf(tid: string): number {
  return Number(/^\((\d+),/.exec(tid)?.[1] ?? '0');
}

type DroppablePartition = Omit<ServicePartition, 'table'> & { table: string };

/** Drops a service partition and reports it, or reports the detach's lock timeout as a skip. */
async function dropOrSkip(
  deps: LifecycleDeps,
  report: LifecycleReport,
  p: DroppablePartition,
  rows: number,
): Promise<void> {
  if (await dropServicePartition(deps, p)) addDrop(deps, report, 'service', p.table, p.month, rows);
  else
    skip(
      deps,
      report,
      p.table,
      monthLabel(p.month),
      'lock_timeout',
      'the detach waited too long for other sessions',
    );
}

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
    return true;
  } catch (error) {
    if (sqlState(error) === lockNotAvailable) return false;
    throw error;
  } finally {
    await client.query('RESET lock_timeout').catch(() => {
      broken = true;
    });
    client.release(broken);
  }
}

const lockNotAvailable = '55P03';

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

// ---------------------------------------------------------------------------------------------
// Archive retention, inbox events, idempotency keys

async function dropArchiveMonths(deps: LifecycleDeps, report: LifecycleReport): Promise<void> {
  const tables = archivedTables.map((t) => t.table);
  const due = (await listPartitions(deps.archivePool, tables)).filter((p) =>
    endsBy(p.month, report.archiveCutoff),
  );
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
      if (sqlState(error) === lockNotAvailable) return false;
      throw error;
    });
    if (dropped) addDrop(deps, report, 'archive', p.table, p.month, rows);
    else
      skip(
        deps,
        report,
        p.table,
        monthLabel(p.month),
        'lock_timeout',
        'support lookups held the archive table',
      );
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

/** The realtime stream is not archived: its months past service retention are dropped. */
async function dropInboxEvents(deps: LifecycleDeps, report: LifecycleReport): Promise<void> {
  const due = (await listPartitions(deps.pool, ['inbox_events'])).filter((p) =>
    endsBy(p.month, report.serviceCutoff),
  );
  for (const p of due) {
    const rows = await countRows(deps.pool, p.name);
    if (deps.dryRun === true) {
      addDrop(deps, report, 'service', p.table, p.month, rows);
      continue;
    }
    const state = p.detachPending ? 'detach_pending' : 'attached';
    await dropOrSkip(deps, report, { name: p.name, table: p.table, month: p.month, state }, rows);
  }
}

/**
 * idempotency_keys is unpartitioned (a key must be unique across months) and holds one row per
 * request and day, so old keys go by a bounded DELETE on its created_at index.
 */
async function deleteIdempotencyKeys(deps: LifecycleDeps, report: LifecycleReport): Promise<void> {
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

// ---------------------------------------------------------------------------------------------
// Helpers

function addDrop(
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

function skip(
  deps: LifecycleDeps,
  report: LifecycleReport,
  table: string,
  month: string,
  reason: SkipReason,
  detail: string,
): void {
  report.actions.push({ action: 'skip', table, month, reason, detail });
  if (deps.dryRun !== true) deps.metrics?.retentionPartitionsSkipped.inc({ reason });
}

function logSummary(logger: Logger, report: LifecycleReport): void {
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
    },
    report.dryRun ? 'retention dry run finished' : 'retention run finished',
  );
}

interface Progress {
  lastKey: string | null;
  rowsCopied: number;
}

async function readProgress(archive: Pool, table: string, month: Month): Promise<Progress | undefined> {
  const result = await archive.query<{ last_key: string | null; rows_copied: number }>(
    'SELECT last_key, rows_copied FROM archive_progress WHERE table_name = $1 AND month = $2',
    [table, monthStartDate(month)],
  );
  const row = result.rows[0];
  return row === undefined ? undefined : { lastKey: row.last_key, rowsCopied: row.rows_copied };
}

async function countRows(pool: Pool, name: string): Promise<number> {
  const result = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${name}`);
  return result.rows[0]?.n ?? 0;
}

function partitionKey(table: ArchivedTable): string {
  return archivedTables.find((t) => t.table === table)?.partitionKey ?? 'created_at';
}

/** Whether the month's whole range ends at or before `cutoff`. */
function endsBy(month: Month, cutoff: Date): boolean {
  return monthStartDate(addMonths(month, 1)).getTime() <= cutoff.getTime();
}

function monthsBefore(date: Date, months: number): Date {
  const d = new Date(date.getTime());
  d.setUTCMonth(d.getUTCMonth() - months);
  return d;
}

function monthIndex(m: Month): number {
  return m.year * 12 + m.month - 1;
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
    }
  }
  if (report.actions.length === 0) lines.push('nothing to do');
  return lines;
}
