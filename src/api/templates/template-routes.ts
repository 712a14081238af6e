// /v1/templates: write (admin) and read, preview (sender) a service's templates, and export or
// import all of them as one sheet (xlsx or CSV). See docs/templates.md.
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import { withTransaction, type Pool } from '../../db/pools.js';
import {
  findTemplateVersion,
  listCurrentTemplates,
  listTemplates,
  listTemplateVersions,
  saveTemplate,
} from '../../db/stores/template-store.js';
import { channels, lanes, type Channel } from '../../domain/notification.js';
import { ProblemError, type ProblemDetail } from '../../domain/problems.js';
import { callerOf, requirePermission, type Authenticate } from '../../http/api-key-auth.js';
import { findUnsafeInput } from '../../http/input-guard.js';
import {
  channelParts,
  checkParams,
  normalizeDefinition,
  paramNamePattern,
  paramTypes,
  structuralProblems,
  templateKeyPattern,
  type DefinitionPlace,
  type DefinitionProblem,
  type StoredTemplateVersion,
  type TemplateDefinition,
} from '../../domain/template.js';
import {
  renderVariantChecked,
  textProblems,
  TemplateRenderError,
  type RenderedVariant,
} from '../../templates/template-renderer.js';
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

/** A union of string literals, typed as their union (TypeBox types a mapped array as never). */
function oneOf<T extends string>(values: readonly T[], options: { default?: T } = {}) {
  return Type.Unsafe<T>(
    Type.Union(
      values.map((v) => Type.Literal(v)),
      options,
    ),
  );
}

/** Largest accepted import file; every other route keeps BODY_LIMIT_BYTES. */
export const importBodyLimit = 10 * 1024 * 1024;
const maxImportRows = 20_000;
const maxReportedErrors = 1000;
/** Path words under /v1/templates that are routes, not keys. */
const reservedKeys: ReadonlySet<string> = new Set(['export', 'import']);

const partText = (part: string) => Type.String({ maxLength: part === 'html' ? 100_000 : 10_000 });
const Variant = (channel: Channel) =>
  Type.Object(
    Object.fromEntries(channelParts[channel].map((part) => [part, Type.Optional(partText(part))])),
    { additionalProperties: false },
  );
const LocaleTag = Type.String({
  minLength: 2,
  maxLength: 35,
  pattern: '^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$',
});
const VariantsSchema = Type.Object(
  Object.fromEntries(
    channels.map((c) => [
      c,
      Type.Optional(Type.Record(LocaleTag, Variant(c), { maxProperties: 100, additionalProperties: false })),
    ]),
  ),
  { additionalProperties: false, description: 'Per channel, per locale: the Liquid text of each part.' },
);
const ParamsSchema = Type.Record(Type.String({ pattern: paramNamePattern }), oneOf(paramTypes), {
  maxProperties: 100,
  additionalProperties: false,
  description: 'Declared parameters and their types.',
});

const TemplateBody = Type.Object(
  {
    category: Type.Optional(Type.String({ pattern: '^[a-z0-9][a-z0-9_.-]{0,63}$', default: 'general' })),
    lane: Type.Optional(oneOf(lanes)),
    params: Type.Optional(ParamsSchema),
    fallback_locale: LocaleTag,
    variants: VariantsSchema,
  },
  { additionalProperties: false },
);

const KeyParam = Type.Object({ key: Type.String({ pattern: templateKeyPattern }) });

const PreviewBody = Type.Object(
  {
    params: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    locale: Type.Optional(Type.String({ minLength: 1, maxLength: 35 })),
    channels: Type.Optional(Type.Array(oneOf(channels), { uniqueItems: true })),
    version: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);

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

export interface TemplateRouteDeps {
  pool: Pool;
  authenticate: Authenticate;
  /**
   * Called after templates were saved, with their keys: this process's cache of current
   * versions drops them at once (other processes hear the NOTIFY sent at commit).
   */
  onSaved?: (serviceId: number, keys: string[]) => void;
  /** Wall-clock time one variant may take in a trial render or preview (see AcceptDeps). */
  templateRenderMs: number;
}

export function templateRoutes(deps: TemplateRouteDeps): FastifyPluginAsync {
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
      '/v1/templates',
      { onRequest: reader, schema: { summary: "Your service's templates", tags } },
      async (request) => ({
        items: (await listTemplates(deps.pool, callerOf(request).serviceId)).map((t) => ({
          key: t.key,
          category: t.category,
          lane: t.lane,
          current_version: t.currentVersion,
          created_at: t.createdAt.toISOString(),
          updated_at: t.updatedAt.toISOString(),
        })),
      }),
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

    app.put(
      '/v1/templates/:key',
      {
        onRequest: writer,
        schema: {
          summary: 'Create or edit a template; a change makes a new version',
          tags,
          params: KeyParam,
          body: TemplateBody,
        },
      },
      async (request) => {
        const { key } = request.params;
        if (reservedKeys.has(key)) {
          throw new ProblemError('template_invalid', `"${key}" is reserved.`, [
            { field: 'params/key', message: 'reserved' },
          ]);
        }
        const definition = definitionOf(request.body);
        const problems = [
          ...structuralProblems(definition),
          ...(await textProblems(definition, deps.templateRenderMs)),
        ];
        if (problems.length > 0) {
          throw new ProblemError(
            'template_invalid',
            problems.map((p) => `${bodyField(p.place)}: ${p.message}`).join('; '),
            problems.map((p) => ({ field: bodyField(p.place), message: p.message })),
          );
        }
        const serviceId = callerOf(request).serviceId;
        const result = await withTransaction(deps.pool, (client) =>
          saveTemplate(client, serviceId, key, definition),
        );
        if (result.changed) deps.onSaved?.(serviceId, [key]);
        return {
          key,
          version: result.version,
          version_created: result.versionCreated,
          changed: result.changed,
        };
      },
    );

    app.get(
      '/v1/templates/:key',
      {
        onRequest: reader,
        schema: {
          summary: 'A template: its current version (or ?version=n) and the list of versions',
          tags,
          params: KeyParam,
          querystring: Type.Object(
            { version: Type.Optional(Type.Integer({ minimum: 1 })) },
            { additionalProperties: false },
          ),
        },
      },
      async (request) => {
        const serviceId = callerOf(request).serviceId;
        const { key } = request.params;
        const version = await findTemplateVersion(deps.pool, serviceId, key, request.query.version);
        if (version === undefined)
          throw new ProblemError('not_found', 'No template (or version) with this key.');
        const versions = await listTemplateVersions(deps.pool, serviceId, key);
        return {
          ...presentVersion(version),
          versions: versions.map((v) => ({ version: v.version, created_at: v.createdAt.toISOString() })),
        };
      },
    );

    app.post(
      '/v1/templates/:key/preview',
      {
        onRequest: reader,
        schema: {
          summary: 'Render a template for params and a locale, as a delivery would be',
          tags,
          params: KeyParam,
          body: PreviewBody,
        },
      },
      async (request) => {
        const serviceId = callerOf(request).serviceId;
        const { params = {}, locale, version: wanted } = request.body;
        const version = await findTemplateVersion(deps.pool, serviceId, request.params.key, wanted);
        if (version === undefined)
          throw new ProblemError('not_found', 'No template (or version) with this key.');
        const shown = request.body.channels ?? (Object.keys(version.variants) as Channel[]);
        const rendered = await renderForChannels(
          version,
          shown,
          locale ?? version.fallbackLocale,
          params,
          deps.templateRenderMs,
        );
        return {
          key: version.key,
          version: version.version,
          channels: Object.fromEntries(
            [...rendered].map(([channel, r]) => [
              channel,
              { locale: r.locale, ...r.content, ...(r.html === undefined ? {} : { html: r.html }) },
            ]),
          ),
        };
      },
    );
  };
}

/**
 * Checks params against the version's declarations, then renders every channel asked for in
 * `locale`, each within `limitMs`. Problems are 400 template_params_invalid naming
 * body/params/<name>; a channel the template has no variant for is 400 content_missing.
 */
export async function renderForChannels(
  version: StoredTemplateVersion,
  shown: readonly Channel[],
  locale: string | null,
  params: Record<string, unknown>,
  limitMs: number,
): Promise<Map<Channel, RenderedVariant>> {
  checkParams(version, params);
  const missing = shown.filter((c) => version.variants[c] === undefined);
  if (missing.length > 0) {
    throw new ProblemError(
      'content_missing',
      `Template ${version.key} has no variant for ${missing.join(', ')}.`,
      missing.map((c) => ({
        field: 'body/channels',
        message: `template ${version.key} has no ${c} variant`,
      })),
    );
  }
  const out = new Map<Channel, RenderedVariant>();
  for (const channel of shown) {
    try {
      out.set(channel, await renderVariantChecked(version, channel, locale, params, limitMs));
    } catch (error) {
      if (!(error instanceof TemplateRenderError)) throw error;
      throw new ProblemError('template_params_invalid', `${channel}: ${error.message}`, [
        { field: 'body/params', message: `${channel}: ${error.message}` },
      ]);
    }
  }
  return out;
}

function definitionOf(body: Static<typeof TemplateBody>): TemplateDefinition {
  return normalizeDefinition({
    category: body.category ?? 'general',
    lane: body.lane ?? 'transactional',
    params: body.params ?? {},
    fallbackLocale: body.fallback_locale,
    variants: body.variants,
  });
}

function bodyField(place: DefinitionPlace): string {
  if (place.field !== 'variants') {
    return place.field === 'params' && place.param !== undefined
      ? `body/params/${place.param}`
      : `body/${place.field}`;
  }
  return ['body/variants', place.channel, place.locale, place.part]
    .filter((s) => s !== undefined && s !== '')
    .join('/');
}

function presentVersion(v: StoredTemplateVersion) {
  return {
    key: v.key,
    category: v.category,
    lane: v.lane,
    version: v.version,
    params: v.params,
    fallback_locale: v.fallbackLocale,
    variants: v.variants,
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
