// /v1/templates/export and /v1/templates/import: every template of a service as one sheet (xlsx
// or CSV), for the operations team. An import is all or nothing. See docs/templates.md.
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { withTransaction, type Pool } from '../../db/pools.js';
import { findTemplateVersion, listCurrentTemplates, saveTemplate } from '../../db/stores/template-store.js';
import { ProblemError, type ProblemDetail } from '../../domain/problems.js';
import { callerOf, requirePermission } from '../../http/api-key-auth.js';
import { findUnsafeInput } from '../../http/input-guard.js';
import { normalizeDefinition, structuralProblems, type DefinitionProblem } from '../../domain/template.js';
import { textProblems } from '../../templates/template-renderer.js';
import {
  readSheet,
  rowsToTemplates,
  sheetFormats,
  sheetProblems,
  templatesToRows,
  writeSheet,
  xlsxMediaType,
  type SheetFormat,
} from '../../templates/template-sheet.js';
import { oneOf, reservedKeys } from './template-input.js';
import type { TemplateRouteDeps } from './template-routes.js';

/** Largest accepted import file; every other route keeps BODY_LIMIT_BYTES. */
export const importBodyLimit = 10 * 1024 * 1024;
const maxImportRows = 20_000;
const maxReportedErrors = 1000;
/** An uploaded file: the bytes sit behind a getter so input checks do not walk them byte by byte. */
class Upload {
  readonly #bytes: Buffer;
  constructor(bytes: Buffer) {
    this.#bytes = bytes;
  }
  get bytes(): Buffer {
    return this.#bytes;
  }
}

export function templateSheetRoutes(deps: TemplateRouteDeps): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const reader = requirePermission(deps.authenticate, ['send', 'templates']);
    const writer = requirePermission(deps.authenticate, ['templates']);
    const tags = ['templates'];
    // Import files, in this plugin only.
    app.addContentTypeParser(
      ['text/csv', xlsxMediaType, 'application/octet-stream'],
      { parseAs: 'buffer', bodyLimit: importBodyLimit },
      (_request, body, done) => {
        done(null, new Upload(body as Buffer));
      },
    );

    app.get(
      '/v1/templates/export',
      {
        onRequest: reader,
        schema: {
          summary: 'Every template as one sheet: a row per template × channel × locale',
          tags,
          querystring: Type.Object(
            {
              format: Type.Optional(oneOf(sheetFormats, { default: 'xlsx' })),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (request, reply) => {
        const format: SheetFormat = request.query.format ?? 'xlsx';
        const templates = await listCurrentTemplates(deps.pool, callerOf(request).serviceId);
        const file = await writeSheet(templatesToRows(templates), format);
        return reply
          .header('content-type', format === 'xlsx' ? xlsxMediaType : 'text/csv; charset=utf-8')
          .header('content-disposition', `attachment; filename="templates.${format}"`)
          .send(file);
      },
    );

    app.post(
      '/v1/templates/import',
      {
        onRequest: writer,
        bodyLimit: importBodyLimit,
        schema: {
          summary:
            'Import a sheet as exported: all or nothing; rows equal to the current version change nothing',
          tags,
          querystring: Type.Object(
            {
              dry_run: Type.Optional(Type.Boolean({ default: false })),
              format: Type.Optional(oneOf(sheetFormats)),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (request) => {
        const body: unknown = request.body;
        if (!(body instanceof Upload)) {
          throw new ProblemError(
            'template_import_invalid',
            `Send the file as the body, with Content-Type text/csv or ${xlsxMediaType}.`,
            [{ field: 'file', message: 'no file' }],
          );
        }
        const format = request.query.format ?? formatOf(request.headers['content-type'], body.bytes);
        const serviceId = callerOf(request).serviceId;
        const report = await importTemplates(
          deps.pool,
          serviceId,
          body.bytes,
          format,
          request.query.dry_run ?? false,
          deps.templateRenderMs,
        );
        if (!report.dry_run)
          deps.onSaved?.(
            serviceId,
            report.templates.filter((t) => t.result !== 'unchanged').map((t) => t.key),
          );
        return report;
      },
    );
  };
}

function formatOf(contentType: string | undefined, bytes: Buffer): SheetFormat {
  if (contentType?.startsWith('text/csv') === true) return 'csv';
  if (contentType?.startsWith(xlsxMediaType) === true) return 'xlsx';
  // application/octet-stream: an xlsx is a zip file.
  return bytes.subarray(0, 4).equals(Buffer.from([0x50, 0x4b, 0x03, 0x04])) ? 'xlsx' : 'csv';
}

export interface ImportReport {
  dry_run: boolean;
  created: number;
  updated: number;
  unchanged: number;
  templates: { key: string; version: number; result: 'created' | 'new_version' | 'updated' | 'unchanged' }[];
}

/** Everything in the file, in one transaction (rolled back for a dry run), or nothing. */
async function importTemplates(
  pool: Pool,
  serviceId: number,
  bytes: Buffer,
  format: SheetFormat,
  dryRun: boolean,
  renderMs: number,
): Promise<ImportReport> {
  const read = await readSheet(bytes, format);
  if (!read.ok) throw importProblem(read.errors);
  if (read.rows.length > maxImportRows) {
    throw importProblem([{ field: 'file', message: `more than ${String(maxImportRows)} rows` }]);
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
    if (reservedKeys.has(t.key)) {
      errors.push({ field: `row ${String(t.firstRow)} / column key`, message: `"${t.key}" is reserved` });
    }
    const problems: DefinitionProblem[] = structuralProblems(t.definition);
    // Text is only worth rendering once the structure holds.
    if (problems.length === 0) problems.push(...(await textProblems(t.definition, renderMs)));
    errors.push(...sheetProblems(t, problems));
  }
  if (errors.length > 0) throw importProblem(errors);

  const rollback = new Error('dry run');
  let report: ImportReport | undefined;
  try {
    await withTransaction(pool, async (client) => {
      const results: ImportReport['templates'] = [];
      for (const t of templates) {
        const existed = (await findTemplateVersion(client, serviceId, t.key)) !== undefined;
        const saved = await saveTemplate(client, serviceId, t.key, t.definition);
        results.push({
          key: t.key,
          version: saved.version,
          result: !existed
            ? 'created'
            : saved.versionCreated
              ? 'new_version'
              : saved.changed
                ? 'updated'
                : 'unchanged',
        });
      }
      report = {
        dry_run: dryRun,
        created: results.filter((r) => r.result === 'created').length,
        updated: results.filter((r) => r.result === 'new_version' || r.result === 'updated').length,
        unchanged: results.filter((r) => r.result === 'unchanged').length,
        templates: results,
      };
      if (dryRun) throw rollback;
    });
  } catch (error) {
    if (error !== rollback) throw error;
  }
  if (report === undefined) throw new Error('import produced no report');
  return report;
}

function importProblem(errors: ProblemDetail[]): ProblemError {
  const shown = errors.slice(0, maxReportedErrors);
  const more = errors.length - shown.length;
  return new ProblemError(
    'template_import_invalid',
    `${String(errors.length)} problem${errors.length === 1 ? '' : 's'} in the file; nothing was imported.` +
      (more > 0 ? ` The first ${String(maxReportedErrors)} are listed.` : ''),
    shown,
  );
}
