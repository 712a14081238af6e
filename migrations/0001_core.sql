-- Herald core schema: calling services and their API keys, users and devices, and the
-- month-partitioned notification / recipient / delivery / event tables that form the outbox.
-- Partitions themselves are created at run time by db/partitions.ts (migrate and scheduler).

CREATE TABLE services (
  id             bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT services_pkey PRIMARY KEY,
  name           text NOT NULL CONSTRAINT services_name_key UNIQUE
                 CONSTRAINT services_name_check CHECK (name ~ '^[a-z][a-z0-9_-]{0,62}$'),
  webhook_url    text,
  webhook_secret text,
  created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
  id          bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT api_keys_pkey PRIMARY KEY,
  service_id  bigint NOT NULL CONSTRAINT api_keys_service_fkey REFERENCES services (id),
  key_hash    bytea NOT NULL CONSTRAINT api_keys_key_hash_key UNIQUE,
  key_prefix  text NOT NULL,
  roles       text[] NOT NULL DEFAULT '{sender}',
  label       text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz
);

-- Users are the organisation's users, shared by every calling service (see
-- docs/decisions/0002-users-are-shared.md). id is the caller's external id.
CREATE TABLE users (
  id          text NOT NULL CONSTRAINT users_pkey PRIMARY KEY
              CONSTRAINT users_id_check CHECK (length(id) BETWEEN 1 AND 128),
  email       text,
  phone       text,
  locale      text NOT NULL DEFAULT 'en',
  time_zone   text NOT NULL DEFAULT 'UTC',
  webhook_url text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE devices (
  id              uuid NOT NULL CONSTRAINT devices_pkey PRIMARY KEY,
  user_id         text NOT NULL CONSTRAINT devices_user_fkey REFERENCES users (id) ON DELETE CASCADE,
  platform        text NOT NULL CONSTRAINT devices_platform_check CHECK (platform IN ('ios', 'android', 'web')),
  app_id          text NOT NULL,
  token           text NOT NULL,
  enabled         boolean NOT NULL DEFAULT true,
  disabled_reason text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  -- A token belongs to one installation: registering it for another user moves it.
  CONSTRAINT devices_app_token_key UNIQUE (app_id, token)
);
CREATE INDEX devices_user_idx ON devices (user_id);

-- The caller's idempotency keys: a supplied `service#uuid` id or an Idempotency-Key header.
-- Unpartitioned so uniqueness holds across months; rows are kept until a retention job exists.
CREATE TABLE idempotency_keys (
  service_id              bigint NOT NULL,
  key                     text NOT NULL,
  request_hash            bytea NOT NULL,
  notification_id         text NOT NULL,
  notification_created_at timestamptz NOT NULL,
  created_at              timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT idempotency_keys_pkey PRIMARY KEY (service_id, key)
);

-- One row per request. Content is read at dispatch time, so a PATCH (a newer version)
-- changes what every not-yet-sent delivery and the in-app copy show.
CREATE TABLE notifications (
  id           text NOT NULL,
  created_at   timestamptz NOT NULL,
  service_id   bigint NOT NULL,
  lane         text NOT NULL CONSTRAINT notifications_lane_check CHECK (lane IN ('transactional', 'bulk')),
  category     text NOT NULL,
  channels     text[] NOT NULL,
  content      jsonb NOT NULL,
  data         jsonb,
  template     text,
  params       jsonb,
  send_at      timestamptz,
  version      bigint NOT NULL DEFAULT 1,
  updated_at   timestamptz NOT NULL,
  canceled_at  timestamptz,
  CONSTRAINT notifications_pkey PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX notifications_id_idx ON notifications (id);

-- One row per (notification, user): the unit the fan-out stage claims.
CREATE TABLE recipients (
  notification_id         text NOT NULL,
  notification_created_at timestamptz NOT NULL,
  user_id                 text NOT NULL,
  lane                    text NOT NULL,
  state                   text NOT NULL CONSTRAINT recipients_state_check
                          CHECK (state IN ('pending', 'fanned_out', 'canceled')),
  send_at                 timestamptz NOT NULL,
  skipped                 jsonb,
  fanned_out_at           timestamptz,
  CONSTRAINT recipients_pkey PRIMARY KEY (notification_id, user_id, notification_created_at)
) PARTITION BY RANGE (notification_created_at);
CREATE INDEX recipients_pending_idx ON recipients (lane, send_at) WHERE state = 'pending';

-- One row per notification x user x channel x target; the outbox workers claim from.
-- Partitioned by the notification's creation time so a notification and its deliveries
-- share a month (and retention), and the uniqueness below holds.
CREATE TABLE deliveries (
  id                      uuid NOT NULL,
  notification_id         text NOT NULL,
  notification_created_at timestamptz NOT NULL,
  service_id              bigint NOT NULL,
  user_id                 text NOT NULL,
  channel                 text NOT NULL,
  target                  text NOT NULL,
  lane                    text NOT NULL,
  state                   text NOT NULL CONSTRAINT deliveries_state_check CHECK (state IN
                          ('pending', 'retrying', 'sending', 'sent', 'delivered', 'failed',
                           'target_invalid', 'dead', 'canceled')),
  attempts                integer NOT NULL DEFAULT 0,
  max_attempts            integer NOT NULL,
  run_at                  timestamptz NOT NULL,
  lease_owner             uuid,
  lease_expires_at        timestamptz,
  last_error              text,
  provider_message_id     text,
  created_at              timestamptz NOT NULL DEFAULT now(),
  updated_at              timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT deliveries_pkey PRIMARY KEY (id, notification_created_at),
  CONSTRAINT deliveries_target_key UNIQUE (notification_id, user_id, channel, target, notification_created_at)
) PARTITION BY RANGE (notification_created_at);
CREATE INDEX deliveries_claimable_idx ON deliveries (lane, run_at) WHERE state IN ('pending', 'retrying');
CREATE INDEX deliveries_leased_idx ON deliveries (lease_expires_at) WHERE state = 'sending';
CREATE INDEX deliveries_dead_idx ON deliveries (service_id, updated_at) WHERE state = 'dead';

-- The in-app copy of a notification for one user: what the inbox (query role) lists.
CREATE TABLE inbox_items (
  notification_id         text NOT NULL,
  notification_created_at timestamptz NOT NULL,
  user_id                 text NOT NULL,
  category                text NOT NULL,
  read_at                 timestamptz,
  seen_at                 timestamptz,
  archived_at             timestamptz,
  CONSTRAINT inbox_items_pkey PRIMARY KEY (user_id, notification_id, notification_created_at)
) PARTITION BY RANGE (notification_created_at);
CREATE INDEX inbox_items_user_recent_idx ON inbox_items (user_id, notification_created_at DESC);

-- Append-only history: every state change of every delivery.
CREATE TABLE delivery_events (
  delivery_id     uuid NOT NULL,
  notification_id text NOT NULL,
  channel         text NOT NULL,
  state           text NOT NULL,
  attempt         integer NOT NULL,
  detail          text,
  created_at      timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (created_at);
CREATE INDEX delivery_events_delivery_idx ON delivery_events (delivery_id);
CREATE INDEX delivery_events_notification_idx ON delivery_events (notification_id);
