// /v1/templates/export and /v1/templates/import: every template of a service as one sheet (xlsx
// or CSV), for the operations team. An import is all or nothing (templates/template-import.ts). See
// docs/templates.md.
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { answers } from '../../http/openapi-contract.js';
import { ImportReportSchema } from './template-answers.js';
import { Type } from 'typebox';
import { listCurrentTemplates } from '../../db/stores/template-store.js';
import { ProblemError } from '../../domain/problems.js';
import { callerOf, requirePermission } from '../../http/api-key-auth.js';
import {
  sheetFormats,
  templatesToRows,
  writeSheet,
  xlsxMediaType,
  type SheetFormat,
} from '../../templates/template-sheet.js';
import { oneOf } from './template-input.js';
import { importTemplates, maxImportBytes } from '../../templates/template-import.js';
import { apiKeyActor } from '../audited-change.js';
import type { TemplateRouteDeps } from './template-routes.js';

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
    // Import files, in this plugin only; every other route keeps BODY_LIMIT_BYTES.
    app.addContentTypeParser(
      ['text/csv', xlsxMediaType, 'application/octet-stream'],
      { parseAs: 'buffer', bodyLimit: maxImportBytes },
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
          operationId: 'exportTemplates',
          tags,
          produces: [xlsxMediaType, 'text/csv'],
          response: answers({
            200: Type.Unsafe<Buffer>({
              description: 'The sheet: .xlsx (format=xlsx, the default) or UTF-8 .csv.',
              type: 'string',
              contentMediaType: 'application/octet-stream',
            }),
          }),
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
        bodyLimit: maxImportBytes,
        schema: {
          summary:
            'Import a sheet as exported: all or nothing; rows equal to the current version change nothing',
          operationId: 'importTemplates',
          consumes: [xlsxMediaType, 'text/csv'],
          body: Type.Unsafe<Upload>({ description: 'The sheet file, as exported (.xlsx or .csv).' }),
          response: answers({ 200: ImportReportSchema }),
          description:
            'The report lists each changed cell old → new and warns of text that looks mis-decoded; ' +
            'an import with warnings is refused unless accept_warnings=true. An applied import can be ' +
            'undone with POST /v1/templates/imports/{importId}/undo.',
          tags,
          querystring: Type.Object(
            {
              dry_run: Type.Optional(Type.Boolean({ default: false })),
              accept_warnings: Type.Optional(Type.Boolean({ default: false })),
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
        const { serviceId, serviceName, keyId } = callerOf(request);
        const report = await importTemplates(deps.pool, {
          serviceId,
          serviceName,
          keyId,
          actor: apiKeyActor(request),
          bytes: body.bytes,
          format,
          dryRun: request.query.dry_run ?? false,
          acceptWarnings: request.query.accept_warnings ?? false,
          renderMs: deps.templateRenderMs,
        });
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
