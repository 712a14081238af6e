// Revocation of user tokens: a user's tokens issued before a time are refused ("sign out
// everywhere"). Tokens issued by a key are refused once the key is revoked (api-key-store.ts).
// Each revocation NOTIFYs herald_auth at commit so query processes drop what they cached.
import type { Pool } from '../pools.js';
import { wakeChannels } from '../wake-notifier.js';

/** Refuses every token of `userId` issued before `before` (a later revocation never moves it back). */
export async function revokeUserTokens(pool: Pool, userId: string, before: Date): Promise<Date> {
  const result = await pool.query<{ revoked_before: Date }>(
    `WITH saved AS (
       INSERT INTO user_token_revocations (user_id, revoked_before) VALUES ($1, $2)
       ON CONFLICT (user_id) DO UPDATE
         SET revoked_before = greatest(user_token_revocations.revoked_before, excluded.revoked_before)
       RETURNING revoked_before
     )
     SELECT revoked_before, pg_notify($3, 'user:' || $1) FROM saved`,
    [userId, before, wakeChannels.auth],
  );
  const row = result.rows[0];
  if (row === undefined) throw new Error('revocation upsert returned no row');
  return row.revoked_before;
}

/** For each of these users that has one, the time before which their tokens are refused. */
export async function userTokenRevocations(
  pool: Pool,
  userIds: readonly string[],
): Promise<Map<string, Date>> {
  if (userIds.length === 0) return new Map();
  const result = await pool.query<{ user_id: string; revoked_before: Date }>(
    'SELECT user_id, revoked_before FROM user_token_revocations WHERE user_id = ANY($1::text[])',
    [userIds],
  );
  return new Map(result.rows.map((r) => [r.user_id, r.revoked_before]));
}
