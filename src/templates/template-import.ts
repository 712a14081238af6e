// An import of a template sheet: read and check every row, then save every template in one
// transaction (rolled back for a dry run), with a report of each changed cell old → new and a
// warning for each new text that looks mis-decoded. An applied import is recorded, so it can
// be undone (template-import-undo.ts). The api role's import route and the console's import
// page both import through here. See docs/templates.md.
import { withTransaction, type Pool, type PoolClient } from '../db/pools.js';
import type { AuditActor } from '../db/stores/audit-store.js';
import { recordImport, type ImportEntry } from '../db/stores/template-import-store.js';
import {
  findTemplateVersion,
  lockTemplateStates,
  saveTemplate,
  type TemplateState,
} from '../db/stores/template-store.js';
import { ProblemError, type ProblemDetail } from '../domain/problems.js';
import { definitionChanges } from '../domain/template-changes.js';
import {
  normalizeDefinition,
  reservedTemplateKeys,
  structuralProblems,
  type DefinitionProblem,
} from '../domain/template.js';
import { findUnsafeInput } from '../domain/unsafe-input.js';
import { locateChanges, suspectCells, type ImportWarning, type SheetChange } from './import-review.js';
import { textProblems } from './template-renderer.js';
import {
  readSheet,
  rowsToTemplates,
  sheetProblems,
  type SheetFormat,
  type SheetRow,
  type SheetTemplate,
} from './template-sheet.js';

const maxImportRows = 20_000;
/** Largest accepted import file, through the API or the console. */
export const maxImportBytes = 10 * 1024 * 1024;
/** Errors and warnings listed in one answer; the count says how many there were. */
const maxListed = 1000;
/** Changed cells listed in one report (long texts are shown whole, so the count is what is capped). */
export const maxListedChanges = 5000;

type ImportResult = 'created' | 'new_version' | 'updated' | 'unchanged';

export interface ImportReport {
  dry_run: boolean;
  /** The recorded import, to undo it by; null for a dry run. */
  import_id: number | null;
  created: number;
  updated: number;
  unchanged: number;
  templates: { key: string; version: number; result: ImportResult; changes: SheetChange[] }[];
  /** More changed cells than maxListedChanges: the templates' lists stop there. */
  changes_truncated: boolean;
  warnings: ImportWarning[];
  warnings_truncated: boolean;
}

export interface ImportRequest {
  serviceId: number;
  /** For the audit log's target (`service:<name>`). */
  serviceName: string;
  /** The API key that imports; null for a console user. */
  keyId: number | null;
  /** Who imports, from where, for the audit log. */
  actor: AuditActor;
  bytes: Buffer;
  format: SheetFormat;
  dryRun: boolean;
  acceptWarnings: boolean;
  renderMs: number;
}

/** Everything in the file, in one transaction (rolled back for a dry run), or nothing. */
export async function importTemplates(pool: Pool, request: ImportRequest): Promise<ImportReport> {
  const read = await readTemplates(request.bytes, request.format, request.renderMs);
  if (read.errors.length > 0) throw importProblem(read.errors);
  return applyTemplates(pool, request, read.templates);
}

/** A row of the file as a reviewer sees it: where it is and what it is about. */
export interface ReviewedRow {
  number: number;
  key: string;
  channel: string;
  locale: string;
}

/**
 * A dry run for a reviewer: every row of the file with the problems found (then nothing would
 * be imported), or the report of what importing it would do.
 */
export type ImportReview =
  | { ok: false; rows: ReviewedRow[]; errors: ProblemDetail[] }
  | { ok: true; rows: ReviewedRow[]; report: ImportReport };

export async function reviewImport(
  pool: Pool,
  request: Omit<ImportRequest, 'dryRun' | 'acceptWarnings'>,
): Promise<ImportReview> {
  const read = await readTemplates(request.bytes, request.format, request.renderMs);
  const rows = read.rows.map((row) => ({
    number: row.number,
    key: row.cells.key ?? '',
    channel: row.cells.channel ?? '',
    locale: row.cells.locale ?? '',
  }));
  if (read.errors.length > 0) return { ok: false, rows, errors: read.errors };
  const report = await applyTemplates(
    pool,
    { ...request, dryRun: true, acceptWarnings: false },
    read.templates,
  );
  return { ok: true, rows, report };
}

async function applyTemplates(
  pool: Pool,
  request: ImportRequest,
  templates: readonly SheetTemplate[],
): Promise<ImportReport> {
  const rollback = new Error('dry run');
  let report: ImportReport | undefined;
  try {
    await withTransaction(pool, async (client) => {
      // The file's existing templates, locked before they are read: the states recorded for an
      // undo are the ones this import replaced, not ones a concurrent save replaced first.
      await lockTemplateStates(
        client,
        request.serviceId,
        templates.map((t) => t.key),
      );
      const applied: AppliedTemplate[] = [];
      for (const t of templates) applied.push(await applyTemplate(client, request.serviceId, t));
      const warnings = applied.flatMap((a) => a.warnings);
      if (!request.dryRun && warnings.length > 0 && !request.acceptWarnings)
        throw suspectTextProblem(warnings);
      report = reportOf(applied, warnings, request.dryRun);
      if (request.dryRun) throw rollback;
      report.import_id = await recordImport(client, {
        serviceId: request.serviceId,
        serviceName: request.serviceName,
        keyId: request.keyId,
        actor: request.actor,
        kind: 'import',
        summary: summaryOf(report, applied, request.acceptWarnings),
        entries: applied.flatMap((a) => (a.result === 'unchanged' ? [] : [a.entry])),
      });
    });
  } catch (error) {
    if (error !== rollback) throw error;
  }
  if (report === undefined) throw new Error('import produced no report');
  return report;
}

interface ReadTemplates {
  rows: SheetRow[];
  templates: SheetTemplate[];
  /** Every bad cell; nothing may be imported while there is one. */
  errors: ProblemDetail[];
}

/** The file's templates, every one checked as PUT checks it, and every bad cell named. */
async function readTemplates(bytes: Buffer, format: SheetFormat, renderMs: number): Promise<ReadTemplates> {
  const read = await readSheet(bytes, format);
  if (!read.ok) return { rows: [], templates: [], errors: read.errors };
  if (read.rows.length > maxImportRows) {
    const message = `more than ${String(maxImportRows)} rows`;
    return { rows: [], templates: [], errors: [{ field: 'file', message }] };
  }
  const errors: ProblemDetail[] = [];
  for (const row of read.rows) {
    for (const [column, text] of Object.entries(row.cells)) {
      const unsafe = findUnsafeInput(text, '');
      if (unsafe !== undefined)
        errors.push({ field: `row ${String(row.number)} / column ${column}`, message: unsafe[1] });
    }
  }
  const parsed = rowsToTemplates(read.rows);
  errors.push(...parsed.errors);
  const templates = parsed.templates
    .map((t) => ({ ...t, definition: normalizeDefinition(t.definition) }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (const t of templates) {
    if (reservedTemplateKeys.has(t.key)) {
      errors.push({ field: `row ${String(t.firstRow)} / column key`, message: `"${t.key}" is reserved` });
    }
    const problems: DefinitionProblem[] = structuralProblems(t.definition);
    // Text is only worth rendering once the structure holds.
    if (problems.length === 0) problems.push(...(await textProblems(t.definition, renderMs)));
    errors.push(...sheetProblems(t, problems));
  }
  return { rows: read.rows, templates, errors };
}

interface AppliedTemplate {
  key: string;
  version: number;
  result: ImportResult;
  changes: SheetChange[];
  warnings: ImportWarning[];
  entry: ImportEntry;
}

/** Saves one template as PUT would, and says what changed from its current version. */
async function applyTemplate(
  client: PoolClient,
  serviceId: number,
  t: SheetTemplate,
): Promise<AppliedTemplate> {
  const current = await findTemplateVersion(client, serviceId, t.key);
  const changes = locateChanges(t, definitionChanges(current, t.definition));
  const saved = await saveTemplate(client, serviceId, t.key, t.definition);
  const before: TemplateState =
    current === undefined
      ? null
      : { version: current.version, category: current.category, lane: current.lane };
  const { category, lane } = t.definition;
  return {
    key: t.key,
    version: saved.version,
    result:
      current === undefined
        ? 'created'
        : saved.versionCreated
          ? 'new_version'
          : saved.changed
            ? 'updated'
            : 'unchanged',
    changes,
    warnings: suspectCells(t.key, changes),
    entry: { key: t.key, before, after: { version: saved.version, category, lane } },
  };
}

function reportOf(
  applied: readonly AppliedTemplate[],
  warnings: ImportWarning[],
  dryRun: boolean,
): ImportReport {
  let room = maxListedChanges;
  const templates = applied.map((a) => {
    const changes = a.changes.slice(0, Math.max(0, room));
    room -= a.changes.length;
    return { key: a.key, version: a.version, result: a.result, changes };
  });
  const count = (...results: ImportResult[]) => applied.filter((a) => results.includes(a.result)).length;
  return {
    dry_run: dryRun,
    import_id: null,
    created: count('created'),
    updated: count('new_version', 'updated'),
    unchanged: count('unchanged'),
    templates,
    changes_truncated: room < 0,
    warnings: warnings.slice(0, maxListed),
    warnings_truncated: warnings.length > maxListed,
  };
}

/** What the list of imports shows of one: the counts, not the lists. */
function summaryOf(
  report: ImportReport,
  applied: readonly AppliedTemplate[],
  acceptedWarnings: boolean,
): Record<string, unknown> {
  return {
    created: report.created,
    updated: report.updated,
    unchanged: report.unchanged,
    changes: applied.reduce((n, a) => n + a.changes.length, 0),
    warnings: applied.reduce((n, a) => n + a.warnings.length, 0),
    accepted_warnings: acceptedWarnings,
  };
}

function listed<T>(items: readonly T[], what: string): { shown: T[]; detail: string } {
  const shown = items.slice(0, maxListed);
  const total = `${String(items.length)} ${what}${items.length === 1 ? '' : 's'}`;
  return {
    shown,
    detail: items.length > shown.length ? `${total} (the first ${String(maxListed)} are listed)` : total,
  };
}

function importProblem(errors: readonly ProblemDetail[]): ProblemError {
  const { shown, detail } = listed(errors, 'problem');
  return new ProblemError('template_import_invalid', `${detail} in the file; nothing was imported.`, shown);
}

function suspectTextProblem(warnings: readonly ImportWarning[]): ProblemError {
  const { shown, detail } = listed(warnings, 'cell');
  return new ProblemError(
    'template_import_suspect_text',
    `${detail} with text that looks mis-decoded; nothing was imported. Check the file (?dry_run=true ` +
      'lists each cell with what it probably said), fix it, or import with ?accept_warnings=true.',
    shown.map((w) => ({ field: w.field, message: w.message })),
  );
}
