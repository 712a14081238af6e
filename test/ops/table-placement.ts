// Where every table of the service store would live on a distributed PostgreSQL (Citus), shard by
// user: the one list docs/scaling.md mirrors (its placement table between the `placement`
// markers) and test/ops/schema-readiness.test.ts checks against a freshly migrated database.
// Nothing here runs Citus: this is the plan the schema is kept ready for.

/** A colocation group: tables distributed on the same kind of value, whose shards sit together. */
export type Group = 'user' | 'notification' | 'idempotency key';

export type Placement =
  { kind: 'distributed'; group: Group; column: string } | { kind: 'reference' } | { kind: 'local' };

const byUser = (column = 'user_id'): Placement => ({ kind: 'distributed', group: 'user', column });
const reference: Placement = { kind: 'reference' };
const local: Placement = { kind: 'local' };

/** Every table of the service store (partitions are their parent's). */
export const tablePlacement: Readonly<Record<string, Placement>> = {
  // Grow with users; read and written per user: distributed by user, colocated.
  users: byUser('id'),
  devices: byUser(),
  preferences: byUser(),
  user_token_revocations: byUser(),
  contact_changes: byUser(),
  unsubscribe_tokens: byUser(),
  recipients: byUser(),
  deliveries: byUser(),
  delivery_queue: byUser(),
  recipient_queue: byUser(),
  delivery_events: byUser(),
  inbox_items: byUser(),
  inbox_streams: byUser(),
  inbox_events: byUser(),
  workflow_runs: byUser(),
  digests: byUser(),
  digest_items: byUser(),
  engagement_events: byUser(),
  topic_subscribers: byUser(),
  topic_opt_outs: byUser(),
  // One row per request, addressed to many users: distributed by its own id.
  notifications: { kind: 'distributed', group: 'notification', column: 'id' },
  // Unique per calling service, not per user: distributed by the key itself.
  idempotency_keys: { kind: 'distributed', group: 'idempotency key', column: 'key' },
  // A topic send until its subscribers are expanded: one row per notification, beside it.
  topic_sends: { kind: 'distributed', group: 'notification', column: 'notification_id' },
  // Small, read by every stage beside user rows, changed rarely: a copy on every node.
  services: reference,
  api_keys: reference,
  templates: reference,
  template_versions: reference,
  categories: reference,
  tracking_opt_outs: reference,
  signing_keys: reference,
  callback_subscriptions: reference,
  topics: reference,
  // Operators' and the console's own tables, and bookkeeping: stay on the coordinator.
  schema_migrations: local,
  console_users: local,
  console_sessions: local,
  audit_log: local,
  template_imports: local,
  template_import_templates: local,
  overview_counts: local,
  partition_settings: local,
  // Taken from by every fan-out batch with budgeted work (its window count): not copied to every node.
  rate_budgets: local,
  lane_settings: local,
  engagement_counts: local,
  provider_health: local,
  early_receipts: local,
  provider_workers: local,
  provider_circuits: local,
  worker_sessions: local,
  callback_messages: local,
  schedules: local,
  schedule_runs: local,
};

/**
 * Unique keys of a distributed table that do not include its distribution column, each with why
 * it stays and what distributing the table will need instead.
 */
export const uniqueKeyExceptions: readonly { table: string; index: string; reason: string }[] = [
  {
    table: 'devices',
    index: 'devices_app_token_key',
    reason:
      'A push token belongs to one installation across all users: registering it for another user moves ' +
      'the row (ON CONFLICT (app_id, token) in upsertDevice). Distributed, that needs a lookup table keyed ' +
      'by (app_id, token) and a delete-then-insert instead of an update of the distribution column.',
  },
];

/** Distributed tables that lack their distribution column today, with what adding it needs. */
export const missingColumnExceptions: readonly { table: string; reason: string }[] = [
  {
    table: 'delivery_events',
    reason:
      'Events carry delivery_id and notification_id but not user_id. Adding the column is cheap ' +
      '(nullable, no default: no partition is rewritten), but its six writers in src/db/stores and the ' +
      'archive copy must fill it first; not done yet.',
  },
];

/**
 * Distributed tables without a primary key. Moving a shard without blocking writes copies it by
 * logical replication, which needs a replica identity (the primary key) to apply updates and
 * deletes; without one the move blocks writes to that shard while it copies.
 */
export const noPrimaryKeyExceptions: readonly { table: string; reason: string }[] = [
  {
    table: 'delivery_events',
    reason:
      'Append-only history, deleted only by dropping months, so logical replication has no update or ' +
      'delete to apply; a key (delivery_id, created_at, user_id) would cost an index entry per event. ' +
      'Decide when user_id is added.',
  },
];

/** The label docs/scaling.md shows in its placement table for a placement. */
export function placementLabel(p: Placement): string {
  switch (p.kind) {
    case 'distributed':
      return `distributed by ${p.group} (\`${p.column}\`)`;
    case 'reference':
      return 'reference';
    case 'local':
      return 'local (coordinator)';
  }
}
