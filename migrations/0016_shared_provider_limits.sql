-- Provider rate limits and circuit breakers that hold for the whole deployment, not per worker
-- process (docs/decisions/0009-shared-provider-limits.md).
--
-- provider_workers: one row per provider key (a provider, or for webhooks a receiving origin)
-- and worker process that wants to call it, refreshed a few times a second. Each worker takes
-- the key's limit divided by the rows seen in the last few seconds; a worker that dies stops
-- refreshing its rows and drops out of the count when they go stale. No index besides the key:
-- seen_at is not indexed, so a refresh is a HOT update.
--
-- provider_circuits: the latest time until which some worker opened a key's circuit. Every
-- worker reads it with its refresh and holds its own breaker open until then.
--
-- Both tables are UNLOGGED: their rows are rebuilt within a second by the running workers, so
-- they need no WAL and are not kept across a crash or copied to replicas.
CREATE UNLOGGED TABLE provider_workers (
  key       text NOT NULL,
  worker_id text NOT NULL,
  seen_at   timestamptz NOT NULL,
  CONSTRAINT provider_workers_pkey PRIMARY KEY (key, worker_id)
);

CREATE UNLOGGED TABLE provider_circuits (
  key        text PRIMARY KEY,
  open_until timestamptz NOT NULL,
  opened_by  text NOT NULL
);
