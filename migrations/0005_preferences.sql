-- Preferences and limits: per-service category settings (critical, marketing, per-channel
-- defaults, frequency caps), per-user opt-in/opt-out, the user's no-marketing switch and quiet
-- hours, used one-click unsubscribe tokens, the signing key for those tokens, and the final
-- delivery state 'suppressed'. See docs/preferences.md.

-- Category settings of one calling service. A category without a row: not critical, not
-- marketing, every channel opted in, no caps.
CREATE TABLE categories (
  service_id  bigint NOT NULL CONSTRAINT categories_service_fkey REFERENCES services (id) ON DELETE CASCADE,
  category    text NOT NULL,
  critical    boolean NOT NULL DEFAULT false,
  marketing   boolean NOT NULL DEFAULT false,
  -- {"<channel>": true|false}: whether a user with no preference of their own is opted in.
  defaults    jsonb NOT NULL DEFAULT '{}',
  -- {"<channel>": {"<lane>": {"limit": n, "per": "day"|"hour", "over": "suppress"|"defer"}}}
  caps        jsonb NOT NULL DEFAULT '{}',
  updated_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT categories_pkey PRIMARY KEY (service_id, category),
  CONSTRAINT categories_critical_marketing_check CHECK (NOT (critical AND marketing))
);

-- A user's opt-in (enabled) or opt-out per channel and category; '*' matches every channel or
-- category. The most specific row wins (see src/domain/preferences.ts).
CREATE TABLE preferences (
  user_id     text NOT NULL CONSTRAINT preferences_user_fkey REFERENCES users (id) ON DELETE CASCADE,
  channel     text NOT NULL CONSTRAINT preferences_channel_check CHECK (channel IN
              ('*', 'in_app', 'push', 'email', 'sms', 'webhook', 'chat')),
  category    text NOT NULL CONSTRAINT preferences_category_check CHECK (length(category) BETWEEN 1 AND 64),
  enabled     boolean NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT preferences_pkey PRIMARY KEY (user_id, channel, category)
);

ALTER TABLE users ADD COLUMN no_marketing boolean NOT NULL DEFAULT false;
-- Local wall-clock times in users.time_zone; both set or both null. start > end crosses midnight.
ALTER TABLE users ADD COLUMN quiet_start time;
ALTER TABLE users ADD COLUMN quiet_end time;
ALTER TABLE users ADD CONSTRAINT users_quiet_hours_check CHECK ((quiet_start IS NULL) = (quiet_end IS NULL));

-- One-click unsubscribe tokens that were used. A token is the signed delivery id (plus user,
-- channel, category), so nothing is stored per email sent; a row here makes it single-use.
CREATE TABLE unsubscribe_tokens (
  delivery_id uuid NOT NULL CONSTRAINT unsubscribe_tokens_pkey PRIMARY KEY,
  user_id     text NOT NULL,
  channel     text NOT NULL,
  category    text NOT NULL,
  used_at     timestamptz NOT NULL DEFAULT now()
);

-- Keys Herald generates for itself on first start when no setting provides one
-- (name 'unsubscribe': the HMAC key of unsubscribe tokens, unless UNSUBSCRIBE_SECRET is set).
CREATE TABLE signing_keys (
  name        text NOT NULL CONSTRAINT signing_keys_pkey PRIMARY KEY,
  secret      bytea NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- The category travels with the delivery: frequency caps count a user's deliveries per
-- category x channel x lane in a window of run_at.
ALTER TABLE deliveries ADD COLUMN category text;
CREATE INDEX deliveries_user_run_idx ON deliveries (user_id, run_at);

ALTER TABLE deliveries DROP CONSTRAINT deliveries_state_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_state_check CHECK (state IN
  ('pending', 'retrying', 'sending', 'sent', 'delivered', 'failed', 'target_invalid', 'dead',
   'canceled', 'bounced', 'suppressed'));
