// Engagement events (opens, clicks, reads; stored once each) and the engagement figures kept by
// migration 0019's triggers in engagement_counts (docs/tracking.md).
import type { EngagementGrouping, EngagementKind } from '../../domain/engagement.js';
import { withTransaction, type Pool } from '../pools.js';

export interface EngagementReport {
  /** The delivery: by id, or an inbox item's in-app delivery by notification and user. */
  delivery: { id: string } | { inApp: { notificationId: string; userId: string } };
  kind: EngagementKind;
  /** Only a delivery of this user (a user's own report). */
  userId?: string | undefined;
  /** Only a delivery of the service with this notification id prefix (a service key's report). */
  scope?: string | undefined;
  /** Clicks: the link's position in the rendered message; -1 for an app's own click. */
  linkIndex?: number;
  linkUrl?: string | undefined;
  userAgent?: string | undefined;
  /** Whether the pixel's fetcher is a known prefetching proxy (an open is then a prefetch). */
  prefetchAgent?: boolean;
  /** When it happened, as the reporter says; now when not given. */
  occurredAt?: Date | undefined;
  /** An email open this soon after the send is a prefetch (TRACKING_PREFETCH_SECONDS; 0: none). */
  prefetchWindowSeconds?: number;
}

export type EngagementRecorded = 'recorded' | 'repeated' | 'not_found';

/**
 * Records an engagement event once: the delivery's service, template, category and channel come
 * from its rows. An email open within the prefetch window of the send, or fetched by a known
 * proxy, is recorded as a prefetch.
 */
export async function recordEngagement(pool: Pool, report: EngagementReport): Promise<EngagementRecorded> {
  const byId = 'id' in report.delivery;
  const result = await pool.query<{ found: number; inserted: number }>(
    `WITH d AS (
       SELECT d.id, d.notification_id, d.notification_created_at, d.user_id, d.service_id, d.channel,
              n.template, coalesce(d.category, n.category) AS category,
              (SELECT min(e.created_at) FROM delivery_events e WHERE e.delivery_id = d.id AND e.state = 'sent') AS sent_at
         FROM deliveries d
         JOIN notifications n ON n.id = d.notification_id AND n.created_at = d.notification_created_at
        WHERE ${byId ? 'd.id = $1::uuid' : "d.notification_id = $1 AND d.user_id = $2 AND d.channel = 'in_app'"}
          AND ($2::text IS NULL OR d.user_id = $2)
          AND ($3::text IS NULL OR starts_with(d.notification_id, $3))
        LIMIT 1
     ), ins AS (
       INSERT INTO engagement_events (delivery_id, notification_id, notification_created_at, user_id, service_id,
                                      channel, kind, link_index, link_url, template, category, prefetch,
                                      user_agent, occurred_at)
       SELECT id, notification_id, notification_created_at, user_id, service_id, channel, $4, $5, $6, template,
              category,
              $4 = 'opened' AND channel = 'email'
                AND ($7 OR (sent_at IS NOT NULL AND coalesce($8, now()) - sent_at < make_interval(secs => $9))),
              $10, coalesce($8, now())
         FROM d
       ON CONFLICT DO NOTHING
       RETURNING 1
     )
     SELECT (SELECT count(*) FROM d)::int AS found, (SELECT count(*) FROM ins)::int AS inserted`,
    [
      'id' in report.delivery ? report.delivery.id : report.delivery.inApp.notificationId,
      'id' in report.delivery ? (report.userId ?? null) : report.delivery.inApp.userId,
      report.scope ?? null,
      report.kind,
      report.linkIndex ?? -1,
      report.linkUrl ?? null,
      report.prefetchAgent === true,
      report.occurredAt ?? null,
      report.prefetchWindowSeconds ?? 0,
      report.userAgent?.slice(0, 512) ?? null,
    ],
  );
  const row = result.rows[0];
  if (row === undefined || row.found === 0) return 'not_found';
  return row.inserted > 0 ? 'recorded' : 'repeated';
}

export interface FigureRow {
  /** The group's value: a day (YYYY-MM-DD), template key ('' for none), channel or category. */
  group: string;
  metric: string;
  reason: string;
  count: number;
}

const groupColumn: Record<EngagementGrouping, string> = {
  day: "to_char(day, 'YYYY-MM-DD')",
  template: 'template',
  channel: 'channel',
  category: 'category',
};

/** One service's figures over [from, to] (UTC days, inclusive), from the rollups only. */
export async function readEngagementFigures(
  pool: Pool,
  serviceId: number,
  range: { from: string; to: string },
  groupBy: EngagementGrouping,
): Promise<FigureRow[]> {
  const result = await pool.query<{ grp: string; metric: string; reason: string; n: string }>(
    `SELECT ${groupColumn[groupBy]} AS grp, metric, reason, sum(count) AS n
       FROM engagement_counts
      WHERE service_id = $1 AND day BETWEEN $2::date AND $3::date
      GROUP BY 1, 2, 3
      ORDER BY 1, 2, 3`,
    [serviceId, range.from, range.to],
  );
  return result.rows.map((r) => ({ group: r.grp, metric: r.metric, reason: r.reason, count: Number(r.n) }));
}

/** Every service's figures per channel and metric over [from, to] (the console's overview). */
export async function readChannelFunnel(
  pool: Pool,
  range: { from: string; to: string },
): Promise<{ channel: string; metric: string; count: number }[]> {
  const result = await pool.query<{ channel: string; metric: string; n: string }>(
    `SELECT channel, metric, sum(count) AS n FROM engagement_counts
      WHERE day BETWEEN $1::date AND $2::date GROUP BY 1, 2 ORDER BY 1, 2`,
    [range.from, range.to],
  );
  return result.rows.map((r) => ({ channel: r.channel, metric: r.metric, count: Number(r.n) }));
}

/** The figures counted from the raw rows (delivery_events, engagement_events), as the triggers count. */
const rawCountsSql = `
  SELECT (e.created_at AT TIME ZONE 'UTC')::date AS day, d.service_id, coalesce(n.template, '') AS template,
         e.channel, coalesce(d.category, n.category) AS category, engagement_delivery_metric(e.state) AS metric,
         engagement_delivery_reason(e.state, e.detail) AS reason, count(*) AS count
    FROM delivery_events e
    JOIN deliveries d ON d.id = e.delivery_id AND d.notification_id = e.notification_id
    JOIN notifications n ON n.id = d.notification_id AND n.created_at = d.notification_created_at
   WHERE engagement_delivery_metric(e.state) IS NOT NULL
     AND e.created_at >= $1::date::timestamp AT TIME ZONE 'UTC'
     AND e.created_at < ($2::date + 1)::timestamp AT TIME ZONE 'UTC'
   GROUP BY 1, 2, 3, 4, 5, 6, 7
  UNION ALL
  SELECT (received_at AT TIME ZONE 'UTC')::date, service_id, coalesce(template, ''), channel, category,
         engagement_metric(kind, prefetch), '', count(*)
    FROM engagement_events
   WHERE received_at >= $1::date::timestamp AT TIME ZONE 'UTC'
     AND received_at < ($2::date + 1)::timestamp AT TIME ZONE 'UTC'
   GROUP BY 1, 2, 3, 4, 5, 6`;

/**
 * Recomputes the figures of the UTC days [from, to] from the raw rows. Writers to
 * delivery_events and engagement_events wait while it runs (SHARE locks), so no count is lost
 * or doubled between the delete and the recount. Returns the number of figure rows written.
 */
export async function rebuildEngagementCounts(
  pool: Pool,
  range: { from: string; to: string },
): Promise<number> {
  return withTransaction(pool, async (client) => {
    await client.query('LOCK TABLE delivery_events, engagement_events IN SHARE MODE');
    await client.query('DELETE FROM engagement_counts WHERE day BETWEEN $1::date AND $2::date', [
      range.from,
      range.to,
    ]);
    const inserted = await client.query(
      `INSERT INTO engagement_counts (day, service_id, template, channel, category, metric, reason, shard, count)
       SELECT day, service_id, template, channel, category, metric, reason, 0, sum(count)
         FROM (${rawCountsSql}) raw
        GROUP BY 1, 2, 3, 4, 5, 6, 7`,
      [range.from, range.to],
    );
    return inserted.rowCount ?? 0;
  });
}

/** The UTC days the raw rows span (for a rebuild without a range); undefined when there are none. */
export async function rawDayRange(pool: Pool): Promise<{ from: string; to: string } | undefined> {
  const result = await pool.query<{ from: string | null; to: string | null }>(
    `SELECT to_char(least(a.lo, b.lo) AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS "from",
            to_char(greatest(a.hi, b.hi) AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS "to"
       FROM (SELECT min(created_at) AS lo, max(created_at) AS hi FROM delivery_events) a,
            (SELECT min(received_at) AS lo, max(received_at) AS hi FROM engagement_events) b`,
  );
  const row = result.rows[0];
  if (row?.from == null || row.to == null) return undefined;
  return { from: row.from, to: row.to };
}

/** Switches tracking off (optedOut) or back on for a service's category or template. */
export async function setTrackingOptOut(
  pool: Pool,
  serviceId: number,
  scope: 'category' | 'template',
  name: string,
  optedOut: boolean,
): Promise<void> {
  await pool.query(
    optedOut
      ? 'INSERT INTO tracking_opt_outs (service_id, scope, name) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING'
      : 'DELETE FROM tracking_opt_outs WHERE service_id = $1 AND scope = $2 AND name = $3',
    [serviceId, scope, name],
  );
}

export async function isTrackingOptedOut(
  pool: Pool,
  serviceId: number,
  scope: 'category' | 'template',
  name: string,
): Promise<boolean> {
  const result = await pool.query(
    'SELECT 1 FROM tracking_opt_outs WHERE service_id = $1 AND scope = $2 AND name = $3',
    [serviceId, scope, name],
  );
  return (result.rowCount ?? 0) > 0;
}

/** The opt-outs of the given services, as `<service>/<scope>/<name>` keys. */
export async function loadTrackingOptOuts(pool: Pool, serviceIds: readonly number[]): Promise<Set<string>> {
  if (serviceIds.length === 0) return new Set();
  const result = await pool.query<{ key: string }>(
    `SELECT service_id || '/' || scope || '/' || name AS key FROM tracking_opt_outs WHERE service_id = ANY($1::bigint[])`,
    [serviceIds],
  );
  return new Set(result.rows.map((r) => r.key));
}
