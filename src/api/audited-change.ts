// Every admin call of the api role in the audit log (docs/console.md, "The audit log"): who (the
// API key), what, the state before and after, when and from where. The change and its entry
// commit in one transaction: a change is never without its entry, and an entry that cannot be
// written fails the call (500) with nothing changed. Template imports and undos write theirs in
// recordImport, inside the import's own transaction.
import type { FastifyRequest } from 'fastify';
import { withTransaction, type Pool, type PoolClient } from '../db/pools.js';
import { appendAudit, type AuditActor } from '../db/stores/audit-store.js';
import { callerOf } from '../http/api-key-auth.js';

/** The API key behind a keyed request, as the audit log names it: its id, and its prefix as the name. */
export function apiKeyActor(request: FastifyRequest): AuditActor {
  const caller = callerOf(request);
  return {
    actorKind: 'api_key',
    actorId: String(caller.keyId),
    actorName: caller.keyPrefix,
    clientAddress: request.ip,
  };
}

export interface Change<T> {
  /** What the route answers. */
  result: T;
  before?: unknown;
  after?: unknown;
  /** False when the call changed nothing (an equal save): no entry is written. */
  changed?: boolean;
}

/**
 * Runs `change` in a transaction and, when it changed something, writes its audit entry in the
 * same transaction. `action` is a stable name (`category.update`); `target` what it changed
 * (`category:<service>/<name>`).
 */
export async function auditedChange<T>(
  pool: Pool,
  request: FastifyRequest,
  what: { action: string; target: string },
  change: (client: PoolClient) => Promise<Change<T>>,
): Promise<T> {
  const actor = apiKeyActor(request);
  return withTransaction(pool, async (client) => {
    const done = await change(client);
    if (done.changed !== false)
      await appendAudit(client, { ...actor, ...what, before: done.before, after: done.after });
    return done.result;
  });
}
