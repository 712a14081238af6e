// The group commit's writer: a batch of accepted requests, their idempotency keys, and for
// each new request its notification and one recipient row per user — one statement for a batch
// without keys, topics or workflows, else in a transaction. Which request creates, replays or conflicts is decided in the domain
// (src/domain/idempotency.ts); this file inserts and reads what that decision needs.
import { withTransaction, type Pool, type PoolClient } from '../pools.js';
import type { NotificationTemplateRef } from './notification-store.js';
import { insertTopicSends } from './topic-store.js';
import type { Lane, NotificationContent } from '../../domain/notification.js';
import type { NotificationTrace } from '../../domain/trace-context.js';
import type { Step } from '../../domain/workflow.js';
import { insertWorkflowRuns } from './workflow-store.js';
import {
  decideAgainstHeldKeys,
  decideIdempotency,
  planClaims,
  type ClaimOutcome,
  type HeldKey,
  type KeyedRequest,
  type OwnClaim,
} from '../../domain/idempotency.js';

export interface NewNotification {
  id: string;
  createdAt: Date;
  serviceId: number;
  lane: Lane;
  category: string;
  channels: string[];
  content: NotificationContent;
  data: Record<string, unknown> | null;
  sendAt: Date;
  isScheduled: boolean;
  recipients: string[];
  /**
   * For a request naming a topic (recipients empty): the topic, its subscriber count at
   * acceptance (the answer's `recipients`), and for a schedule's occurrence the one time zone
   * whose subscribers it addresses. Its subscribers are expanded by the worker.
   */
  topic?: { id: number; subscribers: number; timeZone: string | null } | null;
  /** For a request naming a template: its key, the version resolved at ingest, and the params. */
  template?: NotificationTemplateRef | null;
  /** The trace its deliveries continue (the accepting request's, or a new one). */
  trace?: NotificationTrace | undefined;
  /** Workflow steps: its recipients wait ('held') for their workflow runs (docs/workflows.md). */
  steps?: readonly Step[] | null;
  /** The rate budget its recipients are paced by (docs/budgets.md); null or absent: none. */
  budgetId?: number | null;
}

export interface IdempotencyClaim {
  key: string;
  requestHash: Buffer;
}

export interface ExistingNotification {
  id: string;
  createdAt: Date;
  recipients: number;
  sendAt: Date | null;
}

export interface PreparedNotification {
  notification: NewNotification;
  claims: IdempotencyClaim[];
}

export type BatchOutcome =
  { kind: 'created' } | { kind: 'replayed'; summary: ExistingNotification } | { kind: 'conflict' };

/**
 * Writes a batch of accepted requests in the caller's transaction (group commit) and returns
 * one outcome per request, in order:
 * - created: its idempotency keys were new; the notification and its recipients are written;
 * - replayed: a key names an earlier request with the same body; nothing is written;
 * - conflict: a key names a different request; nothing is written.
 * Keys are inserted in one sorted statement, so two batches never lock keys in opposite
 * order; ON CONFLICT waits for a concurrent batch holding a key, so of N concurrent identical
 * requests exactly one creates. Duplicates within the batch are settled before SQL.
 */
export async function writeNotificationBatch(
  client: PoolClient,
  items: PreparedNotification[],
): Promise<BatchOutcome[]> {
  const requests = items.map((p) => ({ serviceId: p.notification.serviceId, claims: p.claims }));
  const plan = planClaims(requests);
  const inserted = await insertIdempotencyKeys(client, plan.ownClaims, items);
  const { outcomes: decided, undo } = decideIdempotency(requests, plan, inserted);
  const settle = (item: number) => settleOutcome(client, items, requests, decided, item);
  const isFollower = (item: number) => plan.leaderOf.has(item);
  const outcomes: BatchOutcome[] = [];
  // Requests whose keys others hold are looked up before this batch gives back its keys and
  // writes; their followers after, against the keys as this batch leaves them.
  for (const item of items.keys()) if (!isFollower(item)) outcomes[item] = await settle(item);
  await deleteIdempotencyKeys(client, undo);
  await insertNotifications(
    client,
    items.filter((_, item) => decided[item]?.kind === 'created').map((p) => p.notification),
  );
  for (const item of items.keys()) if (isFollower(item)) outcomes[item] = await settle(item);
  return outcomes;
}

/**
 * Writes a batch as a commit of its own. A batch whose requests carry no idempotency key, topic
 * or workflow (most sends) is one statement outside a transaction, so it costs one round trip
 * instead of four (BEGIN, notifications, recipients, COMMIT); any other is written by
 * writeNotificationBatch in a transaction.
 */
export async function commitNotificationBatch(
  pool: Pool,
  items: PreparedNotification[],
): Promise<BatchOutcome[]> {
  const plain = items.every(
    (p) => p.claims.length === 0 && p.notification.topic == null && p.notification.steps == null,
  );
  if (!plain) return withTransaction(pool, (client) => writeNotificationBatch(client, items));
  await insertNotificationRows(
    pool,
    items.map((p) => p.notification),
  );
  return items.map(() => ({ kind: 'created' }));
}

/** One request's outcome: as decided, or, for a lookup, by what the database holds. */
async function settleOutcome(
  client: PoolClient,
  items: readonly PreparedNotification[],
  requests: readonly KeyedRequest[],
  decided: readonly ClaimOutcome[],
  item: number,
): Promise<BatchOutcome> {
  const outcome = decided[item];
  const request = requests[item];
  if (outcome === undefined || request === undefined)
    throw new Error(`no request ${String(item)} in the batch`);
  switch (outcome.kind) {
    case 'created':
    case 'conflict':
      return { kind: outcome.kind };
    case 'replayed_in_batch': {
      const leader = items[outcome.leader]?.notification;
      if (leader === undefined) throw new Error(`no request ${String(outcome.leader)} in the batch`);
      return { kind: 'replayed', summary: summaryOf(leader) };
    }
    case 'lookup': {
      const held = await loadHeldKeys(client, request.serviceId, outcome.keys);
      const decision = decideAgainstHeldKeys(request, outcome.keys, held);
      const summary =
        decision.kind === 'replay'
          ? await findNotificationSummary(client, decision.notificationId, decision.notificationCreatedAt)
          : undefined;
      return summary === undefined ? { kind: 'conflict' } : { kind: 'replayed', summary };
    }
  }
}

/** A notification created in this batch, as a replay of it is answered. */
function summaryOf(n: NewNotification): ExistingNotification {
  return {
    id: n.id,
    createdAt: n.createdAt,
    recipients: n.topic == null ? n.recipients.length : n.topic.subscribers,
    sendAt: n.isScheduled ? n.sendAt : null,
  };
}

/** Inserts the keys in the given (sorted) order; returns those that were new. */
async function insertIdempotencyKeys(
  client: PoolClient,
  claims: readonly OwnClaim[],
  items: readonly PreparedNotification[],
): Promise<{ serviceId: number; key: string }[]> {
  if (claims.length === 0) return [];
  const result = await client.query<{ service_id: number; key: string }>(
    `INSERT INTO idempotency_keys (service_id, key, request_hash, notification_id, notification_created_at)
     SELECT s, k, h, n, c FROM unnest($1::bigint[], $2::text[], $3::bytea[], $4::text[], $5::timestamptz[]) WITH ORDINALITY AS t(s, k, h, n, c, o)
     ORDER BY o
     ON CONFLICT DO NOTHING
     RETURNING service_id, key`,
    [
      claims.map((c) => c.serviceId),
      claims.map((c) => c.key),
      claims.map((c) => c.requestHash),
      claims.map((c) => items[c.item]?.notification.id),
      claims.map((c) => items[c.item]?.notification.createdAt),
    ],
  );
  return result.rows.map((r) => ({ serviceId: r.service_id, key: r.key }));
}

async function deleteIdempotencyKeys(client: PoolClient, claims: readonly OwnClaim[]): Promise<void> {
  if (claims.length === 0) return;
  await client.query(
    'DELETE FROM idempotency_keys AS i USING unnest($1::bigint[], $2::text[]) AS t(s, k) WHERE i.service_id = t.s AND i.key = t.k',
    [claims.map((c) => c.serviceId), claims.map((c) => c.key)],
  );
}

/** What earlier requests of a service hold under these keys. */
async function loadHeldKeys(
  client: PoolClient,
  serviceId: number,
  keys: readonly string[],
): Promise<HeldKey[]> {
  const existing = await client.query<{
    notification_id: string;
    notification_created_at: Date;
    request_hash: Buffer;
  }>(
    `SELECT notification_id, notification_created_at, request_hash FROM idempotency_keys
      WHERE service_id = $1 AND key = ANY($2::text[])`,
    [serviceId, keys],
  );
  return existing.rows.map((r) => ({
    notificationId: r.notification_id,
    notificationCreatedAt: r.notification_created_at,
    requestHash: r.request_hash,
  }));
}

/**
 * The notifications and all their recipients, as one statement (two multi-row inserts joined by
 * a CTE): on its own, outside a transaction, it is a whole commit.
 */
async function insertNotificationRows(
  db: Pool | PoolClient,
  list: readonly NewNotification[],
): Promise<void> {
  const recipients = list.flatMap((n) => n.recipients.map((user) => ({ n, user })));
  await db.query(
    `WITH n AS (
       INSERT INTO notifications (id, created_at, service_id, lane, category, channels, content, data, send_at, updated_at,
                                  template, template_version, params, trace_id, trace_span_id, trace_flags)
       SELECT id, c, s, l, cat, string_to_array(ch, ','), co, d, sa, c, tk, tv, tp, ti, ts, tf
         FROM unnest($1::text[], $2::timestamptz[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::jsonb[], $8::jsonb[], $9::timestamptz[],
                     $10::text[], $11::int[], $12::jsonb[], $13::text[], $14::text[], $15::smallint[])
           AS t(id, c, s, l, cat, ch, co, d, sa, tk, tv, tp, ti, ts, tf)
     )
     INSERT INTO recipients (notification_id, notification_created_at, user_id, lane, state, send_at, budget_id)
     SELECT n, c, u, l, s, sa, b FROM unnest($16::text[], $17::timestamptz[], $18::text[], $19::text[], $20::timestamptz[], $21::text[], $22::bigint[]) AS t(n, c, u, l, sa, s, b)`,
    [
      list.map((n) => n.id),
      list.map((n) => n.createdAt),
      list.map((n) => n.serviceId),
      list.map((n) => n.lane),
      list.map((n) => n.category),
      list.map((n) => n.channels.join(',')),
      list.map((n) => JSON.stringify(n.content)),
      list.map((n) => (n.data === null ? null : JSON.stringify(n.data))),
      list.map((n) => (n.isScheduled ? n.sendAt : null)),
      list.map((n) => n.template?.key ?? null),
      list.map((n) => n.template?.version ?? null),
      list.map((n) => (n.template == null ? null : JSON.stringify(n.template.params))),
      list.map((n) => n.trace?.traceId ?? null),
      list.map((n) => n.trace?.spanId ?? null),
      list.map((n) => n.trace?.flags ?? null),
      recipients.map((r) => r.n.id),
      recipients.map((r) => r.n.createdAt),
      recipients.map((r) => r.user),
      recipients.map((r) => r.n.lane),
      recipients.map((r) => r.n.sendAt),
      recipients.map((r) => (r.n.steps == null ? 'pending' : 'held')),
      recipients.map((r) => r.n.budgetId ?? null),
    ],
  );
}

/** Notifications, recipients, and the topic sends and workflow runs some of them have. */
async function insertNotifications(client: PoolClient, list: NewNotification[]): Promise<void> {
  if (list.length === 0) return;
  await insertNotificationRows(client, list);
  await insertTopicSends(
    client,
    list.flatMap((n) =>
      n.topic == null
        ? []
        : [
            {
              notificationId: n.id,
              notificationCreatedAt: n.createdAt,
              topicId: n.topic.id,
              lane: n.lane,
              sendAt: n.sendAt,
              timeZone: n.topic.timeZone,
              budgetId: n.budgetId ?? null,
            },
          ],
    ),
  );
  await insertWorkflowRuns(
    client,
    list.flatMap((n) => {
      const { steps } = n;
      if (steps == null) return [];
      return n.recipients.map((userId) => ({
        notificationId: n.id,
        notificationCreatedAt: n.createdAt,
        userId,
        serviceId: n.serviceId,
        steps,
        dueAt: n.sendAt,
      }));
    }),
  );
}

/** The notification an earlier request created, as a replay of it is answered. */
async function findNotificationSummary(
  client: PoolClient,
  id: string,
  createdAt: Date,
): Promise<ExistingNotification | undefined> {
  const result = await client.query<{
    id: string;
    created_at: Date;
    send_at: Date | null;
    recipients: number;
  }>(
    `SELECT n.id, n.created_at, n.send_at,
            (SELECT count(*) FROM recipients r WHERE r.notification_id = n.id AND r.notification_created_at = n.created_at) AS recipients
       FROM notifications n WHERE n.id = $1 AND n.created_at = $2`,
    [id, createdAt],
  );
  const row = result.rows[0];
  return row === undefined
    ? undefined
    : { id: row.id, createdAt: row.created_at, recipients: row.recipients, sendAt: row.send_at };
}
