-- Templates of a calling service: a key, its category and default lane, and the number of the
-- version new notifications use. Versions are immutable: an edit inserts a new version, and a
-- notification records the version it was accepted with (notifications.template_version), so
-- it keeps rendering that version after later edits. See docs/templates.md.
CREATE TABLE templates (
  service_id      bigint NOT NULL CONSTRAINT templates_service_fkey REFERENCES services (id) ON DELETE CASCADE,
  key             text NOT NULL CONSTRAINT templates_key_check CHECK (key ~ '^[a-z0-9][a-z0-9_.-]{0,127}$'),
  category        text NOT NULL,
  lane            text NOT NULL CONSTRAINT templates_lane_check CHECK (lane IN ('transactional', 'bulk')),
  current_version integer NOT NULL CONSTRAINT templates_current_version_check CHECK (current_version >= 1),
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT templates_pkey PRIMARY KEY (service_id, key)
);

CREATE TABLE template_versions (
  service_id      bigint NOT NULL,
  key             text NOT NULL,
  version         integer NOT NULL CONSTRAINT template_versions_version_check CHECK (version >= 1),
  -- Declared parameters: {"<name>": "string" | "number" | "integer" | "boolean" | "date"}.
  params          jsonb NOT NULL,
  fallback_locale text NOT NULL,
  -- {"<channel>": {"<locale>": {"<part>": "<liquid text>"}}}; every channel has fallback_locale.
  variants        jsonb NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT template_versions_pkey PRIMARY KEY (service_id, key, version),
  CONSTRAINT template_versions_template_fkey FOREIGN KEY (service_id, key)
    REFERENCES templates (service_id, key) ON DELETE CASCADE
);

-- The template version a notification was accepted with (notifications.template holds its key
-- and notifications.params its parameters); NULL for inline content.
ALTER TABLE notifications ADD COLUMN template_version integer;
