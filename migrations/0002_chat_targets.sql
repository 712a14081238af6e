-- Chat (Slack incoming webhook) targets: a user's own, else the calling service's.
ALTER TABLE users ADD COLUMN chat_webhook_url text;
ALTER TABLE services ADD COLUMN chat_webhook_url text;
