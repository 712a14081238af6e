// Deliveries: the outbox workers claim from. Claim and outcome recording are short
// statements on batches; no provider call ever runs inside them.
import { withTransaction, type Pool } from '../pools.js';
import type { Lane, NotificationContent } from '../../domain/notification.js';
import type { DeliveryState } from '../../domain/delivery.js';
import type { Platform, PushDevice } from '../../domain/device.js';

/** A templated notification's version and params, to render at send time in the user's locale. */
export interface ClaimedTemplate {
  key: string;
  version: number;
  params: Record<string, unknown>;
}

export interface ClaimedDelivery {
  id: string;
  notificationId: string;
  notificationCreatedAt: Date;
  serviceId: number;
  userId: string;
  channel: string;
  target: string;
  lane: Lane;
  attempt: number;
  maxAttempts: number;
  version: number;
  category: string;
  content: NotificationContent;
  data: Record<string, unknown> | null;
  webhookSecret: string | null;
  /** For push: the device, or null if it was deleted or disabled since the fan-out. */
  device: PushDevice | null;
  /** Set when the notification names a template (its content is then empty). */
  template?: ClaimedTemplate | null;
  /** The user's locale (users.locale), null if the user row is gone. */
  locale?: string | null;
}

interface ClaimRow {
  id: string;
  notification_id: string;
  notification_created_at: Date;
  service_id: number;
  user_id: string;
  channel: string;
  target: string;
  lane: Lane;
  attempts: number;
  max_attempts: number;
  version: number;
  category: string;
  content: NotificationContent;
  data: Record<string, unknown> | null;
  webhook_secret: string | null;
  device_platform: Platform | null;
  device_app_id: string | null;
  device_token: string | null;
  template: string | null;
  template_version: number | null;
  template_params: Record<string, unknown> | null;
  user_locale: string | null;
}

/**
 * Claims up to `limit` due deliveries of one lane for `owner`, under a lease of `leaseSeconds`.
 * One statement: lock with SKIP LOCKED (concurrent workers take disjoint rows), mark them
 * sending, count the attempt, record the event, and return what rendering needs.
 */
export async function claimDeliveries(
  pool: Pool,
  lane: Lane,
  limit: number,
  owner: string,
  leaseSeconds: number,
): Promise<ClaimedDelivery[]> {
  if (limit <= 0) return [];
  const result = await pool.query<ClaimRow>(
    `WITH due AS (
       SELECT id, notification_created_at FROM deliveries
        WHERE state IN ('pending', 'retrying') AND lane = $1 AND run_at <= now()
        ORDER BY run_at
        LIMIT $2
        FOR UPDATE SKIP LOCKED
     ), claimed AS (
       UPDATE deliveries d
          SET state = 'sending', attempts = d.attempts + 1, lease_owner = $3,
              lease_expires_at = now() + make_interval(secs => $4), updated_at = now()
         FROM due
        WHERE d.id = due.id AND d.notification_created_at = due.notification_created_at
        RETURNING d.*
     ), events AS (
       INSERT INTO delivery_events (delivery_id, notification_id, channel, state, attempt)
       SELECT id, notification_id, channel, 'sending', attempts FROM claimed
     )
     SELECT c.id, c.notification_id, c.notification_created_at, c.service_id, c.user_id, c.channel, c.target,
            c.lane, c.attempts, c.max_attempts, n.version, n.category, n.content, n.data, s.webhook_secret,
            dv.platform AS device_platform, dv.app_id AS device_app_id, dv.token AS device_token,
            n.template, n.template_version, n.params AS template_params, u.locale AS user_locale
       FROM claimed c
       JOIN notifications n ON n.id = c.notification_id AND n.created_at = c.notification_created_at
       JOIN services s ON s.id = c.service_id
       LEFT JOIN devices dv ON dv.id = (CASE WHEN c.channel = 'push' THEN c.target END)::uuid AND dv.enabled
       LEFT JOIN users u ON u.id = c.user_id`,
    [lane, limit, owner, leaseSeconds],
  );
  return result.rows.map((r) => ({
    id: r.id,
    notificationId: r.notification_id,
    notificationCreatedAt: r.notification_created_at,
    serviceId: r.service_id,
    userId: r.user_id,
    channel: r.channel,
    target: r.target,
    lane: r.lane,
    attempt: r.attempts,
    maxAttempts: r.max_attempts,
    version: r.version,
    category: r.category,
    content: r.content,
    data: r.data,
    webhookSecret: r.webhook_secret,
    device:
      r.device_platform !== null && r.device_app_id !== null && r.device_token !== null
        ? { id: r.target, platform: r.device_platform, appId: r.device_app_id, token: r.device_token }
        : null,
    template:
      r.template !== null && r.template_version !== null
        ? { key: r.template, version: r.template_version, params: r.template_params ?? {} }
        : null,
    locale: r.user_locale,
  }));
}

export interface RecordedOutcome {
  id: string;
  notificationCreatedAt: Date;
  notificationId: string;
  channel: string;
  attempt: number;
  state: Extract<DeliveryState, 'sent' | 'delivered' | 'retrying' | 'failed' | 'target_invalid' | 'dead'>;
  /** For retrying: how long from now (database clock) until it is due again. */
  delayMs: number | null;
  detail: string | null;
  providerMessageId: string | null;
  /** The provider that made the call (its message id is only unique there); null if none did. */
  provider: string | null;
  /**
   * A target the provider called invalid, to stop using: a push device is disabled; a chat
   * webhook URL is removed from the users and services that had it.
   */
  invalidTarget: { channel: string; target: string } | null;
  /** Released at shutdown before an answer: the attempt does not count. */
  releaseAttempt: boolean;
}

/**
 * Records a batch of outcomes in one transaction. Fenced by the lease: a row is updated only
 * if it is still `sending` under this owner and at this attempt, so a worker whose lease
 * expired (and whose delivery was claimed again, by another worker or by itself) cannot
 * overwrite the newer state. Returns the ids recorded.
 */
export async function recordOutcomes(
  pool: Pool,
  owner: string,
  outcomes: RecordedOutcome[],
): Promise<Set<string>> {
  if (outcomes.length === 0) return new Set();
  return withTransaction(pool, async (client) => {
    const updated = await client.query<{ id: string }>(
      `WITH o AS (
           SELECT * FROM unnest($2::uuid[], $3::timestamptz[], $4::text[], $5::float8[], $6::text[], $7::text[], $8::int[], $9::bool[], $10::text[])
             AS t(id, nca, state, delay_ms, detail, provider_message_id, attempt, release, provider)
         ), u AS (
           UPDATE deliveries d SET
             state = o.state,
             run_at = CASE WHEN o.delay_ms IS NULL THEN d.run_at ELSE now() + o.delay_ms * interval '1 millisecond' END,
             last_error = CASE WHEN o.state IN ('sent', 'delivered') THEN d.last_error ELSE o.detail END,
             provider_message_id = coalesce(o.provider_message_id, d.provider_message_id),
             provider = coalesce(o.provider, d.provider),
             attempts = CASE WHEN o.release THEN d.attempts - 1 ELSE d.attempts END,
             lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
           FROM o
           WHERE d.id = o.id AND d.notification_created_at = o.nca AND d.state = 'sending'
             AND d.lease_owner = $1 AND d.attempts = o.attempt
           RETURNING d.id, d.notification_id, d.channel, o.attempt AS attempts, o.state, coalesce(o.detail, o.provider_message_id) AS detail
         ), e AS (
           INSERT INTO delivery_events (delivery_id, notification_id, channel, state, attempt, detail)
           SELECT id, notification_id, channel, state, attempts, detail FROM u
         )
         SELECT id FROM u`,
      [
        owner,
        outcomes.map((o) => o.id),
        outcomes.map((o) => o.notificationCreatedAt),
        outcomes.map((o) => o.state),
        outcomes.map((o) => o.delayMs),
        outcomes.map((o) => o.detail),
        outcomes.map((o) => o.providerMessageId),
        outcomes.map((o) => o.attempt),
        outcomes.map((o) => o.releaseAttempt),
        outcomes.map((o) => o.provider),
      ],
    );
    const recorded = new Set(updated.rows.map((r) => r.id));
    const invalid = outcomes.flatMap((o) =>
      o.invalidTarget !== null && recorded.has(o.id) ? [{ ...o.invalidTarget, detail: o.detail }] : [],
    );
    const devices = invalid.filter((t) => t.channel === 'push');
    if (devices.length > 0) {
      await client.query(
        `UPDATE devices d SET enabled = false, disabled_reason = t.reason, updated_at = now()
           FROM unnest($1::uuid[], $2::text[]) AS t(id, reason)
          WHERE d.id = t.id AND d.enabled`,
        [devices.map((t) => t.target), devices.map((t) => t.detail ?? 'target invalid')],
      );
    }
    const chats = invalid.filter((t) => t.channel === 'chat').map((t) => t.target);
    if (chats.length > 0) {
      await client.query(
        'UPDATE users SET chat_webhook_url = NULL, updated_at = now() WHERE chat_webhook_url = ANY($1::text[])',
        [chats],
      );
      await client.query(
        'UPDATE services SET chat_webhook_url = NULL WHERE chat_webhook_url = ANY($1::text[])',
        [chats],
      );
    }
    return recorded;
  });
}

/**
 * Makes deliveries whose lease expired claimable again (their worker died or hung); a
 * delivery that already used its last attempt becomes dead instead, so a message that
 * crashes workers cannot loop forever.
 */
export async function rescueExpiredLeases(
  pool: Pool,
  limit: number,
): Promise<{ retried: number; dead: number }> {
  const result = await pool.query<{ state: string; n: number }>(
    `WITH expired AS (
       SELECT id, notification_created_at FROM deliveries
        WHERE state = 'sending' AND lease_expires_at < now()
        LIMIT $1
        FOR UPDATE SKIP LOCKED
     ), u AS (
       UPDATE deliveries d SET
         state = CASE WHEN d.attempts >= d.max_attempts THEN 'dead' ELSE 'retrying' END,
         run_at = now(), lease_owner = NULL, lease_expires_at = NULL,
         last_error = 'lease expired (worker stopped or hung)', updated_at = now()
         FROM expired
        WHERE d.id = expired.id AND d.notification_created_at = expired.notification_created_at
        RETURNING d.id, d.notification_id, d.channel, d.state, d.attempts
     ), e AS (
       INSERT INTO delivery_events (delivery_id, notification_id, channel, state, attempt, detail)
       SELECT id, notification_id, channel, state, attempts, 'lease expired' FROM u
     )
     SELECT state, count(*)::int AS n FROM u GROUP BY state`,
    [limit],
  );
  const count = (state: string) => result.rows.find((r) => r.state === state)?.n ?? 0;
  return { retried: count('retrying'), dead: count('dead') };
}

export interface DeadLetter {
  id: string;
  notificationId: string;
  userId: string;
  channel: string;
  target: string;
  attempts: number;
  lastError: string | null;
  updatedAt: Date;
}

/** A service's dead deliveries, newest first, keyset-paginated by (updated_at, id). */
export async function listDeadLetters(
  pool: Pool,
  serviceId: number,
  limit: number,
  before?: { updatedAt: Date; id: string },
): Promise<DeadLetter[]> {
  const result = await pool.query<{
    id: string;
    notification_id: string;
    user_id: string;
    channel: string;
    target: string;
    attempts: number;
    last_error: string | null;
    updated_at: Date;
  }>(
    `SELECT id, notification_id, user_id, channel, target, attempts, last_error, updated_at
       FROM deliveries
      WHERE state = 'dead' AND service_id = $1
        AND ($3::timestamptz IS NULL OR (updated_at, id) < ($3, $4::uuid))
      ORDER BY updated_at DESC, id DESC
      LIMIT $2`,
    [serviceId, limit, before?.updatedAt ?? null, before?.id ?? null],
  );
  return result.rows.map((r) => ({
    id: r.id,
    notificationId: r.notification_id,
    userId: r.user_id,
    channel: r.channel,
    target: r.target,
    attempts: r.attempts,
    lastError: r.last_error,
    updatedAt: r.updated_at,
  }));
}

export interface ReplaySelection {
  ids?: string[];
  notificationId?: string;
  all?: boolean;
}

/**
 * Re-queues dead deliveries of a service with a fresh attempt budget. Only rows still dead
 * move, so replaying twice, or after a late success, sends nothing twice.
 */
export async function replayDeadLetters(
  pool: Pool,
  serviceId: number,
  selection: ReplaySelection,
  limit: number,
  /** Only notifications created at or after this (older months may be being archived). */
  notBefore: Date,
): Promise<string[]> {
  const result = await pool.query<{ id: string }>(
    `WITH chosen AS (
       SELECT id, notification_created_at FROM deliveries
        WHERE state = 'dead' AND service_id = $1
          AND ($2::uuid[] IS NULL OR id = ANY($2::uuid[]))
          AND ($3::text IS NULL OR notification_id = $3)
          AND notification_created_at >= $5
        ORDER BY updated_at
        LIMIT $4
        FOR UPDATE SKIP LOCKED
     ), u AS (
       UPDATE deliveries d SET state = 'pending', attempts = 0, run_at = now(), updated_at = now()
         FROM chosen
        WHERE d.id = chosen.id AND d.notification_created_at = chosen.notification_created_at
        RETURNING d.id, d.notification_id, d.channel
     ), e AS (
       INSERT INTO delivery_events (delivery_id, notification_id, channel, state, attempt, detail)
       SELECT id, notification_id, channel, 'pending', 0, 'replayed from dead letters' FROM u
     )
     SELECT id FROM u`,
    [serviceId, selection.ids ?? null, selection.notificationId ?? null, limit, notBefore],
  );
  return result.rows.map((r) => r.id);
}

export interface PendingByLane {
  lane: string;
  pending: number;
  oldestSeconds: number;
}

/** Backlog per lane for the metrics gauges: not-yet-final deliveries and the oldest due one. */
export async function readBacklog(pool: Pool): Promise<PendingByLane[]> {
  const result = await pool.query<{ lane: string; pending: number; oldest: number | null }>(
    `SELECT l.lane,
            (SELECT count(*) FROM deliveries d WHERE d.lane = l.lane AND d.state IN ('pending', 'retrying', 'sending'))::int AS pending,
            (SELECT extract(epoch FROM now() - min(d.run_at)) FROM deliveries d
              WHERE d.lane = l.lane AND d.state IN ('pending', 'retrying') AND d.run_at <= now())::float8 AS oldest
       FROM (VALUES ('transactional'), ('bulk')) AS l(lane)`,
  );
  return result.rows.map((r) => ({
    lane: r.lane,
    pending: r.pending,
    oldestSeconds: Math.max(0, r.oldest ?? 0),
  }));
}
