// Who made a template's versions and a service's imports, from the audit log. A change and its
// audit entry are written in one transaction and share its time (now()), so each is found by
// that time (the audit log's index on `at`) and what the entry names: a save in the console
// (`template.save`) or through the API (`template.update`), or an import. Import entries name
// their service `service:<name>` (before the API's calls were audited: `service:<id>`); both are
// matched. A version made before its change was audited has no author ('').
import type { Pool, PoolClient } from '../pools.js';

/** The targets an import's audit entry may name its service by: its name, or (older) its id. */
const serviceTargets = (service: { id: number; name: string }) => [
  `service:${service.name}`,
  `service:${String(service.id)}`,
];

/** How the console names an audit entry's actor: the person's email, else the kind and id. */
const actorText = `CASE WHEN a.actor_name <> '' THEN a.actor_name ELSE a.actor_kind || ' ' || a.actor_id END`;

/** Each version of a template, oldest first, with its time and who made it. */
export async function listVersionAuthors(
  db: Pool | PoolClient,
  service: { id: number; name: string },
  key: string,
): Promise<{ version: number; createdAt: Date; author: string; action: string }[]> {
  const result = await db.query<{
    version: number;
    created_at: Date;
    author: string | null;
    action: string | null;
  }>(
    `SELECT v.version, v.created_at, a.author, a.action
       FROM template_versions v
       LEFT JOIN LATERAL (
         SELECT ${actorText} AS author, a.action FROM audit_log a
          WHERE a.at = v.created_at
            AND ((a.action IN ('template.save', 'template.update') AND a.target = $3
                  AND a.after->>'version' = v.version::text)
              OR (a.action = 'template.import' AND a.target = ANY($4::text[])
                  AND a.after->'templates' @> jsonb_build_array(jsonb_build_object('key', v.key, 'version', v.version))))
          ORDER BY a.id LIMIT 1) a ON true
      WHERE v.service_id = $1 AND v.key = $2
      ORDER BY v.version`,
    [service.id, key, `template:${service.name}/${key}`, serviceTargets(service)],
  );
  return result.rows.map((r) => ({
    version: r.version,
    createdAt: r.created_at,
    author: r.author ?? '',
    action: r.action ?? '',
  }));
}

/** Who made each of these imports (and undos) of a service, by id. */
export async function listImportActors(
  db: Pool | PoolClient,
  service: { id: number; name: string },
  ids: readonly number[],
): Promise<Map<number, string>> {
  if (ids.length === 0) return new Map();
  const result = await db.query<{ id: string; author: string }>(
    `SELECT i.id, ${actorText} AS author
       FROM template_imports i
       JOIN audit_log a ON a.at = i.created_at
        AND a.action IN ('template.import', 'template.import_undo')
        AND a.target = ANY($2::text[]) AND a.after->>'import_id' = i.id::text
      WHERE i.id = ANY($1::bigint[]) AND i.service_id = $3`,
    [ids, serviceTargets(service), service.id],
  );
  return new Map(result.rows.map((r) => [Number(r.id), r.author]));
}
