-- Support lookup (docs/support.md): one user's notifications in a time range, newest first.
-- recipients is keyed (notification_id, user_id, notification_created_at), which cannot find a
-- user's rows without scanning every partition in the range; this index reads one user's rows
-- in page order. The keyset's tie-break on notification_id is an incremental sort of the rows
-- that share a timestamp, so the id is left out to keep the index small.
-- Building it locks writes to recipients while each partition is indexed (CONCURRENTLY is not
-- possible on a partitioned table inside a migration's transaction).
CREATE INDEX recipients_user_created_idx ON recipients (user_id, notification_created_at DESC);
