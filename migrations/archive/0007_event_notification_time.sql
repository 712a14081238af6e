-- Archived delivery events keep their notification's creation time (service store migration
-- 0032): the copy populates archive rows by column name.
ALTER TABLE delivery_events ADD COLUMN notification_created_at timestamptz;
