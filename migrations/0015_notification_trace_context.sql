-- The W3C trace context of the request that accepted a notification (docs/tracing.md), so every
-- provider call of its deliveries carries the same trace id in a `traceparent` header.
-- trace_id: 32 lower-case hex digits, never all zero; the caller's when its `traceparent` was
-- valid, else a new one. trace_span_id: the span delivery attempts continue from (Herald's span
-- of the request when tracing is on, else the caller's span, else a new id). trace_flags: the
-- W3C trace-flags byte (bit 0: sampled).
-- Rows accepted before this migration have NULL here; the worker then uses the notification id's
-- UUID as the trace id (src/domain/trace-context.ts). Nullable with no default: adding the columns
-- rewrites no partition.
ALTER TABLE notifications
  ADD COLUMN trace_id text,
  ADD COLUMN trace_span_id text,
  ADD COLUMN trace_flags smallint;
