// Monthly range partitions of the time-partitioned tables, created ahead of need.
// Names and bounds derive from dates only, never from input.
import { withTransaction, type Pool, type PoolClient } from './pools.js';

export const partitionedTables = [
  { table: 'notifications' },
  { table: 'recipients' },
  { table: 'deliveries' },
  { table: 'inbox_items' },
  { table: 'delivery_events' },
  { table: 'inbox_events' },
  { table: 'engagement_events' },
] as const;

const partitionLockKey = 7_261_002;

export interface Month {
  year: number;
  month: number; // 1–12
}

export function monthOf(date: Date): Month {
  return { year: date.getUTCFullYear(), month: date.getUTCMonth() + 1 };
}

export function addMonths(m: Month, n: number): Month {
  const index = m.year * 12 + (m.month - 1) + n;
  return { year: Math.floor(index / 12), month: (index % 12) + 1 };
}

export function partitionName(table: string, m: Month): string {
  return `${table}_p${m.year}_${String(m.month).padStart(2, '0')}`;
}

/** The first instant of a month, as a timestamptz literal. */
function monthStart(m: Month): string {
  return `${m.year}-${String(m.month).padStart(2, '0')}-01 00:00:00+00`;
}

/** The first instant of a month, as a Date. */
export function monthStartDate(m: Month): Date {
  return new Date(Date.UTC(m.year, m.month - 1, 1));
}

/** Whether the month's whole range ends at or before `cutoff`. */
export function monthEndsBy(m: Month, cutoff: Date): boolean {
  return monthStartDate(addMonths(m, 1)).getTime() <= cutoff.getTime();
}

/** A partition's name back to its table and month; undefined for a name partitions.ts did not make. */
export function parsePartitionName(name: string): { table: string; month: Month } | undefined {
  const match = /^(.+)_p(\d{4})_(\d{2})$/.exec(name);
  if (match === null) return undefined;
  const month = Number(match[3]);
  if (month < 1 || month > 12) return undefined;
  return { table: match[1] ?? '', month: { year: Number(match[2]), month } };
}

/**
 * Ensures partitions exist for every month from `from` through `monthsAhead` months after
 * `now`. Creating a partition locks its parent briefly, so only missing ones are created.
 * Returns the names created. Retention drops months that passed SERVICE_RETENTION_DAYS, so
 * callers pass a `from` in the past only for databases retention does not run on (tests).
 */
export async function ensurePartitions(
  pool: Pool,
  now: Date,
  monthsAhead: number,
  from: Date = now,
): Promise<string[]> {
  const months: Month[] = [];
  const last = addMonths(monthOf(now), monthsAhead);
  for (let m = monthOf(from); m.year * 12 + m.month <= last.year * 12 + last.month; m = addMonths(m, 1))
    months.push(m);
  return ensureMonthPartitions(
    pool,
    partitionedTables.flatMap(({ table }) => months.map((month) => ({ table, month }))),
  );
}

/**
 * Creates the month partitions of `wanted` that are missing (in any database with tables
 * partitioned by month: the service store and the archive). Returns the names created.
 */
export async function ensureMonthPartitions(
  pool: Pool,
  wanted: readonly { table: string; month: Month }[],
): Promise<string[]> {
  const existing = await existingPartitions(
    pool,
    wanted.map((w) => w.table),
  );
  const missing = wanted
    .map((w) => ({ ...w, name: partitionName(w.table, w.month) }))
    .filter((w) => !existing.has(w.name));
  if (missing.length === 0) return [];
  return withTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [partitionLockKey]);
    const storage = await storageParameters(client);
    const created: string[] = [];
    for (const p of missing) {
      const exists = await client.query('SELECT 1 FROM pg_class WHERE relname = $1', [p.name]);
      if (exists.rowCount !== 0) continue;
      await client.query(
        `CREATE TABLE ${p.name} PARTITION OF ${p.table} FOR VALUES FROM ('${monthStart(p.month)}') TO ('${monthStart(addMonths(p.month, 1))}')`,
      );
      const parameters = storage.get(p.table);
      if (parameters !== undefined) await client.query(`ALTER TABLE ${p.name} SET (${parameters})`);
      created.push(p.name);
    }
    return created;
  });
}

/**
 * The storage parameters each partitioned table's partitions get (fillfactor, autovacuum), from
 * partition_settings (migration 0030; its CHECK admits only `name = number` lists). The archive
 * has no such table: its partitions keep the defaults.
 */
async function storageParameters(client: PoolClient): Promise<Map<string, string>> {
  const table = await client.query<{ present: boolean }>(
    "SELECT to_regclass('partition_settings') IS NOT NULL AS present",
  );
  if (table.rows[0]?.present !== true) return new Map();
  const rows = await client.query<{ parent: string; storage_parameters: string }>(
    'SELECT parent, storage_parameters FROM partition_settings',
  );
  return new Map(rows.rows.map((r) => [r.parent, r.storage_parameters]));
}

export async function existingPartitions(
  pool: Pool,
  tables: readonly string[] = partitionedTables.map((t) => t.table),
): Promise<Set<string>> {
  return new Set((await listPartitions(pool, tables)).map((p) => p.name));
}

export interface PartitionInfo {
  name: string;
  table: string;
  month: Month;
  /** A DETACH … CONCURRENTLY was interrupted: the partition must be detached with FINALIZE. */
  detachPending: boolean;
}

/** The month partitions attached to `tables` (including those being detached), oldest first. */
export async function listPartitions(pool: Pool, tables: readonly string[]): Promise<PartitionInfo[]> {
  const result = await pool.query<{ name: string; parent: string; detach_pending: boolean }>(
    `SELECT c.relname AS name, p.relname AS parent, i.inhdetachpending AS detach_pending
       FROM pg_inherits i
       JOIN pg_class c ON c.oid = i.inhrelid
       JOIN pg_class p ON p.oid = i.inhparent
      WHERE p.relname = ANY($1::text[]) AND p.relnamespace = 'public'::regnamespace
      ORDER BY c.relname`,
    [[...new Set(tables)]],
  );
  const partitions: PartitionInfo[] = [];
  for (const row of result.rows) {
    const parsed = parsePartitionName(row.name);
    if (parsed?.table !== row.parent) continue;
    partitions.push({
      name: row.name,
      table: row.parent,
      month: parsed.month,
      detachPending: row.detach_pending,
    });
  }
  return partitions.sort((a, b) => a.month.year * 12 + a.month.month - (b.month.year * 12 + b.month.month));
}
