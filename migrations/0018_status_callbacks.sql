-- Status callbacks (docs/callbacks.md): a calling service subscribes a URL to event types, and
-- every event of its notifications of those types is queued for that URL in the transaction that
-- records the event. Statement-level AFTER INSERT triggers on notifications, delivery_events and
-- inbox_events call enqueue_callbacks() with the statement's rows (transition tables), the way
-- the overview counts are kept (docs/decisions/0008-overview-counts.md): no writer can forget an
-- event, and a rolled-back insert queues nothing. Another table's trigger produces callbacks the
-- same way: build callback_event values and call enqueue_callbacks(ARRAY(...)).

CREATE TABLE callback_subscriptions (
  id                     uuid NOT NULL CONSTRAINT callback_subscriptions_pkey PRIMARY KEY,
  service_id             bigint NOT NULL,
  -- The service's name: notification ids start with it, so a trigger finds the subscriptions of
  -- an event without reading services.
  service_name           text NOT NULL,
  url                    text NOT NULL,
  event_types            text[] NOT NULL,
  enabled                boolean NOT NULL DEFAULT true,
  secret                 text NOT NULL,
  previous_secret        text,
  previous_secret_until  timestamptz,
  created_at             timestamptz NOT NULL DEFAULT now(),
  updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX callback_subscriptions_service_idx ON callback_subscriptions (service_name) WHERE enabled;
CREATE INDEX callback_subscriptions_owner_idx ON callback_subscriptions (service_id, created_at);

-- The outbox: one row per (subscription, event) until it is sent (then deleted) or given up on
-- (state 'dead', listed and replayable). order_key is the notification id: a message waits while
-- an earlier one (lower seq) of the same subscription and notification is still pending.
CREATE TABLE callback_messages (
  id               uuid NOT NULL CONSTRAINT callback_messages_pkey PRIMARY KEY,
  seq              bigint GENERATED ALWAYS AS IDENTITY,
  subscription_id  uuid NOT NULL,
  service_id       bigint NOT NULL,
  order_key        text,
  event_type       text NOT NULL,
  payload          jsonb NOT NULL,
  state            text NOT NULL DEFAULT 'pending' CONSTRAINT callback_messages_state_check CHECK (state IN ('pending', 'dead')),
  attempts         integer NOT NULL DEFAULT 0,
  run_at           timestamptz NOT NULL DEFAULT now(),
  -- When the current series of attempts began (queued, or replayed): the maximum age counts from it.
  first_try_at     timestamptz NOT NULL DEFAULT now(),
  last_error       text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX callback_messages_due_idx ON callback_messages (run_at) WHERE state = 'pending';
CREATE INDEX callback_messages_order_idx ON callback_messages (subscription_id, order_key, seq) WHERE state = 'pending';
CREATE INDEX callback_messages_dead_idx ON callback_messages (service_id, updated_at) WHERE state = 'dead';

-- One event, as a trigger hands it over. notification_id is '<service>#<uuid>': its service part
-- picks the subscriptions. delivery_id, user_id, channel, state and reason may be NULL.
CREATE TYPE callback_event AS (
  event_type      text,
  notification_id text,
  delivery_id     uuid,
  user_id         text,
  channel         text,
  state           text,
  reason          text,
  occurred_at     timestamptz
);

-- Queues one message per (enabled subscription of the event's service for its type, event), and
-- wakes the senders at commit. Returns how many were queued.
CREATE FUNCTION enqueue_callbacks(events callback_event[]) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  queued integer;
BEGIN
  INSERT INTO callback_messages (id, subscription_id, service_id, order_key, event_type, payload)
  SELECT gen_random_uuid(), s.id, s.service_id, e.notification_id, e.event_type,
         jsonb_strip_nulls(jsonb_build_object(
           'type', e.event_type,
           'occurred_at', to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
           'notification_id', e.notification_id,
           'delivery_id', e.delivery_id,
           'user_id', e.user_id,
           'channel', e.channel,
           'state', e.state,
           'reason', e.reason))
    FROM unnest(events) WITH ORDINALITY AS e
    JOIN callback_subscriptions s
      ON s.enabled AND s.service_name = split_part(e.notification_id, '#', 1)
     AND e.event_type = ANY (s.event_types)
   ORDER BY e.ordinality, s.id;
  GET DIAGNOSTICS queued = ROW_COUNT;
  IF queued > 0 THEN
    PERFORM pg_notify('herald_callbacks', '');
  END IF;
  RETURN queued;
END
$$;

-- The triggers first ask whether any enabled subscription exists at all (an index-only probe of
-- an empty or tiny table), so a deployment without subscribers pays almost nothing per statement.
CREATE FUNCTION callback_notifications() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM callback_subscriptions WHERE enabled) THEN
    RETURN NULL;
  END IF;
  PERFORM enqueue_callbacks(ARRAY(
    SELECT ROW('notification.accepted', n.id, NULL, NULL, NULL, 'accepted', NULL, n.created_at)::callback_event
      FROM callback_new_notifications n
     ORDER BY n.created_at, n.id));
  RETURN NULL;
END
$$;

-- Delivery states to event types: see docs/callbacks.md. States not listed (pending, retrying,
-- sending, canceled) produce no callback.
CREATE FUNCTION callback_delivery_events() RETURNS trigger LANGUAGE plpgsql AS $$
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
      LEFT JOIN LATERAL (SELECT user_id FROM deliveries WHERE id = e.delivery_id LIMIT 1) d ON true
     WHERE t.event_type IS NOT NULL
       AND EXISTS (SELECT 1 FROM callback_subscriptions s
                    WHERE s.enabled AND s.service_name = split_part(e.notification_id, '#', 1)
                      AND t.event_type = ANY (s.event_types))
     ORDER BY e.created_at));
  RETURN NULL;
END
$$;

CREATE FUNCTION callback_inbox_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM callback_subscriptions WHERE enabled) THEN
    RETURN NULL;
  END IF;
  PERFORM enqueue_callbacks(ARRAY(
    SELECT ROW('inbox.read', e.notification_id, NULL, e.user_id, 'in_app', 'read', NULL, e.created_at)::callback_event
      FROM callback_new_inbox_events e
     WHERE e.kind = 'read' AND e.notification_id IS NOT NULL
     ORDER BY e.user_id, e.seq));
  RETURN NULL;
END
$$;

CREATE TRIGGER notifications_callbacks AFTER INSERT ON notifications
  REFERENCING NEW TABLE AS callback_new_notifications FOR EACH STATEMENT EXECUTE FUNCTION callback_notifications();
CREATE TRIGGER delivery_events_callbacks AFTER INSERT ON delivery_events
  REFERENCING NEW TABLE AS callback_new_delivery_events FOR EACH STATEMENT EXECUTE FUNCTION callback_delivery_events();
CREATE TRIGGER inbox_events_callbacks AFTER INSERT ON inbox_events
  REFERENCING NEW TABLE AS callback_new_inbox_events FOR EACH STATEMENT EXECUTE FUNCTION callback_inbox_events();
