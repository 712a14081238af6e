// Workflow runs and digests (docs/workflows.md): claim due runs, load what their next step
// needs, write the step's result with its effects, and close due digests into one summary.
// Every function runs in the caller's transaction; the claims hold their row locks until it
// commits, so a step and its effects commit together or not at all.
import { pooledRandomBytes } from '../../observability/random-pool.js';
import type { PoolClient } from '../pools.js';
import type { Channel } from '../../domain/notification.js';
import { formatNotificationId, uuidV7 } from '../../domain/ids.js';
import type { RunResult, SendOutcome, Step } from '../../domain/workflow.js';

export interface NewWorkflowRun {
  notificationId: string;
  notificationCreatedAt: Date;
  userId: string;
  serviceId: number;
  steps: readonly Step[];
  dueAt: Date;
}

export async function insertWorkflowRuns(client: PoolClient, runs: readonly NewWorkflowRun[]): Promise<void> {
  if (runs.length === 0) return;
  await client.query(
    `INSERT INTO workflow_runs (notification_id, notification_created_at, user_id, service_id, steps, due_at)
     SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::bigint[], $5::jsonb[], $6::timestamptz[])`,
    [
      runs.map((r) => r.notificationId),
      runs.map((r) => r.notificationCreatedAt),
      runs.map((r) => r.userId),
      runs.map((r) => r.serviceId),
      runs.map((r) => JSON.stringify(r.steps)),
      runs.map((r) => r.dueAt),
    ],
  );
}

export interface ClaimedRun {
  notificationId: string;
  notificationCreatedAt: Date;
  userId: string;
  serviceId: number;
  steps: Step[];
  step: number;
  phase: 'start' | 'waiting';
  lastOutcome: string | null;
  sentVersion: number | null;
  waitUntil: Date | null;
  sent: boolean;
  timeZone: string;
  attributes: Record<string, unknown>;
  version: number;
}

/** Locks up to `limit` due runs (others' claims are skipped) with the facts their steps read. */
export async function claimDueRuns(client: PoolClient, limit: number): Promise<ClaimedRun[]> {
  const result = await client.query<{
    notification_id: string;
    notification_created_at: Date;
    user_id: string;
    service_id: string;
    steps: Step[];
    step: number;
    phase: 'start' | 'waiting';
    last_outcome: string | null;
    sent_version: string | null;
    wait_until: Date | null;
    sent_at: Date | null;
    time_zone: string | null;
    attributes: Record<string, unknown> | null;
    version: string;
  }>(
    `SELECT w.notification_id, w.notification_created_at, w.user_id, w.service_id, w.steps, w.step, w.phase,
            w.last_outcome, w.sent_version, w.wait_until, w.sent_at, u.time_zone, u.attributes, n.version
       FROM workflow_runs w
       JOIN notifications n ON n.id = w.notification_id AND n.created_at = w.notification_created_at
       LEFT JOIN users u ON u.id = w.user_id
      WHERE w.state = 'running' AND w.due_at <= now()
      ORDER BY w.due_at
      LIMIT $1
      FOR UPDATE OF w SKIP LOCKED`,
    [limit],
  );
  return result.rows.map((r) => ({
    notificationId: r.notification_id,
    notificationCreatedAt: r.notification_created_at,
    userId: r.user_id,
    serviceId: Number(r.service_id),
    steps: r.steps,
    step: r.step,
    phase: r.phase,
    lastOutcome: r.last_outcome,
    sentVersion: r.sent_version === null ? null : Number(r.sent_version),
    waitUntil: r.wait_until,
    sent: r.sent_at !== null,
    timeZone: r.time_zone ?? 'UTC',
    attributes: r.attributes ?? {},
    version: Number(r.version),
  }));
}

/** How loadSendOutcomes names a run: its notification and user. */
export function runKey(run: Pick<ClaimedRun, 'notificationId' | 'userId'>): string {
  return `${run.notificationId} ${run.userId}`;
}

/**
 * What each run's sends came to, in one statement for the claimed batch: read (its inbox item
 * read, or a delivery of it opened, clicked or read as the app or a tracked email reported it: a
 * mail proxy's prefetch does not count), delivered, failed, or still pending. Runs that sent
 * nothing yet are not in the answer (by runKey).
 */
export async function loadSendOutcomes(
  client: PoolClient,
  runs: readonly ClaimedRun[],
): Promise<Map<string, SendOutcome>> {
  const sent = runs.filter((r) => r.sent);
  if (sent.length === 0) return new Map();
  const result = await client.query<{
    notification_id: string;
    user_id: string;
    read: boolean;
    delivered: boolean;
    failed: boolean;
    n: number;
  }>(
    `SELECT k.nid AS notification_id, k.uid AS user_id,
            EXISTS (SELECT 1 FROM inbox_items i
                     WHERE i.user_id = k.uid AND i.notification_id = k.nid AND i.notification_created_at = k.nca
                       AND i.read_at IS NOT NULL)
            OR EXISTS (SELECT 1 FROM engagement_events e
                        WHERE e.user_id = k.uid AND e.notification_id = k.nid
                          AND e.notification_created_at = k.nca AND NOT e.prefetch) AS read,
            d.delivered, d.failed, d.n
       FROM unnest($1::text[], $2::timestamptz[], $3::text[]) AS k(nid, nca, uid)
       CROSS JOIN LATERAL (
         SELECT COALESCE(bool_or(x.state IN ('sent', 'delivered')), false) AS delivered,
                COALESCE(bool_and(x.state IN ('failed', 'dead', 'target_invalid', 'canceled', 'suppressed')), false) AS failed,
                count(*)::int AS n
           FROM deliveries x
          WHERE x.notification_id = k.nid AND x.notification_created_at = k.nca AND x.user_id = k.uid) d`,
    [sent.map((r) => r.notificationId), sent.map((r) => r.notificationCreatedAt), sent.map((r) => r.userId)],
  );
  const outcomes = new Map<string, SendOutcome>();
  for (const row of result.rows) {
    const outcome: SendOutcome = row.read
      ? 'read'
      : row.delivered
        ? 'delivered'
        : row.n > 0 && row.failed
          ? 'failed'
          : 'pending';
    outcomes.set(runKey({ notificationId: row.notification_id, userId: row.user_id }), outcome);
  }
  return outcomes;
}

export async function writeRunResult(client: PoolClient, run: ClaimedRun, result: RunResult): Promise<void> {
  const sends = result.effects.some((e) => e.kind === 'send');
  await client.query(
    `UPDATE workflow_runs
        SET step = $4, phase = $5, state = $6, due_at = $7, last_outcome = $8, sent_version = $9, wait_until = $11,
            sent_at = CASE WHEN $10 THEN COALESCE(sent_at, now()) ELSE sent_at END, updated_at = now()
      WHERE notification_id = $1 AND notification_created_at = $2 AND user_id = $3`,
    [
      run.notificationId,
      run.notificationCreatedAt,
      run.userId,
      result.step,
      result.phase,
      result.state,
      result.dueAt,
      result.lastOutcome,
      result.sentVersion,
      sends,
      result.waitUntil,
    ],
  );
}

/**
 * Hands the run's recipient to the fan-out stage, for `channels` (null: all the notification's).
 * A recipient still waiting for the fan-out keeps the channels it was given, plus these.
 */
export async function releaseRecipient(
  client: PoolClient,
  run: Pick<ClaimedRun, 'notificationId' | 'notificationCreatedAt' | 'userId'>,
  channels: readonly Channel[] | null,
): Promise<void> {
  // The recipient first, then its queue row (migration 0031's lock order). A budget deleted
  // while the recipient was held no longer paces it (read under a key-share lock, as the
  // enqueue trigger does, so a deletion in progress is waited for).
  await client.query(
    `WITH released AS (
       UPDATE recipients
          SET channels = CASE
                WHEN $4::text[] IS NULL THEN NULL
                WHEN state = 'pending' AND channels IS NULL THEN NULL
                WHEN state = 'pending' THEN ARRAY(SELECT DISTINCT unnest(channels || $4::text[]))
                ELSE $4::text[] END,
              state = 'pending', send_at = now()
        WHERE notification_id = $1 AND notification_created_at = $2 AND user_id = $3 AND state <> 'canceled'
       RETURNING notification_id, notification_created_at, user_id, lane, send_at, budget_id
     )
     INSERT INTO recipient_queue (notification_id, notification_created_at, user_id, lane, send_at, budget_id)
     SELECT r.notification_id, r.notification_created_at, r.user_id, r.lane, r.send_at, b.id
       FROM released r
       LEFT JOIN (SELECT id FROM rate_budgets WHERE id IN (SELECT budget_id FROM released) FOR KEY SHARE) b
         ON b.id = r.budget_id
     ON CONFLICT (notification_id, user_id, notification_created_at) DO UPDATE SET send_at = excluded.send_at`,
    [run.notificationId, run.notificationCreatedAt, run.userId, channels],
  );
}

/**
 * Adds the run's notification to the open digest of (service, user, key), opening one if none
 * is open; the item that fills it (max_items) makes it 'full', so the next opens a new one. The
 * upsert locks the digest row until commit, so a closer either sees this item or closed the
 * digest before it (then this opens the next one). The recipient is done: the summary is its
 * send.
 */
export async function joinDigest(
  client: PoolClient,
  run: ClaimedRun,
  digest: { key: string; windowMs: number; maxItems: number },
): Promise<void> {
  const opened = await client.query<{ id: string }>(
    `INSERT INTO digests (id, service_id, user_id, digest_key, state, opened_at, closes_at, max_items, item_count)
     VALUES ($1, $2, $3, $4, CASE WHEN $6 <= 1 THEN 'full' ELSE 'open' END, now(),
             CASE WHEN $6 <= 1 THEN now() ELSE now() + $5 * interval '1 millisecond' END, $6, 1)
     ON CONFLICT (user_id, service_id, digest_key) WHERE state = 'open'
     DO UPDATE SET item_count = digests.item_count + 1,
                   state = CASE WHEN digests.item_count + 1 >= digests.max_items THEN 'full' ELSE 'open' END,
                   closes_at = CASE WHEN digests.item_count + 1 >= digests.max_items
                                    THEN LEAST(digests.closes_at, now()) ELSE digests.closes_at END
     RETURNING id`,
    [
      uuidV7(Date.now(), pooledRandomBytes(10)),
      run.serviceId,
      run.userId,
      digest.key,
      digest.windowMs,
      digest.maxItems,
    ],
  );
  const id = opened.rows[0]?.id;
  await client.query(
    `INSERT INTO digest_items (digest_id, user_id, notification_id, notification_created_at, params)
     SELECT $1, $2, n.id, n.created_at, n.params FROM notifications n WHERE n.id = $3 AND n.created_at = $4
     ON CONFLICT DO NOTHING`,
    [id, run.userId, run.notificationId, run.notificationCreatedAt],
  );
  await client.query(
    `UPDATE workflow_runs SET digest_id = $4
      WHERE notification_id = $1 AND notification_created_at = $2 AND user_id = $3`,
    [run.notificationId, run.notificationCreatedAt, run.userId, id],
  );
  await client.query(
    `UPDATE recipients SET state = 'fanned_out', fanned_out_at = now()
      WHERE notification_id = $1 AND notification_created_at = $2 AND user_id = $3 AND state = 'held'`,
    [run.notificationId, run.notificationCreatedAt, run.userId],
  );
}

/**
 * Closes up to `limit` due digests: each becomes one summary notification (the first item's
 * template, lane, category and channels; its params plus `items`, the items' params in order of
 * arrival, and `item_count`) with one recipient row for the fan-out stage. The digest row is
 * locked (others' skipped) and marked sent in the same transaction, so one summary per digest.
 * Returns how many summaries were written.
 */
export async function closeDueDigests(client: PoolClient, limit: number, now: Date): Promise<number> {
  const due = await client.query<{ id: string; user_id: string; service_id: string; name: string }>(
    `SELECT d.id, d.user_id, d.service_id, s.name FROM digests d JOIN services s ON s.id = d.service_id
      WHERE d.state IN ('open', 'full') AND d.closes_at <= now()
      ORDER BY d.closes_at LIMIT $1
      FOR UPDATE OF d SKIP LOCKED`,
    [limit],
  );
  for (const d of due.rows) {
    const summaryId = formatNotificationId({
      service: d.name,
      uuid: uuidV7(now.getTime(), pooledRandomBytes(10)),
    });
    const written = await client.query(
      `WITH items AS (
         SELECT i.notification_id, i.notification_created_at, i.params, i.added_at
           FROM digest_items i WHERE i.digest_id = $1 AND i.user_id = $2
       ), first AS (
         SELECT n.* FROM items JOIN notifications n
             ON n.id = items.notification_id AND n.created_at = items.notification_created_at
          ORDER BY items.added_at, items.notification_id LIMIT 1
       ), list AS (
         SELECT jsonb_agg(COALESCE(params, '{}'::jsonb) ORDER BY added_at, notification_id) AS items, count(*) AS n
           FROM items
       ), ins AS (
         INSERT INTO notifications (id, created_at, service_id, lane, category, channels, content, data, send_at,
                                    updated_at, template, template_version, params)
         SELECT $3, $4, f.service_id, f.lane, f.category, f.channels, f.content, f.data, NULL, $4,
                f.template, f.template_version,
                COALESCE(f.params, '{}'::jsonb) || jsonb_build_object('items', list.items, 'item_count', list.n)
           FROM first f, list
         RETURNING id, created_at, lane
       )
       INSERT INTO recipients (notification_id, notification_created_at, user_id, lane, state, send_at)
       SELECT id, created_at, $2, lane, 'pending', now() FROM ins`,
      [d.id, d.user_id, summaryId, now],
    );
    await client.query(
      `UPDATE digests SET state = 'sent', summary_id = $3, summary_created_at = $4 WHERE id = $1 AND user_id = $2`,
      [d.id, d.user_id, (written.rowCount ?? 0) > 0 ? summaryId : null, now],
    );
  }
  return due.rows.length;
}

/** A cancel stops the notification's runs where they are (in the cancel's transaction). */
export async function cancelWorkflowRuns(client: PoolClient, id: string, createdAt: Date): Promise<number> {
  const result = await client.query(
    `UPDATE workflow_runs SET state = 'canceled', updated_at = now()
      WHERE notification_id = $1 AND notification_created_at = $2 AND state = 'running'`,
    [id, createdAt],
  );
  return result.rowCount ?? 0;
}

/**
 * Deletes up to `limit` runs that finished before `before`, and as many digests sent before it
 * with their items: nothing reads them once done, and they would otherwise grow without bound.
 */
export async function deleteFinishedWorkflows(
  client: PoolClient,
  before: Date,
  limit: number,
): Promise<number> {
  const runs = await client.query(
    `DELETE FROM workflow_runs w USING (
       SELECT notification_id, notification_created_at, user_id FROM workflow_runs
        WHERE state <> 'running' AND updated_at < $1 LIMIT $2) AS old
      WHERE w.notification_id = old.notification_id AND w.notification_created_at = old.notification_created_at
        AND w.user_id = old.user_id`,
    [before, limit],
  );
  const digests = await client.query(
    `WITH d AS (
       DELETE FROM digests g USING (
         SELECT id, user_id FROM digests WHERE state = 'sent' AND summary_created_at < $1 LIMIT $2) AS old
        WHERE g.id = old.id AND g.user_id = old.user_id
        RETURNING g.id, g.user_id
     )
     DELETE FROM digest_items i USING d WHERE i.digest_id = d.id AND i.user_id = d.user_id`,
    [before, limit],
  );
  return (runs.rowCount ?? 0) + (digests.rowCount ?? 0);
}
