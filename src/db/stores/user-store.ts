// Users (the organisation's, shared by calling services) and their devices.
import { randomUUID } from 'node:crypto';
import type { Pool, PoolClient } from '../pools.js';

export interface UserFields {
  email?: string | null;
  phone?: string | null;
  locale?: string;
  timeZone?: string;
  webhookUrl?: string | null;
  chatWebhookUrl?: string | null;
}

export interface User {
  id: string;
  email: string | null;
  phone: string | null;
  locale: string;
  timeZone: string;
  webhookUrl: string | null;
  chatWebhookUrl: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export type Platform = 'ios' | 'android' | 'web';

export interface Device {
  id: string;
  userId: string;
  platform: Platform;
  appId: string;
  token: string;
  enabled: boolean;
  disabledReason: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface NewDevice {
  platform: Platform;
  appId: string;
  token: string;
}

interface UserRow {
  id: string;
  email: string | null;
  phone: string | null;
  locale: string;
  time_zone: string;
  webhook_url: string | null;
  chat_webhook_url: string | null;
  created_at: Date;
  updated_at: Date;
}

interface DeviceRow {
  id: string;
  user_id: string;
  platform: Platform;
  app_id: string;
  token: string;
  enabled: boolean;
  disabled_reason: string | null;
  created_at: Date;
  updated_at: Date;
}

const userColumns =
  'id, email, phone, locale, time_zone, webhook_url, chat_webhook_url, created_at, updated_at';
const deviceColumns =
  'id, user_id, platform, app_id, token, enabled, disabled_reason, created_at, updated_at';

function toUser(r: UserRow): User {
  return {
    id: r.id,
    email: r.email,
    phone: r.phone,
    locale: r.locale,
    timeZone: r.time_zone,
    webhookUrl: r.webhook_url,
    chatWebhookUrl: r.chat_webhook_url,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function toDevice(r: DeviceRow): Device {
  return {
    id: r.id,
    userId: r.user_id,
    platform: r.platform,
    appId: r.app_id,
    token: r.token,
    enabled: r.enabled,
    disabledReason: r.disabled_reason,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/**
 * Creates or updates users in one statement. A field left out keeps its stored value (or the
 * default for a new user); null clears it.
 */
export async function upsertUsers(
  db: Pool | PoolClient,
  users: (UserFields & { id: string })[],
): Promise<User[]> {
  const has = (u: UserFields, k: keyof UserFields) =>
    Object.prototype.hasOwnProperty.call(u, k) && u[k] !== undefined;
  // Create the missing users with defaults, then apply the given fields to every row.
  await db.query('INSERT INTO users (id) SELECT unnest($1::text[]) ON CONFLICT (id) DO NOTHING', [
    users.map((u) => u.id),
  ]);
  // "Left out keeps its value" holds per field and per row.
  const present = users.map((u) => ({
    id: u.id,
    email: has(u, 'email'),
    phone: has(u, 'phone'),
    locale: has(u, 'locale'),
    timeZone: has(u, 'timeZone'),
    webhookUrl: has(u, 'webhookUrl'),
    chatWebhookUrl: has(u, 'chatWebhookUrl'),
  }));
  const updated = await db.query<UserRow>(
    `UPDATE users AS u SET
       email = CASE WHEN t.has_email THEN t.email ELSE u.email END,
       phone = CASE WHEN t.has_phone THEN t.phone ELSE u.phone END,
       locale = CASE WHEN t.has_locale THEN t.locale ELSE u.locale END,
       time_zone = CASE WHEN t.has_tz THEN t.time_zone ELSE u.time_zone END,
       webhook_url = CASE WHEN t.has_webhook THEN t.webhook_url ELSE u.webhook_url END,
       chat_webhook_url = CASE WHEN t.has_chat THEN t.chat_webhook_url ELSE u.chat_webhook_url END,
       updated_at = now()
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                 $8::bool[], $9::bool[], $10::bool[], $11::bool[], $12::bool[], $13::bool[])
       AS t(id, email, phone, locale, time_zone, webhook_url, chat_webhook_url,
            has_email, has_phone, has_locale, has_tz, has_webhook, has_chat)
     WHERE u.id = t.id
     RETURNING ${userColumns
       .split(', ')
       .map((c) => `u.${c}`)
       .join(', ')}`,
    [
      users.map((u) => u.id),
      users.map((u) => u.email ?? null),
      users.map((u) => u.phone ?? null),
      users.map((u) => u.locale ?? 'en'),
      users.map((u) => u.timeZone ?? 'UTC'),
      users.map((u) => u.webhookUrl ?? null),
      users.map((u) => u.chatWebhookUrl ?? null),
      present.map((p) => p.email),
      present.map((p) => p.phone),
      present.map((p) => p.locale),
      present.map((p) => p.timeZone),
      present.map((p) => p.webhookUrl),
      present.map((p) => p.chatWebhookUrl),
    ],
  );
  return updated.rows.map(toUser);
}

export async function getUser(db: Pool, id: string): Promise<User | undefined> {
  const result = await db.query<UserRow>(`SELECT ${userColumns} FROM users WHERE id = $1`, [id]);
  const row = result.rows[0];
  return row === undefined ? undefined : toUser(row);
}

export async function deleteUser(db: Pool, id: string): Promise<boolean> {
  const result = await db.query('DELETE FROM users WHERE id = $1', [id]);
  return result.rowCount === 1;
}

export async function listDevices(db: Pool | PoolClient, userId: string): Promise<Device[]> {
  const result = await db.query<DeviceRow>(
    `SELECT ${deviceColumns} FROM devices WHERE user_id = $1 ORDER BY created_at, id`,
    [userId],
  );
  return result.rows.map(toDevice);
}

/**
 * Registers a device for a user. A token already registered (for this app) moves to this user
 * and is enabled again: the installation changed hands or re-registered.
 */
export async function upsertDevice(
  db: Pool | PoolClient,
  userId: string,
  device: NewDevice,
): Promise<Device> {
  const result = await db.query<DeviceRow>(
    `INSERT INTO devices (id, user_id, platform, app_id, token)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (app_id, token) DO UPDATE SET
       user_id = EXCLUDED.user_id, platform = EXCLUDED.platform, enabled = true,
       disabled_reason = NULL, updated_at = now()
     RETURNING ${deviceColumns}`,
    [randomUUID(), userId, device.platform, device.appId, device.token],
  );
  const row = result.rows[0];
  if (row === undefined) throw new Error('device upsert returned no row');
  return toDevice(row);
}

/** Replaces all of a user's devices with the given set (tokens kept keep their ids). */
export async function replaceDevices(
  client: PoolClient,
  userId: string,
  devices: NewDevice[],
): Promise<Device[]> {
  const kept: string[] = [];
  for (const device of devices) kept.push((await upsertDevice(client, userId, device)).id);
  await client.query('DELETE FROM devices WHERE user_id = $1 AND NOT (id = ANY($2::uuid[]))', [userId, kept]);
  return listDevices(client, userId);
}

export async function deleteDevice(db: Pool, userId: string, deviceId: string): Promise<boolean> {
  const result = await db.query('DELETE FROM devices WHERE user_id = $1 AND id = $2', [userId, deviceId]);
  return result.rowCount === 1;
}
