// A service's category settings: critical, marketing, per-channel defaults and frequency caps
// (API key). The fan-out stage applies them (src/domain/preferences.ts).
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Pool } from '../../db/pools.js';
import {
  CategoryCapsSchema,
  CategoryDefaultsSchema,
  CategoryInputSchema,
  CategoryNameSchema,
  getCategory,
  replaceCategory,
} from '../../db/stores/category-store.js';
import { categorySettingsProblem } from '../../domain/preferences.js';
import { ProblemError } from '../../domain/problems.js';
import { callerOf, requirePermission, type Authenticate } from '../../http/api-key-auth.js';
import { auditedChange } from '../audited-change.js';
import { Answer, answers, Nullable, Timestamp } from '../../http/openapi-contract.js';

const CategorySchema = Answer({
  category: Type.String(),
  critical: Type.Boolean(),
  marketing: Type.Boolean(),
  defaults: CategoryDefaultsSchema,
  caps: CategoryCapsSchema,
  updated_at: Nullable(Timestamp('Null: never set (these are the defaults).')),
});

function presentCategory(
  category: string,
  s: { critical: boolean; marketing: boolean; defaults: object; caps: object; updatedAt: Date | null },
) {
  return {
    category,
    critical: s.critical,
    marketing: s.marketing,
    defaults: s.defaults,
    caps: s.caps,
    updated_at: s.updatedAt?.toISOString() ?? null,
  };
}

export function categoryRoutes(deps: { pool: Pool; authenticate: Authenticate }): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    // Category settings are the operator's: changing them takes an admin key.
    const adminGuard = requirePermission(deps.authenticate, ['admin']);

    app.put(
      '/v1/categories/:category',
      {
        onRequest: adminGuard,
        schema: {
          summary: "Set one of the calling service's categories (replaces its settings)",
          tags: ['preferences'],
          operationId: 'setCategory',
          params: Type.Object({ category: CategoryNameSchema }),
          body: CategoryInputSchema,
          response: answers({ 200: CategorySchema }),
        },
      },
      async (request) => {
        const caller = callerOf(request);
        const body = request.body;
        const settings = {
          critical: body.critical ?? false,
          marketing: body.marketing ?? false,
          defaults: body.defaults ?? {},
          caps: body.caps ?? {},
        };
        const problem = categorySettingsProblem(settings);
        if (problem !== undefined)
          throw new ProblemError('validation_failed', 'A category cannot be both critical and marketing.', [
            { field: 'body/marketing', message: problem },
          ]);
        const { category } = request.params;
        return auditedChange(
          deps.pool,
          request,
          { action: 'category.update', target: `category:${caller.serviceName}/${category}` },
          async (client) => {
            const { before, updatedAt } = await replaceCategory(client, caller.serviceId, category, settings);
            return {
              result: presentCategory(category, { ...settings, updatedAt }),
              before,
              after: settings,
            };
          },
        );
      },
    );

    app.get(
      '/v1/categories/:category',
      {
        onRequest: requirePermission(deps.authenticate, ['send', 'templates', 'admin']),
        schema: {
          summary: "One of the calling service's categories (the defaults when never set)",
          operationId: 'getCategory',
          tags: ['preferences'],
          params: Type.Object({ category: CategoryNameSchema }),
          response: answers({ 200: CategorySchema }),
        },
      },
      async (request) => {
        const caller = callerOf(request);
        const found = await getCategory(deps.pool, caller.serviceId, request.params.category);
        return presentCategory(
          request.params.category,
          found ?? { critical: false, marketing: false, defaults: {}, caps: {}, updatedAt: null },
        );
      },
    );
  };
}
