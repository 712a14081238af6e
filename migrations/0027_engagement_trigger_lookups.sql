-- The delivery events trigger of 0019 joined deliveries on (id, notification_id). Its transition
-- table has no statistics, and the planner read the whole deliveries partition for every
-- statement (a hash join over a sequential scan, or a bitmap AND with the notification's every
-- delivery): a fan-out batch of 1,000 deliveries read all of the month's deliveries, so a
-- large send cost more per recipient the further it got. Each event now finds its delivery by
-- the primary key's id column (OFFSET 0 keeps the notification check out of the index scan),
-- a constant few buffers per event however large the month.
CREATE OR REPLACE FUNCTION engagement_count_delivery_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO engagement_counts AS c (day, service_id, template, channel, category, metric, reason, shard, count)
  SELECT (e.created_at AT TIME ZONE 'UTC')::date, d.service_id, coalesce(n.template, ''), e.channel,
         coalesce(d.category, n.category), engagement_delivery_metric(e.state),
         engagement_delivery_reason(e.state, e.detail), pg_backend_pid() % 8, count(*)
    FROM engagement_new_delivery_events e
    CROSS JOIN LATERAL (SELECT d.service_id, d.category, d.notification_id, d.notification_created_at
                          FROM deliveries d WHERE d.id = e.delivery_id OFFSET 0) d
    JOIN notifications n ON n.id = d.notification_id AND n.created_at = d.notification_created_at
   WHERE engagement_delivery_metric(e.state) IS NOT NULL AND d.notification_id = e.notification_id
   GROUP BY 1, 2, 3, 4, 5, 6, 7
   ORDER BY 2, 1, 3, 4, 5, 6, 7
  ON CONFLICT (service_id, day, template, channel, category, metric, reason, shard)
  DO UPDATE SET count = c.count + excluded.count;
  RETURN NULL;
END
$$;
