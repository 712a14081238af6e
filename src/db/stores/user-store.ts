// Users (the organisation's, shared by calling services) and their devices. Every change of a
// contact target (email, phone, webhook and chat URLs, devices) is recorded in contact_changes
// with the key that made it, in the same transaction.
import { randomUUID } from 'node:crypto';
import type { Pool, PoolClient } from '../pools.js';
import { maskTarget, presentDeviceToken } from '../../domain/contact.js';
import type { Platform } from '../../domain/device.js';

/** Who is changing contact data: the API key and its service. */
export interface ContactActor {
  keyId: number;
  serviceId: number;
}

export const contactTargets = [
  'email',
  'phone',
  'webhook_url',
  'chat_webhook_url',
  'device',
  'user',
] as const;
export type ContactTarget = (typeof contactTargets)[number];

export interface ContactChange {
  userId: string;
  target: ContactTarget;
  action: 'set' | 'cleared' | 'deleted';
  /** Masked: enough to recognise the target, never all of it. */
  value: string | null;
}

export interface RecordedContactChange extends ContactChange {
  id: number;
  keyId: number;
  serviceId: number;
  serviceName: string;
  changedAt: Date;
}

export interface UserFields {
  email?: string | null;
  phone?: string | null;
  locale?: string;
  timeZone?: string;
  webhookUrl?: string | null;
  chatWebhookUrl?: string | null;
  /** Attributes workflow conditions test (docs/workflows.md); given: replaces the stored ones. */
  attributes?: Record<string, unknown>;
}

export interface User {
  id: string;
  email: string | null;
  phone: string | null;
  locale: string;
  timeZone: string;
  webhookUrl: string | null;
  chatWebhookUrl: string | null;
  attributes: Record<string, unknown>;
  createdAt: Date;
  updatedAt: Date;
}

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
  attributes: Record<string, unknown> | null;
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
  'id, email, phone, locale, time_zone, webhook_url, chat_webhook_url, attributes, created_at, updated_at';
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
    attributes: r.attributes ?? {},
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

/** The contact columns whose changes are recorded, and how each is masked. */
const recordedColumns = [
  { target: 'email', column: 'email', mask: 'email' },
  { target: 'phone', column: 'phone', mask: 'sms' },
  { target: 'webhook_url', column: 'webhook_url', mask: 'webhook' },
  { target: 'chat_webhook_url', column: 'chat_webhook_url', mask: 'chat' },
] as const;

type ContactRow = Pick<UserRow, 'id' | 'email' | 'phone' | 'webhook_url' | 'chat_webhook_url'>;

/**
 * Creates or updates users (inside the caller's transaction). A field left out keeps its stored
 * value (or the default for a new user); null clears it. Contact targets that changed are
 * recorded with `actor`.
 */
export async function upsertUsers(
  client: PoolClient,
  users: (UserFields & { id: string })[],
  actor: ContactActor,
): Promise<User[]> {
  const has = (u: UserFields, k: keyof UserFields) =>
    Object.prototype.hasOwnProperty.call(u, k) && u[k] !== undefined;
  const ids = users.map((u) => u.id);
  // Create the missing users with defaults, then lock every row and read its targets before the
  // change, so the recorded history holds exactly what changed, also under concurrent writers.
  await client.query('INSERT INTO users (id) SELECT unnest($1::text[]) ON CONFLICT (id) DO NOTHING', [ids]);
  const before = await client.query<ContactRow>(
    `SELECT id, email, phone, webhook_url, chat_webhook_url FROM users WHERE id = ANY($1::text[])
      ORDER BY id FOR UPDATE`,
    [ids],
  );
  const db = client;
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
       attributes = COALESCE(t.attributes, u.attributes),
       updated_at = now()
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                 $8::bool[], $9::bool[], $10::bool[], $11::bool[], $12::bool[], $13::bool[], $14::jsonb[])
       AS t(id, email, phone, locale, time_zone, webhook_url, chat_webhook_url,
            has_email, has_phone, has_locale, has_tz, has_webhook, has_chat, attributes)
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
      users.map((u) => (u.attributes === undefined ? null : JSON.stringify(u.attributes))),
    ],
  );
  const previous = new Map(before.rows.map((r) => [r.id, r]));
  const changes: ContactChange[] = [];
  for (const row of updated.rows) {
    const old = previous.get(row.id);
    for (const { target, column, mask } of recordedColumns) {
      const value = row[column];
      if (value === (old?.[column] ?? null)) continue;
      changes.push({
        userId: row.id,
        target,
        action: value === null ? 'cleared' : 'set',
        value: value === null ? null : maskTarget(mask, value),
      });
    }
  }
  await recordContactChanges(client, changes, actor);
  return updated.rows.map(toUser);
}

export async function recordContactChanges(
  db: Pool | PoolClient,
  changes: readonly ContactChange[],
  actor: ContactActor,
): Promise<void> {
  if (changes.length === 0) return;
  await db.query(
    `INSERT INTO contact_changes (user_id, target, action, value, key_id, service_id)
     SELECT user_id, target, action, value, $5, $6
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS t(user_id, target, action, value)`,
    [
      changes.map((c) => c.userId),
      changes.map((c) => c.target),
      changes.map((c) => c.action),
      changes.map((c) => c.value),
      actor.keyId,
      actor.serviceId,
    ],
  );
}

/** A user's contact history, newest first. */
export async function listContactChanges(
  db: Pool,
  userId: string,
  limit: number,
): Promise<RecordedContactChange[]> {
  const result = await db.query<{
    id: number;
    user_id: string;
    target: ContactTarget;
    action: ContactChange['action'];
    value: string | null;
    key_id: number;
    service_id: number;
    service_name: string;
    changed_at: Date;
  }>(
    `SELECT c.id, c.user_id, c.target, c.action, c.value, c.key_id, c.service_id, s.name AS service_name,
            c.changed_at
       FROM contact_changes c JOIN services s ON s.id = c.service_id
      WHERE c.user_id = $1
      ORDER BY c.changed_at DESC, c.id DESC
      LIMIT $2`,
    [userId, limit],
  );
  return result.rows.map((r) => ({
    id: r.id,
    userId: r.user_id,
    target: r.target,
    action: r.action,
    value: r.value,
    keyId: r.key_id,
    serviceId: r.service_id,
    serviceName: r.service_name,
    changedAt: r.changed_at,
  }));
}

/** How a device appears in the contact history. */
function deviceLabel(d: Pick<Device, 'platform' | 'appId' | 'token'>): string {
  return `${d.platform} ${d.appId} ${presentDeviceToken(d.platform, d.token, false)}`;
}

export async function getUser(db: Pool, id: string): Promise<User | undefined> {
  const result = await db.query<UserRow>(`SELECT ${userColumns} FROM users WHERE id = $1`, [id]);
  const row = result.rows[0];
  return row === undefined ? undefined : toUser(row);
}

export async function deleteUser(client: PoolClient, id: string, actor: ContactActor): Promise<boolean> {
  const result = await client.query('DELETE FROM users WHERE id = $1', [id]);
  if (result.rowCount !== 1) return false;
  await recordContactChanges(client, [{ userId: id, target: 'user', action: 'deleted', value: null }], actor);
  return true;
}

export async function listDevices(db: Pool | PoolClient, userId: string): Promise<Device[]> {
  const result = await db.query<DeviceRow>(
    `SELECT ${deviceColumns} FROM devices WHERE user_id = $1 ORDER BY created_at, id`,
    [userId],
  );
  return result.rows.map(toDevice);
}

/**
 * Registers a device for a user (inside the caller's transaction). A token already registered
 * (for this app) moves to this user and is enabled again: the installation changed hands or
 * re-registered. A new device, or one taken from another user, is recorded for both users.
 */
export async function upsertDevice(
  client: PoolClient,
  userId: string,
  device: NewDevice,
  actor: ContactActor,
): Promise<Device> {
  const previous = await client.query<{ user_id: string }>(
    'SELECT user_id FROM devices WHERE app_id = $1 AND token = $2 FOR UPDATE',
    [device.appId, device.token],
  );
  const result = await client.query<DeviceRow>(
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
  const saved = toDevice(row);
  const formerOwner = previous.rows[0]?.user_id;
  if (formerOwner !== userId) {
    const value = deviceLabel(saved);
    const changes: ContactChange[] = [{ userId, target: 'device', action: 'set', value }];
    if (formerOwner !== undefined)
      changes.push({ userId: formerOwner, target: 'device', action: 'cleared', value });
    await recordContactChanges(client, changes, actor);
  }
  return saved;
}

/** Replaces all of a user's devices with the given set (tokens kept keep their ids). */
export async function replaceDevices(
  client: PoolClient,
  userId: string,
  devices: NewDevice[],
  actor: ContactActor,
): Promise<Device[]> {
  const kept: string[] = [];
  for (const device of devices) kept.push((await upsertDevice(client, userId, device, actor)).id);
  const removed = await client.query<DeviceRow>(
    `DELETE FROM devices WHERE user_id = $1 AND NOT (id = ANY($2::uuid[])) RETURNING ${deviceColumns}`,
    [userId, kept],
  );
  await recordContactChanges(
    client,
    removed.rows
      .map(toDevice)
      .map((d) => ({ userId, target: 'device', action: 'cleared', value: deviceLabel(d) })),
    actor,
  );
  return listDevices(client, userId);
}

export async function deleteDevice(
  client: PoolClient,
  userId: string,
  deviceId: string,
  actor: ContactActor,
): Promise<boolean> {
  const result = await client.query<DeviceRow>(
    `DELETE FROM devices WHERE user_id = $1 AND id = $2 RETURNING ${deviceColumns}`,
    [userId, deviceId],
  );
  const row = result.rows[0];
  if (row === undefined) return false;
  await recordContactChanges(
    client,
    [{ userId, target: 'device', action: 'cleared', value: deviceLabel(toDevice(row)) }],
    actor,
  );
  return true;
}

/** Users whose id, email (stored lower-cased) or phone (E.164) equals a value given: exact matches only. */
export async function findUsersByContact(
  pool: Pool,
  values: { id: string; email: string | null; phone: string | null },
  limit: number,
): Promise<User[]> {
  const result = await pool.query<UserRow>(
    `SELECT ${userColumns} FROM users
      WHERE id = $1 OR ($2::text IS NOT NULL AND email = $2) OR ($3::text IS NOT NULL AND phone = $3)
      ORDER BY id LIMIT $4`,
    [values.id, values.email?.toLowerCase() ?? null, values.phone, limit],
  );
  return result.rows.map(toUser);
}
