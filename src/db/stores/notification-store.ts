// Accepted notifications: read back with their recipients and deliveries, updated (versioned)
// and canceled. They are written by the group commit, in notification-batch-store.ts.
import { withTransaction, type Pool, type PoolClient } from '../pools.js';
import { cancelWorkflowRuns } from './workflow-store.js';
import { appendInboxEvents } from './inbox-store.js';
import type { Channel, Lane, NotificationContent } from '../../domain/notification.js';
import type { SkippedChannel } from '../../domain/fan-out.js';
import type { DeliveryState } from '../../domain/delivery.js';

export interface NotificationTemplateRef {
  key: string;
  version: number;
  params: Record<string, unknown>;
}

export interface NotificationView {
  id: string;
  serviceId: number;
  createdAt: Date;
  updatedAt: Date;
  lane: Lane;
  category: string;
  channels: Channel[];
  content: NotificationContent;
  data: Record<string, unknown> | null;
  sendAt: Date | null;
  version: number;
  canceledAt: Date | null;
  /** The template, version and params the notification was accepted with; null for inline content. */
  template: NotificationTemplateRef | null;
  /** `skipped`: the channels fan-out found no way to send this user on. */
  recipients: {
    userId: string;
    state: 'pending' | 'held' | 'fanned_out' | 'canceled';
    skipped: SkippedChannel[];
  }[];
  /** Sent to a topic whose subscribers the worker has not all expanded into recipients yet. */
  expanding: boolean;
  deliveries: {
    id: string;
    userId: string;
    channel: Channel;
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
  channels: Channel[];
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
  const [expanding, recipients, deliveries] = await Promise.all([
    pool.query('SELECT 1 FROM topic_sends WHERE notification_id = $1 AND notification_created_at = $2', [
      n.id,
      n.created_at,
    ]),
    pool.query<{
      user_id: string;
      state: 'pending' | 'held' | 'fanned_out' | 'canceled';
      skipped: SkippedChannel[] | null;
    }>(
      `SELECT user_id, state, skipped FROM recipients
        WHERE notification_id = $1 AND notification_created_at = $2 ORDER BY user_id`,
      [n.id, n.created_at],
    ),
    pool.query<{
      id: string;
      user_id: string;
      channel: Channel;
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
    recipients: recipients.rows.map((r) => ({ userId: r.user_id, state: r.state, skipped: r.skipped ?? [] })),
    expanding: (expanding.rowCount ?? 0) > 0,
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
  /** 1 when a topic send's unexpanded subscribers were canceled with it. */
  topicSends: number;
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
  // A topic send not fully expanded stops expanding (waits for a chunk being expanded to commit).
  const expansion = await client.query(
    'DELETE FROM topic_sends WHERE notification_id = $1 AND notification_created_at = $2',
    [id, createdAt],
  );
  // The recipients, then their queue rows (migration 0031's lock order): one being fanned out
  // is waited for, and is then fanned out, not canceled.
  const recipients = await client.query(
    `WITH canceled AS (
       UPDATE recipients SET state = 'canceled'
        WHERE notification_id = $1 AND notification_created_at = $2 AND state IN ('pending', 'held')
       RETURNING notification_id, notification_created_at, user_id
     ), dequeued AS (
       DELETE FROM recipient_queue q USING canceled c
        WHERE q.notification_id = c.notification_id AND q.notification_created_at = c.notification_created_at
          AND q.user_id = c.user_id
     )
     SELECT 1 FROM canceled`,
    [id, createdAt],
  );
  // A workflow stops where it is: no later step (delay, escalation) sends.
  const runs = await cancelWorkflowRuns(client, id, createdAt);
  const deliveries = await client.query(
    // The waiting deliveries' queue rows first (the lock order of migration 0030): one a worker
    // has leased meanwhile is in flight and goes on.
    `WITH q AS (
       DELETE FROM delivery_queue q USING deliveries d
        WHERE d.notification_id = $1 AND d.notification_created_at = $2 AND d.state IN ('pending', 'retrying')
          AND q.delivery_id = d.id AND q.notification_created_at = d.notification_created_at
          AND q.user_id = d.user_id AND q.lease_owner IS NULL
        RETURNING q.delivery_id, q.notification_created_at, q.user_id
     ), c AS (
       UPDATE deliveries d SET state = 'canceled', updated_at = $3, lease_owner = NULL, lease_expires_at = NULL
         FROM q
        WHERE d.id = q.delivery_id AND d.notification_created_at = q.notification_created_at AND d.user_id = q.user_id
          AND d.state IN ('pending', 'retrying')
        RETURNING d.id, d.notification_id, d.channel, d.lane, d.attempts
     )
     INSERT INTO delivery_events (delivery_id, notification_id, notification_created_at, channel, lane, state, attempt, detail, created_at)
     SELECT id, notification_id, $2, channel, lane, 'canceled', attempts, 'canceled by caller', $3 FROM c`,
    [id, createdAt, now],
  );
  const canceledRecipients = Math.max(recipients.rowCount ?? 0, runs);
  const total = (expansion.rowCount ?? 0) + canceledRecipients + (deliveries.rowCount ?? 0);
  if (total > 0) {
    await client.query('UPDATE notifications SET canceled_at = $3 WHERE id = $1 AND created_at = $2', [
      id,
      createdAt,
      now,
    ]);
  }
  return {
    recipients: canceledRecipients,
    deliveries: deliveries.rowCount ?? 0,
    topicSends: expansion.rowCount ?? 0,
  };
}
