// Calling services and their API keys. Keys are stored as SHA-256 hashes of 32 random bytes;
// the plaintext is shown once, at creation. A key holds the permissions it was granted
// (src/domain/permissions.ts).
import { createHash, randomBytes } from 'node:crypto';
import type { Pool, PoolClient } from '../pools.js';
import { wakeChannels } from '../wake-notifier.js';
import type { Permission } from '../../domain/permissions.js';
import type { Caller } from '../../domain/caller.js';

export interface ServiceSettings {
  id: number;
  name: string;
  webhookUrl: string | null;
  webhookSecret: string;
  chatWebhookUrl: string | null;
}

const keyPrefix = 'hk_';

export function hashApiKey(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

/** Creates the service if it does not exist; returns its id. */
export async function ensureService(pool: Pool, name: string): Promise<number> {
  const secret = newWebhookSecret();
  const result = await pool.query<{ id: number }>(
    `INSERT INTO services (name, webhook_secret) VALUES ($1, $2)
     ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name
     RETURNING id`,
    [name, secret],
  );
  const row = result.rows[0];
  if (row === undefined) throw new Error('service upsert returned no row');
  return row.id;
}

/** Creates an API key for a service and returns the plaintext, which is not stored. */
export async function createApiKey(
  pool: Pool,
  serviceId: number,
  permissions: readonly Permission[],
  label?: string,
): Promise<string> {
  const key = `${keyPrefix}${randomBytes(32).toString('base64url')}`;
  await pool.query(
    'INSERT INTO api_keys (service_id, key_hash, key_prefix, permissions, label) VALUES ($1, $2, $3, $4, $5)',
    [serviceId, hashApiKey(key), key.slice(0, 10), permissions, label ?? null],
  );
  return key;
}

/** Adds permissions to an active key; false when there is no such active key. */
export async function grantPermissions(
  pool: Pool,
  key: string,
  permissions: readonly Permission[],
): Promise<boolean> {
  const result = await pool.query(
    `UPDATE api_keys SET permissions = ARRAY(
       SELECT DISTINCT p FROM unnest(permissions || $2::text[]) AS p ORDER BY p)
      WHERE key_hash = $1 AND revoked_at IS NULL`,
    [hashApiKey(key), permissions],
  );
  return result.rowCount === 1;
}

/**
 * Revokes a key. The NOTIFY, delivered at commit, tells every api and query process to forget
 * the key at once: its cached lookups, the user tokens it issued and the streams it opened.
 */
export async function revokeApiKey(pool: Pool, key: string): Promise<boolean> {
  const result = await pool.query(
    `WITH revoked AS (
       UPDATE api_keys SET revoked_at = now() WHERE key_hash = $1 AND revoked_at IS NULL RETURNING id
     )
     SELECT pg_notify($2, 'key:' || id) FROM revoked`,
    [hashApiKey(key), wakeChannels.auth],
  );
  return result.rowCount === 1;
}

export async function findCallerByKey(pool: Pool, key: string): Promise<Caller | undefined> {
  const result = await pool.query<{
    key_id: number;
    key_prefix: string;
    service_id: number;
    service_name: string;
    permissions: Permission[];
  }>(
    `SELECT k.id AS key_id, k.key_prefix, s.id AS service_id, s.name AS service_name, k.permissions
       FROM api_keys k JOIN services s ON s.id = k.service_id
      WHERE k.key_hash = $1 AND k.revoked_at IS NULL`,
    [hashApiKey(key)],
  );
  const row = result.rows[0];
  return row === undefined
    ? undefined
    : {
        keyId: row.key_id,
        keyPrefix: row.key_prefix,
        serviceId: row.service_id,
        serviceName: row.service_name,
        permissions: row.permissions,
      };
}

/** Which of these keys are revoked (or gone). */
export async function revokedKeys(pool: Pool, keyIds: readonly number[]): Promise<Set<number>> {
  if (keyIds.length === 0) return new Set();
  const result = await pool.query<{ id: number }>(
    'SELECT id FROM api_keys WHERE id = ANY($1::bigint[]) AND revoked_at IS NULL',
    [keyIds],
  );
  const active = new Set(result.rows.map((r) => r.id));
  return new Set(keyIds.filter((id) => !active.has(id)));
}

/** A service's settings; `forUpdate` locks its row for the rest of the caller's transaction. */
export async function getServiceSettings(
  pool: Pool | PoolClient,
  serviceId: number,
  options: { forUpdate?: boolean } = {},
): Promise<ServiceSettings> {
  const result = await pool.query<{
    id: number;
    name: string;
    webhook_url: string | null;
    webhook_secret: string;
    chat_webhook_url: string | null;
  }>(
    `SELECT id, name, webhook_url, webhook_secret, chat_webhook_url FROM services WHERE id = $1${
      options.forUpdate === true ? ' FOR UPDATE' : ''
    }`,
    [serviceId],
  );
  const row = result.rows[0];
  if (row === undefined) throw new Error(`service ${String(serviceId)} not found`);
  return {
    id: row.id,
    name: row.name,
    webhookUrl: row.webhook_url,
    webhookSecret: row.webhook_secret,
    chatWebhookUrl: row.chat_webhook_url,
  };
}

/** The service's default targets: its webhook URL and its Slack (chat) webhook URL. */
export type ServiceTarget = 'webhook_url' | 'chat_webhook_url';

export async function setServiceTarget(
  pool: Pool | PoolClient,
  serviceId: number,
  target: ServiceTarget,
  url: string | null,
): Promise<ServiceSettings> {
  // `target` is one of two column names from the closed union above, never input.
  const column = target === 'webhook_url' ? 'webhook_url' : 'chat_webhook_url';
  await pool.query(`UPDATE services SET ${column} = $2 WHERE id = $1`, [serviceId, url]);
  return getServiceSettings(pool, serviceId);
}

/** How long a rotated-out webhook secret keeps signing next to the new one. */
export const webhookSecretOverlapHours = 24;

/**
 * Replaces a service's webhook secret. The one it replaces keeps signing, as a second signature,
 * for `webhookSecretOverlapHours`, so receivers can switch to the new one without refusing a
 * message (a second rotation in that time ends the first one's overlap).
 */
export async function rotateWebhookSecret(
  pool: Pool | PoolClient,
  serviceId: number,
): Promise<ServiceSettings> {
  await pool.query(
    `UPDATE services SET previous_webhook_secret = webhook_secret,
                         previous_webhook_secret_until = now() + make_interval(hours => $3),
                         webhook_secret = $2
      WHERE id = $1`,
    [serviceId, newWebhookSecret(), webhookSecretOverlapHours],
  );
  return getServiceSettings(pool, serviceId);
}

/**
 * A Standard Webhooks secret: "whsec_" and 24 random bytes in base64 (the standard alphabet, as
 * the Standard Webhooks libraries decode it).
 */
function newWebhookSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

/** Every calling service, by name, with its webhook URL (the console's filters and services page). */
export async function listServices(
  pool: Pool,
): Promise<{ id: number; name: string; webhookUrl: string | null }[]> {
  const result = await pool.query<{ id: string; name: string; webhook_url: string | null }>(
    'SELECT id, name, webhook_url FROM services ORDER BY name',
  );
  return result.rows.map((r) => ({ id: Number(r.id), name: r.name, webhookUrl: r.webhook_url }));
}

export interface ListedApiKey {
  id: number;
  serviceId: number;
  serviceName: string;
  prefix: string;
  label: string | null;
  permissions: Permission[];
  createdAt: Date;
  revokedAt: Date | null;
}

/** Every API key (never its hash), newest first: the console's services page. */
export async function listApiKeys(pool: Pool): Promise<ListedApiKey[]> {
  const result = await pool.query<{
    id: string;
    service_id: string;
    service_name: string;
    key_prefix: string;
    label: string | null;
    permissions: Permission[];
    created_at: Date;
    revoked_at: Date | null;
  }>(
    `SELECT k.id, k.service_id, s.name AS service_name, k.key_prefix, k.label, k.permissions, k.created_at, k.revoked_at
       FROM api_keys k JOIN services s ON s.id = k.service_id
      ORDER BY k.revoked_at IS NOT NULL, k.created_at DESC`,
  );
  return result.rows.map((r) => ({
    id: Number(r.id),
    serviceId: Number(r.service_id),
    serviceName: r.service_name,
    prefix: r.key_prefix,
    label: r.label,
    permissions: r.permissions,
    createdAt: r.created_at,
    revokedAt: r.revoked_at,
  }));
}

/** Revokes a key by its id (the console never holds the key itself); false when none was active. */
export async function revokeApiKeyById(pool: Pool, id: number): Promise<boolean> {
  const result = await pool.query(
    `WITH revoked AS (
       UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING id
     )
     SELECT pg_notify($2, 'key:' || id) FROM revoked`,
    [id, wakeChannels.auth],
  );
  return result.rowCount === 1;
}

/** The ids of the named services that exist (broker intake binds its queues to services by name). */
export async function findServiceIds(pool: Pool, names: readonly string[]): Promise<Map<string, number>> {
  // bigint arrives as a number (pools.ts sets the parser).
  const result = await pool.query<{ id: number; name: string }>(
    'SELECT id, name FROM services WHERE name = ANY($1::text[])',
    [names],
  );
  return new Map(result.rows.map((row) => [row.name, row.id]));
}
