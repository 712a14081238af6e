// The console overview's reads and upkeep: counts per minute (or hour), lane, channel and state
// from overview_counts (kept by triggers in the same transactions as the counted rows;
// migration 0013), dead letters, and provider health as the worker processes report it. (The
// work waiting per lane is readBacklog in delivery-store.ts, shared with the metrics.)
import type { Pool } from '../pools.js';

export interface CountRow {
  bucket: Date;
  lane: string;
  /** '' for accepted notifications (counted once, whatever their channels). */
  channel: string;
  state: string;
  count: number;
}

/**
 * Counts in [from, to), summed into steps of `stepSeconds` starting at `from`. Minutes older
 * than the previous hour are kept per hour, so a step shorter than an hour is exact only for
 * the last hour.
 */
export async function readOverviewCounts(
  pool: Pool,
  from: Date,
  to: Date,
  stepSeconds: number,
): Promise<CountRow[]> {
  const result = await pool.query<CountRow>(
    `SELECT date_bin(make_interval(secs => $3), bucket, $1) AS bucket, lane, channel, state, sum(count)::float8 AS count
       FROM overview_counts
      WHERE bucket >= $1 AND bucket < $2
      GROUP BY 1, 2, 3, 4
      ORDER BY 1, 2, 3, 4`,
    [from, to, stepSeconds],
  );
  return result.rows;
}

/** Dead letters waiting for a replay, through the partial index of dead deliveries. */
export async function countDeadLetters(pool: Pool): Promise<number> {
  const result = await pool.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM deliveries WHERE dead_at IS NOT NULL AND state = 'dead'",
  );
  return result.rows[0]?.n ?? 0;
}

/** One worker's view of one provider key, over the period since its previous report. */
export interface ProviderReport {
  key: string;
  breakerState: 'closed' | 'open' | 'half_open';
  calls: number;
  failures: number;
  latencyMsSum: number;
  latencyMsMax: number;
  periodMs: number;
}

/** Replaces a worker's reports (one row per provider key it has called). */
export async function writeProviderReports(
  pool: Pool,
  workerId: string,
  reports: readonly ProviderReport[],
): Promise<void> {
  if (reports.length === 0) return;
  await pool.query(
    `INSERT INTO provider_health AS p (worker_id, provider_key, breaker_state, calls, failures, latency_ms_sum,
                                       latency_ms_max, period_ms, reported_at)
     SELECT $1, * , now() FROM unnest($2::text[], $3::text[], $4::int[], $5::int[], $6::float8[], $7::float8[], $8::int[])
     ON CONFLICT (worker_id, provider_key) DO UPDATE SET
       breaker_state = excluded.breaker_state, calls = excluded.calls, failures = excluded.failures,
       latency_ms_sum = excluded.latency_ms_sum, latency_ms_max = excluded.latency_ms_max,
       period_ms = excluded.period_ms, reported_at = excluded.reported_at`,
    [
      workerId,
      reports.map((r) => r.key),
      reports.map((r) => r.breakerState),
      reports.map((r) => r.calls),
      reports.map((r) => r.failures),
      reports.map((r) => r.latencyMsSum),
      reports.map((r) => r.latencyMsMax),
      reports.map((r) => r.periodMs),
    ],
  );
}

export interface ProviderHealth {
  key: string;
  /** The worst breaker state any reporting worker holds. */
  breakerState: 'closed' | 'open' | 'half_open';
  /** Workers whose report is recent. */
  workers: number;
  calls: number;
  failures: number;
  latencyMsMean: number | null;
  latencyMsMax: number | null;
  reportedAt: Date;
}

/** Provider health from the reports of the last `withinMs` (older ones: workers gone). */
export async function readProviderHealth(pool: Pool, withinMs: number): Promise<ProviderHealth[]> {
  const result = await pool.query<ProviderHealth>(
    `SELECT provider_key AS key,
            CASE WHEN bool_or(breaker_state = 'open') THEN 'open'
                 WHEN bool_or(breaker_state = 'half_open') THEN 'half_open' ELSE 'closed' END AS "breakerState",
            count(*)::int AS workers, sum(calls)::int AS calls, sum(failures)::int AS failures,
            (sum(latency_ms_sum) / nullif(sum(calls), 0))::float8 AS "latencyMsMean",
            (CASE WHEN sum(calls) > 0 THEN max(latency_ms_max) END)::float8 AS "latencyMsMax",
            max(reported_at) AS "reportedAt"
       FROM provider_health
      WHERE reported_at > now() - make_interval(secs => $1 / 1000.0)
      GROUP BY provider_key
      ORDER BY provider_key`,
    [withinMs],
  );
  return result.rows;
}

/**
 * Upkeep: folds the minutes of every hour before the previous one into their hour (one row per
 * lane, channel and state), drops counts older than `keepSince`, and forgets provider reports
 * of workers silent since `reportsSince`. Sums are unchanged by the folding.
 */
export async function compactOverview(pool: Pool, keepSince: Date, reportsSince: Date): Promise<void> {
  await pool.query(
    `WITH folded AS (
       DELETE FROM overview_counts
        WHERE bucket < date_trunc('hour', now()) - interval '1 hour'
          AND (shard <> 0 OR bucket <> date_trunc('hour', bucket))
       RETURNING bucket, lane, channel, state, count
     )
     INSERT INTO overview_counts AS o (bucket, lane, channel, state, shard, count)
     SELECT date_trunc('hour', bucket), lane, channel, state, 0, sum(count) FROM folded
      GROUP BY 1, 2, 3, 4
      ORDER BY 1, 2, 3, 4
     ON CONFLICT (bucket, lane, channel, state, shard) DO UPDATE SET count = o.count + excluded.count`,
  );
  await pool.query('DELETE FROM overview_counts WHERE bucket < $1', [keepSince]);
  await pool.query('DELETE FROM provider_health WHERE reported_at < $1', [reportsSince]);
}
