-- Provider receipts: which provider sent a delivery (its message id is only unique there), the
-- 'bounced' state, and status reports that arrived before the send's outcome was recorded.
ALTER TABLE deliveries ADD COLUMN provider text;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_state_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_state_check CHECK (state IN
  ('pending', 'retrying', 'sending', 'sent', 'delivered', 'failed', 'target_invalid', 'dead',
   'canceled', 'bounced'));
CREATE INDEX deliveries_provider_message_idx ON deliveries (provider_message_id)
  WHERE provider_message_id IS NOT NULL;

-- A receipt whose delivery is not (yet) recorded as sent with that message id: the provider
-- answered the callback before Herald recorded the send. The scheduler applies these later.
CREATE TABLE early_receipts (
  provider            text NOT NULL,
  provider_message_id text NOT NULL,
  state               text NOT NULL,
  detail              text,
  target_invalid      boolean NOT NULL DEFAULT false,
  received_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX early_receipts_received_idx ON early_receipts (received_at);
