-- Delivery events carry their notification's creation time, the partition key of deliveries and
-- notifications. The engagement trigger (and the callback trigger) looked up each event's
-- delivery by id alone and its notification by id, which probes an index of every month's
-- partition (a dozen or more with a year's retention) besides the one that holds the row; with
-- the time each lookup reads one partition. Events written before this migration, or by a
-- process of an earlier version while an upgrade rolls out, have none: the triggers look those
-- up by id alone, as before.
ALTER TABLE delivery_events ADD COLUMN notification_created_at timestamptz;

CREATE OR REPLACE FUNCTION engagement_count_delivery_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO engagement_counts AS c (day, service_id, template, channel, category, metric, reason, shard, count)
  SELECT (e.created_at AT TIME ZONE 'UTC')::date, x.service_id, coalesce(x.template, ''), e.channel, x.category,
         engagement_delivery_metric(e.state), engagement_delivery_reason(e.state, e.detail), pg_backend_pid() % 8, count(*)
    FROM engagement_new_delivery_events e
    CROSS JOIN LATERAL (SELECT d.service_id, coalesce(d.category, n.category) AS category, n.template
                          FROM deliveries d
                          JOIN notifications n ON n.id = d.notification_id AND n.created_at = d.notification_created_at
                         WHERE d.id = e.delivery_id AND d.notification_created_at = e.notification_created_at
                           AND n.id = e.notification_id AND n.created_at = e.notification_created_at
                        UNION ALL
                        SELECT d.service_id, coalesce(d.category, n.category), n.template
                          FROM deliveries d
                          JOIN notifications n ON n.id = d.notification_id AND n.created_at = d.notification_created_at
                         WHERE e.notification_created_at IS NULL AND d.id = e.delivery_id
                           AND d.notification_id = e.notification_id
                        OFFSET 0) x
   WHERE engagement_delivery_metric(e.state) IS NOT NULL
   GROUP BY 1, 2, 3, 4, 5, 6, 7
   ORDER BY 2, 1, 3, 4, 5, 6, 7
  ON CONFLICT (service_id, day, template, channel, category, metric, reason, shard)
  DO UPDATE SET count = c.count + excluded.count;
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION callback_delivery_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM callback_subscriptions WHERE enabled) THEN
    RETURN NULL;
  END IF;
  PERFORM enqueue_callbacks(ARRAY(
    SELECT ROW(t.event_type, e.notification_id, e.delivery_id, d.user_id, e.channel, e.state,
               CASE WHEN t.event_type IN ('delivery.sent', 'delivery.delivered') THEN NULL ELSE left(e.detail, 500) END,
               e.created_at)::callback_event
      FROM callback_new_delivery_events e
      CROSS JOIN LATERAL (SELECT CASE e.state
               WHEN 'sent' THEN 'delivery.sent'
               WHEN 'delivered' THEN 'delivery.delivered'
               WHEN 'failed' THEN 'delivery.failed'
               WHEN 'target_invalid' THEN 'delivery.failed'
               WHEN 'dead' THEN 'delivery.dead'
               WHEN 'suppressed' THEN 'delivery.suppressed'
               WHEN 'bounced' THEN CASE WHEN e.channel = 'email' THEN 'email.bounced' ELSE 'delivery.failed' END
               WHEN 'complained' THEN 'email.complained'
             END AS event_type) t
      LEFT JOIN LATERAL (SELECT user_id FROM deliveries
                          WHERE id = e.delivery_id AND notification_created_at = e.notification_created_at
                         UNION ALL
                         SELECT user_id FROM deliveries
                          WHERE e.notification_created_at IS NULL AND id = e.delivery_id
                         LIMIT 1) d ON true
     WHERE t.event_type IS NOT NULL
       AND EXISTS (SELECT 1 FROM callback_subscriptions s
                    WHERE s.enabled AND s.service_name = split_part(e.notification_id, '#', 1)
                      AND t.event_type = ANY (s.event_types))
     ORDER BY e.created_at));
  RETURN NULL;
END
$$;
