// The fan-out stage's reads and writes: claim due recipients, load what planning needs,
// and write deliveries, inbox items and events in the same transaction. The per-batch statements
// are named: each connection plans them once.
import { randomBytes } from 'node:crypto';
import type { PoolClient } from '../pools.js';
import type { Channel, Lane } from '../../domain/notification.js';
import type { FanOutDevice, FanOutUser } from '../../domain/fan-out.js';
import type {
  DueRecipient,
  FannedOutRecipient,
  FanOutNotification,
  NewDelivery,
} from '../../domain/fan-out-decision.js';
import { uuidV7 } from '../../domain/ids.js';
import { appendInboxEvents } from './inbox-store.js';

/** A claimed recipients row, as the claims select it. */
export interface DueRecipientRow {
  notification_id: string;
  notification_created_at: Date;
  user_id: string;
  lane: Lane;
  channels: Channel[] | null;
}

export const toDueRecipient = (r: DueRecipientRow): DueRecipient => ({
  notificationId: r.notification_id,
  notificationCreatedAt: r.notification_created_at,
  userId: r.user_id,
  lane: r.lane,
  ...(r.channels === null ? {} : { channels: r.channels }),
});

/** The claims' columns, of recipient_queue q joined to recipients r on queuedRecipient. */
export const dueRecipientColumns =
  'r.notification_id, r.notification_created_at, r.user_id, r.lane, r.channels';
export const queuedRecipient =
  'r.notification_id = q.notification_id AND r.user_id = q.user_id AND r.notification_created_at = q.notification_created_at';

/**
 * Locks up to `limit` due recipients of a lane that no rate budget paces (those are claimed by
 * src/pipeline/budget-pacing.ts); the locks hold until the caller commits.
 */
export async function claimDueRecipients(
  client: PoolClient,
  lane: Lane,
  limit: number,
): Promise<DueRecipient[]> {
  if (limit <= 0) return [];
  const result = await client.query<DueRecipientRow>({
    name: 'herald_claim_recipients',
    text: `SELECT ${dueRecipientColumns} FROM recipient_queue q JOIN recipients r ON ${queuedRecipient}
      WHERE q.lane = $1 AND q.send_at <= now() AND q.budget_id IS NULL AND r.state = 'pending'
      ORDER BY q.send_at
      LIMIT $2
      FOR UPDATE OF r SKIP LOCKED`,
    values: [lane, limit],
  });
  return result.rows.map(toDueRecipient);
}

export async function loadFanOutInputs(
  client: PoolClient,
  recipients: DueRecipient[],
): Promise<{
  notifications: Map<string, FanOutNotification>;
  users: Map<string, FanOutUser>;
  devices: Map<string, FanOutDevice[]>;
}> {
  const notificationKeys = [...new Map(recipients.map((r) => [r.notificationId, r])).values()];
  const userIds = [...new Set(recipients.map((r) => r.userId))];
  // One client runs one query at a time; these three are sequential on purpose.
  const n = await client.query<{
    id: string;
    created_at: Date;
    service_id: number;
    channels: Channel[];
    category: string;
    webhook_url: string | null;
    chat_webhook_url: string | null;
  }>(
    `SELECT n.id, n.created_at, n.service_id, n.channels, n.category, s.webhook_url, s.chat_webhook_url
         FROM unnest($1::text[], $2::timestamptz[]) AS k(id, created_at)
         JOIN notifications n ON n.id = k.id AND n.created_at = k.created_at
         JOIN services s ON s.id = n.service_id`,
    [notificationKeys.map((r) => r.notificationId), notificationKeys.map((r) => r.notificationCreatedAt)],
  );
  const u = await client.query<{
    id: string;
    email: string | null;
    phone: string | null;
    webhook_url: string | null;
    chat_webhook_url: string | null;
  }>('SELECT id, email, phone, webhook_url, chat_webhook_url FROM users WHERE id = ANY($1::text[])', [
    userIds,
  ]);
  const d = await client.query<{ id: string; user_id: string; enabled: boolean }>(
    'SELECT id, user_id, enabled FROM devices WHERE user_id = ANY($1::text[]) ORDER BY created_at, id',
    [userIds],
  );
  const devices = new Map<string, FanOutDevice[]>();
  for (const row of d.rows) {
    const list = devices.get(row.user_id) ?? [];
    list.push({ id: row.id, enabled: row.enabled });
    devices.set(row.user_id, list);
  }
  return {
    notifications: new Map(
      n.rows.map((r) => [
        r.id,
        {
          id: r.id,
          createdAt: r.created_at,
          serviceId: r.service_id,
          channels: r.channels,
          category: r.category,
          serviceWebhookUrl: r.webhook_url,
          serviceChatUrl: r.chat_webhook_url,
        },
      ]),
    ),
    users: new Map(
      u.rows.map((r) => [
        r.id,
        {
          id: r.id,
          email: r.email,
          phone: r.phone,
          webhookUrl: r.webhook_url,
          chatWebhookUrl: r.chat_webhook_url,
        },
      ]),
    ),
    devices,
  };
}

export interface FanOutWrite {
  deliveries: NewDelivery[];
  fannedOut: FannedOutRecipient[];
  maxAttempts: number;
  /**
   * Set for a topic page: its recipients have no rows yet and get them here, already fanned
   * out (one insert per recipient; no pending row to update, no dead row version left behind).
   */
  insertRecipients?: { sendAt: Date };
}

/**
 * Writes the planned deliveries and marks the recipients fanned out (or inserts them so, for a
 * topic page). In-app deliveries are
 * complete on write: the inbox row is the delivery. The unique (notification, user, channel,
 * target) key makes a repeated fan-out create nothing new. Returns counts per channel of the
 * deliveries created to be sent (suppressed ones left out) and the users whose inbox streams
 * moved (new in-app items), for the NOTIFY after commit.
 */
export async function writeFanOut(
  client: PoolClient,
  write: FanOutWrite,
  nowMs: number,
): Promise<{ created: Map<string, number>; inboxUsers: string[] }> {
  const rows = write.deliveries;
  const created = new Map<string, number>();
  const inboxUsers: string[] = [];
  if (rows.length > 0) {
    // One call for the batch's randomness: a call per row costs more than formatting the id.
    const random = randomBytes(rows.length * 10);
    const ids = rows.map((_, i) => uuidV7(nowMs, random.subarray(i * 10, i * 10 + 10)));
    const inserted = await client.query<{
      id: string;
      channel: string;
      state: string;
      notification_id: string;
      user_id: string;
      notification_created_at: Date;
      category: string;
    }>({
      name: 'herald_write_deliveries',
      text: `WITH input AS (
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                              $11::text[], $12::timestamptz[], $13::text[])
           AS t(id, notification_id, nca, service_id, user_id, channel, target, lane, category,
                suppressed, run_at, detail)
       ), ins AS (
         INSERT INTO deliveries (id, notification_id, notification_created_at, service_id, user_id, channel, target, lane,
                                 state, max_attempts, run_at, category, last_error)
         SELECT id, notification_id, nca, service_id, user_id, channel, target, lane,
                CASE WHEN suppressed IS NOT NULL THEN 'suppressed'
                     WHEN channel = 'in_app' THEN 'delivered' ELSE 'pending' END,
                $10, COALESCE(run_at, now()), category, suppressed
           FROM input
         ON CONFLICT DO NOTHING
         RETURNING id, notification_id, notification_created_at, user_id, channel, state
       ), ev AS (
         INSERT INTO delivery_events (delivery_id, notification_id, notification_created_at, channel, lane, state, attempt, detail)
         SELECT ins.id, ins.notification_id, ins.notification_created_at, ins.channel, input.lane, ins.state, 0,
                COALESCE(input.suppressed, input.detail)
           FROM ins JOIN input ON input.id = ins.id
       )
       SELECT ins.*, input.category FROM ins JOIN input ON input.id = ins.id`,
      values: [
        ids,
        rows.map((r) => r.notificationId),
        rows.map((r) => r.notificationCreatedAt),
        rows.map((r) => r.serviceId),
        rows.map((r) => r.userId),
        rows.map((r) => r.channel),
        rows.map((r) => r.target),
        rows.map((r) => r.lane),
        rows.map((r) => r.category),
        write.maxAttempts,
        rows.map((r) => r.suppressed ?? null),
        rows.map((r) => r.deferred?.runAt ?? null),
        rows.map((r) => r.deferred?.detail ?? null),
      ],
    });
    const inApp = inserted.rows.filter((r) => r.channel === 'in_app' && r.state === 'delivered');
    if (inApp.length > 0) {
      const items = await client.query<{
        notification_id: string;
        notification_created_at: Date;
        user_id: string;
      }>({
        name: 'herald_write_inbox_items',
        text: `INSERT INTO inbox_items (notification_id, notification_created_at, user_id, category)
         SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[])
         ON CONFLICT DO NOTHING
         RETURNING notification_id, notification_created_at, user_id`,
        values: [
          inApp.map((r) => r.notification_id),
          inApp.map((r) => r.notification_created_at),
          inApp.map((r) => r.user_id),
          inApp.map((r) => r.category),
        ],
      });
      inboxUsers.push(
        ...(await appendInboxEvents(
          client,
          items.rows.map((r) => ({
            userId: r.user_id,
            kind: 'created' as const,
            notificationId: r.notification_id,
            notificationCreatedAt: r.notification_created_at,
          })),
        )),
      );
    }
    // Suppressed deliveries are counted by the stage (herald_deliveries_suppressed_total), not here.
    for (const r of inserted.rows)
      if (r.state !== 'suppressed') created.set(r.channel, (created.get(r.channel) ?? 0) + 1);
  }
  await markFannedOut(client, write);
  return { created, inboxUsers };
}

/** Records each recipient as fanned out, with the channels it skipped. */
async function markFannedOut(client: PoolClient, write: FanOutWrite): Promise<void> {
  const done = write.fannedOut;
  const keys = [
    done.map((d) => d.recipient.notificationId),
    done.map((d) => d.recipient.notificationCreatedAt),
    done.map((d) => d.recipient.userId),
    done.map((d) => (d.skipped.length === 0 ? null : JSON.stringify(d.skipped))),
  ];
  if (write.insertRecipients !== undefined) {
    await client.query(
      `INSERT INTO recipients (notification_id, notification_created_at, user_id, lane, state, send_at, skipped, fanned_out_at)
       SELECT t.nid, t.nca, t.uid, t.lane, 'fanned_out', $6, t.skipped, now()
         FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::jsonb[], $5::text[]) AS t(nid, nca, uid, skipped, lane)
       ON CONFLICT DO NOTHING`,
      [...keys, done.map((d) => d.recipient.lane), write.insertRecipients.sendAt],
    );
    return;
  }
  // The claim locked these recipients; their queue rows go with the update (migration 0031).
  await client.query({
    name: 'herald_mark_fanned_out',
    text: `WITH t AS (
         SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::jsonb[]) AS t(nid, nca, uid, skipped)
       ), dequeued AS (
         DELETE FROM recipient_queue q USING t
          WHERE q.notification_id = t.nid AND q.notification_created_at = t.nca AND q.user_id = t.uid
       )
       UPDATE recipients r SET state = 'fanned_out', fanned_out_at = now(), skipped = t.skipped
         FROM t
        WHERE r.notification_id = t.nid AND r.notification_created_at = t.nca AND r.user_id = t.uid`,
    values: keys,
  });
}
