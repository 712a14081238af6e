// What the worker processes share about their provider keys (migration 0016,
// docs/decisions/0009-shared-provider-limits.md): which workers want to call each rate-limited
// key (a heartbeat row per key and worker) and until when some worker opened a key's circuit.
// One statement per refresh, whatever the number of keys; nothing per send.
import type { Pool } from '../pools.js';

export interface LimitsRefresh {
  workerId: string;
  /** Rate-limited keys this worker wants to call: their heartbeat rows are written, its others deleted. */
  keys: string[];
  /** Circuits this worker opened since its previous refresh, open for `openMs` from now. */
  opened: { key: string; openMs: number }[];
  /** A heartbeat older than this no longer counts (the worker is taken for dead). */
  expiryMs: number;
}

export interface LimitsSnapshot {
  /** Other live workers per key of `keys` (this worker not included; keys without others absent). */
  others: Map<string, number>;
  /** Open circuits, deployment-wide: milliseconds each stays open from now (database clock). */
  openForMs: Map<string, number>;
}

/**
 * Writes this worker's heartbeats, removes those of keys it no longer wants (the others take its
 * share at their next refresh, not when the heartbeat expires), writes the circuits it opened,
 * and reads the other workers' live heartbeats and every open circuit. The writes happen in the
 * same statement, so the read does not see them: it counts the other workers only (the caller
 * adds itself). Remaining open times are computed by the database, so the workers' clocks need
 * not agree.
 */
export async function refreshProviderLimits(pool: Pool, refresh: LimitsRefresh): Promise<LimitsSnapshot> {
  const result = await pool.query<{ kind: string; key: string; n: number }>(
    `WITH beat AS (
       INSERT INTO provider_workers (key, worker_id, seen_at)
       SELECT k, $1, now() FROM unnest($2::text[]) AS k
       ON CONFLICT (key, worker_id) DO UPDATE SET seen_at = excluded.seen_at
     ), gone AS (
       DELETE FROM provider_workers WHERE worker_id = $1 AND key <> ALL($2::text[])
     ), opened AS (
       INSERT INTO provider_circuits AS c (key, open_until, opened_by)
       SELECT k, now() + make_interval(secs => ms / 1000.0), $1
         FROM unnest($3::text[], $4::int[]) AS t(k, ms)
       ON CONFLICT (key) DO UPDATE
         SET open_until = greatest(c.open_until, excluded.open_until), opened_by = excluded.opened_by
     )
     SELECT 'workers' AS kind, key, count(*)::int AS n
       FROM provider_workers
      WHERE key = ANY($2::text[]) AND worker_id <> $1
        AND seen_at > now() - make_interval(secs => $5 / 1000.0)
      GROUP BY key
     UNION ALL
     SELECT 'circuit', key, ceil(extract(epoch FROM open_until - now()) * 1000)::int
       FROM provider_circuits
      WHERE open_until > now()`,
    [
      refresh.workerId,
      refresh.keys,
      refresh.opened.map((o) => o.key),
      refresh.opened.map((o) => Math.round(o.openMs)),
      refresh.expiryMs,
    ],
  );
  const snapshot: LimitsSnapshot = { others: new Map(), openForMs: new Map() };
  for (const row of result.rows) {
    if (row.kind === 'workers') snapshot.others.set(row.key, row.n);
    else snapshot.openForMs.set(row.key, row.n);
  }
  return snapshot;
}

/** Removes this worker's heartbeats (at shutdown: the others take its share at their next refresh). */
export async function leaveProviderLimits(pool: Pool, workerId: string): Promise<void> {
  await pool.query('DELETE FROM provider_workers WHERE worker_id = $1', [workerId]);
}

/** Drops heartbeats and circuits long past (any worker may run it; they are ignored anyway). */
export async function pruneProviderLimits(pool: Pool, olderThanMs: number): Promise<void> {
  await pool.query(
    `WITH w AS (DELETE FROM provider_workers WHERE seen_at < now() - make_interval(secs => $1 / 1000.0))
     DELETE FROM provider_circuits WHERE open_until < now() - make_interval(secs => $1 / 1000.0)`,
    [olderThanMs],
  );
}
