-- The user's inbox (query role): when an item entered the inbox (the list's order: a scheduled
-- notification appears on top when it arrives, not at its creation time), deletions by the user,
-- and the per-user event stream that realtime clients follow and replay with Last-Event-ID.
-- See docs/inbox.md.

ALTER TABLE inbox_items ADD COLUMN created_at timestamptz;
UPDATE inbox_items SET created_at = notification_created_at;
ALTER TABLE inbox_items ALTER COLUMN created_at SET DEFAULT now();
ALTER TABLE inbox_items ALTER COLUMN created_at SET NOT NULL;
ALTER TABLE inbox_items ADD COLUMN deleted_at timestamptz;
DROP INDEX inbox_items_user_recent_idx;
-- The list: newest first, keyset (created_at, notification_id) so pages are stable under inserts.
CREATE INDEX inbox_items_user_list_idx ON inbox_items (user_id, created_at DESC, notification_id DESC);
-- The unread and unseen counts read only the user's unread rows, from the index alone.
CREATE INDEX inbox_items_user_unread_idx ON inbox_items (user_id, notification_created_at) INCLUDE (seen_at)
  WHERE read_at IS NULL AND archived_at IS NULL AND deleted_at IS NULL;

-- The last event number of each user's stream. Every writer of a user's events bumps this row
-- and holds its lock until commit, so a user's event numbers are assigned in commit order: a
-- reader that has seen number n has seen every event up to n (no gaps appear later).
CREATE TABLE inbox_streams (
  user_id text NOT NULL CONSTRAINT inbox_streams_pkey PRIMARY KEY,
  seq     bigint NOT NULL
);

-- What happened in one user's inbox, numbered per user (the SSE event id).
CREATE TABLE inbox_events (
  user_id                 text NOT NULL,
  seq                     bigint NOT NULL,
  kind                    text NOT NULL CONSTRAINT inbox_events_kind_check CHECK (kind IN
                          ('created', 'updated', 'read', 'unread', 'seen', 'archived', 'unarchived',
                           'deleted', 'read_all', 'seen_all')),
  notification_id         text,
  notification_created_at timestamptz,
  created_at              timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT inbox_events_pkey PRIMARY KEY (user_id, seq, created_at)
) PARTITION BY RANGE (created_at);
