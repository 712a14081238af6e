-- The fan-out's work queue: recipients waiting to be fanned out, in a narrow table of their
-- own, as deliveries wait in delivery_queue (docs/decisions/0013-delivery-queue.md).
--
-- The fan-out found due recipients on recipients_pending_idx and recipients_budget_pending_idx,
-- partial indexes whose predicates read `state`; PostgreSQL counts a column a predicate reads
-- as indexed, so marking a recipient fanned out (or canceled, or released by a workflow) was
-- never a heap-only (HOT) update: a new entry in each of the table's indexes, and a dead
-- version only vacuum removes. Those indexes move here: one row per recipient in state
-- 'pending', inserted with it (the trigger below, for every writer) or when a workflow releases
-- it, deleted when it is fanned out or canceled. recipients keeps the record, and its updates
-- change no indexed column.
--
-- Lock order: the recipients row first, then its queue row. The fan-out claim locks the
-- recipients rows of the queue rows it reads (SKIP LOCKED), so every writer of a waiting
-- recipient (fan-out, cancel, workflow release) holds the recipient before it touches the
-- queue row. Deleting a rate budget changes only queue rows.
CREATE TABLE recipient_queue (
  notification_id         text NOT NULL,
  notification_created_at timestamptz NOT NULL,
  user_id                 text NOT NULL,
  lane                    text NOT NULL,
  send_at                 timestamptz NOT NULL,
  -- The budget pacing this recipient (null: none): the recipient's budget while it exists.
  budget_id               bigint,
  CONSTRAINT recipient_queue_pkey PRIMARY KEY (notification_id, user_id, notification_created_at)
) WITH (
  -- Small and churned, like delivery_queue: vacuumed after a fixed number of dead rows.
  autovacuum_vacuum_scale_factor = 0,
  autovacuum_vacuum_threshold = 5000,
  autovacuum_vacuum_insert_scale_factor = 0,
  autovacuum_vacuum_insert_threshold = 5000,
  autovacuum_analyze_scale_factor = 0,
  autovacuum_analyze_threshold = 5000,
  autovacuum_vacuum_cost_delay = 0
);
-- What the lanes' claims read: due recipients no budget paces, per lane in send_at order.
CREATE INDEX recipient_queue_due_idx ON recipient_queue (lane, send_at) WHERE budget_id IS NULL;
-- What the budgets' claims read (and a budget's deletion).
CREATE INDEX recipient_queue_budget_idx ON recipient_queue (budget_id, send_at) WHERE budget_id IS NOT NULL;

INSERT INTO recipient_queue (notification_id, notification_created_at, user_id, lane, send_at, budget_id)
SELECT notification_id, notification_created_at, user_id, lane, send_at, budget_id
  FROM recipients
 WHERE state = 'pending';

-- Every recipient inserted pending is queued in the same statement, whichever writer inserts
-- it: a recipient that is pending but not queued would never be fanned out. Its budget is
-- queued only if it still exists, read under a key-share lock: a budget deleted before this
-- insert commits is not queued (its deletion waits for the lock, then unpaces these rows), so
-- no queue row can name a deleted budget, which no claim would ever take.
CREATE FUNCTION recipients_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO recipient_queue (notification_id, notification_created_at, user_id, lane, send_at, budget_id)
  SELECT n.notification_id, n.notification_created_at, n.user_id, n.lane, n.send_at, b.id
    FROM new_recipients n
    LEFT JOIN (SELECT id FROM rate_budgets
                WHERE id IN (SELECT budget_id FROM new_recipients)
                  FOR KEY SHARE) b ON b.id = n.budget_id
   WHERE n.state = 'pending';
  RETURN NULL;
END
$$;
CREATE TRIGGER recipients_enqueue AFTER INSERT ON recipients
  REFERENCING NEW TABLE AS new_recipients
  FOR EACH STATEMENT EXECUTE FUNCTION recipients_enqueue();

CREATE FUNCTION recipients_truncate_queue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  TRUNCATE recipient_queue;
  RETURN NULL;
END
$$;
CREATE TRIGGER recipients_truncate_queue AFTER TRUNCATE ON recipients
  FOR EACH STATEMENT EXECUTE FUNCTION recipients_truncate_queue();

DROP INDEX recipients_pending_idx;
DROP INDEX recipients_budget_pending_idx;

-- A recipient is inserted by an accept and updated by the fan-out about a second later, with
-- a whole request's recipients on a page and all of them in one fan-out transaction, so their
-- first versions cannot be pruned before every second version is written: the page keeps room
-- for the second versions, which are a tenth larger (state, fanned_out_at), so the update
-- stays on it as a heap-only tuple (fillfactor 45).
UPDATE partition_settings
   SET storage_parameters = 'fillfactor = 45, ' || storage_parameters
 WHERE parent = 'recipients' AND storage_parameters NOT LIKE '%fillfactor%';

DO $$
DECLARE
  p record;
BEGIN
  FOR p IN
    SELECT c.relname AS partition, s.storage_parameters
      FROM partition_settings s
      JOIN pg_inherits i ON i.inhparent = s.parent::regclass
      JOIN pg_class c ON c.oid = i.inhrelid
     WHERE s.parent = 'recipients'
  LOOP
    EXECUTE format('ALTER TABLE %I SET (%s)', p.partition, p.storage_parameters);
  END LOOP;
END
$$;
