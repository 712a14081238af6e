-- Status callbacks for engagement (docs/callbacks.md, docs/tracking.md): an email's open and
-- click, and a click on an in-app item, queued by a statement trigger on engagement_events in the
-- transaction that records them, like the other status callbacks (migration 0018). An event is
-- stored once, so its callback is queued once. Reads are not repeated here: the inbox_events
-- trigger already queues inbox.read. Opens and clicks of other channels have no event type.
-- A prefetch open (a mail proxy's, docs/tracking.md) is sent with reason 'prefetch'. The clicked
-- link's address is not sent: the receiver learns which message, not where the user went.
CREATE FUNCTION callback_engagement_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM callback_subscriptions WHERE enabled) THEN
    RETURN NULL;
  END IF;
  PERFORM enqueue_callbacks(ARRAY(
    SELECT ROW(t.event_type, e.notification_id, e.delivery_id, e.user_id, e.channel, e.kind,
               CASE WHEN e.prefetch THEN 'prefetch' END, e.occurred_at)::callback_event
      FROM callback_new_engagement_events e
      CROSS JOIN LATERAL (SELECT CASE
               WHEN e.channel = 'email' AND e.kind = 'opened' THEN 'email.opened'
               WHEN e.channel = 'email' AND e.kind = 'clicked' THEN 'email.clicked'
               WHEN e.channel = 'in_app' AND e.kind = 'clicked' THEN 'inbox.clicked'
             END AS event_type) t
     WHERE t.event_type IS NOT NULL
     ORDER BY e.received_at, e.delivery_id, e.kind, e.link_index));
  RETURN NULL;
END
$$;

CREATE TRIGGER engagement_events_callbacks AFTER INSERT ON engagement_events
  REFERENCING NEW TABLE AS callback_new_engagement_events FOR EACH STATEMENT
  EXECUTE FUNCTION callback_engagement_events();
