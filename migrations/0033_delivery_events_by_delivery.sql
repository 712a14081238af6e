-- delivery_events loses its index on notification_id. Its one reader, a notification's
-- timeline, now finds the events through the notification's deliveries (the delivery_id
-- index); every event written paid an insert into a text index in random order, about 4–5 µs
-- of PostgreSQL CPU each (three events per sent delivery) and the index's pages besides.
DROP INDEX delivery_events_notification_idx;
