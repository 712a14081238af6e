-- delivery_events loses its index on notification_id. Its one reader, a notification's
-- timeline, now finds the events through the notification's deliveries (the delivery_id
-- index). Every event (three per sent delivery) paid an entry in it. Herald's own ids are
-- ordered by time, so the entry was cheap to insert and deduplicated well (about 26 bytes per
-- delivery); ids callers supply may be random, and inserting those in random order cost about
-- 4 µs of PostgreSQL CPU per event where they were measured.
DROP INDEX delivery_events_notification_idx;
