-- Engagement: opens, clicks and reads of deliveries (email open pixel and click-through links,
-- opens and clicks reported by apps and the inbox), and the engagement figures per day,
-- service, template, channel and category. See docs/tracking.md.

-- One row per delivery, kind and (for clicks) link: a second report of the same thing inserts
-- nothing (ON CONFLICT DO NOTHING). A prefetched open (prefetch = true, e.g. a mail privacy
-- proxy fetching the pixel) is kept apart from a real one: both may be recorded once.
-- Partitioned by the notification's creation time like deliveries, so a delivery's events are in
-- its month's partition and leave with it (retention drops them, they are not archived).
CREATE TABLE engagement_events (
  delivery_id             uuid NOT NULL,
  notification_id         text NOT NULL,
  notification_created_at timestamptz NOT NULL,
  user_id                 text NOT NULL,
  service_id              bigint NOT NULL,
  channel                 text NOT NULL,
  kind                    text NOT NULL CONSTRAINT engagement_events_kind_check CHECK (kind IN ('opened', 'clicked', 'read')),
  -- clicked: the link's position in the rendered message (0-based); -1 for the app's own click
  -- and for opened and read.
  link_index              integer NOT NULL DEFAULT -1,
  link_url                text,
  template                text,
  category                text NOT NULL,
  prefetch                boolean NOT NULL DEFAULT false,
  user_agent              text,
  -- As reported (the app's time for app reports; the arrival time for the pixel and links).
  occurred_at             timestamptz NOT NULL,
  received_at             timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT engagement_events_pkey PRIMARY KEY (user_id, delivery_id, kind, link_index, prefetch, notification_created_at)
) PARTITION BY RANGE (notification_created_at);
CREATE INDEX engagement_events_received_idx ON engagement_events (received_at);

-- A month partition for every month deliveries already have (start-up creates the later ones for
-- both tables), so an event for an older delivery always has its partition.
DO $$
DECLARE p record;
BEGIN
  FOR p IN
    SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound
      FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'deliveries'::regclass AND c.relname ~ '^deliveries_p[0-9]{4}_[0-9]{2}$'
  LOOP
    EXECUTE format('CREATE TABLE %I PARTITION OF engagement_events %s',
                   'engagement_events' || substr(p.relname, length('deliveries') + 1), p.bound);
  END LOOP;
END
$$;

-- Tracking switched off for a service's category or template: no pixel, links left as written.
CREATE TABLE tracking_opt_outs (
  service_id  bigint NOT NULL CONSTRAINT tracking_opt_outs_service_fkey REFERENCES services (id) ON DELETE CASCADE,
  scope       text NOT NULL CONSTRAINT tracking_opt_outs_scope_check CHECK (scope IN ('category', 'template')),
  name        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT tracking_opt_outs_pkey PRIMARY KEY (service_id, scope, name)
);

-- The figures: one row per UTC day, service, template ('' for none), channel, category, metric
-- and reason, and shard (the writing backend's pid modulo 8, as overview_counts). Metrics: sent,
-- delivered, failed (reason: failed, target_invalid, dead, bounced), suppressed (reason: the
-- detail's prefix, e.g. preference or cap), opened, opened_prefetch, clicked, read.
-- Kept by the triggers below in the counted rows' transactions (docs/decisions/0008).
CREATE TABLE engagement_counts (
  day        date NOT NULL,
  service_id bigint NOT NULL,
  template   text NOT NULL,
  channel    text NOT NULL,
  category   text NOT NULL,
  metric     text NOT NULL,
  reason     text NOT NULL,
  shard      smallint NOT NULL,
  count      bigint NOT NULL,
  CONSTRAINT engagement_counts_pkey PRIMARY KEY (service_id, day, template, channel, category, metric, reason, shard)
);

-- The metric and reason a delivery event counts as, or NULL when it is not counted.
CREATE FUNCTION engagement_delivery_metric(state text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN state IN ('sent', 'delivered', 'suppressed') THEN state
              WHEN state IN ('failed', 'target_invalid', 'dead', 'bounced') THEN 'failed' END
$$;
CREATE FUNCTION engagement_delivery_reason(state text, detail text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN state = 'suppressed' THEN split_part(coalesce(detail, ''), ':', 1)
              WHEN state IN ('failed', 'target_invalid', 'dead', 'bounced') THEN state
              ELSE '' END
$$;
CREATE FUNCTION engagement_metric(kind text, prefetch boolean) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN kind = 'opened' AND prefetch THEN 'opened_prefetch' ELSE kind END
$$;

-- Delivery events carry neither service, template nor category: those come from the delivery
-- and its notification (primary-key lookups), for the counted states only.
CREATE FUNCTION engagement_count_delivery_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO engagement_counts AS c (day, service_id, template, channel, category, metric, reason, shard, count)
  SELECT (e.created_at AT TIME ZONE 'UTC')::date, d.service_id, coalesce(n.template, ''), e.channel,
         coalesce(d.category, n.category), engagement_delivery_metric(e.state),
         engagement_delivery_reason(e.state, e.detail), pg_backend_pid() % 8, count(*)
    FROM engagement_new_delivery_events e
    JOIN deliveries d ON d.id = e.delivery_id AND d.notification_id = e.notification_id
    JOIN notifications n ON n.id = d.notification_id AND n.created_at = d.notification_created_at
   WHERE engagement_delivery_metric(e.state) IS NOT NULL
   GROUP BY 1, 2, 3, 4, 5, 6, 7
   ORDER BY 2, 1, 3, 4, 5, 6, 7
  ON CONFLICT (service_id, day, template, channel, category, metric, reason, shard)
  DO UPDATE SET count = c.count + excluded.count;
  RETURN NULL;
END
$$;

CREATE FUNCTION engagement_count_engagement_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO engagement_counts AS c (day, service_id, template, channel, category, metric, reason, shard, count)
  SELECT (received_at AT TIME ZONE 'UTC')::date, service_id, coalesce(template, ''), channel, category,
         engagement_metric(kind, prefetch), '', pg_backend_pid() % 8, count(*)
    FROM engagement_new_events
   GROUP BY 1, 2, 3, 4, 5, 6
   ORDER BY 2, 1, 3, 4, 5, 6
  ON CONFLICT (service_id, day, template, channel, category, metric, reason, shard)
  DO UPDATE SET count = c.count + excluded.count;
  RETURN NULL;
END
$$;

CREATE TRIGGER delivery_events_engagement AFTER INSERT ON delivery_events
  REFERENCING NEW TABLE AS engagement_new_delivery_events
  FOR EACH STATEMENT EXECUTE FUNCTION engagement_count_delivery_events();
CREATE TRIGGER engagement_events_count AFTER INSERT ON engagement_events
  REFERENCING NEW TABLE AS engagement_new_events
  FOR EACH STATEMENT EXECUTE FUNCTION engagement_count_engagement_events();

-- What is already there is counted once, here (the triggers count from now on).
INSERT INTO engagement_counts (day, service_id, template, channel, category, metric, reason, shard, count)
SELECT (e.created_at AT TIME ZONE 'UTC')::date, d.service_id, coalesce(n.template, ''), e.channel,
       coalesce(d.category, n.category), engagement_delivery_metric(e.state),
       engagement_delivery_reason(e.state, e.detail), 0, count(*)
  FROM delivery_events e
  JOIN deliveries d ON d.id = e.delivery_id AND d.notification_id = e.notification_id
  JOIN notifications n ON n.id = d.notification_id AND n.created_at = d.notification_created_at
 WHERE engagement_delivery_metric(e.state) IS NOT NULL
 GROUP BY 1, 2, 3, 4, 5, 6, 7;

-- Reading one inbox item (the inbox's read action, whatever route) is the in-app delivery's
-- `read`: recorded once, from the inbox's own event stream. "Read all" is not counted.
CREATE FUNCTION engagement_record_inbox_reads() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO engagement_events (delivery_id, notification_id, notification_created_at, user_id, service_id,
                                 channel, kind, template, category, occurred_at, received_at)
  SELECT d.id, d.notification_id, d.notification_created_at, d.user_id, d.service_id, 'in_app', 'read',
         n.template, coalesce(d.category, n.category), e.created_at, e.created_at
    FROM engagement_new_inbox_events e
    JOIN deliveries d ON d.notification_id = e.notification_id AND d.user_id = e.user_id
                     AND d.channel = 'in_app' AND d.notification_created_at = e.notification_created_at
    JOIN notifications n ON n.id = d.notification_id AND n.created_at = d.notification_created_at
   WHERE e.kind = 'read'
   ORDER BY d.user_id, d.id
  ON CONFLICT DO NOTHING;
  RETURN NULL;
END
$$;
CREATE TRIGGER inbox_events_engagement AFTER INSERT ON inbox_events
  REFERENCING NEW TABLE AS engagement_new_inbox_events
  FOR EACH STATEMENT EXECUTE FUNCTION engagement_record_inbox_reads();
