// Preferences and limits: category settings per calling service, users' preferences, their
// no-marketing switch and quiet hours, frequency-cap usage, used unsubscribe tokens and
// Herald's own signing keys. Every change NOTIFYs herald_settings in its transaction, so the
// workers' caches drop the entry when it commits (src/pipeline/settings-cache.ts).
import { randomBytes } from 'node:crypto';
import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';
import type { Pool, PoolClient } from '../pools.js';
import { wakeChannels } from '../wake-notifier.js';
import { channels, lanes, type Channel, type Lane } from '../../domain/notification.js';
import {
  capOverflows,
  capPeriods,
  formatLocalTime,
  type CapPeriod,
  type CategorySettings,
  type Preference,
  type QuietHours,
} from '../../domain/preferences.js';

type Queryable = Pool | PoolClient;

export const FrequencyCapSchema = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    per: Type.Union(capPeriods.map((p) => Type.Literal(p))),
    over: Type.Union(capOverflows.map((o) => Type.Literal(o))),
  },
  { additionalProperties: false },
);

/** {"<channel>": true|false}; in JSON columns and the API. */
export const CategoryDefaultsSchema = Type.Object(
  Object.fromEntries(channels.map((c) => [c, Type.Optional(Type.Boolean())])),
  { additionalProperties: false },
);

/** {"<channel>": {"<lane>": cap}}; in_app has no caps (the inbox is written at fan-out). */
export const CategoryCapsSchema = Type.Object(
  Object.fromEntries(
    channels
      .filter((c) => c !== 'in_app')
      .map((c) => [
        c,
        Type.Optional(
          Type.Object(Object.fromEntries(lanes.map((l) => [l, Type.Optional(FrequencyCapSchema)])), {
            additionalProperties: false,
          }),
        ),
      ]),
  ),
  { additionalProperties: false },
);

export type CategoryDefaults = Static<typeof CategoryDefaultsSchema>;
export type CategoryCaps = Static<typeof CategoryCapsSchema>;

/** Payloads of the herald_settings NOTIFY: which cache entry changed. '' means everything. */
export const settingsChange = {
  user: (userId: string) => `user:${userId}`,
  category: (serviceId: number, category: string) => `category:${String(serviceId)}:${category}`,
  template: (serviceId: number, key: string) => `template:${String(serviceId)}:${key}`,
};

export async function notifySettingsChanged(client: PoolClient, payloads: string[]): Promise<void> {
  // Inside the transaction: delivered to listeners exactly when the change commits.
  await client.query('SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p', [
    wakeChannels.settings,
    payloads,
  ]);
}

function categorySettingsFrom(row: {
  critical: boolean;
  marketing: boolean;
  defaults: unknown;
  caps: unknown;
}): CategorySettings {
  // Written through the API's schema; checked again because a JSON column is outside input.
  const defaults = Value.Check(CategoryDefaultsSchema, row.defaults) ? row.defaults : {};
  const caps = Value.Check(CategoryCapsSchema, row.caps) ? row.caps : {};
  return {
    critical: row.critical,
    marketing: row.marketing,
    defaults: defaults,
    caps: caps,
  };
}

export function categoryKey(serviceId: number, category: string): string {
  return `${String(serviceId)}:${category}`;
}

export async function loadCategorySettings(
  db: Queryable,
  keys: readonly { serviceId: number; category: string }[],
): Promise<Map<string, CategorySettings>> {
  const result = await db.query<{
    service_id: string;
    category: string;
    critical: boolean;
    marketing: boolean;
    defaults: unknown;
    caps: unknown;
  }>(
    `SELECT c.service_id, c.category, c.critical, c.marketing, c.defaults, c.caps
       FROM unnest($1::bigint[], $2::text[]) AS k(service_id, category)
       JOIN categories c ON c.service_id = k.service_id AND c.category = k.category`,
    [keys.map((k) => k.serviceId), keys.map((k) => k.category)],
  );
  return new Map(
    result.rows.map((r) => [categoryKey(Number(r.service_id), r.category), categorySettingsFrom(r)]),
  );
}

export async function getCategory(
  db: Queryable,
  serviceId: number,
  category: string,
): Promise<(CategorySettings & { updatedAt: Date }) | undefined> {
  const result = await db.query<{
    critical: boolean;
    marketing: boolean;
    defaults: unknown;
    caps: unknown;
    updated_at: Date;
  }>(
    'SELECT critical, marketing, defaults, caps, updated_at FROM categories WHERE service_id = $1 AND category = $2',
    [serviceId, category],
  );
  const row = result.rows[0];
  return row === undefined ? undefined : { ...categorySettingsFrom(row), updatedAt: row.updated_at };
}

export async function putCategory(
  client: PoolClient,
  serviceId: number,
  category: string,
  settings: { critical: boolean; marketing: boolean; defaults: CategoryDefaults; caps: CategoryCaps },
): Promise<Date> {
  const result = await client.query<{ updated_at: Date }>(
    `INSERT INTO categories (service_id, category, critical, marketing, defaults, caps)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (service_id, category) DO UPDATE
       SET critical = excluded.critical, marketing = excluded.marketing, defaults = excluded.defaults,
           caps = excluded.caps, updated_at = now()
     RETURNING updated_at`,
    [
      serviceId,
      category,
      settings.critical,
      settings.marketing,
      JSON.stringify(settings.defaults),
      JSON.stringify(settings.caps),
    ],
  );
  await notifySettingsChanged(client, [settingsChange.category(serviceId, category)]);
  const row = result.rows[0];
  if (row === undefined) throw new Error('category upsert returned no row');
  return row.updated_at;
}

export async function loadPreferences(
  db: Queryable,
  userIds: readonly string[],
): Promise<Map<string, Preference[]>> {
  const result = await db.query<{
    user_id: string;
    channel: Channel | '*';
    category: string;
    enabled: boolean;
  }>(
    `SELECT user_id, channel, category, enabled FROM preferences WHERE user_id = ANY($1::text[])
      ORDER BY user_id, channel, category`,
    [userIds],
  );
  // Every asked user gets an entry, an empty list when they have none (a cacheable "nothing").
  const map = new Map<string, Preference[]>(userIds.map((id) => [id, []]));
  for (const r of result.rows)
    map.get(r.user_id)?.push({ channel: r.channel, category: r.category, enabled: r.enabled });
  return map;
}

export interface UserDeliverySettings {
  timeZone: string;
  noMarketing: boolean;
  quietHours: QuietHours | null;
}

export async function loadUserDeliverySettings(
  db: Queryable,
  userIds: readonly string[],
): Promise<Map<string, UserDeliverySettings>> {
  const result = await db.query<{
    id: string;
    time_zone: string;
    no_marketing: boolean;
    quiet_start: number | null;
    quiet_end: number | null;
  }>(
    `SELECT id, time_zone, no_marketing,
            (extract(epoch FROM quiet_start) / 60)::int AS quiet_start,
            (extract(epoch FROM quiet_end) / 60)::int AS quiet_end
       FROM users WHERE id = ANY($1::text[])`,
    [userIds],
  );
  return new Map(
    result.rows.map((r) => [
      r.id,
      {
        timeZone: r.time_zone,
        noMarketing: r.no_marketing,
        quietHours:
          r.quiet_start === null || r.quiet_end === null
            ? null
            : { startMinutes: r.quiet_start, endMinutes: r.quiet_end },
      },
    ]),
  );
}

export interface UserPreferences {
  preferences: Preference[];
  noMarketing: boolean;
  quietHours: QuietHours | null;
  timeZone: string;
}

export async function getUserPreferences(
  db: Queryable,
  userId: string,
): Promise<UserPreferences | undefined> {
  const settings = (await loadUserDeliverySettings(db, [userId])).get(userId);
  if (settings === undefined) return undefined;
  const preferences = (await loadPreferences(db, [userId])).get(userId) ?? [];
  return { preferences, ...settings };
}

/**
 * Replaces a user's preferences (the whole list) and, when given, the no-marketing switch and
 * quiet hours. False when the user does not exist.
 */
export async function replaceUserPreferences(
  client: PoolClient,
  userId: string,
  change: { preferences: Preference[]; noMarketing?: boolean; quietHours?: QuietHours | null },
): Promise<boolean> {
  const quiet = change.quietHours;
  const user = await client.query(
    `UPDATE users SET no_marketing = COALESCE($2, no_marketing),
            quiet_start = CASE WHEN $3 THEN $4::time ELSE quiet_start END,
            quiet_end = CASE WHEN $3 THEN $5::time ELSE quiet_end END,
            updated_at = now()
      WHERE id = $1`,
    [
      userId,
      change.noMarketing ?? null,
      quiet !== undefined,
      quiet == null ? null : formatLocalTime(quiet.startMinutes),
      quiet == null ? null : formatLocalTime(quiet.endMinutes),
    ],
  );
  if (user.rowCount === 0) return false;
  await client.query('DELETE FROM preferences WHERE user_id = $1', [userId]);
  const p = change.preferences;
  await client.query(
    `INSERT INTO preferences (user_id, channel, category, enabled)
     SELECT $1, * FROM unnest($2::text[], $3::text[], $4::boolean[])`,
    [userId, p.map((x) => x.channel), p.map((x) => x.category), p.map((x) => x.enabled)],
  );
  await notifySettingsChanged(client, [settingsChange.user(userId)]);
  return true;
}

/**
 * Uses a one-click unsubscribe token: records it as used and opts the user out of the channel
 * for the category. 'used' when the token was used before (nothing changes); 'unknown_user'
 * when the user no longer exists.
 */
export async function useUnsubscribeToken(
  client: PoolClient,
  token: { deliveryId: string; userId: string; channel: Channel; category: string },
): Promise<'done' | 'used' | 'unknown_user'> {
  const used = await client.query(
    `INSERT INTO unsubscribe_tokens (delivery_id, user_id, channel, category) VALUES ($1, $2, $3, $4)
     ON CONFLICT (delivery_id) DO NOTHING`,
    [token.deliveryId, token.userId, token.channel, token.category],
  );
  if (used.rowCount === 0) return 'used';
  const result = await client.query(
    `INSERT INTO preferences (user_id, channel, category, enabled)
     SELECT id, $2, $3, false FROM users WHERE id = $1
     ON CONFLICT (user_id, channel, category) DO UPDATE SET enabled = false, updated_at = now()`,
    [token.userId, token.channel, token.category],
  );
  if (result.rowCount === 0) return 'unknown_user';
  await notifySettingsChanged(client, [settingsChange.user(token.userId)]);
  return 'done';
}

export interface CapQuery {
  userId: string;
  category: string;
  channel: Channel;
  lane: Lane;
  per: CapPeriod;
  timeZone: string;
}

/**
 * Locks each user's cap usage for this transaction (so two fan-out batches cannot both see
 * room for the last slot), then counts their notifications per cap query and window, from the
 * window that holds `now` onwards (deferred deliveries hold a slot in a later window). Returns,
 * per query index, window start (ms) → notifications counted. Suppressed and canceled
 * deliveries do not count; a notification counts once however many devices it went to.
 */
export async function lockAndCountCapUsage(
  client: PoolClient,
  queries: readonly CapQuery[],
  now: Date,
): Promise<Map<number, Map<number, number>>> {
  const usage = new Map<number, Map<number, number>>();
  if (queries.length === 0) return usage;
  const users = [...new Set(queries.map((q) => q.userId))].sort();
  await client.query(
    `SELECT pg_advisory_xact_lock(hashtextextended('herald_cap:' || u, 0))
       FROM (SELECT u FROM unnest($1::text[]) AS u ORDER BY u) AS sorted`,
    [users],
  );
  const result = await client.query<{ i: number; bucket: Date; n: string }>(
    `SELECT t.i, date_trunc(t.per, d.run_at, t.tz) AS bucket, count(DISTINCT d.notification_id) AS n
       FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
              AS t(i, user_id, category, channel, lane, per, tz)
       JOIN deliveries d ON d.user_id = t.user_id AND d.category = t.category AND d.channel = t.channel
                        AND d.lane = t.lane AND d.run_at >= date_trunc(t.per, $8::timestamptz, t.tz)
                        AND d.state NOT IN ('suppressed', 'canceled')
      GROUP BY t.i, bucket`,
    [
      queries.map((_, i) => i),
      queries.map((q) => q.userId),
      queries.map((q) => q.category),
      queries.map((q) => q.channel),
      queries.map((q) => q.lane),
      queries.map((q) => q.per),
      queries.map((q) => q.timeZone),
      now,
    ],
  );
  for (const r of result.rows) {
    const map = usage.get(r.i) ?? new Map<number, number>();
    map.set(r.bucket.getTime(), Number(r.n));
    usage.set(r.i, map);
  }
  return usage;
}

/**
 * Herald's own secret `name`, generated (32 random bytes) by the first process that asks and
 * shared by every process through the database.
 */
export async function ensureSigningKey(pool: Pool, name: string): Promise<Buffer> {
  const result = await pool.query<{ secret: Buffer }>(
    `WITH ins AS (
       INSERT INTO signing_keys (name, secret) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING secret
     )
     SELECT secret FROM ins UNION ALL SELECT secret FROM signing_keys WHERE name = $1`,
    [name, randomBytes(32)],
  );
  const row = result.rows[0];
  if (row === undefined) throw new Error(`signing key ${name} could not be created`);
  return row.secret;
}
