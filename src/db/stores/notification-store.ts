// Notifications, their recipients and idempotency keys: the write side of ingest.
import type { Pool, PoolClient } from '../pools.js';
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

/**
 * Registers the idempotency keys of a request inside the caller's transaction. Returns
 * undefined when every key is new; otherwise the notification(s) and hashes they already
 * name. ON CONFLICT waits for a concurrent transaction holding the same key, so of N
 * concurrent identical requests exactly one inserts.
 */
export async function claimIdempotencyKeys(
  client: PoolClient,
  serviceId: number,
  claims: IdempotencyClaim[],
  notificationId: string,
  createdAt: Date,
): Promise<{ notificationId: string; createdAt: Date; requestHash: Buffer }[] | undefined> {
  if (claims.length === 0) return undefined;
  const keys = claims.map((c) => c.key);
  const inserted = await client.query<{ key: string }>(
    `INSERT INTO idempotency_keys (service_id, key, request_hash, notification_id, notification_created_at)
     SELECT $1, k, h, $4, $5 FROM unnest($2::text[], $3::bytea[]) AS t(k, h)
     ON CONFLICT DO NOTHING
     RETURNING key`,
    [serviceId, keys, claims.map((c) => c.requestHash), notificationId, createdAt],
  );
  if (inserted.rowCount === claims.length) return undefined;
  const ours = new Set(inserted.rows.map((r) => r.key));
  const existing = await client.query<{
    notification_id: string;
    notification_created_at: Date;
    request_hash: Buffer;
  }>(
    `SELECT notification_id, notification_created_at, request_hash FROM idempotency_keys
      WHERE service_id = $1 AND key = ANY($2::text[])`,
    [serviceId, keys.filter((k) => !ours.has(k))],
  );
  return existing.rows.map((r) => ({
    notificationId: r.notification_id,
    createdAt: r.notification_created_at,
    requestHash: r.request_hash,
  }));
}

export async function insertNotification(client: PoolClient, n: NewNotification): Promise<void> {
  await client.query(
    `INSERT INTO notifications (id, created_at, service_id, lane, category, channels, content, data, send_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $2)`,
    [
      n.id,
      n.createdAt,
      n.serviceId,
      n.lane,
      n.category,
      n.channels,
      n.content,
      n.data,
      n.isScheduled ? n.sendAt : null,
    ],
  );
  await client.query(
    `INSERT INTO recipients (notification_id, notification_created_at, user_id, lane, state, send_at)
     SELECT $1, $2, u, $3, 'pending', $4 FROM unnest($5::text[]) AS u`,
    [n.id, n.createdAt, n.lane, n.sendAt, n.recipients],
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
}

export async function findNotificationRow(
  pool: Pool | PoolClient,
  id: string,
): Promise<NotificationRow | undefined> {
  const result = await pool.query<NotificationRow>(
    `SELECT id, service_id, created_at, updated_at, lane, category, channels, content, data, send_at, version, canceled_at
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
  | { kind: 'applied'; version: number }
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
  const updated = await pool.query<{ version: number }>(
    `UPDATE notifications
        SET version = $2,
            content = CASE WHEN $3::jsonb IS NULL THEN content ELSE content || $3::jsonb END,
            data = CASE WHEN $4::jsonb IS NULL THEN data ELSE $4::jsonb END,
            updated_at = $5
      WHERE id = $1 AND version < $2
      RETURNING version`,
    [id, version, content ?? null, data ?? null, now],
  );
  if (updated.rows[0] !== undefined) return { kind: 'applied', version };
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
