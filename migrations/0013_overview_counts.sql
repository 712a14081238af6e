-- The console's overview (docs/console.md): how many notifications were accepted and how many
-- deliveries reached each state, per minute, lane and channel. The counts are written by
-- statement-level triggers in the same transaction as the rows they count, so they are exact
-- (a rolled-back insert counts nothing) and a page reads a few hundred rows instead of
-- scanning the event history. See docs/decisions/0008-overview-counts.md.

-- The lane a delivery ran in, on each of its events (older events: NULL).
ALTER TABLE delivery_events ADD COLUMN lane text;

-- bucket: the minute of the counted rows' created_at (an hour, once compacted: the scheduler
-- folds minutes older than the previous hour into their hour). channel: '' for accepted
-- notifications (a notification is counted once, whatever its channels). shard: the writing
-- backend's pid modulo 8, so concurrent writers seldom wait on one another's row.
CREATE TABLE overview_counts (
  bucket  timestamptz NOT NULL,
  lane    text NOT NULL,
  channel text NOT NULL,
  state   text NOT NULL,
  shard   smallint NOT NULL,
  count   bigint NOT NULL,
  CONSTRAINT overview_counts_pkey PRIMARY KEY (bucket, lane, channel, state, shard)
);

-- Rows are added in key order, so two transactions lock the rows they share in the same order.
CREATE FUNCTION overview_count_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO overview_counts AS o (bucket, lane, channel, state, shard, count)
  SELECT date_trunc('minute', created_at), coalesce(lane, ''), channel, state, pg_backend_pid() % 8, count(*)
    FROM counted_events
   GROUP BY 1, 2, 3, 4
   ORDER BY 1, 2, 3, 4
  ON CONFLICT (bucket, lane, channel, state, shard) DO UPDATE SET count = o.count + excluded.count;
  RETURN NULL;
END
$$;

CREATE FUNCTION overview_count_notifications() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO overview_counts AS o (bucket, lane, channel, state, shard, count)
  SELECT date_trunc('minute', created_at), lane, '', 'accepted', pg_backend_pid() % 8, count(*)
    FROM counted_notifications
   GROUP BY 1, 2
   ORDER BY 1, 2
  ON CONFLICT (bucket, lane, channel, state, shard) DO UPDATE SET count = o.count + excluded.count;
  RETURN NULL;
END
$$;

CREATE TRIGGER delivery_events_overview AFTER INSERT ON delivery_events
  REFERENCING NEW TABLE AS counted_events FOR EACH STATEMENT EXECUTE FUNCTION overview_count_events();
CREATE TRIGGER notifications_overview AFTER INSERT ON notifications
  REFERENCING NEW TABLE AS counted_notifications FOR EACH STATEMENT EXECUTE FUNCTION overview_count_notifications();

-- What is already there is counted once, here (the triggers count from now on).
INSERT INTO overview_counts (bucket, lane, channel, state, shard, count)
SELECT date_trunc('hour', created_at), '', channel, state, 0, count(*)
  FROM delivery_events GROUP BY 1, 3, 4;
INSERT INTO overview_counts (bucket, lane, channel, state, shard, count)
SELECT date_trunc('hour', created_at), lane, '', 'accepted', 0, count(*)
  FROM notifications GROUP BY 1, 2;

-- Provider health as each worker process last saw it (its breaker and its calls since its
-- previous report), for the overview. Rows of workers that stopped reporting age out.
CREATE TABLE provider_health (
  worker_id     uuid NOT NULL,
  provider_key  text NOT NULL,
  breaker_state text NOT NULL CONSTRAINT provider_health_state_check CHECK (breaker_state IN ('closed', 'open', 'half_open')),
  calls         integer NOT NULL,
  failures      integer NOT NULL,
  latency_ms_sum double precision NOT NULL,
  latency_ms_max double precision NOT NULL,
  period_ms     integer NOT NULL,
  reported_at   timestamptz NOT NULL,
  CONSTRAINT provider_health_pkey PRIMARY KEY (worker_id, provider_key)
);
