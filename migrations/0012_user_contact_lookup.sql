-- The console's customer-support lookup finds a user by an exact email address or phone number
-- (docs/console.md). Emails are stored lower-cased and phones in E.164, so plain indexes serve.
CREATE INDEX users_email_idx ON users (email) WHERE email IS NOT NULL;
CREATE INDEX users_phone_idx ON users (phone) WHERE phone IS NOT NULL;
