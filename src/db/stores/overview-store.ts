// The console overview's reads and upkeep: counts per minute (or hour), lane, channel and state
// from overview_counts (kept by triggers in the same transactions as the counted rows;
// migration 0013), the work waiting per lane, dead letters, and provider health as the worker
// processes report it.
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

export interface WaitingWork {
  lane: string;
  /** Recipients of accepted notifications, due and not yet fanned out into deliveries. */
  recipients: number;
  oldestRecipientSeconds: number;
  /** Deliveries due and not yet handed to a provider (pending or retrying). */
  deliveries: number;
  oldestDeliverySeconds: number;
  /** Deliveries in a provider call now (leased by a worker). */
  sending: number;
}

/** The work waiting per lane, read through the partial indexes of waiting rows. */
export async function readWaitingWork(pool: Pool): Promise<WaitingWork[]> {
  const result = await pool.query<WaitingWork>(
    `SELECT l.lane, r.n AS recipients, r.oldest AS "oldestRecipientSeconds",
            d.n AS deliveries, d.oldest AS "oldestDeliverySeconds", s.n AS sending
       FROM (VALUES ('transactional'), ('bulk')) AS l(lane)
       CROSS JOIN LATERAL (
         SELECT count(*)::int AS n, coalesce(extract(epoch FROM now() - min(send_at)), 0)::float8 AS oldest
           FROM recipients WHERE state = 'pending' AND lane = l.lane AND send_at <= now()) r
       CROSS JOIN LATERAL (
         SELECT count(*)::int AS n, coalesce(extract(epoch FROM now() - min(run_at)), 0)::float8 AS oldest
           FROM deliveries WHERE state IN ('pending', 'retrying') AND lane = l.lane AND run_at <= now()) d
       CROSS JOIN LATERAL (
         SELECT count(*)::int AS n FROM deliveries WHERE state = 'sending' AND lane = l.lane) s`,
  );
  return result.rows.map((r) => ({
    ...r,
    oldestRecipientSeconds: Math.max(0, r.oldestRecipientSeconds),
    oldestDeliverySeconds: Math.max(0, r.oldestDeliverySeconds),
  }));
}

/** Dead letters waiting for a replay, through the partial index of dead deliveries. */
export async function countDeadLetters(pool: Pool): Promise<number> {
  const result = await pool.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM deliveries WHERE state = 'dead'",
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
