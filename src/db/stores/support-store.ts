// One user's notification history for customer support: the user's notifications created in a
// time range, each with its recipient row, its in-app copy, and every delivery to the user with
// every delivery event. Three queries per page and store, each bounded by the partition keys so
// PostgreSQL reads only the months concerned. The service store holds the recent months and the
// archive the older ones (docs/retention.md); a month being moved is in both for a while, so
// both are read and merged, the service store's copy winning.
import { Type } from 'typebox';
import { Value } from 'typebox/value';
import type { Pool } from '../pools.js';
import { channels, type Channel, type Lane } from '../../domain/notification.js';
import type { DeliveryState } from '../../domain/delivery.js';

export interface HistoryQuery {
  userId: string;
  /** Notifications created at or after `from` and before `to`. */
  from: Date;
  to: Date;
  /** Continue after this notification (exclusive), in newest-first order. */
  after?: HistoryPosition;
  limit: number;
}

/** A notification's place in the newest-first order: created_at in µs since 1970, then id. */
export interface HistoryPosition {
  createdUs: number;
  id: string;
}

export type RecipientState = 'pending' | 'held' | 'fanned_out' | 'canceled';

export interface SkippedChannel {
  channel: Channel;
  reason: string;
}

export interface HistoryEvent {
  state: string;
  attempt: number;
  detail: string | null;
  createdAt: Date;
}

export interface HistoryDelivery {
  id: string;
  channel: Channel;
  target: string;
  provider: string | null;
  state: DeliveryState;
  attempts: number;
  runAt: Date;
  lastError: string | null;
  providerMessageId: string | null;
  createdAt: Date;
  updatedAt: Date;
  events: HistoryEvent[];
}

export interface HistoryInboxItem {
  createdAt: Date;
  readAt: Date | null;
  seenAt: Date | null;
  archivedAt: Date | null;
  deletedAt: Date | null;
}

export interface HistoryNotification {
  id: string;
  position: HistoryPosition;
  createdAt: Date;
  updatedAt: Date;
  canceledAt: Date | null;
  service: string;
  category: string;
  lane: Lane;
  channels: Channel[];
  template: { key: string; version: number | null } | null;
  version: number;
  recipient: {
    state: RecipientState;
    sendAt: Date;
    fannedOutAt: Date | null;
    skipped: SkippedChannel[];
  };
  inbox: HistoryInboxItem | null;
  deliveries: HistoryDelivery[];
}

export interface UserHistoryPage {
  notifications: HistoryNotification[];
  /** Where the next page starts; undefined when this page is the last. */
  next: HistoryPosition | undefined;
}

/**
 * delivery_events is partitioned by its own created_at, which is at or after the notification's.
 * The two clocks can differ (the api's for the notification, the database's for most events),
 * so events are read from a day before the oldest notification of the page.
 */
const eventClockMarginMs = 86_400_000;

/** recipients.skipped as the fan-out stage writes it; a JSON column is outside input. */
const SkippedSchema = Type.Array(
  Type.Object({
    channel: Type.Union(channels.map((c) => Type.Literal(c))),
    reason: Type.String(),
  }),
);

const fromMicros = (param: number) =>
  `('epoch'::timestamptz + $${String(param)}::bigint * interval '1 microsecond')`;

/** Where history is kept: the service store, and the archive once retention has moved months. */
export interface HistoryStores {
  service: Pool;
  archive?: Pool | undefined;
}

/** A notification of a page, with where it was read and its service's id (named from the service store). */
interface Sourced {
  notification: HistoryNotification;
  serviceId: number;
  store: Pool;
}

export async function lookupUserHistory(
  stores: HistoryStores,
  query: HistoryQuery,
): Promise<UserHistoryPage> {
  const fromService = await pageOfNotifications(stores.service, query);
  const fromArchive = stores.archive === undefined ? [] : await pageOfNotifications(stores.archive, query);
  const inService = new Set(fromService.map((s) => s.notification.id));
  const rows = [...fromService, ...fromArchive.filter((s) => !inService.has(s.notification.id))]
    .sort((a, b) => comparePositions(b.notification.position, a.notification.position))
    .slice(0, query.limit + 1);
  const page = rows.slice(0, query.limit);
  const last = page.at(-1)?.notification;
  const next = rows.length > query.limit && last !== undefined ? last.position : undefined;
  const oldest = last?.position.createdUs;
  if (oldest === undefined) return { notifications: [], next: undefined };

  const names = await serviceNames(
    stores.service,
    page.map((n) => n.serviceId),
  );
  const deliveries = new Map<string, HistoryDelivery[]>();
  for (const store of new Set(page.map((n) => n.store))) {
    const own = page.filter((s) => s.store === store).map((s) => s.notification);
    const newest = own[0]?.position.createdUs ?? oldest;
    const ownOldest = own.at(-1)?.position.createdUs ?? oldest;
    // Whole milliseconds around the page's µs bounds: plain timestamptz parameters prune at plan time.
    const found = await deliveriesOf(
      store,
      query.userId,
      own,
      new Date(Math.floor(ownOldest / 1000)),
      new Date(Math.ceil(newest / 1000)),
    );
    for (const [id, list] of found) deliveries.set(id, list);
  }
  // A delivery's later events may still be in the service store while its notification's month
  // is archived: events are read from both and merged.
  const deliveryIds = [...deliveries.values()].flat().map((d) => d.id);
  const since = new Date(Math.floor(oldest / 1000) - eventClockMarginMs);
  const events = await eventsOf(stores.service, deliveryIds, since);
  if (stores.archive !== undefined) mergeEvents(events, await eventsOf(stores.archive, deliveryIds, since));
  const notifications = page.map(({ notification, serviceId }) => {
    const own = deliveries.get(notification.id) ?? [];
    for (const delivery of own) delivery.events = events.get(delivery.id) ?? [];
    return { ...notification, service: names.get(serviceId) ?? String(serviceId), deliveries: own };
  });
  return { notifications, next };
}

/** Newest-first order: by creation time, then id in byte order (the SQL compares COLLATE "C"). */
function comparePositions(a: HistoryPosition, b: HistoryPosition): number {
  if (a.createdUs !== b.createdUs) return a.createdUs - b.createdUs;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

async function serviceNames(pool: Pool, ids: readonly number[]): Promise<Map<number, string>> {
  const result = await pool.query<{ id: number; name: string }>(
    'SELECT id, name FROM services WHERE id = ANY($1::bigint[])',
    [[...new Set(ids)]],
  );
  return new Map(result.rows.map((r) => [r.id, r.name]));
}

/** Adds the archive's events to the service store's, leaving out rows present in both. */
function mergeEvents(into: Map<string, HistoryEvent[]>, more: Map<string, HistoryEvent[]>): void {
  const key = (e: HistoryEvent) => `${e.state}\n${String(e.attempt)}\n${String(e.createdAt.getTime())}`;
  for (const [deliveryId, list] of more) {
    const own = into.get(deliveryId) ?? [];
    const seen = new Set(own.map(key));
    const merged = [...own, ...list.filter((e) => !seen.has(key(e)))];
    merged.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || a.attempt - b.attempt);
    into.set(deliveryId, merged);
  }
}

/** One more row than the limit, so the caller knows whether another page follows. */
async function pageOfNotifications(pool: Pool, query: HistoryQuery): Promise<Sourced[]> {
  const params: unknown[] = [query.userId, query.from, query.to, query.limit + 1];
  let after = '';
  if (query.after !== undefined) {
    params.push(query.after.createdUs, query.after.id);
    after = `AND (r.notification_created_at, r.notification_id COLLATE "C") < (${fromMicros(5)}, $6::text COLLATE "C")`;
  }
  // Each partitioned table carries its own bound on its partition key: PostgreSQL does not carry
  // range conditions across a join's equality, and without them every partition would be read.
  const result = await pool.query<{
    id: string;
    created_at: Date;
    created_us: number;
    updated_at: Date;
    canceled_at: Date | null;
    service_id: number;
    category: string;
    lane: Lane;
    channels: Channel[];
    template: string | null;
    template_version: number | null;
    version: number;
    recipient_state: RecipientState;
    send_at: Date;
    fanned_out_at: Date | null;
    skipped: unknown;
    inbox_created_at: Date | null;
    read_at: Date | null;
    seen_at: Date | null;
    archived_at: Date | null;
    deleted_at: Date | null;
  }>(
    `SELECT n.id, n.created_at, (extract(epoch FROM n.created_at) * 1000000)::bigint AS created_us,
            n.updated_at, n.canceled_at, n.service_id, n.category, n.lane, n.channels, n.template,
            n.template_version, n.version, r.state AS recipient_state, r.send_at, r.fanned_out_at, r.skipped,
            i.created_at AS inbox_created_at, i.read_at, i.seen_at, i.archived_at, i.deleted_at
       FROM recipients r
       JOIN notifications n ON n.id = r.notification_id AND n.created_at = r.notification_created_at
                           AND n.created_at >= $2 AND n.created_at < $3
       LEFT JOIN inbox_items i ON i.user_id = r.user_id AND i.notification_id = r.notification_id
                              AND i.notification_created_at = r.notification_created_at
                              AND i.notification_created_at >= $2 AND i.notification_created_at < $3
      WHERE r.user_id = $1 AND r.notification_created_at >= $2 AND r.notification_created_at < $3 ${after}
      ORDER BY r.notification_created_at DESC, r.notification_id COLLATE "C" DESC
      LIMIT $4`,
    params,
  );
  return result.rows.map((r) => ({
    serviceId: r.service_id,
    store: pool,
    notification: {
      id: r.id,
      position: { createdUs: r.created_us, id: r.id },
      createdAt: r.created_at,
      updatedAt: r.updated_at,
      canceledAt: r.canceled_at,
      service: '',
      category: r.category,
      lane: r.lane,
      channels: r.channels,
      template: r.template === null ? null : { key: r.template, version: r.template_version },
      version: r.version,
      recipient: {
        state: r.recipient_state,
        sendAt: r.send_at,
        fannedOutAt: r.fanned_out_at,
        skipped: Value.Check(SkippedSchema, r.skipped) ? r.skipped : [],
      },
      inbox:
        r.inbox_created_at === null
          ? null
          : {
              createdAt: r.inbox_created_at,
              readAt: r.read_at,
              seenAt: r.seen_at,
              archivedAt: r.archived_at,
              deletedAt: r.deleted_at,
            },
      deliveries: [],
    },
  }));
}

/** The user's deliveries of the page's notifications, by notification id, oldest first. */
async function deliveriesOf(
  pool: Pool,
  userId: string,
  page: readonly HistoryNotification[],
  oldest: Date,
  newest: Date,
): Promise<Map<string, HistoryDelivery[]>> {
  const result = await pool.query<{
    id: string;
    notification_id: string;
    channel: Channel;
    target: string;
    provider: string | null;
    state: DeliveryState;
    attempts: number;
    run_at: Date;
    last_error: string | null;
    provider_message_id: string | null;
    created_at: Date;
    updated_at: Date;
  }>(
    `SELECT id, notification_id, channel, target, provider, state, attempts, run_at, last_error,
            provider_message_id, created_at, updated_at
       FROM deliveries
      WHERE notification_id = ANY($1::text[]) AND user_id = $2
        AND notification_created_at >= $3 AND notification_created_at <= $4
      ORDER BY notification_id, created_at, channel, target`,
    [page.map((n) => n.id), userId, oldest, newest],
  );
  const byNotification = new Map<string, HistoryDelivery[]>();
  for (const r of result.rows) {
    const list = byNotification.get(r.notification_id) ?? [];
    list.push({
      id: r.id,
      channel: r.channel,
      target: r.target,
      provider: r.provider,
      state: r.state,
      attempts: r.attempts,
      runAt: r.run_at,
      lastError: r.last_error,
      providerMessageId: r.provider_message_id,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
      events: [],
    });
    byNotification.set(r.notification_id, list);
  }
  return byNotification;
}

/** Every event of the deliveries, by delivery id, in the order they happened. */
async function eventsOf(
  pool: Pool,
  deliveryIds: readonly string[],
  since: Date,
): Promise<Map<string, HistoryEvent[]>> {
  const byDelivery = new Map<string, HistoryEvent[]>();
  if (deliveryIds.length === 0) return byDelivery;
  const result = await pool.query<{
    delivery_id: string;
    state: string;
    attempt: number;
    detail: string | null;
    created_at: Date;
  }>(
    `SELECT delivery_id, state, attempt, detail, created_at
       FROM delivery_events
      WHERE delivery_id = ANY($1::uuid[]) AND created_at >= $2
      ORDER BY delivery_id, created_at, attempt`,
    [deliveryIds, since],
  );
  for (const r of result.rows) {
    const list = byDelivery.get(r.delivery_id) ?? [];
    list.push({ state: r.state, attempt: r.attempt, detail: r.detail, createdAt: r.created_at });
    byDelivery.set(r.delivery_id, list);
  }
  return byDelivery;
}
