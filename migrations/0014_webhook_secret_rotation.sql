-- A rotated webhook secret keeps signing next to the new one for a while, so receivers can switch
-- without refusing a message (Standard Webhooks: several signatures in one header; docs/channels
-- webhook section). Set by a rotation; after previous_webhook_secret_until it is ignored.
ALTER TABLE services
  ADD COLUMN previous_webhook_secret text,
  ADD COLUMN previous_webhook_secret_until timestamptz;
