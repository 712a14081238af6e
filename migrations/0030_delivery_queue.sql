-- The deliveries' work queue, and table settings for updates that stay on their page
-- (docs/decisions/0013-delivery-queue.md).
--
-- A delivery is claimed and then finished: two updates of its row. PostgreSQL can write an
-- update as a heap-only tuple (HOT: no index entry written, the old version pruned from the
-- page without a vacuum) only when no indexed column changes, and a column a partial index's
-- predicate reads counts as indexed. The claimable, leased and dead indexes of deliveries all
-- read `state`, so every claim and every outcome wrote a new entry into each of the table's
-- seven indexes. Those indexes move here: one narrow row per delivery that is not final yet
-- (pending, retrying or sending), inserted with the delivery, leased by the claim, deleted by
-- the outcome (updated instead when the outcome is a retry). The deliveries table keeps the
-- record (state, attempts, lease, errors), and its updates now change no indexed column.
--
-- Lock order: a writer that changes a queued delivery's state locks its queue row first, then
-- the delivery row (claims lock queue rows with SKIP LOCKED; outcome writes, cancels and the
-- rescuers lock queue rows before they update deliveries), so two writers never wait on each
-- other in opposite orders.
CREATE TABLE delivery_queue (
  delivery_id             uuid NOT NULL,
  notification_created_at timestamptz NOT NULL,
  user_id                 text NOT NULL,
  lane                    text NOT NULL,
  run_at                  timestamptz NOT NULL,
  lease_owner             uuid,
  lease_expires_at        timestamptz,
  CONSTRAINT delivery_queue_pkey PRIMARY KEY (delivery_id, notification_created_at, user_id)
) WITH (
  -- Small and churned: every delivery inserts, updates and deletes one row (the lease update
  -- changes an index predicate, so it is never heap-only). Vacuumed after a fixed number of dead
  -- rows rather than a share of the table, without cost-based pauses.
  autovacuum_vacuum_scale_factor = 0,
  autovacuum_vacuum_threshold = 5000,
  autovacuum_vacuum_insert_scale_factor = 0,
  autovacuum_vacuum_insert_threshold = 5000,
  autovacuum_analyze_scale_factor = 0,
  autovacuum_analyze_threshold = 5000,
  autovacuum_vacuum_cost_delay = 0
);
-- What claims read: due, unleased rows per lane in run_at order.
CREATE INDEX delivery_queue_due_idx ON delivery_queue (lane, run_at) WHERE lease_owner IS NULL;
-- What the rescuers read: leases by expiry (and by owner, among the few rows in flight).
CREATE INDEX delivery_queue_leased_idx ON delivery_queue (lease_expires_at) WHERE lease_owner IS NOT NULL;

-- The deliveries already waiting or in flight join the queue with their leases.
INSERT INTO delivery_queue (delivery_id, notification_created_at, user_id, lane, run_at, lease_owner, lease_expires_at)
SELECT id, notification_created_at, user_id, lane, run_at,
       CASE WHEN state = 'sending' THEN coalesce(lease_owner, '00000000-0000-0000-0000-000000000000') END,
       CASE WHEN state = 'sending' THEN coalesce(lease_expires_at, now()) END
  FROM deliveries
 WHERE state IN ('pending', 'retrying', 'sending');

-- Every delivery inserted waiting or in flight is queued in the same statement, whichever
-- writer inserts it: a delivery that is pending but not queued would never be sent.
CREATE FUNCTION deliveries_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO delivery_queue (delivery_id, notification_created_at, user_id, lane, run_at, lease_owner, lease_expires_at)
  SELECT id, notification_created_at, user_id, lane, run_at,
         CASE WHEN state = 'sending' THEN coalesce(lease_owner, '00000000-0000-0000-0000-000000000000') END,
         CASE WHEN state = 'sending' THEN coalesce(lease_expires_at, now()) END
    FROM new_deliveries
   WHERE state IN ('pending', 'retrying', 'sending');
  RETURN NULL;
END
$$;
CREATE TRIGGER deliveries_enqueue AFTER INSERT ON deliveries
  REFERENCING NEW TABLE AS new_deliveries
  FOR EACH STATEMENT EXECUTE FUNCTION deliveries_enqueue();

-- Emptying deliveries empties their queue.
CREATE FUNCTION deliveries_truncate_queue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  TRUNCATE delivery_queue;
  RETURN NULL;
END
$$;
CREATE TRIGGER deliveries_truncate_queue AFTER TRUNCATE ON deliveries
  FOR EACH STATEMENT EXECUTE FUNCTION deliveries_truncate_queue();

-- Dead letters are found by dead_at, set only by the move to dead and cleared by a replay, so
-- no other update of a delivery touches the index.
ALTER TABLE deliveries ADD COLUMN dead_at timestamptz;
UPDATE deliveries SET dead_at = updated_at WHERE state = 'dead';
CREATE INDEX deliveries_dead_at_idx ON deliveries (service_id, dead_at) WHERE dead_at IS NOT NULL;

DROP INDEX deliveries_claimable_idx;
DROP INDEX deliveries_leased_idx;
DROP INDEX deliveries_dead_idx;

-- Storage parameters of each partitioned table's monthly partitions: PostgreSQL does not let a
-- partitioned table carry them, so src/db/partitions.ts applies these to every partition it
-- creates, and this migration to the partitions that exist. Operators may change a row (the
-- next partitions take it; ALTER TABLE … SET the existing ones).
--   deliveries: a claim updates a whole batch of rows in one transaction, about a second after
--     their insert, and their outcomes do again: a page written in one burst must hold a second
--     version of every row it holds before the first versions can be pruned, so it is filled to
--     half (fillfactor 50) and both updates stay on it as heap-only tuples. The price is
--     deliveries' heap at about twice its packed size.
--   all of them: vacuumed and analyzed after a small share of a (large, monthly) partition
--     changed instead of a fifth of it, so the dead versions that pruning cannot reclaim (those
--     of non-HOT updates) and the visibility map keep up.
CREATE TABLE partition_settings (
  parent             text PRIMARY KEY,
  storage_parameters text NOT NULL
    CONSTRAINT partition_settings_parameters_check
    CHECK (storage_parameters ~ '^[a-z_]+ = [0-9.]+(, [a-z_]+ = [0-9.]+)*$')
);
INSERT INTO partition_settings (parent, storage_parameters) VALUES
  ('deliveries', 'fillfactor = 50, autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.02'),
  ('recipients', 'autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.02'),
  ('delivery_events', 'autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.02'),
  ('notifications', 'autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.02'),
  ('inbox_items', 'autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_insert_scale_factor = 0.05');

DO $$
DECLARE
  p record;
BEGIN
  FOR p IN
    SELECT c.relname AS partition, s.storage_parameters
      FROM partition_settings s
      JOIN pg_inherits i ON i.inhparent = s.parent::regclass
      JOIN pg_class c ON c.oid = i.inhrelid
  LOOP
    EXECUTE format('ALTER TABLE %I SET (%s)', p.partition, p.storage_parameters);
  END LOOP;
END
$$;
