// How far a read replica is behind its primary, measured on the replica itself: that is the
// server the query role reads from, and the functions below need no privilege there (the
// primary's pg_stat_replication shows the lag only to roles with pg_read_all_stats, and not at
// all for a replica fed from an archive or by a cascade).
import type { Pool } from './pools.js';

/**
 * Seconds, or null when unknown (a replica that has replayed no transaction since it started
 * and has not caught up). A replica that has replayed everything it received reports 0, even
 * when the primary has been idle for long: the age of the last replayed transaction alone would
 * grow while nothing is written. Behind, it reports that age, which overstates the delay when
 * the primary was idle before the writes not yet replayed. Measured on the replica, it cannot
 * see WAL it has not received: one cut off from its primary reports 0 once it has replayed what
 * it has. A server that is not in recovery (a primary, or a promoted replica) reports 0: its
 * reads are as current as it is.
 */
export async function readReplicaLag(pool: Pool): Promise<number | null> {
  const result = await pool.query<{ lag: number | null }>(
    `SELECT CASE
              WHEN NOT pg_is_in_recovery() THEN 0
              WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
              ELSE greatest(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp()))
            END::float8 AS lag`,
  );
  return result.rows[0]?.lag ?? null;
}
