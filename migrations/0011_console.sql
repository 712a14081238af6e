-- The console's people, their sessions, and the audit log of what people and admin keys did
-- (docs/console.md, docs/decisions/0007-console-server-rendered.md).

-- A person who signs in to the console. The email is stored lower-cased; the password as
-- scrypt parameters, salt and hash (never the password). Failed sign-ins are counted so an
-- account locks after repeated failures, until locked_until.
CREATE TABLE console_users (
  id              bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT console_users_pkey PRIMARY KEY,
  email           text NOT NULL CONSTRAINT console_users_email_key UNIQUE,
  name            text NOT NULL DEFAULT '',
  role            text NOT NULL CONSTRAINT console_users_role_check
                  CHECK (role IN ('admin', 'operator', 'support', 'viewer')),
  password_hash   text NOT NULL,
  disabled        boolean NOT NULL DEFAULT false,
  failed_logins   integer NOT NULL DEFAULT 0,
  locked_until    timestamptz,
  last_login_at   timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);

-- A signed-in browser. The cookie holds a random id; only its SHA-256 is stored, so a copy of
-- this table signs nobody in. The CSRF token is the session's own.
CREATE TABLE console_sessions (
  id_hash         bytea CONSTRAINT console_sessions_pkey PRIMARY KEY,
  user_id         bigint NOT NULL CONSTRAINT console_sessions_user_fkey
                  REFERENCES console_users (id) ON DELETE CASCADE,
  csrf_token      text NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  last_seen_at    timestamptz NOT NULL DEFAULT now(),
  expires_at      timestamptz NOT NULL,
  client_address  text,
  user_agent      text
);
CREATE INDEX console_sessions_user_idx ON console_sessions (user_id);

-- Who did what, when, from where, with the state before and after. Written by the console for
-- every change a person makes and by the api role for every admin call. Append-only.
CREATE TABLE audit_log (
  id              bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT audit_log_pkey PRIMARY KEY,
  at              timestamptz NOT NULL DEFAULT now(),
  actor_kind      text NOT NULL CONSTRAINT audit_log_actor_kind_check
                  CHECK (actor_kind IN ('console_user', 'api_key', 'system')),
  actor_id        text NOT NULL,
  actor_name      text NOT NULL DEFAULT '',
  action          text NOT NULL,
  target          text NOT NULL DEFAULT '',
  before          jsonb,
  after           jsonb,
  client_address  text
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_kind, actor_id, at DESC);

-- Append-only: rows are never changed, and removed only by retention, which says so for its
-- own transaction (SET LOCAL herald.audit_retention = 'on').
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND current_setting('herald.audit_retention', true) = 'on' THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
