// Notifications that are overdue: accepted, due for a while, and still not final. Read by the
// scheduler's overdue-notifications job (src/scheduler/overdue-notifications.ts).
import { lanes } from '../../domain/notification.js';
import type { Pool } from '../pools.js';

/** How long a notification's work may stay due before it counts as overdue. */
export const overdueAfterMs = 3_600_000;

/** Where an overdue notification is held: a recipient not fanned out, a delivery not claimed, a lease not rescued. */
export type OverdueStage = 'fan_out' | 'delivery' | 'lease';

export interface OverdueByLane {
  lane: string;
  /** Notifications with at least one overdue part. */
  notifications: number;
  /** A few of them (up to `sampleSize`), for the log. */
  sample: { id: string; stage: OverdueStage }[];
}

/**
 * Notifications accepted at or before `cutoff` with a part that has been due since `cutoff`
 * (or longer) and is not final:
 * - a recipient still `pending` whose send time is at or before `cutoff` (a scheduled
 *   notification counts only once its send time is that old), or a topic send whose
 *   subscribers are not all expanded into recipients by then;
 * - a delivery `pending` or `retrying` whose `run_at` is at or before `cutoff`. A delivery
 *   Herald put off on purpose (quiet hours, a frequency cap, a retry's backoff, an open circuit,
 *   a rate limit) has its `run_at` in the future, so it counts only once that time is as old;
 * - a delivery `sending` whose lease expired at or before `cutoff` (its worker is gone and the
 *   lease rescuer has not taken it back).
 *
 * Plan: each branch reads only rows that are not final, through the partial indexes made for
 * the claimers (recipient_queue_due_idx (lane, send_at), topic_sends_due_idx (send_at),
 * delivery_queue_due_idx (lane, run_at), delivery_queue_leased_idx (lease_expires_at)), with
 * `lane = ANY(…)` and the time bound as index conditions; on a partitioned table each
 * partition's copy of the index is scanned, and months after `cutoff` are pruned; overdue
 * queue rows find their notification through the deliveries' primary key. Finished rows, however many, are never read, so no index is added.
 * The cost grows with the overdue rows only (none when healthy).
 */
export async function readOverdue(pool: Pool, cutoff: Date, sampleSize: number): Promise<OverdueByLane[]> {
  const result = await pool.query<OverdueByLane>(
    `WITH overdue AS (
       SELECT lane, notification_id, notification_created_at, 'fan_out' AS stage
         FROM recipient_queue
        WHERE lane = ANY($2::text[]) AND send_at <= $1 AND notification_created_at <= $1
       UNION ALL
       SELECT lane, notification_id, notification_created_at, 'fan_out'
         FROM topic_sends
        WHERE send_at <= $1 AND notification_created_at <= $1
       UNION ALL
       SELECT q.lane, d.notification_id, q.notification_created_at, 'delivery'
         FROM delivery_queue q JOIN deliveries d
           ON d.id = q.delivery_id AND d.notification_created_at = q.notification_created_at AND d.user_id = q.user_id
        WHERE q.lease_owner IS NULL AND q.lane = ANY($2::text[]) AND q.run_at <= $1
          AND q.notification_created_at <= $1
       UNION ALL
       SELECT q.lane, d.notification_id, q.notification_created_at, 'lease'
         FROM delivery_queue q JOIN deliveries d
           ON d.id = q.delivery_id AND d.notification_created_at = q.notification_created_at AND d.user_id = q.user_id
        WHERE q.lease_owner IS NOT NULL AND q.lease_expires_at <= $1 AND q.notification_created_at <= $1),
     notifications AS (
       SELECT lane, notification_id, min(stage) AS stage
         FROM overdue
        GROUP BY lane, notification_id, notification_created_at)
     SELECT l.lane,
            (SELECT count(*)::int FROM notifications n WHERE n.lane = l.lane) AS notifications,
            (SELECT coalesce(json_agg(json_build_object('id', s.notification_id, 'stage', s.stage)), '[]')
               FROM (SELECT notification_id, stage FROM notifications n WHERE n.lane = l.lane
                      ORDER BY notification_id LIMIT $3) s) AS sample
       FROM unnest($2::text[]) AS l(lane)`,
    [cutoff, lanes, sampleSize],
  );
  return result.rows;
}
