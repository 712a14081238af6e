// Notifications across services for the console: a search bounded by a created_at range (the
// tables are partitioned monthly by it, so only the months in range are read), newest first
// with a keyset on (created_at, id); and one notification's timeline, read with the queries of
// notification-store.ts plus each delivery's provider, events and the inbox copy.
import type { Pool } from '../pools.js';
import type { DeliveryState } from '../../domain/delivery.js';
import { getNotificationView, type NotificationView } from './notification-store.js';

export interface NotificationSearch {
  /** Created at or after `from` and before `to`: always bounded. */
  from: Date;
  to: Date;
  id?: string | undefined;
  serviceId?: number | undefined;
  /** A recipient's user id, exact. */
  userId?: string | undefined;
  template?: string | undefined;
  /** The Idempotency-Key header the caller sent with it (with `serviceId`: keys are per service). */
  idempotencyKey?: string | undefined;
  /** Any of the notification's deliveries is in this state. */
  deliveryState?: DeliveryState | undefined;
  /** Continue after this notification (exclusive), in newest-first order. */
  before?: { createdUs: number; id: string } | undefined;
  limit: number;
}

export interface FoundNotification {
  id: string;
  createdAt: Date;
  createdUs: number;
  serviceId: number;
  lane: string;
  category: string;
  channels: string[];
  template: string | null;
  canceledAt: Date | null;
  recipients: number;
  /** Delivery counts by state. */
  deliveries: Record<string, number>;
}

const fromMicros = (param: number) =>
  `('epoch'::timestamptz + $${String(param)}::bigint * interval '1 microsecond')`;

/** Notifications matching `search`, newest first; every table's partition key is bounded. */
export async function searchNotifications(pool: Pool, s: NotificationSearch): Promise<FoundNotification[]> {
  const result = await pool.query<{
    id: string;
    created_at: Date;
    created_us: string;
    service_id: string;
    lane: string;
    category: string;
    channels: string[];
    template: string | null;
    canceled_at: Date | null;
    recipients: number;
    deliveries: Record<string, number> | null;
  }>(
    `SELECT n.id, n.created_at, (extract(epoch FROM n.created_at) * 1000000)::bigint AS created_us,
            n.service_id, n.lane, n.category, n.channels, n.template, n.canceled_at,
            (SELECT count(*)::int FROM recipients r
              WHERE r.notification_id = n.id AND r.notification_created_at = n.created_at
                AND r.notification_created_at >= $1 AND r.notification_created_at < $2) AS recipients,
            (SELECT jsonb_object_agg(state, c) FROM (
               SELECT d.state, count(*)::int AS c FROM deliveries d
                WHERE d.notification_id = n.id AND d.notification_created_at = n.created_at
                  AND d.notification_created_at >= $1 AND d.notification_created_at < $2
                GROUP BY d.state) s) AS deliveries
       FROM notifications n
      WHERE n.created_at >= $1 AND n.created_at < $2
        AND ($3::text IS NULL OR n.id = $3)
        AND ($4::bigint IS NULL OR n.service_id = $4)
        AND ($5::text IS NULL OR EXISTS (
              SELECT 1 FROM recipients r
               WHERE r.user_id = $5 AND r.notification_id = n.id AND r.notification_created_at = n.created_at
                 AND r.notification_created_at >= $1 AND r.notification_created_at < $2))
        AND ($6::text IS NULL OR n.template = $6)
        AND ($7::text IS NULL OR EXISTS (
              SELECT 1 FROM deliveries d
               WHERE d.state = $7 AND d.notification_id = n.id AND d.notification_created_at = n.created_at
                 AND d.notification_created_at >= $1 AND d.notification_created_at < $2))
        AND ($8::bigint IS NULL OR (n.created_at, n.id COLLATE "C") < (${fromMicros(8)}, $9::text COLLATE "C"))
        AND ($11::text IS NULL OR n.id IN (
              SELECT k.notification_id FROM idempotency_keys k WHERE k.service_id = $4 AND k.key = 'header:' || $11))
      ORDER BY n.created_at DESC, n.id COLLATE "C" DESC
      LIMIT $10`,
    [
      s.from,
      s.to,
      s.id ?? null,
      s.serviceId ?? null,
      s.userId ?? null,
      s.template ?? null,
      s.deliveryState ?? null,
      s.before?.createdUs ?? null,
      s.before?.id ?? null,
      s.limit,
      s.idempotencyKey ?? null,
    ],
  );
  return result.rows.map((r) => ({
    id: r.id,
    createdAt: r.created_at,
    createdUs: Number(r.created_us),
    serviceId: Number(r.service_id),
    lane: r.lane,
    category: r.category,
    channels: r.channels,
    template: r.template,
    canceledAt: r.canceled_at,
    recipients: r.recipients,
    deliveries: r.deliveries ?? {},
  }));
}

export interface TimelineEvent {
  deliveryId: string;
  state: string;
  attempt: number;
  detail: string | null;
  at: Date;
}

export interface TimelineInboxItem {
  userId: string;
  createdAt: Date;
  readAt: Date | null;
  seenAt: Date | null;
  archivedAt: Date | null;
  deletedAt: Date | null;
}

export interface NotificationTimeline {
  view: NotificationView;
  fannedOutAt: Map<string, Date | null>;
  providers: Map<string, string | null>;
  events: TimelineEvent[];
  inbox: TimelineInboxItem[];
}

/** One notification with everything that happened to it; undefined when there is none. */
export async function notificationTimeline(
  pool: Pool,
  id: string,
): Promise<NotificationTimeline | undefined> {
  const view = await getNotificationView(pool, id);
  if (view === undefined) return undefined;
  const at = view.createdAt;
  const [recipients, providers, events, inbox] = await Promise.all([
    pool.query<{ user_id: string; fanned_out_at: Date | null }>(
      `SELECT user_id, fanned_out_at FROM recipients WHERE notification_id = $1 AND notification_created_at = $2`,
      [id, at],
    ),
    pool.query<{ id: string; provider: string | null }>(
      `SELECT id, provider FROM deliveries WHERE notification_id = $1 AND notification_created_at = $2`,
      [id, at],
    ),
    // Events are found through the notification's deliveries (delivery_events is indexed by
    // delivery only: migration 0033), and are partitioned by their own created_at, at or after
    // the notification's (a day of margin for the two clocks: the api's and the database's).
    pool.query<{ delivery_id: string; state: string; attempt: number; detail: string | null; at: Date }>(
      `SELECT e.delivery_id, e.state, e.attempt, e.detail, e.created_at AS at
         FROM deliveries d JOIN delivery_events e ON e.delivery_id = d.id
        WHERE d.notification_id = $1 AND d.notification_created_at = $2
          AND e.notification_id = $1 AND e.created_at >= $2::timestamptz - interval '1 day'
        ORDER BY e.created_at, e.attempt`,
      [id, at],
    ),
    pool.query<{
      user_id: string;
      created_at: Date;
      read_at: Date | null;
      seen_at: Date | null;
      archived_at: Date | null;
      deleted_at: Date | null;
    }>(
      `SELECT user_id, created_at, read_at, seen_at, archived_at, deleted_at FROM inbox_items
        WHERE notification_id = $1 AND notification_created_at = $2 ORDER BY user_id`,
      [id, at],
    ),
  ]);
  return {
    view,
    fannedOutAt: new Map(recipients.rows.map((r) => [r.user_id, r.fanned_out_at])),
    providers: new Map(providers.rows.map((r) => [r.id, r.provider])),
    events: events.rows.map((e) => ({
      deliveryId: e.delivery_id,
      state: e.state,
      attempt: e.attempt,
      detail: e.detail,
      at: e.at,
    })),
    inbox: inbox.rows.map((r) => ({
      userId: r.user_id,
      createdAt: r.created_at,
      readAt: r.read_at,
      seenAt: r.seen_at,
      archivedAt: r.archived_at,
      deletedAt: r.deleted_at,
    })),
  };
}
