// Recorded template imports and undos, with each changed template's state before and after
// (migrations/0010_template_imports.sql).
import { appendAudit, type AuditActor } from './audit-store.js';
import type { Pool, PoolClient } from '../pools.js';
import type { Lane } from '../../domain/notification.js';
import type { TemplateState } from './template-store.js';

export type ImportKind = 'import' | 'undo';

export interface ImportEntry {
  key: string;
  before: TemplateState;
  after: TemplateState;
}

export interface ImportRecord {
  id: number;
  kind: ImportKind;
  keyId: number | null;
  /** For an undo: the import (or undo) it undid. */
  undoes: number | null;
  /** The undo that undid this one, if any. */
  undoneBy: number | null;
  summary: Record<string, unknown>;
  createdAt: Date;
  /** How many templates it changed. */
  templateCount: number;
}

interface ImportRow {
  id: string;
  kind: ImportKind;
  key_id: string | null;
  undoes: string | null;
  undone_by: string | null;
  summary: Record<string, unknown>;
  created_at: Date;
  template_count: number;
}

const importColumns = `i.id, i.kind, i.key_id, i.undoes, i.undone_by, i.summary, i.created_at,
  (SELECT count(*)::int FROM template_import_templates e WHERE e.import_id = i.id) AS template_count`;

const idOrNull = (id: string | null): number | null => (id === null ? null : Number(id));

function toRecord(row: ImportRow): ImportRecord {
  return {
    id: Number(row.id),
    kind: row.kind,
    keyId: idOrNull(row.key_id),
    undoes: idOrNull(row.undoes),
    undoneBy: idOrNull(row.undone_by),
    summary: row.summary,
    createdAt: row.created_at,
    templateCount: row.template_count,
  };
}

/** Writes an import (or undo) and its templates in the caller's transaction; returns its id. */
export async function recordImport(
  client: PoolClient,
  record: {
    serviceId: number;
    /** For the audit log's target (`service:<name>`). */
    serviceName: string;
    keyId: number | null;
    /** Who, from where, as the audit log names them. */
    actor: AuditActor;
    kind: ImportKind;
    undoes?: number;
    summary: Record<string, unknown>;
    entries: readonly ImportEntry[];
  },
): Promise<number> {
  const inserted = await client.query<{ id: string }>(
    `INSERT INTO template_imports (service_id, key_id, kind, undoes, summary)
     VALUES ($1, $2, $3, $4, $5) RETURNING id`,
    [record.serviceId, record.keyId, record.kind, record.undoes ?? null, JSON.stringify(record.summary)],
  );
  const id = Number(inserted.rows[0]?.id);
  const column = (pick: (e: ImportEntry) => unknown) => record.entries.map(pick);
  await client.query(
    `INSERT INTO template_import_templates (import_id, key, before_version, before_category, before_lane,
                                            after_version, after_category, after_lane)
     SELECT $1, * FROM unnest($2::text[], $3::int[], $4::text[], $5::text[], $6::int[], $7::text[], $8::text[])`,
    [
      id,
      column((e) => e.key),
      column((e) => e.before?.version ?? null),
      column((e) => e.before?.category ?? null),
      column((e) => e.before?.lane ?? null),
      column((e) => e.after?.version ?? null),
      column((e) => e.after?.category ?? null),
      column((e) => e.after?.lane ?? null),
    ],
  );
  // Who imported what, in the audit log too, with the versions each template had before and after.
  await appendAudit(client, {
    ...record.actor,
    action: record.kind === 'import' ? 'template.import' : 'template.import_undo',
    target: `service:${record.serviceName}`,
    before: record.entries.map((e) => ({ key: e.key, version: e.before?.version ?? null })),
    after: {
      import_id: id,
      ...(record.undoes === undefined ? {} : { undoes: record.undoes }),
      templates: record.entries.map((e) => ({ key: e.key, version: e.after?.version ?? null })),
    },
  });
  return id;
}

/** A service's imports and undos, newest first, those older than `beforeId` when given. */
export async function listImports(
  db: Pool | PoolClient,
  serviceId: number,
  limit: number,
  beforeId?: number,
): Promise<ImportRecord[]> {
  const result = await db.query<ImportRow>(
    `SELECT ${importColumns} FROM template_imports i
      WHERE i.service_id = $1 AND ($2::bigint IS NULL OR i.id < $2)
      ORDER BY i.id DESC LIMIT $3`,
    [serviceId, beforeId ?? null, limit],
  );
  return result.rows.map(toRecord);
}

interface EntryRow {
  key: string;
  before_version: number | null;
  before_category: string | null;
  before_lane: Lane | null;
  after_version: number | null;
  after_category: string | null;
  after_lane: Lane | null;
}

function stateOf(version: number | null, category: string | null, lane: Lane | null): TemplateState {
  return version === null || category === null || lane === null ? null : { version, category, lane };
}

/**
 * A service's import with its templates, the import row locked for the caller's transaction
 * (two undos of one import queue); undefined if the service has no import with this id.
 */
export async function lockImport(
  client: PoolClient,
  serviceId: number,
  id: number,
): Promise<(ImportRecord & { entries: ImportEntry[] }) | undefined> {
  const found = await client.query<ImportRow>(
    `SELECT ${importColumns} FROM template_imports i WHERE i.service_id = $1 AND i.id = $2 FOR UPDATE`,
    [serviceId, id],
  );
  const row = found.rows[0];
  if (row === undefined) return undefined;
  const entries = await client.query<EntryRow>(
    `SELECT key, before_version, before_category, before_lane, after_version, after_category, after_lane
       FROM template_import_templates WHERE import_id = $1 ORDER BY key`,
    [id],
  );
  return {
    ...toRecord(row),
    entries: entries.rows.map((e) => ({
      key: e.key,
      before: stateOf(e.before_version, e.before_category, e.before_lane),
      after: stateOf(e.after_version, e.after_category, e.after_lane),
    })),
  };
}

export async function markUndone(client: PoolClient, id: number, undoneBy: number): Promise<void> {
  await client.query('UPDATE template_imports SET undone_by = $2 WHERE id = $1', [id, undoneBy]);
}
