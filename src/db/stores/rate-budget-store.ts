// Rate budgets (docs/budgets.md): a service's named rates for its bulk sends. The api role
// manages them; ingest resolves a send's budget; the fan-out stage takes room from a budget's
// current one-second window in its own transaction (docs/decisions/0012-bulk-budgets.md).
import type { Pool, PoolClient } from '../pools.js';
import { notifySettingsChanged, settingsChange } from '../settings-change.js';
import type { DueRecipient } from '../../domain/fan-out-decision.js';
import {
  dueRecipientColumns,
  queuedRecipient,
  toDueRecipient,
  type DueRecipientRow,
} from './fan-out-store.js';

export interface RateBudget {
  name: string;
  perSecond: number;
  updatedAt: Date;
}

interface BudgetRow {
  name: string;
  per_second: number;
  updated_at: Date;
}

const present = (r: BudgetRow): RateBudget => ({
  name: r.name,
  perSecond: r.per_second,
  updatedAt: r.updated_at,
});

export async function listRateBudgets(pool: Pool, serviceId: number): Promise<RateBudget[]> {
  const found = await pool.query<BudgetRow>(
    'SELECT name, per_second, updated_at FROM rate_budgets WHERE service_id = $1 ORDER BY name',
    [serviceId],
  );
  return found.rows.map(present);
}

export async function getRateBudget(
  pool: Pool | PoolClient,
  serviceId: number,
  name: string,
): Promise<RateBudget | undefined> {
  const found = await pool.query<BudgetRow>(
    'SELECT name, per_second, updated_at FROM rate_budgets WHERE service_id = $1 AND name = $2',
    [serviceId, name],
  );
  const row = found.rows[0];
  return row === undefined ? undefined : present(row);
}

/**
 * Creates or changes a budget; the fan-out reads per_second with every take, so it applies at
 * once. A new budget is announced (herald_settings) to the processes that cache budget ids.
 */
export async function putRateBudget(
  client: PoolClient,
  serviceId: number,
  name: string,
  perSecond: number,
): Promise<{ budget: RateBudget; before: RateBudget | undefined }> {
  const before = await getRateBudget(client, serviceId, name);
  const saved = await client.query<BudgetRow>(
    `INSERT INTO rate_budgets (service_id, name, per_second) VALUES ($1, $2, $3)
     ON CONFLICT (service_id, name) DO UPDATE SET per_second = EXCLUDED.per_second, updated_at = now()
     RETURNING name, per_second, updated_at`,
    [serviceId, name, perSecond],
  );
  const row = saved.rows[0];
  if (row === undefined) throw new Error('rate budget upsert returned no row');
  if (before === undefined) await notifySettingsChanged(client, [settingsChange.budget(serviceId, name)]);
  return { budget: present(row), before };
}

/**
 * Deletes a budget; its recipients not yet fanned out are no longer paced. False when the
 * service has no such budget.
 */
export async function deleteRateBudget(
  client: PoolClient,
  serviceId: number,
  name: string,
): Promise<RateBudget | undefined> {
  const deleted = await client.query<BudgetRow & { id: string }>(
    'DELETE FROM rate_budgets WHERE service_id = $1 AND name = $2 RETURNING id, name, per_second, updated_at',
    [serviceId, name],
  );
  const row = deleted.rows[0];
  if (row === undefined) return undefined;
  // Its waiting recipients go on unpaced; one a workflow holds is queued without it when released.
  await client.query('UPDATE recipient_queue SET budget_id = NULL WHERE budget_id = $1', [row.id]);
  await client.query('UPDATE topic_sends SET budget_id = NULL WHERE budget_id = $1', [row.id]);
  await notifySettingsChanged(client, [settingsChange.budget(serviceId, name)]);
  return present(row);
}

/** The id of a service's budget by name, for ingest; undefined when it has none of that name. */
export async function findRateBudgetId(
  pool: Pool,
  serviceId: number,
  name: string,
): Promise<number | undefined> {
  const found = await pool.query<{ id: string }>(
    'SELECT id FROM rate_budgets WHERE service_id = $1 AND name = $2',
    [serviceId, name],
  );
  const id = found.rows[0]?.id;
  return id === undefined ? undefined : Number(id);
}

/** A budget with due work and room left in its current window, locked until the caller commits. */
export interface OpenBudget {
  id: number;
  room: number;
  /** Whether the window already had deliveries in it (an empty window admits one oversized recipient). */
  used: number;
}

/**
 * Locks the budgets that have due recipients and room in the current one-second window of the
 * database clock (a window that has passed counts as empty). The window is the second of the
 * transaction's start (now()), the time its deliveries and events are stamped with; a
 * transaction that started before the budget's window moved on counts it as full and leaves
 * it to a later one, so a window is never reopened. SKIP LOCKED: a budget another
 * worker is taking from is that worker's for this moment. `held` says whether some budget
 * with due work had no room (or was locked), so the caller knows to look again next second.
 * NO KEY UPDATE: an accept queuing the budget's recipients meanwhile (migration 0031's key-share
 * lock) does not wait for the fan-out; only the budget's deletion does.
 */
export async function lockOpenBudgets(client: PoolClient): Promise<{ open: OpenBudget[]; held: boolean }> {
  const found = await client.query<{ id: string; per_second: number; used: number; locked: boolean }>(
    `WITH due AS (
       SELECT b.id FROM rate_budgets b
        WHERE EXISTS (SELECT 1 FROM recipient_queue q WHERE q.budget_id = b.id AND q.send_at <= now())
     ), open AS (
       SELECT b.id, b.per_second,
              CASE WHEN b.window_start = date_trunc('second', now()) THEN b.window_used
                   WHEN b.window_start > now() THEN b.per_second
                   ELSE 0 END AS used
         FROM rate_budgets b JOIN due USING (id)
        ORDER BY b.id
        FOR NO KEY UPDATE OF b SKIP LOCKED
     )
     SELECT due.id, open.per_second, open.used, open.id IS NULL AS locked
       FROM due LEFT JOIN open USING (id)`,
  );
  const open: OpenBudget[] = [];
  let held = false;
  for (const r of found.rows) {
    if (r.locked || r.used >= r.per_second) held = true;
    else open.push({ id: Number(r.id), room: r.per_second - r.used, used: r.used });
  }
  return { open, held };
}

/** Locks up to `limit` due recipients of one budget, oldest send_at first. */
export async function claimBudgetRecipients(
  client: PoolClient,
  budgetId: number,
  limit: number,
): Promise<DueRecipient[]> {
  if (limit <= 0) return [];
  const result = await client.query<DueRecipientRow>(
    `SELECT ${dueRecipientColumns} FROM recipient_queue q JOIN recipients r ON ${queuedRecipient}
      WHERE q.budget_id = $1 AND q.send_at <= now() AND r.state = 'pending'
      ORDER BY q.send_at
      LIMIT $2
      FOR UPDATE OF r SKIP LOCKED`,
    [budgetId, limit],
  );
  return result.rows.map(toDueRecipient);
}

/** Adds deliveries created to the budgets' current windows (the rows are locked by lockOpenBudgets). */
export async function spendBudgets(client: PoolClient, spent: ReadonlyMap<number, number>): Promise<void> {
  if (spent.size === 0) return;
  await client.query(
    `UPDATE rate_budgets b
        SET window_used = CASE WHEN b.window_start = date_trunc('second', now()) THEN b.window_used ELSE 0 END + t.n,
            window_start = date_trunc('second', now())
       FROM unnest($1::bigint[], $2::int[]) AS t(id, n)
      WHERE b.id = t.id`,
    [[...spent.keys()], [...spent.values()]],
  );
}
