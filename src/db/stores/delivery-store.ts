// Deliveries: the outbox workers claim from. Claim and outcome recording are short
// statements on batches; no provider call ever runs inside them.
import type { Pool, PoolClient } from '../pools.js';
import type { Lane, NotificationContent } from '../../domain/notification.js';
import type { Transition } from '../../domain/outcome-policy.js';
import type { Platform, PushDevice } from '../../domain/device.js';
import { storedTrace } from '../../domain/trace-context.js';

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
  /** The service's webhook secrets that sign now: the current one, then one rotated out within its overlap. */
  webhookSecrets: string[];
  /**
   * For push: the device, or null if it was deleted or disabled since the fan-out, or its token
   * was registered by another user since (the device is theirs now).
   */
  device: PushDevice | null;
  /** Set when the notification names a template (its content is then empty). */
  template?: ClaimedTemplate | null;
  /** The user's locale (users.locale), null if the user row is gone. */
  locale?: string | null;
  /**
   * The trace its provider calls continue (docs/tracing.md): the accepting request's. spanId:
   * the span they are children of, null when none was kept.
   */
  trace?: { traceId: string; spanId: string | null; sampled: boolean } | undefined;
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
  /** The notification's first row in the batch carries its content, data, params and webhook secrets; the rest null. */
  first: boolean;
  content: NotificationContent | null;
  data: Record<string, unknown> | null;
  webhook_secrets: string[] | null;
  device_platform: Platform | null;
  device_app_id: string | null;
  device_token: string | null;
  template: string | null;
  template_version: number | null;
  template_params: Record<string, unknown> | null;
  user_locale: string | null;
  trace_id: string | null;
  trace_span_id: string | null;
  trace_flags: number | null;
}

/** How much one claim may take: `limit` in all, of which at most `bulkLimit` bulk. */
export interface ClaimRoom {
  limit: number;
  bulkLimit: number;
}

/**
 * Claims due deliveries for `owner`, under a lease of `leaseSeconds`: transactional first, up
 * to `room.limit`, then bulk into what is left, at most `room.bulkLimit`. One statement: lock
 * due, unleased delivery_queue rows with SKIP LOCKED (concurrent workers take disjoint rows),
 * lease them, mark their deliveries sending, count the attempt, record the event, and return
 * what rendering needs, transactional first.
 *
 * Named, so each connection plans it once and then runs PostgreSQL's generic plan, which
 * cannot see the LIMITs: the locked keys reach the UPDATE as arrays (estimated small) so the
 * generic plan still probes the primary key per row, pruning partitions at execution time,
 * instead of hashing the whole table.
 */
export async function claimDeliveries(
  pool: Pool | PoolClient,
  room: ClaimRoom,
  owner: string,
  leaseSeconds: number,
): Promise<ClaimedDelivery[]> {
  if (room.limit <= 0) return [];
  const result = await pool.query<ClaimRow>({
    name: 'herald_claim_deliveries',
    text: `WITH tx AS (
       SELECT delivery_id, notification_created_at, user_id FROM delivery_queue
        WHERE lease_owner IS NULL AND lane = 'transactional' AND run_at <= now()
        ORDER BY run_at
        LIMIT $1
        FOR UPDATE SKIP LOCKED
     ), bulk AS (
       SELECT delivery_id, notification_created_at, user_id FROM delivery_queue
        WHERE lease_owner IS NULL AND lane = 'bulk' AND run_at <= now()
        ORDER BY run_at
        LIMIT greatest(0, least($1 - (SELECT count(*) FROM tx), $2))
        FOR UPDATE SKIP LOCKED
     ), due AS (
       SELECT * FROM tx UNION ALL SELECT * FROM bulk
     ), keys AS (
       SELECT ARRAY(SELECT delivery_id FROM due) AS ids, ARRAY(SELECT notification_created_at FROM due) AS ncas,
              ARRAY(SELECT user_id FROM due) AS users, now() + make_interval(secs => $4) AS expires
     ), leased AS (
       UPDATE delivery_queue q SET lease_owner = $3, lease_expires_at = keys.expires
         FROM keys, unnest(keys.ids, keys.ncas, keys.users) AS k(id, nca, user_id)
        WHERE q.delivery_id = k.id AND q.notification_created_at = k.nca AND q.user_id = k.user_id
     ), claimed AS (
       UPDATE deliveries d
          SET state = 'sending', attempts = d.attempts + 1, lease_owner = $3,
              lease_expires_at = keys.expires, updated_at = now()
         FROM keys, unnest(keys.ids, keys.ncas, keys.users) AS k(id, nca, user_id)
        WHERE d.id = k.id AND d.notification_created_at = k.nca AND d.user_id = k.user_id
        RETURNING d.*
     ), events AS (
       INSERT INTO delivery_events (delivery_id, notification_id, notification_created_at, channel, lane, state, attempt)
       SELECT id, notification_id, notification_created_at, channel, lane, 'sending', attempts FROM claimed
     )
     SELECT c.id, c.notification_id, c.notification_created_at, c.service_id, c.user_id, c.channel, c.target,
            c.lane, c.attempts, c.max_attempts, n.version, n.category,
            row_number() OVER w = 1 AS first,
            CASE WHEN row_number() OVER w = 1 THEN n.content END AS content,
            CASE WHEN row_number() OVER w = 1 THEN n.data END AS data,
            CASE WHEN row_number() OVER w = 1
                 THEN array_remove(ARRAY[s.webhook_secret, CASE WHEN s.previous_webhook_secret_until > now() THEN s.previous_webhook_secret END], NULL)
            END AS webhook_secrets,
            dv.platform AS device_platform, dv.app_id AS device_app_id, dv.token AS device_token,
            n.template, n.template_version, CASE WHEN row_number() OVER w = 1 THEN n.params END AS template_params,
            u.locale AS user_locale,
            n.trace_id, n.trace_span_id, n.trace_flags
       FROM claimed c
       JOIN notifications n ON n.id = c.notification_id AND n.created_at = c.notification_created_at
       JOIN services s ON s.id = c.service_id
       LEFT JOIN devices dv ON dv.id = (CASE WHEN c.channel = 'push' THEN c.target END)::uuid
                            AND dv.user_id = c.user_id AND dv.enabled
       LEFT JOIN users u ON u.id = c.user_id
     WINDOW w AS (PARTITION BY c.notification_id)`,
    values: [room.limit, Math.max(0, room.bulkLimit), owner, leaseSeconds],
  });
  const bulkLast = (r: ClaimRow) => (r.lane === 'bulk' ? 1 : 0);
  const rows = result.rows.sort((a, b) => bulkLast(a) - bulkLast(b));
  const notifications = new Map<string, ClaimedNotification>();
  for (const r of rows) if (r.first) notifications.set(r.notification_id, claimedNotification(r));
  return rows.flatMap((r) => {
    const n = notifications.get(r.notification_id);
    return n === undefined ? [] : [toClaimed(r, n)];
  });
}

/** What the deliveries of one notification in a claimed batch share: parsed once, one object. */
interface ClaimedNotification {
  version: number;
  category: string;
  content: NotificationContent;
  data: Record<string, unknown> | null;
  template: ClaimedTemplate | null;
  trace: ClaimedDelivery['trace'];
  /** The sending service's webhook secrets (a notification has one service). */
  webhookSecrets: string[];
}

function claimedNotification(r: ClaimRow): ClaimedNotification {
  return {
    version: r.version,
    category: r.category,
    content: r.content ?? {},
    data: r.data,
    template:
      r.template !== null && r.template_version !== null
        ? { key: r.template, version: r.template_version, params: r.template_params ?? {} }
        : null,
    trace: storedTrace(
      { traceId: r.trace_id, spanId: r.trace_span_id, flags: r.trace_flags },
      r.notification_id,
    ),
    webhookSecrets: r.webhook_secrets ?? [],
  };
}

function toClaimed(r: ClaimRow, n: ClaimedNotification): ClaimedDelivery {
  return {
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
    version: n.version,
    category: n.category,
    content: n.content,
    data: n.data,
    webhookSecrets: n.webhookSecrets,
    device:
      r.device_platform !== null && r.device_app_id !== null && r.device_token !== null
        ? { id: r.target, platform: r.device_platform, appId: r.device_app_id, token: r.device_token }
        : null,
    template: n.template,
    locale: r.user_locale,
    trace: n.trace,
  };
}

/** A decided transition (src/domain/outcome-policy.ts) and what writing it needs beside it. */
export interface OutcomeWrite {
  id: string;
  notificationCreatedAt: Date;
  /** The delivery's channel and target: the target to stop using when the transition says so. */
  channel: string;
  target: string;
  /** The provider that made the call (its message id is only unique there); null: unchanged. */
  provider: string | null;
  transition: Transition;
}

/** How writeOutcomes names a write it made: the delivery and the attempts it found. */
export function outcomeKey(id: string, fromAttempts: number): string {
  return `${id}:${String(fromAttempts)}`;
}

/**
 * Writes decided transitions in one statement, with their events, and stops using the targets
 * they call invalid; see writeTransitions. Call it in a transaction, so a state and the target
 * it disables commit together. Returns the writes made, by outcomeKey.
 */
export async function writeOutcomes(
  client: PoolClient,
  owner: string | null,
  writes: readonly OutcomeWrite[],
): Promise<Set<string>> {
  const written = await writeTransitions(client, owner, writes);
  await disableInvalidTargets(client, writes, written);
  return written;
}

/**
 * Writes decided transitions and their events in one statement. A row is written only if it is
 * still in the transition's `from` state with its `fromAttempts` and, when `owner` is given,
 * under that lease owner: the fence, so a worker whose lease expired and whose delivery was
 * taken back (by the rescuer, or claimed again) cannot overwrite the newer state. The
 * delivery's queue row follows its new state: deleted when it is final, unleased at its new
 * run_at for a retry (docs/decisions/0013-delivery-queue.md); the statement locks the queue rows
 * before any delivery row (the `locked` step, run once before the update reads its first row),
 * the lock order every writer keeps. The SQL decides nothing: it writes the values it is given.
 * Alone (on a pool) it commits by itself: for writes that disable no target. Returns the writes
 * made, by outcomeKey.
 */
export async function writeTransitions(
  client: Pool | PoolClient,
  owner: string | null,
  writes: readonly OutcomeWrite[],
): Promise<Set<string>> {
  if (writes.length === 0) return new Set();
  // Named: planned once per connection (its generic plan probes the primary key per input row).
  const t = writes.map((w) => w.transition);
  const updated = await client.query<{ id: string; from_attempts: number }>({
    name: 'herald_write_outcomes',
    text: `WITH o AS (
         SELECT * FROM unnest($2::uuid[], $3::timestamptz[], $4::text[], $5::int[], $6::text[], $7::int[],
                              $8::float8[], $9::text[], $10::text[], $11::text[], $12::int[], $13::text[])
           AS t(id, nca, from_state, from_attempts, state, attempts, delay_ms, last_error, provider_message_id,
                provider, event_attempt, event_detail)
       ), locked AS (
         SELECT 1 FROM delivery_queue q JOIN o ON q.delivery_id = o.id AND q.notification_created_at = o.nca
          ORDER BY q.delivery_id
            FOR UPDATE OF q
       ), u AS (
         UPDATE deliveries d SET
           state = o.state,
           attempts = o.attempts,
           run_at = coalesce(now() + o.delay_ms * interval '1 millisecond', d.run_at),
           last_error = coalesce(o.last_error, d.last_error),
           provider_message_id = coalesce(o.provider_message_id, d.provider_message_id),
           provider = coalesce(o.provider, d.provider),
           dead_at = CASE WHEN o.state = 'dead' THEN now() END,
           lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
         FROM o
         WHERE (SELECT count(*) FROM locked) >= 0
           AND d.id = o.id AND d.notification_created_at = o.nca AND d.state = o.from_state
           AND d.attempts = o.from_attempts AND ($1::uuid IS NULL OR d.lease_owner = $1)
         RETURNING d.id, d.notification_created_at, d.user_id, d.notification_id, d.channel, d.lane, d.run_at,
                   o.from_state, o.from_attempts, o.state, o.event_attempt, o.event_detail
       ), e AS (
         INSERT INTO delivery_events (delivery_id, notification_id, notification_created_at, channel, lane, state, attempt, detail)
         SELECT id, notification_id, notification_created_at, channel, lane, state, event_attempt, event_detail FROM u
       ), finished AS (
         DELETE FROM delivery_queue q USING u
          WHERE q.delivery_id = u.id AND q.notification_created_at = u.notification_created_at
            AND q.user_id = u.user_id AND u.state NOT IN ('pending', 'retrying')
       ), requeued AS (
         UPDATE delivery_queue q SET run_at = u.run_at, lease_owner = NULL, lease_expires_at = NULL
           FROM u
          WHERE q.delivery_id = u.id AND q.notification_created_at = u.notification_created_at
            AND q.user_id = u.user_id AND u.state IN ('pending', 'retrying')
       ), reopened AS (
         INSERT INTO delivery_queue (delivery_id, notification_created_at, user_id, lane, run_at)
         SELECT id, notification_created_at, user_id, lane, run_at FROM u
          WHERE u.state IN ('pending', 'retrying') AND u.from_state NOT IN ('pending', 'retrying', 'sending')
       )
       SELECT id, from_attempts FROM u`,
    values: [
      owner,
      writes.map((w) => w.id),
      writes.map((w) => w.notificationCreatedAt),
      t.map((x) => x.from),
      t.map((x) => x.fromAttempts),
      t.map((x) => x.to),
      t.map((x) => x.attempts),
      t.map((x) => x.delayMs),
      t.map((x) => x.lastError),
      t.map((x) => x.providerMessageId),
      writes.map((w) => w.provider),
      t.map((x) => x.event.attempt),
      t.map((x) => x.event.detail),
    ],
  });
  return new Set(updated.rows.map((r) => outcomeKey(r.id, r.from_attempts)));
}

/** Stops using the targets the written transitions call invalid (devices, chat webhooks). */
async function disableInvalidTargets(
  client: PoolClient,
  writes: readonly OutcomeWrite[],
  written: ReadonlySet<string>,
): Promise<void> {
  const invalid = writes.filter(
    (w) => w.transition.disableTarget && written.has(outcomeKey(w.id, w.transition.fromAttempts)),
  );
  const devices = invalid.filter((w) => w.channel === 'push');
  if (devices.length > 0) {
    await client.query(
      `UPDATE devices d SET enabled = false, disabled_reason = t.reason, updated_at = now()
         FROM unnest($1::uuid[], $2::text[]) AS t(id, reason)
        WHERE d.id = t.id AND d.enabled`,
      [devices.map((w) => w.target), devices.map((w) => w.transition.lastError ?? 'target invalid')],
    );
  }
  const chats = invalid.filter((w) => w.channel === 'chat').map((w) => w.target);
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
}

export interface PendingByLane {
  lane: string;
  /** Deliveries not yet final: pending or retrying (due or not) and sending. */
  pending: number;
  /** Deliveries due and not yet handed to a provider (pending or retrying). */
  due: number;
  /** Age of the oldest of those (0 if none). */
  oldestSeconds: number;
  /** Deliveries in a provider call now (leased by a worker). */
  sending: number;
  /** Recipients of accepted notifications, due and not yet fanned out into deliveries. */
  recipients: number;
  oldestRecipientSeconds: number;
}

/**
 * The work waiting per lane, for the metrics gauges and the console's overview, read from the
 * delivery queue and the recipient queue.
 */
export async function readBacklog(pool: Pool): Promise<PendingByLane[]> {
  const result = await pool.query<PendingByLane>(
    `SELECT l.lane, d.pending + s.sending AS pending, d.due, d.oldest AS "oldestSeconds", s.sending,
            r.n AS recipients, r.oldest AS "oldestRecipientSeconds"
       FROM (VALUES ('transactional'), ('bulk')) AS l(lane)
       CROSS JOIN LATERAL (
         SELECT count(*)::int AS pending, (count(*) FILTER (WHERE run_at <= now()))::int AS due,
                greatest(0, coalesce(extract(epoch FROM now() - min(run_at) FILTER (WHERE run_at <= now())), 0))::float8 AS oldest
           FROM delivery_queue WHERE lease_owner IS NULL AND lane = l.lane) d
       CROSS JOIN LATERAL (
         SELECT count(*)::int AS sending FROM delivery_queue WHERE lease_owner IS NOT NULL AND lane = l.lane) s
       CROSS JOIN LATERAL (
         SELECT count(*)::int AS n, greatest(0, coalesce(extract(epoch FROM now() - min(send_at)), 0))::float8 AS oldest
           FROM recipient_queue WHERE lane = l.lane AND send_at <= now()) r`,
  );
  return result.rows;
}
