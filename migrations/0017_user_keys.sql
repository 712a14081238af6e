-- Keys that name the user (docs/scaling.md): every primary key of a table that grows with users
-- includes the user id, so the table can later be distributed by user (Citus requires the
-- distribution column in every primary and unique key) without rewriting its constraints then.
-- Each key keeps its old columns first, so every lookup that used it still finds its index; the
-- user id is added after them. Uniqueness is unchanged in practice: each old key was already an
-- id that belongs to one user (a delivery's uuid, a device's uuid, a contact change's identity,
-- the delivery an unsubscribe token was signed for).
--
-- Cost on an existing install: each statement rebuilds one primary-key index while holding an
-- exclusive lock on its table. For deliveries that is one index per monthly partition, so writes
-- and reads of deliveries wait for the rebuild.

ALTER TABLE deliveries DROP CONSTRAINT deliveries_pkey;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_pkey PRIMARY KEY (id, notification_created_at, user_id);

ALTER TABLE devices DROP CONSTRAINT devices_pkey;
ALTER TABLE devices ADD CONSTRAINT devices_pkey PRIMARY KEY (id, user_id);

ALTER TABLE contact_changes DROP CONSTRAINT contact_changes_pkey;
ALTER TABLE contact_changes ADD CONSTRAINT contact_changes_pkey PRIMARY KEY (id, user_id);

ALTER TABLE unsubscribe_tokens DROP CONSTRAINT unsubscribe_tokens_pkey;
ALTER TABLE unsubscribe_tokens ADD CONSTRAINT unsubscribe_tokens_pkey PRIMARY KEY (delivery_id, user_id);
