// Notification history written straight into the service store (retention tests): for each
// user, `perUser` notifications created from `at` on, one minute apart, each with its
// recipient (fanned out), an in-app and a webhook delivery in final states, two delivery
// events per delivery and an inbox item. Set-based, so thousands of rows take milliseconds.
import type { Pool } from '../../src/db/pools.js';

export interface HistorySeed {
  at: Date;
  users: string[];
  perUser: number;
  serviceId: number;
}

export async function seedHistory(pool: Pool, seed: HistorySeed): Promise<void> {
  // Every statement takes the same parameters ("$2 IS NOT NULL" where one does not need $2).
  const params = [seed.at, seed.serviceId, seed.users, seed.perUser];
  // One row per (user, n): a deterministic id and creation time.
  const plan = `
    SELECT u AS user_id, g,
           'shop#' || md5($1::timestamptz::text || u || ':' || g)::uuid AS id,
           $1::timestamptz + g * interval '1 minute' AS created_at
      FROM unnest($3::text[]) u, generate_series(1, $4::int) g`;
  await pool.query(
    `INSERT INTO notifications (id, created_at, service_id, lane, category, channels, content, version, updated_at)
     SELECT id, created_at, $2, 'transactional', 'orders', '{in_app,webhook}',
            jsonb_build_object('in_app', jsonb_build_object('title', 'Order ' || g)), 1, created_at
       FROM (${plan}) p`,
    params,
  );
  await pool.query(
    `INSERT INTO recipients (notification_id, notification_created_at, user_id, lane, state, send_at, fanned_out_at, skipped)
     SELECT id, created_at, user_id, 'transactional', 'fanned_out', created_at, created_at + interval '1 second',
            CASE WHEN g % 3 = 0 THEN '[{"channel":"email","reason":"no address"}]'::jsonb END
       FROM (${plan}) p WHERE $2::bigint IS NOT NULL`,
    params,
  );
  await pool.query(
    `INSERT INTO deliveries (id, notification_id, notification_created_at, service_id, user_id, channel, target,
                             lane, state, attempts, max_attempts, run_at, created_at, updated_at, provider, category)
     SELECT gen_random_uuid(), id, created_at, $2, user_id, c.channel, c.target, 'transactional', c.state,
            1, 8, created_at, created_at, created_at + interval '2 seconds', c.provider, 'orders'
       FROM (${plan}) p,
            (VALUES ('in_app', 'inbox', 'delivered', NULL),
                    ('webhook', 'https://hooks.example.test/x', 'sent', 'webhook')) AS c(channel, target, state, provider)`,
    params,
  );
  await pool.query(
    `INSERT INTO delivery_events (delivery_id, notification_id, notification_created_at, channel, state, attempt, detail, created_at)
     SELECT d.id, d.notification_id, d.notification_created_at, d.channel, e.state, 1, e.detail, d.created_at + e.after
       FROM deliveries d
       JOIN (${plan}) p ON p.id = d.notification_id AND p.created_at = d.notification_created_at,
            (VALUES ('sending', NULL, interval '1 second'), ('sent', '202 Accepted', interval '2 seconds')) AS e(state, detail, after)
      WHERE $2::bigint IS NOT NULL`,
    params,
  );
  await pool.query(
    `INSERT INTO inbox_items (notification_id, notification_created_at, user_id, category, created_at, read_at)
     SELECT id, created_at, user_id, 'orders', created_at,
            CASE WHEN g % 2 = 0 THEN created_at + interval '1 hour' END
       FROM (${plan}) p WHERE $2::bigint IS NOT NULL`,
    params,
  );
}

/** Every row of a table (or query) as sorted JSON text: compare two stores' copies exactly. */
export async function rowsAsJson(pool: Pool, from: string, params: unknown[] = []): Promise<string[]> {
  const result = await pool.query<{ r: string }>(`SELECT to_jsonb(t)::text AS r FROM ${from} t`, params);
  return result.rows.map((x) => x.r).sort();
}
