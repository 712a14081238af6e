-- Template imports, recorded so each can be undone in one step (docs/templates.md, "Undoing an
-- import").

-- A template withdrawn by undoing the import that created it: no longer current (reads,
-- sends, previews, exports and listings do not see it), but the row and its versions stay, so
-- notifications accepted with it keep rendering their version, and saving the key again
-- continues its version numbers instead of reusing one those notifications name.
ALTER TABLE templates ADD COLUMN withdrawn_at timestamptz;

-- One row per applied import, and per undo (an undo is recorded the same way, so it can
-- itself be undone). `summary` is the import's report without its per-template lists.
CREATE TABLE template_imports (
  id          bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT template_imports_pkey PRIMARY KEY,
  service_id  bigint NOT NULL CONSTRAINT template_imports_service_fkey REFERENCES services (id) ON DELETE CASCADE,
  -- The API key that imported; NULL when the import did not come through an API key.
  key_id      bigint CONSTRAINT template_imports_key_fkey REFERENCES api_keys (id),
  kind        text NOT NULL CONSTRAINT template_imports_kind_check CHECK (kind IN ('import', 'undo')),
  undoes      bigint CONSTRAINT template_imports_undoes_fkey REFERENCES template_imports (id),
  undone_by   bigint CONSTRAINT template_imports_undone_by_fkey REFERENCES template_imports (id),
  summary     jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT template_imports_undoes_check CHECK ((kind = 'undo') = (undoes IS NOT NULL))
);
CREATE INDEX template_imports_service_idx ON template_imports (service_id, id DESC);

-- Per template the import changed: its state before and after. A state is the current
-- version with the category and lane (which change in place, without a new version); NULL
-- when the template was not current (it did not exist, or was withdrawn).
CREATE TABLE template_import_templates (
  import_id       bigint NOT NULL CONSTRAINT template_import_templates_import_fkey
                  REFERENCES template_imports (id) ON DELETE CASCADE,
  key             text NOT NULL,
  before_version  integer,
  before_category text,
  before_lane     text,
  after_version   integer,
  after_category  text,
  after_lane      text,
  CONSTRAINT template_import_templates_pkey PRIMARY KEY (import_id, key),
  CONSTRAINT template_import_templates_before_check CHECK (
    (before_version IS NULL) = (before_category IS NULL) AND (before_version IS NULL) = (before_lane IS NULL)
  ),
  CONSTRAINT template_import_templates_after_check CHECK (
    (after_version IS NULL) = (after_category IS NULL) AND (after_version IS NULL) = (after_lane IS NULL)
  )
);
