// The user's inbox: items listed newest first with a keyset cursor, read state changed by the
// user, and the per-user event stream realtime clients follow (migration 0006, docs/inbox.md).
// Users see the last 90 days; older items stay until retention removes their partition.
import type { Pool, PoolClient } from '../pools.js';
import type { NotificationContent } from '../../domain/notification.js';

export const inboxDays = 90;

export const inboxEventKinds = [
  'created',
  'updated',
  'read',
  'unread',
  'seen',
  'archived',
  'unarchived',
  'deleted',
  'read_all',
  'seen_all',
] as const;
export type InboxEventKind = (typeof inboxEventKinds)[number];

export interface NewInboxEvent {
  userId: string;
  kind: InboxEventKind;
  notificationId: string | null;
  notificationCreatedAt: Date | null;
}

type Queryable = Pick<Pool | PoolClient, 'query'>;

/**
 * Appends events to their users' streams, inside the caller's transaction. Each user's stream
 * row is bumped (and so locked until commit) in user-id order, which keeps concurrent writers
 * free of deadlocks and makes a user's event numbers follow commit order. Returns the users
 * whose streams moved, for the NOTIFY sent after commit.
 */
export async function appendInboxEvents(
  client: Queryable,
  events: readonly NewInboxEvent[],
): Promise<string[]> {
  if (events.length === 0) return [];
  const result = await client.query<{ user_id: string }>({
    name: 'herald_append_inbox_events',
    text: `WITH input AS (
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) WITH ORDINALITY
         AS t(user_id, kind, notification_id, nca, ord)
     ), counts AS (
       SELECT user_id, count(*) AS n FROM input GROUP BY user_id
     ), bumped AS (
       INSERT INTO inbox_streams (user_id, seq)
       SELECT user_id, n FROM counts ORDER BY user_id
       ON CONFLICT (user_id) DO UPDATE SET seq = inbox_streams.seq + excluded.seq
       RETURNING user_id, seq
     ), ins AS (
       INSERT INTO inbox_events (user_id, seq, kind, notification_id, notification_created_at)
       SELECT i.user_id, b.seq - c.n + row_number() OVER (PARTITION BY i.user_id ORDER BY i.ord),
              i.kind, i.notification_id, i.nca
         FROM input i JOIN bumped b USING (user_id) JOIN counts c USING (user_id)
     )
     SELECT user_id FROM bumped`,
    values: [
      events.map((e) => e.userId),
      events.map((e) => e.kind),
      events.map((e) => e.notificationId),
      events.map((e) => e.notificationCreatedAt),
    ],
  });
  return result.rows.map((r) => r.user_id);
}

/** Where a listing continues: after the item with this arrival time (µs since 1970) and notification id. */
export interface InboxPosition {
  arrivedUs: number;
  id: string;
}

/**
 * What a service's key sees of an inbox: only its own items. A notification id always begins with
 * its service's name and '#' (src/domain/ids.ts: ids are generated so, and a caller's own ids are
 * refused unless they name the caller), so the prefix scopes a query without a join.
 */
export type ServiceScope = string | undefined;

/** The scope of a service's key: its notification ids' prefix. */
export function serviceScope(serviceName: string): string {
  return `${serviceName}#`;
}

const inScope = (param: number) =>
  `($${String(param)}::text IS NULL OR starts_with(i.notification_id, $${String(param)}))`;

export interface InboxFilter {
  /** Only this service's items (a service's key); every service's for the user's own token. */
  scope?: ServiceScope;
  unread?: boolean;
  category?: string;
  /** true: only archived items; false or absent: only items not archived. */
  archived?: boolean;
}

export interface InboxRow {
  id: string;
  notification_created_at: Date;
  arrived_at: Date;
  /** arrived_at in microseconds (Date keeps milliseconds only; the cursor needs the exact value). */
  arrived_us: number;
  updated_at: Date;
  category: string;
  version: number;
  content: NotificationContent;
  data: Record<string, unknown> | null;
  read_at: Date | null;
  seen_at: Date | null;
  archived_at: Date | null;
  service_id: number;
  template: string | null;
  template_version: number | null;
  params: Record<string, unknown> | null;
  locale: string | null;
}

const itemColumns = `n.id, i.notification_created_at, i.created_at AS arrived_at,
       (extract(epoch FROM i.created_at) * 1000000)::bigint AS arrived_us, n.updated_at, i.category, n.version,
       n.content, n.data, i.read_at, i.seen_at, i.archived_at, n.service_id, n.template, n.template_version,
       n.params, u.locale`;
// Each item's notification and user, looked up by key (LIMIT 1 keeps the lookups nested loops
// the planner cannot trade for a join of whole tables): a plan that holds for every user, so
// the list and count run as named prepared statements and are planned once per connection.
const itemJoins = `CROSS JOIN LATERAL (SELECT * FROM notifications n
                   WHERE n.id = i.notification_id AND n.created_at = i.notification_created_at LIMIT 1) n
       LEFT JOIN LATERAL (SELECT u.locale FROM users u WHERE u.id = i.user_id LIMIT 1) u ON true`;
const visible = `i.deleted_at IS NULL AND i.notification_created_at > now() - interval '${String(inboxDays)} days'`;

/**
 * A query as a named prepared statement: planned once per connection rather than on every call
 * (planning the partitions cost more than running the page query, bench:inbox). One name per
 * distinct text, so a name never stands for two statements.
 */
const statementNames = new Map<string, string>();
function prepared(text: string, values: unknown[]): { name: string; text: string; values: unknown[] } {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `inbox_${String(statementNames.size + 1)}`;
    statementNames.set(text, name);
  }
  return { name, text, values };
}

/**
 * A service's scope as a condition on its own parameter, or none for the whole inbox: a
 * statement planned once cannot drop `$n IS NULL OR …` itself, and the condition reads the
 * notification id, which the unread index does not hold.
 */
function scopeCondition(params: unknown[], scope: ServiceScope): string[] {
  if (scope === undefined) return [];
  params.push(scope);
  return [`starts_with(i.notification_id, $${String(params.length)})`];
}

/** One page of a user's inbox, newest arrival first. */
export async function listInbox(
  pool: Pool,
  userId: string,
  filter: InboxFilter,
  after: InboxPosition | undefined,
  limit: number,
): Promise<InboxRow[]> {
  const params: unknown[] = [userId, limit];
  const where = [
    `i.user_id = $1`,
    ...scopeCondition(params, filter.scope),
    visible,
    filter.archived === true ? 'i.archived_at IS NOT NULL' : 'i.archived_at IS NULL',
  ];
  if (filter.unread === true) where.push('i.read_at IS NULL');
  if (filter.unread === false) where.push('i.read_at IS NOT NULL');
  if (filter.category !== undefined) {
    params.push(filter.category);
    where.push(`i.category = $${String(params.length)}`);
  }
  if (after !== undefined) {
    params.push(after.arrivedUs, after.id);
    where.push(
      `(i.created_at, i.notification_id) < ('epoch'::timestamptz + $${String(params.length - 1)}::bigint * interval '1 microsecond', $${String(params.length)})`,
    );
  }
  // The page is picked from inbox_items alone, then joined: joined first, the planner
  // estimates one notification per item, sees nothing to gain from stopping early and joins
  // and sorts every item of the user (45 ms p50 at 1,000 items, bench:inbox; 2 ms this way).
  const result = await pool.query<InboxRow>(
    prepared(
      `SELECT ${itemColumns}
         FROM (SELECT * FROM inbox_items i
                WHERE ${where.join(' AND ')}
                ORDER BY i.created_at DESC, i.notification_id DESC
                LIMIT $2) i
         ${itemJoins}
        ORDER BY i.created_at DESC, i.notification_id DESC`,
      params,
    ),
  );
  return result.rows;
}

/** Items by (user, notification), deleted ones left out; each row carries its user_id. */
export async function findInboxItems(
  pool: Pool,
  keys: readonly { userId: string; notificationId: string }[],
  scope?: ServiceScope,
): Promise<(InboxRow & { user_id: string })[]> {
  if (keys.length === 0) return [];
  const result = await pool.query<InboxRow & { user_id: string }>(
    `SELECT i.user_id, ${itemColumns}
       FROM unnest($1::text[], $2::text[]) AS k(user_id, notification_id)
       JOIN inbox_items i ON i.user_id = k.user_id AND i.notification_id = k.notification_id
       ${itemJoins}
      WHERE ${visible} AND ${inScope(3)}`,
    [keys.map((k) => k.userId), keys.map((k) => k.notificationId), scope ?? null],
  );
  return result.rows;
}

export interface InboxCounts {
  unread: number;
  unseen: number;
}

/** Unread and unseen items (archived and deleted ones do not count). */
export async function countInbox(pool: Pool, userId: string, scope?: ServiceScope): Promise<InboxCounts> {
  // One index-only scan of the user's unread rows (the partial index includes seen_at); a
  // service's scope reads the rows' ids as well.
  const params: unknown[] = [userId];
  const where = ['i.user_id = $1', ...scopeCondition(params, scope)];
  const result = await pool.query<{ unread: number; unseen: number }>(
    prepared(
      `SELECT count(*) AS unread, count(*) FILTER (WHERE i.seen_at IS NULL) AS unseen
         FROM inbox_items i
        WHERE ${where.join(' AND ')} AND i.read_at IS NULL AND i.archived_at IS NULL AND ${visible}`,
      params,
    ),
  );
  const row = result.rows[0];
  return { unread: row?.unread ?? 0, unseen: row?.unseen ?? 0 };
}

/** Unread counts of several users at once (the realtime stream's batches). */
export async function countUnread(
  pool: Pool,
  userIds: readonly string[],
  scope?: ServiceScope,
): Promise<Map<string, number>> {
  const result = await pool.query<{ user_id: string; unread: number }>(
    `SELECT i.user_id, count(*) AS unread FROM inbox_items i
      WHERE i.user_id = ANY($1::text[]) AND i.read_at IS NULL AND i.archived_at IS NULL AND ${visible}
        AND ${inScope(2)}
      GROUP BY i.user_id`,
    [userIds, scope ?? null],
  );
  return new Map(result.rows.map((r) => [r.user_id, r.unread]));
}

export type ItemAction = 'read' | 'unread' | 'seen' | 'archived' | 'unarchived' | 'deleted';

const actionSet: Record<ItemAction, { set: string; when: string }> = {
  read: { set: 'read_at = now(), seen_at = COALESCE(seen_at, now())', when: 'read_at IS NULL' },
  unread: { set: 'read_at = NULL', when: 'read_at IS NOT NULL' },
  seen: { set: 'seen_at = now()', when: 'seen_at IS NULL' },
  archived: { set: 'archived_at = now()', when: 'archived_at IS NULL' },
  unarchived: { set: 'archived_at = NULL', when: 'archived_at IS NOT NULL' },
  deleted: { set: 'deleted_at = now()', when: 'true' },
};

/**
 * Applies one action to one of the user's items and appends its event when something changed.
 * Returns 'missing' when the user has no such (visible) item: another user's id looks the same.
 */
export async function applyItemAction(
  client: PoolClient,
  userId: string,
  notificationId: string,
  action: ItemAction,
  scope?: ServiceScope,
): Promise<'changed' | 'unchanged' | 'missing'> {
  const { set, when } = actionSet[action];
  const result = await client.query<{ changed: boolean; notification_created_at: Date }>(
    `WITH target AS (
       SELECT notification_id, notification_created_at, (${when}) AS changed FROM inbox_items i
        WHERE i.user_id = $1 AND i.notification_id = $2 AND ${visible} AND ${inScope(3)}
        FOR UPDATE
     ), upd AS (
       UPDATE inbox_items i SET ${set}
         FROM target t
        WHERE t.changed AND i.user_id = $1 AND i.notification_id = t.notification_id
          AND i.notification_created_at = t.notification_created_at
     )
     SELECT changed, notification_created_at FROM target`,
    [userId, notificationId, scope ?? null],
  );
  const row = result.rows[0];
  if (row === undefined) return 'missing';
  if (!row.changed) return 'unchanged';
  await appendInboxEvents(client, [
    { userId, kind: action, notificationId, notificationCreatedAt: row.notification_created_at },
  ]);
  return 'changed';
}

/**
 * Marks every visible unread (or unseen) item read (or seen), optionally of one category; one
 * event for all. Returns how many items changed.
 */
export async function markAll(
  client: PoolClient,
  userId: string,
  kind: 'read_all' | 'seen_all',
  category: string | undefined,
  scope?: ServiceScope,
): Promise<number> {
  const set = kind === 'read_all' ? 'read_at = now(), seen_at = COALESCE(seen_at, now())' : 'seen_at = now()';
  const when = kind === 'read_all' ? 'read_at IS NULL' : 'seen_at IS NULL';
  const result = await client.query(
    `UPDATE inbox_items i SET ${set}
      WHERE i.user_id = $1 AND ${when} AND i.archived_at IS NULL AND ${visible}
        AND ($2::text IS NULL OR i.category = $2) AND ${inScope(3)}`,
    [userId, category ?? null, scope ?? null],
  );
  const changed = result.rowCount ?? 0;
  if (changed > 0)
    await appendInboxEvents(client, [{ userId, kind, notificationId: null, notificationCreatedAt: null }]);
  return changed;
}

export interface InboxEventRow {
  user_id: string;
  seq: number;
  kind: InboxEventKind;
  notification_id: string | null;
}

/** The last event number of each user's stream (0 for a user without events). */
export async function streamPositions(pool: Pool, userIds: readonly string[]): Promise<Map<string, number>> {
  const result = await pool.query<{ user_id: string; seq: number }>(
    'SELECT user_id, seq FROM inbox_streams WHERE user_id = ANY($1::text[])',
    [userIds],
  );
  return new Map(result.rows.map((r) => [r.user_id, r.seq]));
}

/** Events after each user's position, oldest first, at most `limit` per user. */
export async function readInboxEvents(
  pool: Pool,
  after: readonly { userId: string; seq: number }[],
  limit: number,
): Promise<InboxEventRow[]> {
  if (after.length === 0) return [];
  const result = await pool.query<InboxEventRow>(
    `SELECT e.user_id, e.seq, e.kind, e.notification_id
       FROM unnest($1::text[], $2::bigint[]) AS c(user_id, after)
       CROSS JOIN LATERAL (
         SELECT user_id, seq, kind, notification_id FROM inbox_events e
          WHERE e.user_id = c.user_id AND e.seq > c.after
          ORDER BY e.seq LIMIT $3
       ) e
      ORDER BY e.user_id, e.seq`,
    [after.map((a) => a.userId), after.map((a) => a.seq), limit],
  );
  return result.rows;
}
