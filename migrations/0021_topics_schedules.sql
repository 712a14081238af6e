-- Topics and recurring schedules (docs/topics.md).
--
-- A topic belongs to one calling service: its key is unique within the service, and another
-- service can neither send to it nor read or change it. Subscribers are users; a user may opt
-- out of a topic (topic_opt_outs), which the fan-out honours without touching the subscription.

CREATE TABLE topics (
  id          bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT topics_pkey PRIMARY KEY,
  service_id  bigint NOT NULL CONSTRAINT topics_service_fkey REFERENCES services (id) ON DELETE CASCADE,
  key         text NOT NULL CONSTRAINT topics_key_check CHECK (key ~ '^[a-z0-9][a-z0-9_.:-]{0,127}$'),
  name        text CONSTRAINT topics_name_check CHECK (length(name) <= 200),
  -- Kept by the subscriber routes in the same transaction as the rows they add or remove.
  subscribers bigint NOT NULL DEFAULT 0,
  created_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT topics_service_key_key UNIQUE (service_id, key)
);

CREATE TABLE topic_subscribers (
  topic_id   bigint NOT NULL CONSTRAINT topic_subscribers_topic_fkey REFERENCES topics (id) ON DELETE CASCADE,
  user_id    text NOT NULL CONSTRAINT topic_subscribers_user_fkey REFERENCES users (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- The fan-out pages through a topic's subscribers in user_id order on this key.
  CONSTRAINT topic_subscribers_pkey PRIMARY KEY (topic_id, user_id)
);
CREATE INDEX topic_subscribers_user_idx ON topic_subscribers (user_id);

CREATE TABLE topic_opt_outs (
  topic_id   bigint NOT NULL CONSTRAINT topic_opt_outs_topic_fkey REFERENCES topics (id) ON DELETE CASCADE,
  user_id    text NOT NULL CONSTRAINT topic_opt_outs_user_fkey REFERENCES users (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT topic_opt_outs_pkey PRIMARY KEY (topic_id, user_id)
);
CREATE INDEX topic_opt_outs_user_idx ON topic_opt_outs (user_id);

-- A notification sent to a topic, until the worker has expanded its subscribers into
-- recipients rows. cursor_user_id is the last subscriber expanded, committed with the
-- recipients it covers, so a worker killed mid-way resumes after it. The row is deleted when
-- the expansion is done.
CREATE TABLE topic_sends (
  notification_id         text NOT NULL,
  notification_created_at timestamptz NOT NULL,
  topic_id                bigint NOT NULL CONSTRAINT topic_sends_topic_fkey REFERENCES topics (id) ON DELETE CASCADE,
  lane                    text NOT NULL,
  send_at                 timestamptz NOT NULL,
  -- Only subscribers in this time zone (an occurrence of a recurring schedule); null: all.
  time_zone               text,
  cursor_user_id          text,
  expanded                bigint NOT NULL DEFAULT 0,
  CONSTRAINT topic_sends_pkey PRIMARY KEY (notification_id, notification_created_at)
);
CREATE INDEX topic_sends_due_idx ON topic_sends (send_at);

-- Recurring schedules: a cron expression evaluated in each recipient's time zone.
CREATE TABLE schedules (
  id          uuid NOT NULL CONSTRAINT schedules_pkey PRIMARY KEY,
  service_id  bigint NOT NULL CONSTRAINT schedules_service_fkey REFERENCES services (id) ON DELETE CASCADE,
  cron        text NOT NULL,
  -- The notification body each occurrence sends (recipients or topic, channels, content or template).
  request     jsonb NOT NULL,
  topic_id    bigint CONSTRAINT schedules_topic_fkey REFERENCES topics (id) ON DELETE CASCADE,
  -- Set: every recipient at this zone's times; null: each recipient at their own users.time_zone.
  time_zone   text,
  state       text NOT NULL CONSTRAINT schedules_state_check CHECK (state IN ('active', 'paused')),
  -- When the recipients' time zones were last read into schedule_runs (refreshed hourly as it fires).
  zones_checked_at timestamptz NOT NULL DEFAULT now(),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX schedules_service_idx ON schedules (service_id, id);

-- The next occurrence of a schedule in one time zone: the scheduler claims due rows with
-- SKIP LOCKED and, in the same transaction, creates the occurrence's notification and moves
-- next_run_at on.
CREATE TABLE schedule_runs (
  schedule_id uuid NOT NULL CONSTRAINT schedule_runs_schedule_fkey REFERENCES schedules (id) ON DELETE CASCADE,
  time_zone   text NOT NULL,
  next_run_at timestamptz NOT NULL,
  last_run_at timestamptz,
  CONSTRAINT schedule_runs_pkey PRIMARY KEY (schedule_id, time_zone)
);
CREATE INDEX schedule_runs_due_idx ON schedule_runs (next_run_at);
