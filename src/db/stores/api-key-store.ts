// Calling services and their API keys. Keys are stored as SHA-256 hashes of 32 random bytes;
// the plaintext is shown once, at creation.
import { createHash, randomBytes } from 'node:crypto';
import type { Pool } from '../pools.js';

export const apiKeyRoles = ['sender', 'admin', 'support'] as const;
export type ApiKeyRole = (typeof apiKeyRoles)[number];

export interface Caller {
  keyId: number;
  serviceId: number;
  serviceName: string;
  roles: ApiKeyRole[];
}

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
  const secret = `whsec_${randomBytes(24).toString('base64url')}`;
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
  roles: ApiKeyRole[],
  label?: string,
): Promise<string> {
  const key = `${keyPrefix}${randomBytes(32).toString('base64url')}`;
  await pool.query(
    'INSERT INTO api_keys (service_id, key_hash, key_prefix, roles, label) VALUES ($1, $2, $3, $4, $5)',
    [serviceId, hashApiKey(key), key.slice(0, 10), roles, label ?? null],
  );
  return key;
}

export async function revokeApiKey(pool: Pool, key: string): Promise<boolean> {
  const result = await pool.query(
    'UPDATE api_keys SET revoked_at = now() WHERE key_hash = $1 AND revoked_at IS NULL',
    [hashApiKey(key)],
  );
  return result.rowCount === 1;
}

export async function findCallerByKey(pool: Pool, key: string): Promise<Caller | undefined> {
  const result = await pool.query<{
    key_id: number;
    service_id: number;
    service_name: string;
    roles: ApiKeyRole[];
  }>(
    `SELECT k.id AS key_id, s.id AS service_id, s.name AS service_name, k.roles
       FROM api_keys k JOIN services s ON s.id = k.service_id
      WHERE k.key_hash = $1 AND k.revoked_at IS NULL`,
    [hashApiKey(key)],
  );
  const row = result.rows[0];
  return row === undefined
    ? undefined
    : { keyId: row.key_id, serviceId: row.service_id, serviceName: row.service_name, roles: row.roles };
}

export async function getServiceSettings(pool: Pool, serviceId: number): Promise<ServiceSettings> {
  const result = await pool.query<{
    id: number;
    name: string;
    webhook_url: string | null;
    webhook_secret: string;
    chat_webhook_url: string | null;
  }>('SELECT id, name, webhook_url, webhook_secret, chat_webhook_url FROM services WHERE id = $1', [
    serviceId,
  ]);
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
  pool: Pool,
  serviceId: number,
  target: ServiceTarget,
  url: string | null,
): Promise<ServiceSettings> {
  // `target` is one of two column names from the closed union above, never input.
  const column = target === 'webhook_url' ? 'webhook_url' : 'chat_webhook_url';
  await pool.query(`UPDATE services SET ${column} = $2 WHERE id = $1`, [serviceId, url]);
  return getServiceSettings(pool, serviceId);
}

export async function rotateWebhookSecret(pool: Pool, serviceId: number): Promise<ServiceSettings> {
  await pool.query('UPDATE services SET webhook_secret = $2 WHERE id = $1', [
    serviceId,
    `whsec_${randomBytes(24).toString('base64url')}`,
  ]);
  return getServiceSettings(pool, serviceId);
}
