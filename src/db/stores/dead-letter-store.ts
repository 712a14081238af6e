// Dead letters: deliveries that used up their attempts, listed (one service's for the api role,
// any service's with filters for the console) and re-queued with a fresh attempt budget.
import type { Pool, PoolClient } from '../pools.js';

export interface DeadLetter {
  id: string;
  notificationId: string;
  serviceId: number;
  userId: string;
  channel: string;
  target: string;
  provider: string | null;
  attempts: number;
  lastError: string | null;
  diedAt: Date;
}

/** Which dead letters: every field narrows; none means all of them. */
export interface DeadLetterFilter {
  serviceId?: number | undefined;
  channel?: string | undefined;
  provider?: string | undefined;
  /** A substring of the last error, case-insensitive. */
  reason?: string | undefined;
  /** Died at or after. */
  since?: Date | undefined;
  /** Died before. */
  until?: Date | undefined;
}

/** The filter's WHERE terms on `deliveries`, its parameters numbered from $1. */
const filterSql = `dead_at IS NOT NULL AND state = 'dead'
  AND ($1::bigint IS NULL OR service_id = $1)
  AND ($2::text IS NULL OR channel = $2)
  AND ($3::text IS NULL OR provider = $3)
  AND ($4::text IS NULL OR last_error ILIKE $4)
  AND ($5::timestamptz IS NULL OR dead_at >= $5)
  AND ($6::timestamptz IS NULL OR dead_at < $6)`;

function filterParams(f: DeadLetterFilter): unknown[] {
  const reason =
    f.reason === undefined || f.reason === '' ? null : `%${f.reason.replace(/[\\%_]/g, '\\$&')}%`;
  return [
    f.serviceId ?? null,
    f.channel ?? null,
    f.provider ?? null,
    reason,
    f.since ?? null,
    f.until ?? null,
  ];
}

/** Dead letters matching `filter`, newest first, keyset-paginated by (updated_at, id). */
export async function searchDeadLetters(
  pool: Pool,
  filter: DeadLetterFilter,
  limit: number,
  before?: { at: Date; id: string },
  deliveryId?: string,
): Promise<DeadLetter[]> {
  const result = await pool.query<{
    id: string;
    notification_id: string;
    service_id: string;
    user_id: string;
    channel: string;
    target: string;
    provider: string | null;
    attempts: number;
    last_error: string | null;
    died_at: Date;
  }>(
    `SELECT id, notification_id, service_id, user_id, channel, target, provider, attempts, last_error,
            dead_at AS died_at
       FROM deliveries
      WHERE ${filterSql}
        AND ($8::timestamptz IS NULL OR (dead_at, id) < ($8, $9::uuid))
        AND ($10::uuid IS NULL OR id = $10)
      ORDER BY dead_at DESC, id DESC
      LIMIT $7`,
    [...filterParams(filter), limit, before?.at ?? null, before?.id ?? null, deliveryId ?? null],
  );
  return result.rows.map((r) => ({
    id: r.id,
    notificationId: r.notification_id,
    serviceId: Number(r.service_id),
    userId: r.user_id,
    channel: r.channel,
    target: r.target,
    provider: r.provider,
    attempts: r.attempts,
    lastError: r.last_error,
    diedAt: r.died_at,
  }));
}

/** One dead letter by its delivery id, of any service. */
export async function findDeadLetter(pool: Pool, id: string): Promise<DeadLetter | undefined> {
  const [found] = await searchDeadLetters(pool, {}, 1, undefined, id);
  return found;
}

/** A service's dead deliveries, newest first. */
export function listDeadLetters(
  pool: Pool,
  serviceId: number,
  limit: number,
  before?: { at: Date; id: string },
): Promise<DeadLetter[]> {
  return searchDeadLetters(pool, { serviceId }, limit, before);
}

export interface ReplaySelection extends DeadLetterFilter {
  ids?: string[];
  notificationId?: string;
}

/**
 * Re-queues the dead deliveries `selection` names (and the filter allows) with a fresh attempt
 * budget. Only rows still dead move, so replaying twice, or after a late success, sends
 * nothing twice.
 */
export async function replayMatching(
  pool: Pool | PoolClient,
  selection: ReplaySelection,
  limit: number,
  /** Only notifications created at or after this (older months may be being archived). */
  notBefore: Date,
): Promise<string[]> {
  const result = await pool.query<{ id: string }>(
    `WITH chosen AS (
       SELECT id, notification_created_at FROM deliveries
        WHERE ${filterSql}
          AND ($7::uuid[] IS NULL OR id = ANY($7::uuid[]))
          AND ($8::text IS NULL OR notification_id = $8)
          AND notification_created_at >= $10
        ORDER BY dead_at
        LIMIT $9
        FOR UPDATE SKIP LOCKED
     ), u AS (
       UPDATE deliveries d SET state = 'pending', attempts = 0, run_at = now(), dead_at = NULL, updated_at = now()
         FROM chosen
        WHERE d.id = chosen.id AND d.notification_created_at = chosen.notification_created_at
        RETURNING d.id, d.notification_created_at, d.user_id, d.notification_id, d.channel, d.lane, d.run_at
     ), queued AS (
       INSERT INTO delivery_queue (delivery_id, notification_created_at, user_id, lane, run_at)
       SELECT id, notification_created_at, user_id, lane, run_at FROM u
     ), e AS (
       INSERT INTO delivery_events (delivery_id, notification_id, notification_created_at, channel, lane, state, attempt, detail)
       SELECT id, notification_id, notification_created_at, channel, lane, 'pending', 0, 'replayed from dead letters' FROM u
     )
     SELECT id FROM u`,
    [...filterParams(selection), selection.ids ?? null, selection.notificationId ?? null, limit, notBefore],
  );
  return result.rows.map((r) => r.id);
}

/** One service's dead deliveries by ids, by notification, or all. */
export function replayDeadLetters(
  pool: Pool | PoolClient,
  serviceId: number,
  selection: { ids?: string[]; notificationId?: string },
  limit: number,
  notBefore: Date,
): Promise<string[]> {
  return replayMatching(pool, { ...selection, serviceId }, limit, notBefore);
}

export interface DeliveryEvent {
  state: string;
  attempt: number;
  detail: string | null;
  at: Date;
}

/** A delivery's recorded state changes, oldest first. */
export async function listDeliveryEvents(pool: Pool, deliveryId: string): Promise<DeliveryEvent[]> {
  const result = await pool.query<{ state: string; attempt: number; detail: string | null; at: Date }>(
    `SELECT state, attempt, detail, created_at AS at FROM delivery_events WHERE delivery_id = $1 ORDER BY created_at`,
    [deliveryId],
  );
  return result.rows;
}
