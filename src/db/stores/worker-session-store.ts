// Worker sessions (docs/decisions/0011-session-leases.md): a lease owner is registered with the
// database session of the worker that claims under it, by a session-level advisory lock. While
// the session lives, nobody else can take the lock; once it ends (the process died, or the
// connection was closed or terminated), the lease rescuer can, and takes the owner's deliveries
// back at once instead of after their lease.
import type pg from 'pg';
import type { PoolClient } from '../pools.js';

/** The first key of every worker session lock (the second is worker_sessions.lock_key). */
export const workerSessionLockSpace = 0x48657264; // 'Herd'

export interface WorkerSessionRow {
  owner: string;
  /** Where the worker runs: its host name and OS process id. */
  host: string;
  pid: number;
}

/**
 * Registers `owner` with the session of `client` (a dedicated connection, not a pool's, and not
 * through a transaction-mode pooler): takes the owner's lock, and makes the row visible only once
 * the lock is held, so every row the rescuer sees was locked by its session.
 */
export async function registerWorkerSession(client: pg.ClientBase, row: WorkerSessionRow): Promise<void> {
  await client.query('BEGIN');
  try {
    const inserted = await client.query<{ lock_key: number }>(
      `INSERT INTO worker_sessions (owner, host, pid, backend_pid)
       VALUES ($1, $2, $3, pg_backend_pid()) RETURNING lock_key`,
      [row.owner, row.host, row.pid],
    );
    await client.query('SELECT pg_advisory_lock($1, $2)', [
      workerSessionLockSpace,
      inserted.rows[0]?.lock_key,
    ]);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/**
 * The owners whose session ended at least `graceSeconds` ago, locked for the rest of the
 * transaction. First marks the sessions newly found ended (their lock is free: this transaction
 * takes it until it ends; a session's lock, once free, stays free, as its key is never reused).
 * SKIP LOCKED throughout, and a lock another scheduler holds reads as alive: several schedulers
 * take disjoint owners. The grace lets a worker that lives on after losing its session (a
 * PostgreSQL restart) record the outcomes it holds before its deliveries are taken back.
 */
export async function lockEndedSessions(client: PoolClient, graceSeconds: number): Promise<string[]> {
  await client.query(
    `WITH seen AS (
       SELECT owner FROM worker_sessions
        WHERE ended_at IS NULL AND pg_try_advisory_xact_lock($1, lock_key)
          FOR UPDATE SKIP LOCKED
     )
     UPDATE worker_sessions w SET ended_at = now() FROM seen WHERE w.owner = seen.owner`,
    [workerSessionLockSpace],
  );
  const result = await client.query<{ owner: string }>(
    `SELECT owner FROM worker_sessions
      WHERE ended_at <= now() - make_interval(secs => $1)
        FOR UPDATE SKIP LOCKED`,
    [graceSeconds],
  );
  return result.rows.map((r) => r.owner);
}

/** Deletes the ended sessions among `owners` that hold no delivery in `sending` any more. */
export async function deleteEndedSessions(client: PoolClient, owners: readonly string[]): Promise<number> {
  if (owners.length === 0) return 0;
  const result = await client.query(
    `DELETE FROM worker_sessions w
      WHERE w.owner = ANY($1::uuid[])
        AND NOT EXISTS (SELECT 1 FROM delivery_queue q WHERE q.lease_owner = w.owner)`,
    [owners],
  );
  return result.rowCount ?? 0;
}
