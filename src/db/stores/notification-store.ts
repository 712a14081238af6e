// Notifications, their recipients and idempotency keys: the write side of ingest.
import { withTransaction, type Pool, type PoolClient } from '../pools.js';
import { appendInboxEvents } from './inbox-store.js';
import type { Lane, NotificationContent } from '../../domain/notification.js';
import type { DeliveryState } from '../../domain/delivery.js';

export interface NewNotification {
  id: string;
  createdAt: Date;
  serviceId: number;
  lane: Lane;
  category: string;
  channels: string[];
  content: NotificationContent;
  data: Record<string, unknown> | null;
  sendAt: Date;
  isScheduled: boolean;
  recipients: string[];
  /** For a request naming a template: its key, the version resolved at ingest, and the params. */
  template?: NotificationTemplateRef | null;
}

export interface NotificationTemplateRef {
  key: string;
  version: number;
  params: Record<string, unknown>;
}

export interface IdempotencyClaim {
  key: string;
  requestHash: Buffer;
}

export interface ExistingNotification {
  id: string;
  createdAt: Date;
  recipients: number;
  sendAt: Date | null;
}

export interface PreparedNotification {
  notification: NewNotification;
  claims: IdempotencyClaim[];
}

export type BatchOutcome =
  { kind: 'created' } | { kind: 'replayed'; summary: ExistingNotification } | { kind: 'conflict' };

interface ClaimRef {
  item: number;
  serviceId: number;
  key: string;
  requestHash: Buffer;
}

/**
 * Writes a batch of accepted requests in the caller's transaction (group commit) and returns
 * one outcome per request, in order:
 * - created: its idempotency keys were new; the notification and its recipients are written;
 * - replayed: a key names an earlier request with the same body; nothing is written;
 * - conflict: a key names a different request; nothing is written.
 * Keys are inserted in one sorted statement, so two batches never lock keys in opposite
 * order; ON CONFLICT waits for a concurrent batch holding a key, so of N concurrent identical
 * requests exactly one creates. Duplicates within the batch are settled here, before SQL.
 */
export async function writeNotificationBatch(
  client: PoolClient,
  items: PreparedNotification[],
): Promise<BatchOutcome[]> {
  const outcomes: (BatchOutcome | undefined)[] = items.map(() => undefined);
  const leaderOf = new Map<number, number>();
  const firstClaim = new Map<string, ClaimRef>();
  const claims: ClaimRef[] = [];
  items.forEach((p, item) => {
    for (const c of p.claims) {
      const id = `${String(p.notification.serviceId)}\u0000${c.key}`;
      const earlier = firstClaim.get(id);
      if (earlier !== undefined && earlier.item !== item) {
        leaderOf.set(item, earlier.item);
        return;
      }
      const ref = { item, serviceId: p.notification.serviceId, key: c.key, requestHash: c.requestHash };
      firstClaim.set(id, ref);
      claims.push(ref);
    }
  });
  const ownClaims = claims.filter((c) => !leaderOf.has(c.item));
  ownClaims.sort((x, y) => x.serviceId - y.serviceId || (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));

  const inserted = new Set<string>();
  if (ownClaims.length > 0) {
    const result = await client.query<{ service_id: number; key: string }>(
      `INSERT INTO idempotency_keys (service_id, key, request_hash, notification_id, notification_created_at)
       SELECT s, k, h, n, c FROM unnest($1::bigint[], $2::text[], $3::bytea[], $4::text[], $5::timestamptz[]) WITH ORDINALITY AS t(s, k, h, n, c, o)
       ORDER BY o
       ON CONFLICT DO NOTHING
       RETURNING service_id, key`,
      [
        ownClaims.map((c) => c.serviceId),
        ownClaims.map((c) => c.key),
        ownClaims.map((c) => c.requestHash),
        ownClaims.map((c) => items[c.item]?.notification.id),
        ownClaims.map((c) => items[c.item]?.notification.createdAt),
      ],
    );
    for (const r of result.rows) inserted.add(`${String(r.service_id)}\u0000${r.key}`);
  }

  // What an earlier, committed request holds under these keys decides: replay if it had the
  // same body, conflict otherwise.
  const lookup = async (p: PreparedNotification, keys: string[]): Promise<BatchOutcome> => {
    const existing = await client.query<{
      notification_id: string;
      notification_created_at: Date;
      request_hash: Buffer;
    }>(
      `SELECT notification_id, notification_created_at, request_hash FROM idempotency_keys
        WHERE service_id = $1 AND key = ANY($2::text[])`,
      [p.notification.serviceId, keys],
    );
    const first = existing.rows[0];
    const same =
      first !== undefined &&
      existing.rows.length === keys.length &&
      existing.rows.every(
        (r) => r.notification_id === first.notification_id && r.request_hash.equals(requestHashOf(p)),
      );
    const summary = same
      ? await findNotificationSummary(client, first.notification_id, first.notification_created_at)
      : undefined;
    return summary === undefined ? { kind: 'conflict' } : { kind: 'replayed', summary };
  };

  const undo: ClaimRef[] = [];
  for (const [item, p] of items.entries()) {
    if (leaderOf.has(item)) continue;
    const mine = ownClaims.filter((c) => c.item === item);
    const taken = mine.filter((c) => !inserted.has(`${String(c.serviceId)}\u0000${c.key}`));
    if (taken.length === 0) continue;
    undo.push(...mine.filter((c) => inserted.has(`${String(c.serviceId)}\u0000${c.key}`)));
    outcomes[item] = await lookup(
      p,
      taken.map((c) => c.key),
    );
  }
  if (undo.length > 0) {
    await client.query(
      'DELETE FROM idempotency_keys AS i USING unnest($1::bigint[], $2::text[]) AS t(s, k) WHERE i.service_id = t.s AND i.key = t.k',
      [undo.map((c) => c.serviceId), undo.map((c) => c.key)],
    );
  }

  await insertNotifications(
    client,
    items.filter((_, item) => !leaderOf.has(item) && outcomes[item] === undefined).map((p) => p.notification),
  );

  // Requests repeating a key of an earlier request in this batch follow that request: if it was
  // created here, compare bodies with it; otherwise compare with what was committed before.
  const root = (item: number): number => {
    let at = item;
    for (let next = leaderOf.get(at); next !== undefined; next = leaderOf.get(at)) at = next;
    return at;
  };
  for (const [item, p] of items.entries()) {
    if (!leaderOf.has(item)) continue;
    const leader = items[root(item)];
    if (leader !== undefined && outcomes[root(item)] === undefined) {
      const n = leader.notification;
      outcomes[item] = requestHashOf(p).equals(requestHashOf(leader))
        ? {
            kind: 'replayed',
            summary: {
              id: n.id,
              createdAt: n.createdAt,
              recipients: n.recipients.length,
              sendAt: n.isScheduled ? n.sendAt : null,
            },
          }
        : { kind: 'conflict' };
    } else {
      outcomes[item] = await lookup(
        p,
        p.claims.map((c) => c.key),
      );
    }
  }
  return outcomes.map((o) => o ?? { kind: 'created' });
}

function requestHashOf(p: PreparedNotification): Buffer {
  return p.claims[0]?.requestHash ?? Buffer.alloc(0);
}

/** Multi-row inserts of notifications and all their recipients: two statements per batch. */
async function insertNotifications(client: PoolClient, list: NewNotification[]): Promise<void> {
  if (list.length === 0) return;
  await client.query(
    `INSERT INTO notifications (id, created_at, service_id, lane, category, channels, content, data, send_at, updated_at,
                                template, template_version, params)
     SELECT id, c, s, l, cat, string_to_array(ch, ','), co, d, sa, c, tk, tv, tp
       FROM unnest($1::text[], $2::timestamptz[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::jsonb[], $8::jsonb[], $9::timestamptz[],
                   $10::text[], $11::int[], $12::jsonb[])
         AS t(id, c, s, l, cat, ch, co, d, sa, tk, tv, tp)`,
    [
      list.map((n) => n.id),
      list.map((n) => n.createdAt),
      list.map((n) => n.serviceId),
      list.map((n) => n.lane),
      list.map((n) => n.category),
      list.map((n) => n.channels.join(',')),
      list.map((n) => JSON.stringify(n.content)),
      list.map((n) => (n.data === null ? null : JSON.stringify(n.data))),
      list.map((n) => (n.isScheduled ? n.sendAt : null)),
      list.map((n) => n.template?.key ?? null),
      list.map((n) => n.template?.version ?? null),
      list.map((n) => (n.template == null ? null : JSON.stringify(n.template.params))),
    ],
  );
  const recipients = list.flatMap((n) => n.recipients.map((user) => ({ n, user })));
  await client.query(
    `INSERT INTO recipients (notification_id, notification_created_at, user_id, lane, state, send_at)
     SELECT n, c, u, l, 'pending', sa FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::timestamptz[]) AS t(n, c, u, l, sa)`,
    [
      recipients.map((r) => r.n.id),
      recipients.map((r) => r.n.createdAt),
      recipients.map((r) => r.user),
      recipients.map((r) => r.n.lane),
      recipients.map((r) => r.n.sendAt),
    ],
  );
}

export async function findNotificationSummary(
  pool: Pool | PoolClient,
  id: string,
  createdAt: Date,
): Promise<ExistingNotification | undefined> {
  const result = await pool.query<{ id: string; created_at: Date; send_at: Date | null; recipients: number }>(
    `SELECT n.id, n.created_at, n.send_at,
            (SELECT count(*) FROM recipients r WHERE r.notification_id = n.id AND r.notification_created_at = n.created_at) AS recipients
       FROM notifications n WHERE n.id = $1 AND n.created_at = $2`,
    [id, createdAt],
  );
  const row = result.rows[0];
  return row === undefined
    ? undefined
    : { id: row.id, createdAt: row.created_at, recipients: row.recipients, sendAt: row.send_at };
}

export interface NotificationView {
  id: string;
  serviceId: number;
  createdAt: Date;
  updatedAt: Date;
  lane: Lane;
  category: string;
  channels: string[];
  content: NotificationContent;
  data: Record<string, unknown> | null;
  sendAt: Date | null;
  version: number;
  canceledAt: Date | null;
  /** The template, version and params the notification was accepted with; null for inline content. */
  template: NotificationTemplateRef | null;
  recipients: { userId: string; state: 'pending' | 'fanned_out' | 'canceled'; skipped: unknown }[];
  deliveries: {
    id: string;
    userId: string;
    channel: string;
    target: string;
    state: DeliveryState;
    attempts: number;
    lastError: string | null;
    providerMessageId: string | null;
    runAt: Date;
    updatedAt: Date;
  }[];
}

interface NotificationRow {
  id: string;
  service_id: number;
  created_at: Date;
  updated_at: Date;
  lane: Lane;
  category: string;
  channels: string[];
  content: NotificationContent;
  data: Record<string, unknown> | null;
  send_at: Date | null;
  version: number;
  canceled_at: Date | null;
  template: string | null;
  template_version: number | null;
  params: Record<string, unknown> | null;
}

export async function findNotificationRow(
  pool: Pool | PoolClient,
  id: string,
): Promise<NotificationRow | undefined> {
  const result = await pool.query<NotificationRow>(
    `SELECT id, service_id, created_at, updated_at, lane, category, channels, content, data, send_at, version, canceled_at,
            template, template_version, params
       FROM notifications WHERE id = $1`,
    [id],
  );
  return result.rows[0];
}

export async function getNotificationView(pool: Pool, id: string): Promise<NotificationView | undefined> {
  const n = await findNotificationRow(pool, id);
  if (n === undefined) return undefined;
  const [recipients, deliveries] = await Promise.all([
    pool.query<{ user_id: string; state: 'pending' | 'fanned_out' | 'canceled'; skipped: unknown }>(
      `SELECT user_id, state, skipped FROM recipients
        WHERE notification_id = $1 AND notification_created_at = $2 ORDER BY user_id`,
      [n.id, n.created_at],
    ),
    pool.query<{
      id: string;
      user_id: string;
      channel: string;
      target: string;
      state: DeliveryState;
      attempts: number;
      last_error: string | null;
      provider_message_id: string | null;
      run_at: Date;
      updated_at: Date;
    }>(
      `SELECT id, user_id, channel, target, state, attempts, last_error, provider_message_id, run_at, updated_at
         FROM deliveries WHERE notification_id = $1 AND notification_created_at = $2
        ORDER BY user_id, channel, target`,
      [n.id, n.created_at],
    ),
  ]);
  return {
    id: n.id,
    serviceId: n.service_id,
    createdAt: n.created_at,
    updatedAt: n.updated_at,
    lane: n.lane,
    category: n.category,
    channels: n.channels,
    content: n.content,
    data: n.data,
    sendAt: n.send_at,
    version: n.version,
    canceledAt: n.canceled_at,
    template:
      n.template === null || n.template_version === null
        ? null
        : { key: n.template, version: n.template_version, params: n.params ?? {} },
    recipients: recipients.rows.map((r) => ({ userId: r.user_id, state: r.state, skipped: r.skipped })),
    deliveries: deliveries.rows.map((d) => ({
      id: d.id,
      userId: d.user_id,
      channel: d.channel,
      target: d.target,
      state: d.state,
      attempts: d.attempts,
      lastError: d.last_error,
      providerMessageId: d.provider_message_id,
      runAt: d.run_at,
      updatedAt: d.updated_at,
    })),
  };
}

export type PatchResult =
  | { kind: 'applied'; version: number; inboxUsers: string[] }
  | { kind: 'unchanged'; version: number }
  | { kind: 'stale'; version: number }
  | { kind: 'not_found' };

/**
 * Applies an update only if its version is newer than the stored one, so a late or retried
 * older update never overwrites a newer state (the row lock orders concurrent updates).
 * Each channel section in `content` replaces that section.
 */
export async function patchNotification(
  pool: Pool,
  id: string,
  version: number,
  content: NotificationContent | undefined,
  data: Record<string, unknown> | undefined,
  now: Date,
): Promise<PatchResult> {
  // The in-app copies show the new version: each holder's inbox stream gets an 'updated' event.
  const applied = await withTransaction(pool, async (client) => {
    const updated = await client.query<{ created_at: Date }>(
      `UPDATE notifications
          SET version = $2,
              content = CASE WHEN $3::jsonb IS NULL THEN content ELSE content || $3::jsonb END,
              data = CASE WHEN $4::jsonb IS NULL THEN data ELSE $4::jsonb END,
              updated_at = $5
        WHERE id = $1 AND version < $2
        RETURNING created_at`,
      [id, version, content ?? null, data ?? null, now],
    );
    const row = updated.rows[0];
    if (row === undefined) return undefined;
    // Found through the in-app deliveries (their unique key starts with the notification id):
    // inbox_items is keyed by user, and a scan of its month would grow with every user's inbox.
    const holders = await client.query<{ user_id: string }>(
      `SELECT i.user_id FROM deliveries d
         JOIN inbox_items i ON i.user_id = d.user_id AND i.notification_id = d.notification_id
                           AND i.notification_created_at = d.notification_created_at
        WHERE d.notification_id = $1 AND d.notification_created_at = $2 AND d.channel = 'in_app'
          AND i.deleted_at IS NULL`,
      [id, row.created_at],
    );
    return appendInboxEvents(
      client,
      holders.rows.map((h) => ({
        userId: h.user_id,
        kind: 'updated' as const,
        notificationId: id,
        notificationCreatedAt: row.created_at,
      })),
    );
  });
  if (applied !== undefined) return { kind: 'applied', version, inboxUsers: applied };
  const current = await pool.query<{ version: number }>('SELECT version FROM notifications WHERE id = $1', [
    id,
  ]);
  const row = current.rows[0];
  if (row === undefined) return { kind: 'not_found' };
  return row.version === version ? { kind: 'unchanged', version } : { kind: 'stale', version: row.version };
}

export interface CancelResult {
  recipients: number;
  deliveries: number;
}

/**
 * Cancels whatever of a notification has not been handed to a provider yet: recipients not
 * yet fanned out (scheduled sends) and deliveries still waiting. One transaction.
 */
export async function cancelNotification(
  client: PoolClient,
  id: string,
  createdAt: Date,
  now: Date,
): Promise<CancelResult> {
  const recipients = await client.query(
    `UPDATE recipients SET state = 'canceled'
      WHERE notification_id = $1 AND notification_created_at = $2 AND state = 'pending'`,
    [id, createdAt],
  );
  const deliveries = await client.query(
    `WITH c AS (
       UPDATE deliveries SET state = 'canceled', updated_at = $3, lease_owner = NULL, lease_expires_at = NULL
        WHERE notification_id = $1 AND notification_created_at = $2 AND state IN ('pending', 'retrying')
        RETURNING id, notification_id, channel, attempts
     )
     INSERT INTO delivery_events (delivery_id, notification_id, channel, state, attempt, detail, created_at)
     SELECT id, notification_id, channel, 'canceled', attempts, 'canceled by caller', $3 FROM c`,
    [id, createdAt, now],
  );
  const total = (recipients.rowCount ?? 0) + (deliveries.rowCount ?? 0);
  if (total > 0) {
    await client.query('UPDATE notifications SET canceled_at = $3 WHERE id = $1 AND created_at = $2', [
      id,
      createdAt,
      now,
    ]);
  }
  return { recipients: recipients.rowCount ?? 0, deliveries: deliveries.rowCount ?? 0 };
}
