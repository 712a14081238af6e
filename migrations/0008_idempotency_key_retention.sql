-- Retention (docs/retention.md) deletes caller idempotency keys older than
-- IDEMPOTENCY_KEY_RETENTION_DAYS in bounded batches; this index finds the oldest without
-- reading the whole table.
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
