// Status callbacks (docs/callbacks.md): a service's subscriptions, and the outbox the database's
// triggers fill (migration 0018): claimed by the senders in batches, finished one way or another,
// listed and replayed when dead.
import { randomBytes, randomUUID } from 'node:crypto';
import type { Pool, PoolClient } from '../pools.js';

export interface CallbackSubscription {
  id: string;
  url: string;
  eventTypes: string[];
  enabled: boolean;
  createdAt: Date;
  updatedAt: Date;
  /** Only when just created or rotated. */
  secret?: string;
}

/** How long a rotated-out secret keeps signing next to the new one. */
export const callbackSecretOverlapHours = 24;

/** At most this many subscriptions per service (every event is matched against them). */
export const maxSubscriptionsPerService = 20;

interface SubscriptionRow {
  id: string;
  url: string;
  event_types: string[];
  enabled: boolean;
  created_at: Date;
  updated_at: Date;
  secret: string;
}

const subscriptionColumns = 'id, url, event_types, enabled, created_at, updated_at, secret';

function toSubscription(r: SubscriptionRow, withSecret: boolean): CallbackSubscription {
  return {
    id: r.id,
    url: r.url,
    eventTypes: r.event_types,
    enabled: r.enabled,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    ...(withSecret ? { secret: r.secret } : {}),
  };
}

/** A Standard Webhooks secret: "whsec_" and 24 random bytes in base64. */
function newSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

/** Creates a subscription, or answers undefined when the service already has the most it may. */
export async function createSubscription(
  client: PoolClient,
  service: { id: number; name: string },
  input: { url: string; eventTypes: string[]; enabled: boolean },
): Promise<CallbackSubscription | undefined> {
  // Serialises a service's creations, so two at once cannot both pass the count.
  await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`callback-subscriptions:${service.id}`]);
  const count = await client.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM callback_subscriptions WHERE service_id = $1',
    [service.id],
  );
  if ((count.rows[0]?.n ?? 0) >= maxSubscriptionsPerService) return undefined;
  const result = await client.query<SubscriptionRow>(
    `INSERT INTO callback_subscriptions (id, service_id, service_name, url, event_types, enabled, secret)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${subscriptionColumns}`,
    [randomUUID(), service.id, service.name, input.url, input.eventTypes, input.enabled, newSecret()],
  );
  const row = result.rows[0];
  return row === undefined ? undefined : toSubscription(row, true);
}

export async function listSubscriptions(pool: Pool, serviceId: number): Promise<CallbackSubscription[]> {
  const result = await pool.query<SubscriptionRow>(
    `SELECT ${subscriptionColumns} FROM callback_subscriptions WHERE service_id = $1 ORDER BY created_at, id`,
    [serviceId],
  );
  return result.rows.map((r) => toSubscription(r, false));
}

/** One of the service's subscriptions; undefined for an unknown id or another service's. */
export async function getSubscription(
  pool: Pool | PoolClient,
  serviceId: number,
  id: string,
  options: { forUpdate?: boolean } = {},
): Promise<CallbackSubscription | undefined> {
  const result = await pool.query<SubscriptionRow>(
    `SELECT ${subscriptionColumns} FROM callback_subscriptions WHERE service_id = $1 AND id = $2
     ${options.forUpdate === true ? 'FOR UPDATE' : ''}`,
    [serviceId, id],
  );
  const row = result.rows[0];
  return row === undefined ? undefined : toSubscription(row, false);
}

export async function updateSubscription(
  client: PoolClient,
  serviceId: number,
  id: string,
  change: { url?: string | undefined; eventTypes?: string[] | undefined; enabled?: boolean | undefined },
): Promise<CallbackSubscription | undefined> {
  const result = await client.query<SubscriptionRow>(
    `UPDATE callback_subscriptions
        SET url = coalesce($3, url), event_types = coalesce($4, event_types),
            enabled = coalesce($5, enabled), updated_at = now()
      WHERE service_id = $1 AND id = $2 RETURNING ${subscriptionColumns}`,
    [serviceId, id, change.url ?? null, change.eventTypes ?? null, change.enabled ?? null],
  );
  const row = result.rows[0];
  return row === undefined ? undefined : toSubscription(row, false);
}

/** Deletes a subscription and every message queued or dead for it. */
export async function deleteSubscription(
  client: PoolClient,
  serviceId: number,
  id: string,
): Promise<boolean> {
  const result = await client.query('DELETE FROM callback_subscriptions WHERE service_id = $1 AND id = $2', [
    serviceId,
    id,
  ]);
  if (result.rowCount === 0) return false;
  await client.query('DELETE FROM callback_messages WHERE subscription_id = $1', [id]);
  return true;
}

/** A new secret; the old one keeps signing beside it for `callbackSecretOverlapHours`. */
export async function rotateSubscriptionSecret(
  client: PoolClient,
  serviceId: number,
  id: string,
): Promise<CallbackSubscription | undefined> {
  const result = await client.query<SubscriptionRow>(
    `UPDATE callback_subscriptions
        SET previous_secret = secret, previous_secret_until = now() + make_interval(hours => $4),
            secret = $3, updated_at = now()
      WHERE service_id = $1 AND id = $2 RETURNING ${subscriptionColumns}`,
    [serviceId, id, newSecret(), callbackSecretOverlapHours],
  );
  const row = result.rows[0];
  return row === undefined ? undefined : toSubscription(row, true);
}

export interface ClaimedCallback {
  id: string;
  subscriptionId: string;
  url: string;
  /** The current secret, then the previous one during a rotation's overlap. */
  secrets: string[];
  eventType: string;
  payload: Record<string, unknown>;
  /** This attempt's number (1-based). */
  attempt: number;
  firstTryAt: Date;
}

/**
 * Claims up to `limit` due messages of enabled subscriptions, oldest due first, skipping rows
 * another sender holds. A message waits while an earlier message (lower seq) of the same
 * subscription and notification is pending, claimed or not: a notification's events go out in
 * order. The claim moves run_at past the lease, so a sender that dies leaves the message due
 * again after `leaseMs`.
 */
export async function claimCallbacks(pool: Pool, limit: number, leaseMs: number): Promise<ClaimedCallback[]> {
  const result = await pool.query<{
    id: string;
    subscription_id: string;
    url: string;
    secret: string;
    previous_secret: string | null;
    event_type: string;
    payload: Record<string, unknown>;
    attempts: number;
    first_try_at: Date;
  }>(
    `WITH due AS (
       SELECT m.id FROM callback_messages m
         JOIN callback_subscriptions s ON s.id = m.subscription_id AND s.enabled
        WHERE m.state = 'pending' AND m.run_at <= now()
          AND NOT EXISTS (SELECT 1 FROM callback_messages p
                           WHERE p.state = 'pending' AND p.subscription_id = m.subscription_id
                             AND p.order_key = m.order_key AND p.seq < m.seq)
        ORDER BY m.run_at
        LIMIT $1
        FOR UPDATE OF m SKIP LOCKED
     )
     UPDATE callback_messages m
        SET attempts = m.attempts + 1, run_at = now() + make_interval(secs => $2::double precision / 1000),
            updated_at = now()
       FROM due, callback_subscriptions s
      WHERE m.id = due.id AND s.id = m.subscription_id
      RETURNING m.id, m.subscription_id, s.url, s.secret,
                CASE WHEN s.previous_secret_until > now() THEN s.previous_secret END AS previous_secret,
                m.event_type, m.payload, m.attempts, m.first_try_at`,
    [limit, leaseMs],
  );
  return result.rows.map((r) => ({
    id: r.id,
    subscriptionId: r.subscription_id,
    url: r.url,
    secrets: r.previous_secret === null ? [r.secret] : [r.secret, r.previous_secret],
    eventType: r.event_type,
    payload: r.payload,
    attempt: r.attempts,
    firstTryAt: r.first_try_at,
  }));
}

export type CallbackFinish =
  | { id: string; attempt: number; kind: 'delete' }
  | { id: string; attempt: number; kind: 'retry'; delayMs: number; reason: string }
  | { id: string; attempt: number; kind: 'dead'; reason: string };

/**
 * Records what became of claimed messages, in one statement: delivered ones are deleted, the
 * others are due again later or dead. Fenced by the attempt number, so a sender whose lease ran
 * out (and whose message was claimed again) changes nothing.
 */
export async function finishCallbacks(pool: Pool, finishes: readonly CallbackFinish[]): Promise<void> {
  if (finishes.length === 0) return;
  const ids = finishes.map((f) => f.id);
  const attempts = finishes.map((f) => f.attempt);
  const kinds = finishes.map((f) => f.kind);
  const delays = finishes.map((f) => (f.kind === 'retry' ? f.delayMs : 0));
  const reasons = finishes.map((f) => (f.kind === 'delete' ? null : f.reason.slice(0, 500)));
  await pool.query(
    `WITH f AS (
       SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::double precision[], $5::text[])
         AS t(id, attempt, kind, delay_ms, reason)
     ), gone AS (
       DELETE FROM callback_messages m USING f
        WHERE m.id = f.id AND m.attempts = f.attempt AND m.state = 'pending' AND f.kind = 'delete'
     )
     UPDATE callback_messages m
        SET state = CASE WHEN f.kind = 'dead' THEN 'dead' ELSE 'pending' END,
            run_at = now() + make_interval(secs => f.delay_ms / 1000),
            last_error = f.reason, updated_at = now()
       FROM f
      WHERE m.id = f.id AND m.attempts = f.attempt AND m.state = 'pending' AND f.kind <> 'delete'`,
    [ids, attempts, kinds, delays, reasons],
  );
}

export interface CallbackDeadLetter {
  id: string;
  subscriptionId: string;
  eventType: string;
  payload: Record<string, unknown>;
  attempts: number;
  lastError: string | null;
  diedAt: Date;
}

/** A service's dead callback messages, newest first, keyset-paginated by (updated_at, id). */
export async function listCallbackDeadLetters(
  pool: Pool,
  serviceId: number,
  limit: number,
  before?: { at: Date; id: string },
): Promise<CallbackDeadLetter[]> {
  const result = await pool.query<{
    id: string;
    subscription_id: string;
    event_type: string;
    payload: Record<string, unknown>;
    attempts: number;
    last_error: string | null;
    updated_at: Date;
  }>(
    `SELECT id, subscription_id, event_type, payload, attempts, last_error, updated_at
       FROM callback_messages
      WHERE state = 'dead' AND service_id = $1
        AND ($3::timestamptz IS NULL OR (updated_at, id) < ($3, $4::uuid))
      ORDER BY updated_at DESC, id DESC
      LIMIT $2`,
    [serviceId, limit, before?.at ?? null, before?.id ?? null],
  );
  return result.rows.map((r) => ({
    id: r.id,
    subscriptionId: r.subscription_id,
    eventType: r.event_type,
    payload: r.payload,
    attempts: r.attempts,
    lastError: r.last_error,
    diedAt: r.updated_at,
  }));
}

/**
 * Makes the service's dead messages that `selection` names due again with a fresh attempt budget
 * and age. Only rows still dead move. Answers the ids moved.
 */
export async function replayCallbackDeadLetters(
  client: PoolClient,
  serviceId: number,
  selection: { ids?: string[] | undefined; subscriptionId?: string | undefined },
  limit: number,
): Promise<string[]> {
  const result = await client.query<{ id: string }>(
    `WITH chosen AS (
       SELECT id FROM callback_messages
        WHERE state = 'dead' AND service_id = $1
          AND ($2::uuid[] IS NULL OR id = ANY($2::uuid[]))
          AND ($3::uuid IS NULL OR subscription_id = $3)
        ORDER BY seq
        LIMIT $4
        FOR UPDATE SKIP LOCKED
     )
     UPDATE callback_messages m
        SET state = 'pending', attempts = 0, run_at = now(), first_try_at = now(), updated_at = now()
       FROM chosen WHERE m.id = chosen.id
      RETURNING m.id`,
    [serviceId, selection.ids ?? null, selection.subscriptionId ?? null, limit],
  );
  return result.rows.map((r) => r.id);
}

/** How many messages are pending and dead (the backlog gauge). */
export async function readCallbackBacklog(pool: Pool): Promise<{ pending: number; dead: number }> {
  const result = await pool.query<{ pending: number; dead: number }>(
    `SELECT (SELECT count(*)::int FROM callback_messages WHERE state = 'pending') AS pending,
            (SELECT count(*)::int FROM callback_messages WHERE state = 'dead') AS dead`,
  );
  return result.rows[0] ?? { pending: 0, dead: 0 };
}

/**
 * Forgets dead messages that died more than `days` ago, in batches of `batch` (a receiver that
 * stayed down would otherwise leave one row per event for good). Answers how many went.
 */
export async function expireCallbackDeadLetters(pool: Pool, days: number, batch = 5000): Promise<number> {
  let total = 0;
  for (;;) {
    const result = await pool.query(
      `DELETE FROM callback_messages WHERE id IN (
         SELECT id FROM callback_messages
          WHERE state = 'dead' AND updated_at < now() - make_interval(days => $1)
          LIMIT $2)`,
      [days, batch],
    );
    total += result.rowCount ?? 0;
    if ((result.rowCount ?? 0) < batch) return total;
  }
}
