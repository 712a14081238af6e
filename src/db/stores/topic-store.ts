// Topics: a service's named lists of subscribers (users), users' opt-outs of them, and the
// expansion of a topic send into recipients rows, a page of subscribers per transaction with
// the cursor committed beside the rows it covers (docs/topics.md).
import type { Pool, PoolClient } from '../pools.js';
import type { Lane } from '../../domain/notification.js';

export interface Topic {
  id: number;
  key: string;
  name: string | null;
  subscribers: number;
  createdAt: Date;
}

interface TopicRow {
  id: string;
  key: string;
  name: string | null;
  subscribers: string;
  created_at: Date;
}

const topicColumns = 'id, key, name, subscribers, created_at';

function toTopic(r: TopicRow): Topic {
  return {
    id: Number(r.id),
    key: r.key,
    name: r.name,
    subscribers: Number(r.subscribers),
    createdAt: r.created_at,
  };
}

/** Creates a topic; undefined when the service already has one with this key. */
export async function createTopic(
  pool: Pool,
  serviceId: number,
  key: string,
  name: string | null,
): Promise<Topic | undefined> {
  const result = await pool.query<TopicRow>(
    `INSERT INTO topics (service_id, key, name) VALUES ($1, $2, $3)
     ON CONFLICT (service_id, key) DO NOTHING RETURNING ${topicColumns}`,
    [serviceId, key, name],
  );
  const row = result.rows[0];
  return row === undefined ? undefined : toTopic(row);
}

/** A service's topic by key; another service's topic is not found. */
export async function findTopic(
  db: Pool | PoolClient,
  serviceId: number,
  key: string,
  options: { lock?: boolean } = {},
): Promise<Topic | undefined> {
  const result = await db.query<TopicRow>(
    `SELECT ${topicColumns} FROM topics WHERE service_id = $1 AND key = $2${options.lock === true ? ' FOR UPDATE' : ''}`,
    [serviceId, key],
  );
  const row = result.rows[0];
  return row === undefined ? undefined : toTopic(row);
}

/** A page of a service's topics in key order, after `after`. */
export async function listTopics(
  pool: Pool,
  serviceId: number,
  after: string | undefined,
  limit: number,
): Promise<Topic[]> {
  const result = await pool.query<TopicRow>(
    `SELECT ${topicColumns} FROM topics WHERE service_id = $1 AND ($2::text IS NULL OR key > $2)
      ORDER BY key LIMIT $3`,
    [serviceId, after ?? null, limit],
  );
  return result.rows.map(toTopic);
}

/** Deletes a topic, its subscriptions, opt-outs and unexpanded sends; false when not found. */
export async function deleteTopic(pool: Pool, serviceId: number, key: string): Promise<boolean> {
  const result = await pool.query('DELETE FROM topics WHERE service_id = $1 AND key = $2', [serviceId, key]);
  return (result.rowCount ?? 0) > 0;
}

/**
 * Subscribes users that exist to a locked topic; returns how many were new and which ids name
 * no user (not subscribed). The subscriber count moves in the same transaction.
 */
export async function addSubscribers(
  client: PoolClient,
  topicId: number,
  userIds: readonly string[],
): Promise<{ added: number; unknown: string[] }> {
  const result = await client.query<{ id: string; known: boolean; added: boolean }>(
    `WITH input AS (SELECT DISTINCT u AS id FROM unnest($2::text[]) AS t(u)),
          ins AS (
            INSERT INTO topic_subscribers (topic_id, user_id)
            SELECT $1, i.id FROM input i JOIN users u ON u.id = i.id
            ORDER BY i.id
            ON CONFLICT DO NOTHING
            RETURNING user_id)
     SELECT i.id, EXISTS (SELECT 1 FROM users u WHERE u.id = i.id) AS known,
            EXISTS (SELECT 1 FROM ins WHERE ins.user_id = i.id) AS added
       FROM input i`,
    [topicId, userIds],
  );
  const added = result.rows.filter((r) => r.added).length;
  if (added > 0)
    await client.query('UPDATE topics SET subscribers = subscribers + $2 WHERE id = $1', [topicId, added]);
  return { added, unknown: result.rows.filter((r) => !r.known).map((r) => r.id) };
}

/** Unsubscribes users from a locked topic; returns how many were subscribed. */
export async function removeSubscribers(
  client: PoolClient,
  topicId: number,
  userIds: readonly string[],
): Promise<number> {
  const result = await client.query(
    'DELETE FROM topic_subscribers WHERE topic_id = $1 AND user_id = ANY($2::text[])',
    [topicId, userIds],
  );
  const removed = result.rowCount ?? 0;
  if (removed > 0)
    await client.query('UPDATE topics SET subscribers = subscribers - $2 WHERE id = $1', [topicId, removed]);
  return removed;
}

/** A page of a topic's subscribers in user id order, after `after` (keyset). */
export async function listSubscribers(
  pool: Pool,
  topicId: number,
  after: string | undefined,
  limit: number,
): Promise<{ userId: string; subscribedAt: Date }[]> {
  const result = await pool.query<{ user_id: string; created_at: Date }>(
    `SELECT user_id, created_at FROM topic_subscribers
      WHERE topic_id = $1 AND ($2::text IS NULL OR user_id > $2)
      ORDER BY user_id LIMIT $3`,
    [topicId, after ?? null, limit],
  );
  return result.rows.map((r) => ({ userId: r.user_id, subscribedAt: r.created_at }));
}

/** A user opts out of (or back into) one of a service's topics; false when the topic is not found. */
export async function setTopicOptOut(
  pool: Pool,
  serviceId: number,
  key: string,
  userId: string,
  optedOut: boolean,
): Promise<boolean> {
  const result = await pool.query(
    optedOut
      ? `INSERT INTO topic_opt_outs (topic_id, user_id)
         SELECT t.id, u.id FROM topics t, users u WHERE t.service_id = $1 AND t.key = $2 AND u.id = $3
         ON CONFLICT (topic_id, user_id) DO UPDATE SET created_at = topic_opt_outs.created_at
         RETURNING 1`
      : `WITH t AS (SELECT id FROM topics WHERE service_id = $1 AND key = $2),
              d AS (DELETE FROM topic_opt_outs o USING t WHERE o.topic_id = t.id AND o.user_id = $3)
         SELECT 1 FROM t, users u WHERE u.id = $3`,
    [serviceId, key, userId],
  );
  return (result.rowCount ?? 0) > 0;
}

/** The keys of a service's topics a user has opted out of. */
export async function listTopicOptOuts(pool: Pool, serviceId: number, userId: string): Promise<string[]> {
  const result = await pool.query<{ key: string }>(
    `SELECT t.key FROM topic_opt_outs o JOIN topics t ON t.id = o.topic_id
      WHERE o.user_id = $2 AND t.service_id = $1 ORDER BY t.key`,
    [serviceId, userId],
  );
  return result.rows.map((r) => r.key);
}

/** A topic send waiting to be expanded, written by the group commit with its notification. */
export interface NewTopicSend {
  notificationId: string;
  notificationCreatedAt: Date;
  topicId: number;
  lane: string;
  sendAt: Date;
  timeZone: string | null;
  /** The rate budget its recipients are paced by (docs/budgets.md); null: none. */
  budgetId: number | null;
}

export async function insertTopicSends(client: PoolClient, sends: readonly NewTopicSend[]): Promise<void> {
  if (sends.length === 0) return;
  await client.query(
    `INSERT INTO topic_sends (notification_id, notification_created_at, topic_id, lane, send_at, time_zone, budget_id)
     SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::bigint[], $4::text[], $5::timestamptz[], $6::text[], $7::bigint[])`,
    [
      sends.map((s) => s.notificationId),
      sends.map((s) => s.notificationCreatedAt),
      sends.map((s) => s.topicId),
      sends.map((s) => s.lane),
      sends.map((s) => s.sendAt),
      sends.map((s) => s.timeZone),
      sends.map((s) => s.budgetId),
    ],
  );
}

/** One page of a due topic send's subscribers, claimed for fan-out in the caller's transaction. */
export interface TopicPage {
  notificationId: string;
  notificationCreatedAt: Date;
  lane: Lane;
  sendAt: Date;
  /** The rate budget that paces the send (insertPacedTopicRecipients); null: none. */
  budgetId: number | null;
  /** Subscribers read, and the last of them (the next cursor). */
  paged: number;
  last: string | null;
  /** The page's users to fan out: opted-out users (and, for a schedule's occurrence, other zones') left out. */
  userIds: string[];
}

/**
 * Claims the next page of one due topic send (SKIP LOCKED: one worker per send at a time):
 * up to `chunk` subscribers after its cursor. A canceled send gives an empty last page.
 * The caller fans the users out and calls advanceTopicSend in the same transaction, so a worker
 * killed mid-page leaves the cursor where it was.
 */
export async function claimTopicPage(client: PoolClient, chunk: number): Promise<TopicPage | undefined> {
  const claimed = await client.query<{
    notification_id: string;
    notification_created_at: Date;
    topic_id: string;
    lane: Lane;
    send_at: Date;
    time_zone: string | null;
    cursor_user_id: string | null;
    budget_id: string | null;
    canceled: boolean;
  }>(
    `SELECT t.notification_id, t.notification_created_at, t.topic_id, t.lane, t.send_at, t.time_zone, t.cursor_user_id,
            t.budget_id,
            EXISTS (SELECT 1 FROM notifications n WHERE n.id = t.notification_id
                       AND n.created_at = t.notification_created_at AND n.canceled_at IS NOT NULL) AS canceled
       FROM topic_sends t WHERE t.send_at <= now()
      ORDER BY (t.lane = 'transactional') DESC, t.send_at
      LIMIT 1 FOR UPDATE OF t SKIP LOCKED`,
  );
  const send = claimed.rows[0];
  if (send === undefined) return undefined;
  const page = {
    notificationId: send.notification_id,
    notificationCreatedAt: send.notification_created_at,
    lane: send.lane,
    sendAt: send.send_at,
    budgetId: send.budget_id === null ? null : Number(send.budget_id),
  };
  if (send.canceled) return { ...page, paged: 0, last: null, userIds: [] };
  const rows = await client.query<{ user_id: string; included: boolean }>(
    `SELECT s.user_id,
            NOT EXISTS (SELECT 1 FROM topic_opt_outs o WHERE o.topic_id = $1 AND o.user_id = s.user_id)
            AND ($4::text IS NULL OR EXISTS (SELECT 1 FROM users u WHERE u.id = s.user_id AND u.time_zone = $4))
              AS included
       FROM topic_subscribers s
      WHERE s.topic_id = $1 AND ($2::text IS NULL OR s.user_id > $2)
      ORDER BY s.user_id LIMIT $3`,
    [send.topic_id, send.cursor_user_id, chunk, send.time_zone],
  );
  return {
    ...page,
    paged: rows.rows.length,
    last: rows.rows.at(-1)?.user_id ?? null,
    userIds: rows.rows.filter((r) => r.included).map((r) => r.user_id),
  };
}

/**
 * Inserts a budgeted page's users as pending recipients of its budget, for the budget's claim
 * to pace (src/pipeline/budget-pacing.ts); returns how many rows were new.
 */
export async function insertPacedTopicRecipients(client: PoolClient, page: TopicPage): Promise<number> {
  const result = await client.query(
    `INSERT INTO recipients (notification_id, notification_created_at, user_id, lane, state, send_at, budget_id)
     SELECT $1, $2, u.user_id, $4, 'pending', $5, $6 FROM unnest($3::text[]) AS u(user_id)
     ON CONFLICT DO NOTHING`,
    [page.notificationId, page.notificationCreatedAt, page.userIds, page.lane, page.sendAt, page.budgetId],
  );
  return result.rowCount ?? 0;
}

/**
 * Moves a send's cursor past `page` (counting `expanded` recipients), or deletes the send when
 * the page was its last (fewer than `chunk` subscribers). True when the send is done.
 */
export async function advanceTopicSend(
  client: PoolClient,
  page: TopicPage,
  chunk: number,
  expanded: number,
): Promise<boolean> {
  const key = [page.notificationId, page.notificationCreatedAt];
  const done = page.paged < chunk;
  if (done)
    await client.query(
      'DELETE FROM topic_sends WHERE notification_id = $1 AND notification_created_at = $2',
      key,
    );
  else
    await client.query(
      `UPDATE topic_sends SET cursor_user_id = $3, expanded = expanded + $4
        WHERE notification_id = $1 AND notification_created_at = $2`,
      [...key, page.last, expanded],
    );
  return done;
}

/** Every topic a user opted out of, across services, for the user's own view (query role). */
export async function listUserTopicOptOuts(
  pool: Pool,
  userId: string,
): Promise<{ service: string; topic: string }[]> {
  const result = await pool.query<{ service: string; topic: string }>(
    `SELECT s.name AS service, t.key AS topic FROM topic_opt_outs o
       JOIN topics t ON t.id = o.topic_id JOIN services s ON s.id = t.service_id
      WHERE o.user_id = $1 ORDER BY s.name, t.key`,
    [userId],
  );
  return result.rows;
}

/** A service's id by name; undefined when there is none. */
export async function findServiceId(pool: Pool, name: string): Promise<number | undefined> {
  const result = await pool.query<{ id: string }>('SELECT id FROM services WHERE name = $1', [name]);
  const row = result.rows[0];
  return row === undefined ? undefined : Number(row.id);
}
