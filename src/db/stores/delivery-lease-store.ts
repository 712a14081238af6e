// Locking deliveries before their state changes: the queue rows first, then (for a late
// acceptance) the delivery rows, in the lock order of migration 0030. The lease rescuers and
// the outcome recorder decide on what these return; writeOutcomes writes it.
import type { PoolClient } from '../pools.js';
import type { DeliveryState } from '../../domain/delivery.js';

/**
 * Locks the queue rows of `keys` (those still queued), in id order, before their deliveries are
 * changed: every writer of a queued delivery takes its queue row first (migration 0030), so an
 * outcome write and a rescuer never wait on each other in opposite orders.
 */
export async function lockQueued(
  client: PoolClient,
  keys: readonly { id: string; notificationCreatedAt: Date }[],
): Promise<void> {
  await client.query({
    name: 'herald_lock_queued',
    text: `SELECT 1 FROM delivery_queue q
             JOIN unnest($1::uuid[], $2::timestamptz[]) AS k(id, nca)
               ON q.delivery_id = k.id AND q.notification_created_at = k.nca
            ORDER BY q.delivery_id
              FOR UPDATE OF q`,
    values: [keys.map((k) => k.id), keys.map((k) => k.notificationCreatedAt)],
  });
}

/** A delivery as an outcome decision needs it. */
export interface DeliveryAttempts {
  id: string;
  notificationCreatedAt: Date;
  channel: string;
  target: string;
  state: DeliveryState;
  attempts: number;
  maxAttempts: number;
}

interface AttemptsRow {
  id: string;
  notification_created_at: Date;
  channel: string;
  target: string;
  state: DeliveryState;
  attempts: number;
  max_attempts: number;
}

const toAttempts = (r: AttemptsRow): DeliveryAttempts => ({
  id: r.id,
  notificationCreatedAt: r.notification_created_at,
  channel: r.channel,
  target: r.target,
  state: r.state,
  attempts: r.attempts,
  maxAttempts: r.max_attempts,
});

const attemptsColumns =
  'd.id, d.notification_created_at, d.channel, d.target, d.state, d.attempts, d.max_attempts';
const queuedDelivery =
  'd.id = q.delivery_id AND d.notification_created_at = q.notification_created_at AND d.user_id = q.user_id';

/**
 * Locks up to `limit` deliveries whose lease expired (their worker died or hung) for the rest
 * of the transaction. SKIP LOCKED: several schedulers share the work.
 */
export async function lockExpiredLeases(client: PoolClient, limit: number): Promise<DeliveryAttempts[]> {
  const result = await client.query<AttemptsRow>(
    `SELECT ${attemptsColumns} FROM delivery_queue q JOIN deliveries d ON ${queuedDelivery}
      WHERE q.lease_owner IS NOT NULL AND q.lease_expires_at < now()
      LIMIT $1
      FOR UPDATE OF q SKIP LOCKED`,
    [limit],
  );
  return result.rows.map(toAttempts);
}

/**
 * Locks up to `limit` deliveries in `sending` under one of `owners` (owners whose worker session
 * ended: src/db/stores/worker-session-store.ts), as lockExpiredLeases does for expired leases.
 */
export async function lockLeasesOfOwners(
  client: PoolClient,
  owners: readonly string[],
  limit: number,
): Promise<DeliveryAttempts[]> {
  if (owners.length === 0) return [];
  const result = await client.query<AttemptsRow>(
    `SELECT ${attemptsColumns} FROM delivery_queue q JOIN deliveries d ON ${queuedDelivery}
      WHERE q.lease_owner = ANY($1::uuid[])
      LIMIT $2
      FOR UPDATE OF q SKIP LOCKED`,
    [owners, limit],
  );
  return result.rows.map(toAttempts);
}

/**
 * Locks the given deliveries for the rest of the transaction and returns them as they are now
 * (a missing one was dropped by retention). Locked in id order, so two transactions locking
 * overlapping sets cannot deadlock.
 */
export async function lockDeliveries(
  client: PoolClient,
  keys: readonly { id: string; notificationCreatedAt: Date }[],
): Promise<DeliveryAttempts[]> {
  if (keys.length === 0) return [];
  await lockQueued(client, keys);
  const result = await client.query<AttemptsRow>(
    `SELECT ${attemptsColumns}
       FROM deliveries d
       JOIN unnest($1::uuid[], $2::timestamptz[]) AS k(id, nca)
         ON d.id = k.id AND d.notification_created_at = k.nca
      ORDER BY d.id
        FOR UPDATE OF d`,
    [keys.map((k) => k.id), keys.map((k) => k.notificationCreatedAt)],
  );
  return result.rows.map(toAttempts);
}
