// /v1/templates: write (admin) and read (sender) a service's templates. Preview:
// template-preview-routes.ts; the sheet export and import: template-sheet-routes.ts. See
// docs/templates.md.
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { answers } from '../../http/openapi-contract.js';
import { SavedTemplateSchema, TemplateListSchema, TemplateVersionSchema } from './template-answers.js';
import { Type } from 'typebox';
import type { Pool } from '../../db/pools.js';
import {
  findTemplateVersion,
  listTemplates,
  listTemplateVersions,
  lockTemplateStates,
  saveTemplate,
} from '../../db/stores/template-store.js';
import { ProblemError } from '../../domain/problems.js';
import { callerOf, requirePermission, type Authenticate } from '../../http/api-key-auth.js';
import { reservedTemplateKeys } from '../../domain/template.js';
import { definitionProblems } from '../../templates/definition-check.js';
import { bodyField, definitionOf, KeyParam, presentVersion, TemplateBody } from './template-input.js';
import { auditedChange } from '../audited-change.js';

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
    app.get(
      '/v1/templates',
      {
        onRequest: reader,
        schema: {
          summary: "Your service's templates",
          operationId: 'listTemplates',
          tags,
          response: answers({ 200: TemplateListSchema }),
        },
      },
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

    app.put(
      '/v1/templates/:key',
      {
        onRequest: writer,
        schema: {
          summary: 'Create or edit a template; a change makes a new version',
          operationId: 'saveTemplate',
          tags,
          response: answers({ 200: SavedTemplateSchema }),
          params: KeyParam,
          body: TemplateBody,
        },
      },
      async (request) => {
        const { key } = request.params;
        if (reservedTemplateKeys.has(key)) {
          throw new ProblemError('template_invalid', `"${key}" is reserved.`, [
            { field: 'params/key', message: 'reserved' },
          ]);
        }
        const definition = definitionOf(request.body);
        const problems = await definitionProblems(definition, deps.templateRenderMs);
        if (problems.length > 0) {
          throw new ProblemError(
            'template_invalid',
            problems.map((p) => `${bodyField(p.place)}: ${p.message}`).join('; '),
            problems.map((p) => ({ field: bodyField(p.place), message: p.message })),
          );
        }
        const { serviceId, serviceName } = callerOf(request);
        const result = await auditedChange(
          deps.pool,
          request,
          { action: 'template.update', target: `template:${serviceName}/${key}` },
          async (client) => {
            const before = (await lockTemplateStates(client, serviceId, [key])).get(key) ?? null;
            const saved = await saveTemplate(client, serviceId, key, definition);
            return {
              result: saved,
              changed: saved.changed,
              before,
              after: { version: saved.version, category: definition.category, lane: definition.lane },
            };
          },
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
          operationId: 'getTemplate',
          tags,
          response: answers({ 200: TemplateVersionSchema }),
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
  };
}
