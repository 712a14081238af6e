// Frequency-cap usage: how many notifications each user already has in a cap's window, counted
// from the deliveries table under a per-user lock held by the fan-out batch's transaction.
import type { PoolClient } from '../pools.js';
import type { CapQuery } from '../../domain/fan-out-decision.js';

/**
 * Locks each user's cap usage in each lane for this transaction (so two fan-out batches cannot
 * both see room for the last slot), then counts their notifications per cap query and window, from the
 * window that holds `now` onwards (deferred deliveries hold a slot in a later window). Returns,
 * per query index, window start (ms) → notifications counted. Suppressed and canceled
 * deliveries do not count; a notification counts once however many devices it went to.
 * Caps count per lane, so the lock is per user and lane: a transactional batch never waits
 * for a bulk batch that holds the same user.
 */
export async function lockAndCountCapUsage(
  client: PoolClient,
  queries: readonly CapQuery[],
  now: Date,
): Promise<Map<number, Map<number, number>>> {
  const usage = new Map<number, Map<number, number>>();
  if (queries.length === 0) return usage;
  const keys = [...new Set(queries.map((q) => `${q.lane}:${q.userId}`))].sort();
  await client.query(
    `SELECT pg_advisory_xact_lock(hashtextextended('herald_cap:' || k, 0))
       FROM (SELECT k FROM unnest($1::text[]) AS k ORDER BY k) AS sorted`,
    [keys],
  );
  const result = await client.query<{ i: number; bucket: Date; n: string }>(
    `SELECT t.i, date_trunc(t.per, d.run_at, t.tz) AS bucket, count(DISTINCT d.notification_id) AS n
       FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
              AS t(i, user_id, category, channel, lane, per, tz)
       JOIN deliveries d ON d.user_id = t.user_id AND d.category = t.category AND d.channel = t.channel
                        AND d.lane = t.lane AND d.run_at >= date_trunc(t.per, $8::timestamptz, t.tz)
                        AND d.state NOT IN ('suppressed', 'canceled')
      GROUP BY t.i, bucket`,
    [
      queries.map((_, i) => i),
      queries.map((q) => q.userId),
      queries.map((q) => q.category),
      queries.map((q) => q.channel),
      queries.map((q) => q.lane),
      queries.map((q) => q.per),
      queries.map((q) => q.timeZone),
      now,
    ],
  );
  for (const r of result.rows) {
    const map = usage.get(r.i) ?? new Map<number, number>();
    map.set(r.bucket.getTime(), Number(r.n));
    usage.set(r.i, map);
  }
  return usage;
}
