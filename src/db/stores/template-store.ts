// Templates and their immutable versions (migrations/0004_templates.sql).
import { notifySettingsChanged, settingsChange } from '../settings-change.js';
import type { Pool, PoolClient } from '../pools.js';
import type { Lane } from '../../domain/notification.js';
import type { Step } from '../../domain/workflow.js';
import {
  sameVersionBody,
  type ParamType,
  type StoredTemplateVersion,
  type TemplateDefinition,
  type Variants,
} from '../../domain/template.js';

interface VersionRow {
  service_id: number;
  key: string;
  category: string;
  lane: Lane;
  version: number;
  params: Record<string, ParamType>;
  fallback_locale: string;
  variants: Variants;
  steps: Step[] | null;
}

const versionColumns = `t.service_id, t.key, t.category, t.lane, v.version, v.params, v.fallback_locale, v.variants, v.steps`;

function toVersion(row: VersionRow): StoredTemplateVersion {
  return {
    serviceId: row.service_id,
    key: row.key,
    category: row.category,
    lane: row.lane,
    version: row.version,
    params: row.params,
    fallbackLocale: row.fallback_locale,
    variants: row.variants,
    steps: row.steps,
  };
}

/**
 * The current version of a template, or a given one; undefined if there is none, or the
 * template is withdrawn (migrations/0010_template_imports.sql).
 */
export async function findTemplateVersion(
  db: Pool | PoolClient,
  serviceId: number,
  key: string,
  version?: number,
): Promise<StoredTemplateVersion | undefined> {
  const result = await db.query<VersionRow>(
    `SELECT ${versionColumns}
       FROM templates t
       JOIN template_versions v ON v.service_id = t.service_id AND v.key = t.key
        AND v.version = coalesce($3::int, t.current_version)
      WHERE t.service_id = $1 AND t.key = $2 AND t.withdrawn_at IS NULL`,
    [serviceId, key, version ?? null],
  );
  const row = result.rows[0];
  return row === undefined ? undefined : toVersion(row);
}

/**
 * Given versions of templates, one query for the batch: what the dispatcher renders with
 * (withdrawn templates too: notifications accepted with them still render).
 * Keyed by `templateVersionKey`; a version that does not exist is absent.
 */
export async function loadTemplateVersions(
  db: Pool | PoolClient,
  refs: readonly { serviceId: number; key: string; version: number }[],
): Promise<Map<string, StoredTemplateVersion>> {
  if (refs.length === 0) return new Map();
  const result = await db.query<VersionRow>(
    `SELECT ${versionColumns}
       FROM unnest($1::bigint[], $2::text[], $3::int[]) AS r(service_id, key, version)
       JOIN templates t ON t.service_id = r.service_id AND t.key = r.key
       JOIN template_versions v ON v.service_id = r.service_id AND v.key = r.key AND v.version = r.version`,
    [refs.map((r) => r.serviceId), refs.map((r) => r.key), refs.map((r) => r.version)],
  );
  return new Map(
    result.rows.map((row) => {
      const version = toVersion(row);
      return [templateVersionKey(version.serviceId, version.key, version.version), version];
    }),
  );
}

export function templateVersionKey(serviceId: number, key: string, version: number): string {
  return `${String(serviceId)}:${key}:${String(version)}`;
}

/** Every template's current version, by key. */
export async function listCurrentTemplates(
  db: Pool | PoolClient,
  serviceId: number,
): Promise<StoredTemplateVersion[]> {
  const result = await db.query<VersionRow>(
    `SELECT ${versionColumns}
       FROM templates t
       JOIN template_versions v ON v.service_id = t.service_id AND v.key = t.key AND v.version = t.current_version
      WHERE t.service_id = $1 AND t.withdrawn_at IS NULL ORDER BY t.key`,
    [serviceId],
  );
  return result.rows.map(toVersion);
}

export interface TemplateSummary {
  key: string;
  category: string;
  lane: Lane;
  currentVersion: number;
  createdAt: Date;
  updatedAt: Date;
}

export async function listTemplates(db: Pool | PoolClient, serviceId: number): Promise<TemplateSummary[]> {
  const listed = await listTemplatesWithWithdrawn(db, serviceId);
  return listed.filter((t) => t.withdrawnAt === null);
}

/** A template as the console lists it: withdrawn ones too, with when they were withdrawn. */
export interface ListedTemplate extends TemplateSummary {
  withdrawnAt: Date | null;
}

/** Every template of a service, withdrawn ones too; or only `key` when given. */
export async function listTemplatesWithWithdrawn(
  db: Pool | PoolClient,
  serviceId: number,
  key?: string,
): Promise<ListedTemplate[]> {
  const result = await db.query<{
    key: string;
    category: string;
    lane: Lane;
    current_version: number;
    created_at: Date;
    updated_at: Date;
    withdrawn_at: Date | null;
  }>(
    `SELECT key, category, lane, current_version, created_at, updated_at, withdrawn_at FROM templates
      WHERE service_id = $1 AND ($2::text IS NULL OR key = $2) ORDER BY key`,
    [serviceId, key ?? null],
  );
  return result.rows.map((r) => ({
    key: r.key,
    category: r.category,
    lane: r.lane,
    currentVersion: r.current_version,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    withdrawnAt: r.withdrawn_at,
  }));
}

export async function listTemplateVersions(
  db: Pool | PoolClient,
  serviceId: number,
  key: string,
): Promise<{ version: number; createdAt: Date }[]> {
  const result = await db.query<{ version: number; created_at: Date }>(
    `SELECT version, created_at FROM template_versions WHERE service_id = $1 AND key = $2 ORDER BY version`,
    [serviceId, key],
  );
  return result.rows.map((r) => ({ version: r.version, createdAt: r.created_at }));
}

export interface SaveResult {
  version: number;
  /** A new version was written (the text, parameters or fallback locale changed). */
  versionCreated: boolean;
  /** Anything changed: a new version, or the category or lane. */
  changed: boolean;
}

/**
 * Writes a definition in the caller's transaction: a new version only when its parameters,
 * fallback locale or variants differ from the current version's; category and lane are
 * updated in place. A withdrawn template comes back with a new version. New versions number
 * on from the highest the key ever had: after an undo made an older version current, the
 * newer ones still exist. The template row is locked, so concurrent saves of one key queue.
 */
export async function saveTemplate(
  client: PoolClient,
  serviceId: number,
  key: string,
  definition: TemplateDefinition,
): Promise<SaveResult> {
  // Caches of current versions drop this template when the change commits.
  await notifySettingsChanged(client, [settingsChange.template(serviceId, key)]);
  const inserted = await client.query(
    `INSERT INTO templates (service_id, key, category, lane, current_version) VALUES ($1, $2, $3, $4, 1)
     ON CONFLICT DO NOTHING`,
    [serviceId, key, definition.category, definition.lane],
  );
  if (inserted.rowCount === 1) {
    await insertVersion(client, serviceId, key, 1, definition);
    return { version: 1, versionCreated: true, changed: true };
  }
  const locked = await client.query<{ withdrawn: boolean; last_version: number }>(
    `SELECT withdrawn_at IS NOT NULL AS withdrawn,
            (SELECT max(version) FROM template_versions v WHERE v.service_id = t.service_id AND v.key = t.key)
              AS last_version
       FROM templates t WHERE service_id = $1 AND key = $2 FOR UPDATE`,
    [serviceId, key],
  );
  const { withdrawn, last_version: lastVersion } = locked.rows[0] ?? { withdrawn: false, last_version: 0 };
  const current = withdrawn ? undefined : await findTemplateVersion(client, serviceId, key);
  if (!withdrawn && current === undefined) throw new Error(`template ${key} has no current version`);
  // A definition that does not say (an import, the console's form) keeps the current steps.
  if (definition.steps === undefined) definition = { ...definition, steps: current?.steps ?? null };
  const sameBody = current !== undefined && sameVersionBody(current, definition);
  const sameSettings = current?.category === definition.category && current.lane === definition.lane;
  if (current !== undefined && sameBody && sameSettings)
    return { version: current.version, versionCreated: false, changed: false };
  const version = current !== undefined && sameBody ? current.version : lastVersion + 1;
  if (!sameBody) await insertVersion(client, serviceId, key, version, definition);
  await setCurrentState(client, serviceId, key, {
    version,
    category: definition.category,
    lane: definition.lane,
  });
  return { version, versionCreated: !sameBody, changed: true };
}

/**
 * What an import or its undo records of a template: its current version with the category
 * and lane, or null when it has none (it does not exist, or it is withdrawn).
 */
export type TemplateState = { version: number; category: string; lane: Lane } | null;

export function sameTemplateState(a: TemplateState, b: TemplateState): boolean {
  if (a === null || b === null) return a === b;
  return a.version === b.version && a.category === b.category && a.lane === b.lane;
}

/** The states of these templates, locked for the caller's transaction (in key order, so lockers queue). */
export async function lockTemplateStates(
  client: PoolClient,
  serviceId: number,
  keys: readonly string[],
): Promise<Map<string, TemplateState>> {
  const result = await client.query<{
    key: string;
    version: number;
    category: string;
    lane: Lane;
    withdrawn: boolean;
  }>(
    `SELECT key, current_version AS version, category, lane, withdrawn_at IS NOT NULL AS withdrawn
       FROM templates WHERE service_id = $1 AND key = ANY($2::text[]) ORDER BY key FOR UPDATE`,
    [serviceId, keys],
  );
  const states = new Map<string, TemplateState>(keys.map((key) => [key, null]));
  for (const row of result.rows) {
    states.set(
      row.key,
      row.withdrawn ? null : { version: row.version, category: row.category, lane: row.lane },
    );
  }
  return states;
}

/**
 * Makes a state current: an existing version with its category and lane, or (null) withdraws
 * the template. The caller has the row locked and sends the settings-change NOTIFY.
 */
export async function setCurrentState(
  client: PoolClient,
  serviceId: number,
  key: string,
  state: TemplateState,
): Promise<void> {
  if (state === null) {
    await client.query(
      `UPDATE templates SET withdrawn_at = now(), updated_at = now() WHERE service_id = $1 AND key = $2`,
      [serviceId, key],
    );
    return;
  }
  await client.query(
    `UPDATE templates SET category = $3, lane = $4, current_version = $5, withdrawn_at = NULL, updated_at = now()
      WHERE service_id = $1 AND key = $2`,
    [serviceId, key, state.category, state.lane, state.version],
  );
}

async function insertVersion(
  client: PoolClient,
  serviceId: number,
  key: string,
  version: number,
  definition: TemplateDefinition,
): Promise<void> {
  await client.query(
    `INSERT INTO template_versions (service_id, key, version, params, fallback_locale, variants, steps)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [
      serviceId,
      key,
      version,
      JSON.stringify(definition.params),
      definition.fallbackLocale,
      JSON.stringify(definition.variants),
      definition.steps == null ? null : JSON.stringify(definition.steps),
    ],
  );
}
