// Row counts and a digest of each table's mutable columns: a refused request must leave every
// table as it found it (no partial writes, no stray updates).
import type { Pool } from '../../src/db/pools.js';

/** Per table, the row text that is digested: whole rows where they are small, else the columns a write changes. */
const digestedColumns: Record<string, string> = {
  services: 't::text',
  api_keys: '(t.id, t.service_id, t.permissions, t.revoked_at)::text',
  users: 't::text',
  devices: '(t.id, t.user_id, t.app_id, t.enabled, t.updated_at)::text',
  notifications: '(t.id, t.version, t.updated_at, t.canceled_at)::text',
  recipients: '(t.notification_id, t.user_id, t.state)::text',
  deliveries: '(t.id, t.state, t.attempts, t.updated_at)::text',
  idempotency_keys: '(t.service_id, t.key, t.notification_id)::text',
  inbox_items: '(t.user_id, t.notification_id, t.read_at, t.archived_at)::text',
  delivery_events: '(t.delivery_id, t.state, t.attempt, t.created_at)::text',
  contact_changes: 't::text',
  user_token_revocations: 't::text',
  preferences: 't::text',
  templates: '(t.service_id, t.key, t.category, t.lane, t.current_version, t.withdrawn_at)::text',
  template_versions: '(t.service_id, t.key, t.version)::text',
  template_imports: '(t.id, t.undone_by)::text',
  rate_budgets: '(t.service_id, t.name, t.per_second, t.updated_at)::text',
};

export type TableSnapshot = Record<string, { rows: number; digest: string }>;

export async function tableSnapshot(pool: Pool): Promise<TableSnapshot> {
  const sql = Object.entries(digestedColumns)
    .map(
      ([table, row]) =>
        `SELECT '${table}' AS name, count(*)::int AS rows,
                md5(coalesce(string_agg(${row}, ',' ORDER BY ${row}), '')) AS digest
           FROM ${table} t`,
    )
    .join(' UNION ALL ');
  const result = await pool.query<{ name: string; rows: number; digest: string }>(sql);
  return Object.fromEntries(result.rows.map((r) => [r.name, { rows: r.rows, digest: r.digest }]));
}

/** Tables whose rows differ between two snapshots, with their counts, e.g. "users 3 → 4". */
export function changedTables(before: TableSnapshot, after: TableSnapshot): string[] {
  return Object.keys(digestedColumns).flatMap((table) => {
    const a = before[table];
    const b = after[table];
    if (a === undefined || b === undefined) return [`${table} missing`];
    if (a.rows === b.rows && a.digest === b.digest) return [];
    return [`${table} ${String(a.rows)} → ${String(b.rows)}${a.rows === b.rows ? ' (rows changed)' : ''}`];
  });
}
