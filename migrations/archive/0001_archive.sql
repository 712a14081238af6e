-- The archive store (docs/retention.md): months that left the service store, kept for customer
-- support. The same columns as the service tables after migrations 0001–0007, partitioned by
-- month on the same keys, but built for size: no primary keys, unique or CHECK constraints (a
-- service row must never be refused here; each row is copied exactly once because the copy and
-- its progress row commit together), and only the indexes the support lookup reads by.
-- Partitions are created by the retention job as months arrive (src/archive/lifecycle.ts).

CREATE TABLE notifications (
  id               text NOT NULL,
  created_at       timestamptz NOT NULL,
  service_id       bigint NOT NULL,
  lane             text NOT NULL,
  category         text NOT NULL,
  channels         text[] NOT NULL,
  content          jsonb NOT NULL,
  data             jsonb,
  template         text,
  params           jsonb,
  send_at          timestamptz,
  version          bigint NOT NULL,
  updated_at       timestamptz NOT NULL,
  canceled_at      timestamptz,
  template_version integer
) PARTITION BY RANGE (created_at);
CREATE INDEX notifications_id_idx ON notifications (id, created_at);

CREATE TABLE recipients (
  notification_id         text NOT NULL,
  notification_created_at timestamptz NOT NULL,
  user_id                 text NOT NULL,
  lane                    text NOT NULL,
  state                   text NOT NULL,
  send_at                 timestamptz NOT NULL,
  skipped                 jsonb,
  fanned_out_at           timestamptz
) PARTITION BY RANGE (notification_created_at);
CREATE INDEX recipients_user_created_idx ON recipients (user_id, notification_created_at DESC);

CREATE TABLE deliveries (
  id                      uuid NOT NULL,
  notification_id         text NOT NULL,
  notification_created_at timestamptz NOT NULL,
  service_id              bigint NOT NULL,
  user_id                 text NOT NULL,
  channel                 text NOT NULL,
  target                  text NOT NULL,
  lane                    text NOT NULL,
  state                   text NOT NULL,
  attempts                integer NOT NULL,
  max_attempts            integer NOT NULL,
  run_at                  timestamptz NOT NULL,
  lease_owner             uuid,
  lease_expires_at        timestamptz,
  last_error              text,
  provider_message_id     text,
  created_at              timestamptz NOT NULL,
  updated_at              timestamptz NOT NULL,
  provider                text,
  category                text
) PARTITION BY RANGE (notification_created_at);
CREATE INDEX deliveries_notification_user_idx ON deliveries (notification_id, user_id);

CREATE TABLE inbox_items (
  notification_id         text NOT NULL,
  notification_created_at timestamptz NOT NULL,
  user_id                 text NOT NULL,
  category                text NOT NULL,
  read_at                 timestamptz,
  seen_at                 timestamptz,
  archived_at             timestamptz,
  created_at              timestamptz NOT NULL,
  deleted_at              timestamptz
) PARTITION BY RANGE (notification_created_at);
CREATE INDEX inbox_items_notification_user_idx ON inbox_items (notification_id, user_id);

CREATE TABLE delivery_events (
  delivery_id     uuid NOT NULL,
  notification_id text NOT NULL,
  channel         text NOT NULL,
  state           text NOT NULL,
  attempt         integer NOT NULL,
  detail          text,
  created_at      timestamptz NOT NULL
) PARTITION BY RANGE (created_at);
CREATE INDEX delivery_events_delivery_idx ON delivery_events (delivery_id);

-- How far the copy of one table's month has come. A batch's rows and this row's update commit in
-- one transaction, so after a crash the copy resumes after last_key with nothing lost or doubled.
-- last_key: the last copied row's primary key as a JSON array (delivery_events: its ctid in the
-- service partition). verified_at: set once the counts matched; the service partition may then go.
CREATE TABLE archive_progress (
  table_name  text NOT NULL,
  month       date NOT NULL,
  last_key    text,
  rows_copied bigint NOT NULL DEFAULT 0,
  verified_at timestamptz,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT archive_progress_pkey PRIMARY KEY (table_name, month)
);
