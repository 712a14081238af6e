// The audit log: who did what, when and from where, with the state before and after. Rows are
// only inserted here; a trigger refuses updates and deletes (migrations/0011_console.sql).
import type { Pool, PoolClient } from '../pools.js';

export type AuditActorKind = 'console_user' | 'api_key' | 'system';

/** Who did it and from which address: a console account, an API key (its prefix as the name), or Herald. */
export interface AuditActor {
  actorKind: AuditActorKind;
  actorId: string;
  actorName: string;
  clientAddress?: string | undefined;
}

export interface AuditEntry extends AuditActor {
  action: string;
  target: string;
  before?: unknown;
  after?: unknown;
}

export interface RecordedAuditEntry extends Required<Omit<AuditEntry, 'clientAddress'>> {
  id: number;
  at: Date;
  clientAddress: string | null;
}

export async function appendAudit(db: Pool | PoolClient, entry: AuditEntry, at?: Date): Promise<void> {
  await db.query(
    `INSERT INTO audit_log (at, actor_kind, actor_id, actor_name, action, target, before, after, client_address)
     VALUES (coalesce($1, now()), $2, $3, $4, $5, $6, $7, $8, $9)`,
    [
      at ?? null,
      entry.actorKind,
      entry.actorId,
      entry.actorName,
      entry.action,
      entry.target,
      entry.before === undefined ? null : JSON.stringify(entry.before),
      entry.after === undefined ? null : JSON.stringify(entry.after),
      entry.clientAddress ?? null,
    ],
  );
}

export interface AuditQuery {
  /**
   * Matches the action, the target, the actor's name or the actor as `<kind>:<id>` (e.g.
   * `api_key:12`), as a substring, case-insensitive.
   */
  text?: string | undefined;
  /** Entries older than this id (the page before). */
  beforeId?: number | undefined;
  limit: number;
}

/** Newest first. */
export async function listAudit(db: Pool | PoolClient, query: AuditQuery): Promise<RecordedAuditEntry[]> {
  const pattern =
    query.text === undefined || query.text === '' ? null : `%${query.text.replace(/[\\%_]/g, '\\$&')}%`;
  const result = await db.query<{
    id: string;
    at: Date;
    actor_kind: AuditActorKind;
    actor_id: string;
    actor_name: string;
    action: string;
    target: string;
    before: unknown;
    after: unknown;
    client_address: string | null;
  }>(
    `SELECT id, at, actor_kind, actor_id, actor_name, action, target, before, after, client_address
       FROM audit_log
      WHERE ($1::text IS NULL OR action ILIKE $1 OR target ILIKE $1 OR actor_name ILIKE $1
             OR actor_kind || ':' || actor_id ILIKE $1)
        AND ($2::bigint IS NULL OR id < $2)
      ORDER BY id DESC
      LIMIT $3`,
    [pattern, query.beforeId ?? null, query.limit],
  );
  return result.rows.map((r) => ({
    id: Number(r.id),
    at: r.at,
    actorKind: r.actor_kind,
    actorId: r.actor_id,
    actorName: r.actor_name,
    action: r.action,
    target: r.target,
    before: r.before,
    after: r.after,
    clientAddress: r.client_address,
  }));
}
