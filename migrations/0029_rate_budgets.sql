-- Rate budgets for bulk sends, and lane settings changed at runtime
-- (docs/budgets.md, docs/decisions/0012-bulk-budgets.md).
--
-- A rate budget belongs to one calling service; a bulk notification names one (or falls under
-- the service's budget named "default"). The fan-out stage creates the deliveries of a
-- budget's recipients only while its current one-second window has room: window_start is the
-- database second the window began, window_used the deliveries created in it. The row is locked
-- by the fan-out transaction that takes from it, so the count holds across worker processes.
CREATE TABLE rate_budgets (
  id           bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT rate_budgets_pkey PRIMARY KEY,
  service_id   bigint NOT NULL CONSTRAINT rate_budgets_service_fkey REFERENCES services (id) ON DELETE CASCADE,
  name         text NOT NULL CONSTRAINT rate_budgets_name_check CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
  per_second   integer NOT NULL CONSTRAINT rate_budgets_per_second_check CHECK (per_second BETWEEN 1 AND 100000),
  window_start timestamptz NOT NULL DEFAULT '-infinity',
  window_used  integer NOT NULL DEFAULT 0,
  updated_at   timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT rate_budgets_service_name_key UNIQUE (service_id, name)
);

-- The budget a recipient's deliveries are paced by (null: none), set at acceptance. No foreign
-- key: deleting a budget sets its pending recipients' budget_id to null itself (through the
-- index below) instead of a cascade scanning every recipient.
ALTER TABLE recipients ADD COLUMN budget_id bigint;
ALTER TABLE topic_sends ADD COLUMN budget_id bigint;
-- The fan-out claims a budget's due recipients on this index; the lanes' plain claim skips
-- budgeted rows with a filter on recipients_pending_idx.
CREATE INDEX recipients_budget_pending_idx ON recipients (budget_id, send_at)
  WHERE budget_id IS NOT NULL AND state IN ('pending', 'held');

-- Deployment-wide settings changed at runtime (`herald settings`); null: the configured value.
-- One row; a change sends the herald_settings NOTIFY 'lanes', which running workers reload on.
CREATE TABLE lane_settings (
  id                           boolean PRIMARY KEY DEFAULT true CONSTRAINT lane_settings_one_row CHECK (id),
  transactional_reserved_share double precision
                               CONSTRAINT lane_settings_share_check CHECK (transactional_reserved_share BETWEEN 0 AND 0.9),
  claim_batch_size             integer CONSTRAINT lane_settings_batch_check CHECK (claim_batch_size BETWEEN 1 AND 5000),
  updated_at                   timestamptz NOT NULL DEFAULT now()
);

-- The `budgets` permission: manage the service's rate budgets.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_permissions_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_permissions_check CHECK (
  permissions <@ ARRAY['send', 'notifications:read', 'users:read', 'users:write', 'templates', 'inbox',
                       'user_tokens', 'support', 'admin', 'budgets']::text[]
);
