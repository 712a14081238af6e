// Used one-click unsubscribe tokens (table unsubscribe_tokens): a token opts its user out
// once; the opt-out is a preference, so it NOTIFYs herald_settings like any preference change.
import type { PoolClient } from '../pools.js';
import { notifySettingsChanged, settingsChange } from '../settings-change.js';
import type { Channel } from '../../domain/notification.js';

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
     ON CONFLICT (delivery_id, user_id) DO NOTHING`,
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
