// Users' preferences (opt-in or opt-out per channel × category), their no-marketing switch and
// quiet hours. Read in bulk by the fan-out stage (through its cache) and by the preference
// routes; a change NOTIFYs herald_settings in its transaction.
import type { Pool, PoolClient } from '../pools.js';
import { notifySettingsChanged, settingsChange } from '../settings-change.js';
import type { Channel } from '../../domain/notification.js';
import { formatLocalTime, type Preference, type QuietHours } from '../../domain/preferences.js';

type Queryable = Pool | PoolClient;

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
