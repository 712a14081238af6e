// Monthly range partitions of the time-partitioned tables, created ahead of need.
// Names and bounds derive from dates only, never from input.
import { withTransaction, type Pool } from './pools.js';

export const partitionedTables = [
  { table: 'notifications' },
  { table: 'recipients' },
  { table: 'deliveries' },
  { table: 'inbox_items' },
  { table: 'delivery_events' },
  { table: 'inbox_events' },
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

function monthStart(m: Month): string {
  return `${m.year}-${String(m.month).padStart(2, '0')}-01 00:00:00+00`;
}

/**
 * Ensures partitions exist for every month from `from` through `monthsAhead` months after
 * `now`. Creating a partition locks its parent briefly, so only missing ones are created.
 * Returns the names created.
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
  const wanted = partitionedTables.flatMap(({ table }) =>
    months.map((m) => ({ table, month: m, name: partitionName(table, m) })),
  );
  const existing = await existingPartitions(pool);
  const missing = wanted.filter((w) => !existing.has(w.name));
  if (missing.length === 0) return [];
  return withTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [partitionLockKey]);
    const created: string[] = [];
    for (const p of missing) {
      const exists = await client.query('SELECT 1 FROM pg_class WHERE relname = $1', [p.name]);
      if (exists.rowCount !== 0) continue;
      await client.query(
        `CREATE TABLE ${p.name} PARTITION OF ${p.table} FOR VALUES FROM ('${monthStart(p.month)}') TO ('${monthStart(addMonths(p.month, 1))}')`,
      );
      created.push(p.name);
    }
    return created;
  });
}

export async function existingPartitions(pool: Pool): Promise<Set<string>> {
  const result = await pool.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_inherits i
       JOIN pg_class c ON c.oid = i.inhrelid
       JOIN pg_class p ON p.oid = i.inhparent
      WHERE p.relname = ANY($1::text[])`,
    [partitionedTables.map((t) => t.table)],
  );
  return new Set(result.rows.map((r) => r.name));
}
