// Provider receipts: status reports (delivered, bounced, failed, complaint) that providers post
// after accepting a message. A report finds its delivery by the provider's name and message id.
// One that arrives before the send's outcome is recorded waits in early_receipts until it can
// be applied (the scheduler retries them), so a fast receipt is never lost to that race.
import { withTransaction, type Pool, type PoolClient } from '../pools.js';
import type { StatusUpdate } from '../../domain/status-update.js';

export interface ReceiptResult {
  /** Deliveries whose state moved (or that got a complaint event). */
  applied: number;
  /** Reports for a known delivery that change nothing (a repeat, or a state already past). */
  unchanged: number;
  /** Reports whose delivery is not recorded yet: kept for later. */
  early: number;
}

/** Applies a provider's status reports; reports with no matching delivery are kept as early. */
export async function applyStatusUpdates(
  pool: Pool,
  provider: string,
  updates: readonly StatusUpdate[],
): Promise<ReceiptResult> {
  if (updates.length === 0) return { applied: 0, unchanged: 0, early: 0 };
  return withTransaction(pool, async (client) => {
    const { applied, matched } = await applyMatched(client, provider, updates);
    const unmatched = updates.filter((_, i) => !matched.has(i));
    if (unmatched.length > 0) {
      await client.query(
        `INSERT INTO early_receipts (provider, provider_message_id, state, detail, target_invalid)
         SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::bool[])`,
        [
          provider,
          unmatched.map((u) => u.providerMessageId),
          unmatched.map((u) => u.state),
          unmatched.map((u) => u.detail),
          unmatched.map((u) => u.targetInvalid === true),
        ],
      );
    }
    return { applied, unchanged: matched.size - applied, early: unmatched.length };
  });
}

/**
 * Applies early receipts whose delivery has been recorded since, and forgets those older than
 * `maxAgeHours` (reports for messages Herald never sent under that provider). Returns counts.
 */
export async function applyEarlyReceipts(
  pool: Pool,
  limit: number,
  maxAgeHours = 24,
): Promise<{ applied: number; expired: number }> {
  return withTransaction(pool, async (client) => {
    const ready = await client.query<{
      ctid: string;
      provider: string;
      provider_message_id: string;
      state: StatusUpdate['state'];
      detail: string | null;
      target_invalid: boolean;
    }>(
      `SELECT e.ctid::text, e.provider, e.provider_message_id, e.state, e.detail, e.target_invalid
         FROM early_receipts e
        WHERE EXISTS (SELECT 1 FROM deliveries d
                       WHERE d.provider_message_id = e.provider_message_id AND d.provider = e.provider)
        ORDER BY e.received_at
        LIMIT $1
        FOR UPDATE SKIP LOCKED`,
      [limit],
    );
    let applied = 0;
    const byProvider = new Map<string, typeof ready.rows>();
    for (const row of ready.rows)
      byProvider.set(row.provider, [...(byProvider.get(row.provider) ?? []), row]);
    for (const [provider, rows] of byProvider) {
      const result = await applyMatched(
        client,
        provider,
        rows.map((r) => ({
          providerMessageId: r.provider_message_id,
          state: r.state,
          detail: r.detail,
          targetInvalid: r.target_invalid,
        })),
      );
      applied += result.applied;
    }
    if (ready.rows.length > 0) {
      await client.query('DELETE FROM early_receipts WHERE ctid = ANY($1::tid[])', [
        ready.rows.map((r) => r.ctid),
      ]);
    }
    const expired = await client.query(
      `DELETE FROM early_receipts WHERE received_at < now() - make_interval(hours => $1)`,
      [maxAgeHours],
    );
    return { applied, expired: expired.rowCount ?? 0 };
  });
}

async function applyMatched(
  client: PoolClient,
  provider: string,
  updates: readonly StatusUpdate[],
): Promise<{ applied: number; matched: Set<number> }> {
  const result = await client.query<{ ord: string; applied: boolean }>(
    `WITH t AS (
       SELECT * FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS t(mid, state, detail, ord)
     ), found AS (
       SELECT t.ord, d.id, d.notification_created_at, d.notification_id, d.channel, d.lane, d.attempts, d.state AS current,
              t.state, t.detail
         FROM t JOIN deliveries d ON d.provider_message_id = t.mid AND d.provider = $1
     ), moved AS (
       UPDATE deliveries d
          SET state = f.state, updated_at = now(),
              last_error = CASE WHEN f.state = 'delivered' THEN d.last_error ELSE f.detail END
         FROM found f
        WHERE d.id = f.id AND d.notification_created_at = f.notification_created_at
          AND ((d.state = 'sent' AND f.state IN ('delivered', 'failed', 'bounced'))
               OR (d.state = 'delivered' AND f.state = 'bounced'))
        RETURNING f.ord
     ), noted AS (
       SELECT ord FROM found WHERE state = 'complained'
     ), events AS (
       INSERT INTO delivery_events (delivery_id, notification_id, notification_created_at, channel, lane, state, attempt, detail)
       SELECT f.id, f.notification_id, f.notification_created_at, f.channel, f.lane, f.state, f.attempts,
              coalesce(f.detail, 'provider receipt')
         FROM found f
        WHERE f.ord IN (SELECT ord FROM moved UNION ALL SELECT ord FROM noted)
     )
     SELECT f.ord::text, (f.ord IN (SELECT ord FROM moved UNION ALL SELECT ord FROM noted)) AS applied
       FROM found f`,
    [
      provider,
      updates.map((u) => u.providerMessageId),
      updates.map((u) => u.state),
      updates.map((u) => u.detail),
    ],
  );
  const matched = new Set(result.rows.map((r) => Number(r.ord) - 1));
  return { applied: result.rows.filter((r) => r.applied).length, matched };
}
