-- Archived notifications keep the trace context they were accepted with (service store
-- migration 0015): the copy populates archive rows by column name, so without these columns the
-- values would be dropped silently.
ALTER TABLE notifications
  ADD COLUMN trace_id text,
  ADD COLUMN trace_span_id text,
  ADD COLUMN trace_flags smallint;
