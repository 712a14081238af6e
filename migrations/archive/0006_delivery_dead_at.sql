-- Archived deliveries keep when they went dead (service store migration 0030): the copy
-- populates archive rows by column name.
ALTER TABLE deliveries ADD COLUMN dead_at timestamptz;
