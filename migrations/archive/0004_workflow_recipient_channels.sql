-- Archived recipients keep the channels a workflow step released them for (service store
-- migration 0020, docs/workflows.md): the copy populates archive rows by column name.
ALTER TABLE recipients ADD COLUMN channels text[];
