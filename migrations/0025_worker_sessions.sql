-- Worker sessions (docs/decisions/0011-session-leases.md): one row per lease owner of a running
-- worker process. The worker holds the session-level advisory lock (worker_session_lock_space,
-- lock_key) on a connection it keeps open for as long as it claims under that owner; PostgreSQL
-- releases the lock when that session ends, including when the process is killed. The session
-- rescuer marks owners whose lock it can take as ended, takes back their `sending` deliveries a
-- grace later instead of waiting for the lease to expire, and deletes their rows.
--
-- lock_key comes from the identity sequence, so two owners never share a lock; it is an
-- integer because the two-key advisory lock takes two int4 (its first key is a constant, so
-- these locks never meet the single-bigint advisory locks used elsewhere).
CREATE TABLE worker_sessions (
  owner        uuid PRIMARY KEY,
  lock_key     integer GENERATED ALWAYS AS IDENTITY (CYCLE) UNIQUE,
  host         text NOT NULL,
  pid          integer NOT NULL,
  backend_pid  integer NOT NULL,
  started_at   timestamptz NOT NULL DEFAULT now(),
  -- When a rescuer first found the session ended; its deliveries are taken back after a grace.
  ended_at     timestamptz
);

-- No index on deliveries.lease_owner: the rescuer reads the few rows in `sending` through
-- deliveries_leased_idx (partial, state = 'sending'), and every claim and outcome would pay
-- for one more index.
