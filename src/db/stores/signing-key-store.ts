// Herald's own signing keys (unsubscribe links, user tokens, inbox cursors), kept in the
// database so every process signs and verifies with the same secret.
import { randomBytes } from 'node:crypto';
import type { Pool } from '../pools.js';

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
