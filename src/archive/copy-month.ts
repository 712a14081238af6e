// Copying one service partition (a table's month) to the archive in bounded batches, each
// committed in the archive together with its progress row, so every row lands there exactly
// once across crashes and restarts (docs/retention.md "Exactly-once copy").
import { withTransaction, type Pool } from '../db/pools.js';
import { ensureMonthPartitions, monthStartDate, type Month } from '../db/partitions.js';
import type { ArchivedTable } from './archive-store.js';
import type { LifecycleDeps } from './lifecycle-deps.js';
import { monthLabel, type LifecycleReport } from './lifecycle-report.js';

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
export interface ServicePartition {
  name: string;
  table: ArchivedTable;
  month: Month;
  state: 'attached' | 'detach_pending' | 'detached';
}

/** Thrown between batches at shutdown: the run ends as interrupted, and the next continues. */
export class Interrupted extends Error {
  override readonly name = 'Interrupted';
}

export function checkSignal(deps: LifecycleDeps): void {
  if (deps.signal?.aborted === true) throw new Interrupted('retention run stopped at shutdown');
}

/** A table-month's counts once its copy is done, for its verification. */
export interface CopyCounts {
  /** The service partition's rows, counted before the copy. */
  serviceRows: number;
  /** The rows the archive's progress counts as copied (in a dry run: before this run). */
  copiedRows: number;
}

/**
 * Copies what is left of one service partition to the archive (a dry run reports what it would
 * copy), and returns the counts its verification compares.
 */
export async function copyMonth(
  deps: LifecycleDeps,
  report: LifecycleReport,
  p: ServicePartition,
): Promise<CopyCounts> {
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
  return { serviceRows, copiedRows };
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

export async function countRows(pool: Pool, name: string): Promise<number> {
  const result = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${name}`);
  return result.rows[0]?.n ?? 0;
}
