// /v1/templates/imports: a service's recorded imports, and undoing one in a step
// (templates/template-import-undo.ts). See docs/templates.md, "Undoing an import".
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { answers } from '../../http/openapi-contract.js';
import { ImportListSchema, UndoneImportSchema } from './template-answers.js';
import { Type } from 'typebox';
import { listImports, type ImportRecord } from '../../db/stores/template-import-store.js';
import { ProblemError } from '../../domain/problems.js';
import { callerOf, requirePermission } from '../../http/api-key-auth.js';
import { undoImport } from '../../templates/template-import-undo.js';
import { apiKeyActor } from '../audited-change.js';
import type { TemplateRouteDeps } from './template-routes.js';

const ImportIdParam = Type.Object({
  importId: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
});

/** Opaque cursor: base64url of the id of the last import listed. */
const encodeCursor = (id: number): string => Buffer.from(String(id)).toString('base64url');

function decodeCursor(cursor: string): number {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const id = Number(text);
  if (!/^[1-9][0-9]{0,15}$/.test(text) || !Number.isSafeInteger(id)) {
    throw new ProblemError('cursor_invalid', 'Use the next_cursor of a page of this listing.', [
      { field: 'querystring/cursor', message: 'invalid' },
    ]);
  }
  return id;
}

function presentImport(record: ImportRecord) {
  return {
    id: record.id,
    kind: record.kind,
    created_at: record.createdAt.toISOString(),
    key_id: record.keyId,
    undoes: record.undoes,
    undone_by: record.undoneBy,
    templates: record.templateCount,
    summary: record.summary,
  };
}

export function templateImportRoutes(deps: TemplateRouteDeps): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const writer = requirePermission(deps.authenticate, ['templates']);
    const tags = ['templates'];

    app.get(
      '/v1/templates/imports',
      {
        onRequest: writer,
        schema: {
          summary: "Your service's template imports and undos, newest first, with their report summary",
          operationId: 'listTemplateImports',
          tags,
          response: answers({ 200: ImportListSchema }),
          querystring: Type.Object(
            {
              limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
              cursor: Type.Optional(Type.String({ maxLength: 100 })),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (request) => {
        const limit = request.query.limit ?? 20;
        const before = request.query.cursor === undefined ? undefined : decodeCursor(request.query.cursor);
        const records = await listImports(deps.pool, callerOf(request).serviceId, limit, before);
        const last = records.at(-1);
        return {
          items: records.map(presentImport),
          next_cursor: records.length === limit && last !== undefined ? encodeCursor(last.id) : null,
        };
      },
    );

    app.post(
      '/v1/templates/imports/:importId/undo',
      {
        onRequest: writer,
        schema: {
          summary:
            'Undo an import: every template it changed goes back to its state before it, unless one changed since',
          operationId: 'undoTemplateImport',
          tags,
          params: ImportIdParam,
          response: answers({ 200: UndoneImportSchema }),
        },
      },
      async (request) => {
        const caller = callerOf(request);
        const { serviceId, serviceName, keyId } = caller;
        const undone = await undoImport(
          deps.pool,
          { serviceId, serviceName, keyId, actor: apiKeyActor(request) },
          request.params.importId,
        );
        deps.onSaved?.(
          caller.serviceId,
          undone.templates.map((t) => t.key),
        );
        return undone;
      },
    );
  };
}
