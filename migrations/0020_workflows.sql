-- Multi-step sends (docs/workflows.md). A notification with steps gets one workflow run per
-- user; its recipient row waits in state 'held' until the run releases it to the fan-out stage
-- (state 'pending'), possibly restricted to some channels (recipients.channels, NULL: the
-- notification's channels). Every wait is a row with a due time: no process keeps a timer.

ALTER TABLE users ADD COLUMN IF NOT EXISTS attributes jsonb;

-- A template version may carry steps, used by requests naming it that give none themselves.
ALTER TABLE template_versions ADD COLUMN steps jsonb;

ALTER TABLE recipients DROP CONSTRAINT recipients_state_check;
ALTER TABLE recipients ADD CONSTRAINT recipients_state_check
  CHECK (state IN ('pending', 'fanned_out', 'canceled', 'held'));
ALTER TABLE recipients ADD COLUMN channels text[];

-- One row per (notification, user) with steps. `step` is the index of the step to run next;
-- `phase` says whether that step has begun ('waiting': its wait ends at due_at).
CREATE TABLE workflow_runs (
  notification_id         text NOT NULL,
  notification_created_at timestamptz NOT NULL,
  user_id                 text NOT NULL,
  service_id              bigint NOT NULL,
  steps                   jsonb NOT NULL,
  step                    integer NOT NULL DEFAULT 0,
  phase                   text NOT NULL DEFAULT 'start' CHECK (phase IN ('start', 'waiting')),
  state                   text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done', 'canceled')),
  due_at                  timestamptz NOT NULL,
  last_outcome            text,
  sent_version            bigint,
  wait_until              timestamptz,
  sent_at                 timestamptz,
  digest_id               uuid,
  updated_at              timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT workflow_runs_pkey PRIMARY KEY (notification_id, user_id, notification_created_at)
);
CREATE INDEX workflow_runs_due_idx ON workflow_runs (due_at) WHERE state = 'running';
-- Finished runs are deleted a week after they finished (src/pipeline/workflow-stage.ts).
CREATE INDEX workflow_runs_finished_idx ON workflow_runs (updated_at) WHERE state <> 'running';

-- One open digest per (service, user, key): arrivals join it; the arrival that fills it
-- (max_items) makes it 'full', out of the open key. Whoever claims it once it is due (or full)
-- closes it and writes its one summary in the same transaction. A later arrival opens the next.
CREATE TABLE digests (
  id                      uuid NOT NULL,
  service_id              bigint NOT NULL,
  user_id                 text NOT NULL,
  digest_key              text NOT NULL,
  state                   text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'full', 'sent')),
  opened_at               timestamptz NOT NULL,
  closes_at               timestamptz NOT NULL,
  max_items               integer NOT NULL,
  item_count              integer NOT NULL DEFAULT 0,
  summary_id              text,
  summary_created_at      timestamptz,
  CONSTRAINT digests_pkey PRIMARY KEY (id, user_id)
);
CREATE UNIQUE INDEX digests_open_key ON digests (user_id, service_id, digest_key) WHERE state = 'open';
CREATE INDEX digests_due_idx ON digests (closes_at) WHERE state IN ('open', 'full');
CREATE INDEX digests_sent_idx ON digests (summary_created_at) WHERE state = 'sent';

CREATE TABLE digest_items (
  digest_id               uuid NOT NULL,
  user_id                 text NOT NULL,
  notification_id         text NOT NULL,
  notification_created_at timestamptz NOT NULL,
  params                  jsonb,
  added_at                timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT digest_items_pkey PRIMARY KEY (digest_id, user_id, notification_id)
);
