-- Least-privilege API keys, the history of users' contact targets, and user-token revocation
-- (docs/security.md, docs/decisions/0005-trust-boundaries.md).

-- A key's coarse roles become the permissions it was granted. The old roles map to what they
-- were meant for, not to everything they happened to allow: `sender` keys keep sending and
-- reading their own notifications but lose writing users, devices and preferences, acting in
-- inboxes and issuing user tokens (grant users:write, inbox or user_tokens to a new key for
-- those); `admin` keeps the service's settings, categories, replay and templates.
ALTER TABLE api_keys RENAME COLUMN roles TO permissions;
UPDATE api_keys k SET permissions = (
  SELECT coalesce(array_agg(DISTINCT p ORDER BY p), '{}')
    FROM unnest(k.permissions) AS r(role),
         unnest(CASE r.role
                  WHEN 'sender' THEN ARRAY['send', 'notifications:read']
                  WHEN 'admin' THEN ARRAY['admin', 'templates']
                  WHEN 'support' THEN ARRAY['support']
                  ELSE ARRAY[]::text[]
                END) AS p
);
ALTER TABLE api_keys ALTER COLUMN permissions SET DEFAULT '{send,notifications:read}';
ALTER TABLE api_keys ADD CONSTRAINT api_keys_permissions_check CHECK (
  permissions <@ ARRAY['send', 'notifications:read', 'users:read', 'users:write', 'templates', 'inbox',
                       'user_tokens', 'support', 'admin']::text[]
);

-- Who changed a user's contact targets, when, and to what (masked: enough to recognise an
-- address, never a whole one or a URL's credential). Kept when the user is deleted: it is the
-- record of who pointed a user's messages where.
CREATE TABLE contact_changes (
  id          bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT contact_changes_pkey PRIMARY KEY,
  user_id     text NOT NULL,
  target      text NOT NULL CONSTRAINT contact_changes_target_check
              CHECK (target IN ('email', 'phone', 'webhook_url', 'chat_webhook_url', 'device', 'user')),
  action      text NOT NULL CONSTRAINT contact_changes_action_check
              CHECK (action IN ('set', 'cleared', 'deleted')),
  value       text,
  key_id      bigint NOT NULL CONSTRAINT contact_changes_key_fkey REFERENCES api_keys (id),
  service_id  bigint NOT NULL CONSTRAINT contact_changes_service_fkey REFERENCES services (id),
  changed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX contact_changes_user_idx ON contact_changes (user_id, changed_at DESC, id DESC);

-- A user's tokens issued before revoked_before are refused (a "sign out everywhere"); tokens of
-- a revoked key are refused through api_keys.revoked_at (the key id travels in the token).
CREATE TABLE user_token_revocations (
  user_id         text NOT NULL CONSTRAINT user_token_revocations_pkey PRIMARY KEY,
  revoked_before  timestamptz NOT NULL
);
