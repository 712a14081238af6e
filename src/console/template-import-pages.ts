// A service's templates as a sheet in the console: download (xlsx or CSV, the API's export),
// upload for a dry run reported row by row, Apply of exactly the reviewed file (kept in this
// process, see reviewed-uploads.ts; with warnings only when "accept warnings" is ticked), and
// the list of imports with an Undo button each. Imports and undos go through the same code as
// the API's (templates/template-import.ts, template-import-undo.ts) and are in the audit log
// with the console user as actor and the client address.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import multipart from '@fastify/multipart';
import { Type, type Static } from 'typebox';
import type { Pool } from '../db/pools.js';
import { listImportActors } from '../db/stores/template-history-store.js';
import { listImports } from '../db/stores/template-import-store.js';
import { listCurrentTemplates } from '../db/stores/template-store.js';
import { ProblemError, type ProblemDetail } from '../domain/problems.js';
import { importTemplates, maxImportBytes, reviewImport } from '../templates/template-import.js';
import { undoImport } from '../templates/template-import-undo.js';
import {
  sheetFormats,
  templatesToRows,
  writeSheet,
  xlsxMediaType,
  type SheetFormat,
} from '../templates/template-sheet.js';
import {
  actorOf,
  requireConsole,
  requireConsoleBeforeBody,
  sessionOf,
  type SessionGuardDeps,
} from './console-session.js';
import { consoleTime, layoutData, type RenderView } from './console-views.js';
import { presentReview } from './import-report.js';
import { ReviewedUploads } from './reviewed-uploads.js';
import { serviceNamed, type ConsoleService } from './template-pages.js';

export interface TemplateImportPageDeps extends SessionGuardDeps {
  pool: Pool;
  render: RenderView;
  templateRenderMs: number;
}

/** An uploaded file: the bytes sit behind a getter, so nothing walks them as an object's fields. */
class UploadedFile {
  readonly #bytes: Buffer;
  constructor(bytes: Buffer) {
    this.#bytes = bytes;
  }
  get bytes(): Buffer {
    return this.#bytes;
  }
}

const html = 'text/html; charset=utf-8';
const ServiceParam = Type.Object({ service: Type.String() });
const FormatQuery = Type.Object(
  { format: Type.Optional(Type.Unsafe<SheetFormat>(Type.Union(sheetFormats.map((f) => Type.Literal(f))))) },
  { additionalProperties: false },
);
const ApplyBody = Type.Object(
  {
    _csrf: Type.Optional(Type.String({ maxLength: 100 })),
    upload: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    accept_warnings: Type.Optional(Type.Literal('1')),
  },
  { additionalProperties: false },
);
const UndoParams = Type.Object({
  service: Type.String(),
  id: Type.Integer({ minimum: 1, maximum: 2 ** 53 - 1 }),
});
const CsrfOnly = Type.Object(
  { _csrf: Type.Optional(Type.String({ maxLength: 100 })) },
  { additionalProperties: false },
);
const hrefOf = (service: string) => `/templates/${encodeURIComponent(service)}/import`;

function formatOf(bytes: Buffer): SheetFormat {
  // An xlsx file is a zip archive; anything else is read as CSV.
  return bytes.subarray(0, 4).equals(Buffer.from([0x50, 0x4b, 0x03, 0x04])) ? 'xlsx' : 'csv';
}

async function importsOf(pool: Pool, service: ConsoleService) {
  const records = await listImports(pool, service.id, 50);
  const who = await listImportActors(
    pool,
    service,
    records.map((r) => r.id),
  );
  return records.map((r) => ({
    id: r.id,
    kind: r.kind,
    at: consoleTime(r.createdAt),
    who: who.get(r.id) ?? '',
    templates: r.templateCount,
    summary: Object.entries(r.summary)
      .map(([k, v]) => `${k} ${String(v)}`)
      .join(', '),
    undoes: r.undoes ?? '',
    undone_by: r.undoneBy ?? '',
  }));
}

interface ImportPageExtra {
  status?: number;
  notice?: string;
  error?: { message: string; details: Required<ProblemDetail>[] };
  review?: ReturnType<typeof presentReview>;
}

async function importPage(
  deps: TemplateImportPageDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  service: ConsoleService,
  extra: ImportPageExtra,
) {
  const page = await deps.render('template-import', {
    ...layoutData(sessionOf(request), `Import templates of ${service.name}`),
    notice: extra.notice ?? '',
    service: service.name,
    href: hrefOf(service.name),
    max_mib: maxImportBytes / 1024 / 1024,
    error: extra.error ?? '',
    review: extra.review ?? '',
    imports: await importsOf(deps.pool, service),
  });
  return reply
    .code(extra.status ?? 200)
    .type(html)
    .send(page);
}

const problemOf = (error: ProblemError) => ({
  message: error.message,
  details: (error.errors ?? []).map((e) => ({ field: e.field ?? '', message: e.message })),
});

/** Dry run of an uploaded file: the report row by row, and the file kept for Apply when it reads cleanly. */
async function checkUpload(
  deps: TemplateImportPageDeps,
  uploads: ReviewedUploads,
  request: FastifyRequest,
  reply: FastifyReply,
  serviceName: string,
) {
  const service = await serviceNamed(deps.pool, serviceName);
  const file = (request.body as Record<string, unknown> | undefined)?.['file'];
  if (!(file instanceof UploadedFile) || file.bytes.length === 0)
    return importPage(deps, request, reply, service, {
      status: 400,
      error: { message: 'Choose an xlsx or CSV file to upload.', details: [] },
    });
  const format = formatOf(file.bytes);
  const review = await reviewImport(deps.pool, {
    serviceId: service.id,
    serviceName: service.name,
    keyId: null,
    actor: actorOf(request),
    bytes: file.bytes,
    format,
    renderMs: deps.templateRenderMs,
  });
  const hash = review.ok
    ? uploads.keep({
        bytes: file.bytes,
        format,
        serviceId: service.id,
        userId: sessionOf(request).userId,
        warned: review.report.warnings.length > 0,
      })
    : '';
  // The dry run itself succeeded, whatever it found: the page is its report (200).
  return importPage(deps, request, reply, service, { review: presentReview(review, hash) });
}

/** Imports exactly the reviewed file, as the console user. */
async function applyUpload(
  deps: TemplateImportPageDeps,
  uploads: ReviewedUploads,
  request: FastifyRequest,
  reply: FastifyReply,
  form: { service: string } & Static<typeof ApplyBody>,
) {
  const service = await serviceNamed(deps.pool, form.service);
  const session = sessionOf(request);
  const { upload: hash, accept_warnings: accepted } = form;
  const upload = uploads.find(hash, session.userId, service.id);
  if (upload === undefined)
    return importPage(deps, request, reply, service, {
      status: 404,
      error: {
        message:
          'That upload is no longer here (it was applied already, or it is older than 30 minutes): upload the file again.',
        details: [],
      },
    });
  if (upload.warned && accepted !== '1')
    return importPage(deps, request, reply, service, {
      status: 400,
      error: {
        message:
          'The file has text that looks mis-decoded. Fix it and upload it again, or tick "accept warnings".',
        details: [],
      },
    });
  try {
    const report = await importTemplates(deps.pool, {
      serviceId: service.id,
      serviceName: service.name,
      keyId: null,
      actor: actorOf(request),
      bytes: upload.bytes,
      format: upload.format,
      dryRun: false,
      acceptWarnings: accepted === '1',
      renderMs: deps.templateRenderMs,
    });
    uploads.forget(hash, session.userId, service.id);
    return await reply.redirect(`${hrefOf(service.name)}?applied=${String(report.import_id)}`, 303);
  } catch (error) {
    if (!(error instanceof ProblemError)) throw error;
    return importPage(deps, request, reply, service, { status: error.status, error: problemOf(error) });
  }
}

async function undo(
  deps: TemplateImportPageDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  params: Static<typeof UndoParams>,
) {
  const service = await serviceNamed(deps.pool, params.service);
  try {
    const undone = await undoImport(
      deps.pool,
      { serviceId: service.id, serviceName: service.name, keyId: null, actor: actorOf(request) },
      params.id,
    );
    return await reply.redirect(`${hrefOf(service.name)}?undone=${String(undone.undoes)}`, 303);
  } catch (error) {
    if (!(error instanceof ProblemError) || error.code !== 'template_import_undo_conflict') throw error;
    return importPage(deps, request, reply, service, { status: 409, error: problemOf(error) });
  }
}

export function templateImportPages(deps: TemplateImportPageDeps): FastifyPluginAsync {
  const uploads = new ReviewedUploads(() => deps.now().getTime());
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const reader = requireConsole(deps, 'read');
    const writer = requireConsole(deps, 'templates:write');
    await app.register(multipart, {
      attachFieldsToBody: 'keyValues',
      limits: { fileSize: maxImportBytes, files: 1, fields: 4, parts: 5, fieldSize: 1000 },
      onFile: async (part) => {
        (part as unknown as { value: unknown }).value = new UploadedFile(await part.toBuffer());
      },
    });

    app.get(
      '/templates/:service/export',
      { schema: { hide: true, params: ServiceParam, querystring: FormatQuery }, preHandler: reader },
      async (request, reply) => {
        const service = await serviceNamed(deps.pool, request.params.service);
        const format = request.query.format ?? 'xlsx';
        const rows = templatesToRows(await listCurrentTemplates(deps.pool, service.id));
        return reply
          .header('content-type', format === 'xlsx' ? xlsxMediaType : 'text/csv; charset=utf-8')
          .header('content-disposition', `attachment; filename="${service.name}-templates.${format}"`)
          .send(await writeSheet(rows, format));
      },
    );

    app.get(
      '/templates/:service/import',
      {
        schema: {
          hide: true,
          params: ServiceParam,
          querystring: Type.Object(
            {
              applied: Type.Optional(Type.Integer({ minimum: 1 })),
              undone: Type.Optional(Type.Integer({ minimum: 1 })),
            },
            { additionalProperties: false },
          ),
        },
        preHandler: reader,
      },
      async (request, reply) => {
        const service = await serviceNamed(deps.pool, request.params.service);
        const { applied, undone } = request.query;
        const notice =
          applied !== undefined
            ? `Applied: import ${String(applied)}.`
            : undone !== undefined
              ? `Undone: import ${String(undone)}.`
              : undefined;
        return importPage(deps, request, reply, service, notice === undefined ? {} : { notice });
      },
    );

    app.post(
      '/templates/:service/import',
      {
        schema: { hide: true, params: ServiceParam },
        // Refuse a request without a live session that may import before its file is read.
        onRequest: requireConsoleBeforeBody(deps, 'templates:write'),
        preHandler: writer,
      },
      async (request, reply) => checkUpload(deps, uploads, request, reply, request.params.service),
    );

    app.post(
      '/templates/:service/import/apply',
      { schema: { hide: true, params: ServiceParam, body: ApplyBody }, preHandler: writer },
      async (request, reply) =>
        applyUpload(deps, uploads, request, reply, { ...request.body, service: request.params.service }),
    );

    app.post(
      '/templates/:service/imports/:id/undo',
      { schema: { hide: true, params: UndoParams, body: CsrfOnly }, preHandler: writer },
      async (request, reply) => undo(deps, request, reply, request.params),
    );
  };
}
