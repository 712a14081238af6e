// Counting heap-only (HOT) updates inside a transaction: the backend's not yet flushed
// statistics of one table, read before and after the statements under test.
import type { PoolClient } from '../../src/db/pools.js';

export interface UpdateCounts {
  updated: number;
  hot: number;
}

/** Rows of `relation` this transaction updated so far, and how many of those were heap-only. */
export async function xactUpdates(client: PoolClient, relation: string): Promise<UpdateCounts> {
  const r = await client.query<UpdateCounts>(
    `SELECT pg_stat_get_xact_tuples_updated($1::regclass)::int AS updated,
            pg_stat_get_xact_tuples_hot_updated($1::regclass)::int AS hot`,
    [relation],
  );
  return r.rows[0] ?? { updated: -1, hot: -1 };
}

/** The updates between two readings. */
export const updatesSince = (now: UpdateCounts, before: UpdateCounts): UpdateCounts => ({
  updated: now.updated - before.updated,
  hot: now.hot - before.hot,
});
