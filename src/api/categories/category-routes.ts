// A service's category settings: critical, marketing, per-channel defaults and frequency caps
// (API key). The fan-out stage applies them (src/domain/preferences.ts).
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { withTransaction, type Pool } from '../../db/pools.js';
import {
  CategoryCapsSchema,
  CategoryDefaultsSchema,
  getCategory,
  putCategory,
} from '../../db/stores/category-store.js';
import { ProblemError } from '../../domain/problems.js';
import { callerOf, requirePermission, type Authenticate } from '../../http/api-key-auth.js';
import { CategoryName } from '../../preferences/user-preference-routes.js';

const CategoryBody = Type.Object(
  {
    critical: Type.Optional(
      Type.Boolean({ description: 'Always delivered: preferences, quiet hours and caps do not apply.' }),
    ),
    marketing: Type.Optional(Type.Boolean({ description: 'Suppressed for users whose no_marketing is on.' })),
    defaults: Type.Optional(CategoryDefaultsSchema),
    caps: Type.Optional(CategoryCapsSchema),
  },
  { additionalProperties: false },
);

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
          params: Type.Object({ category: CategoryName }),
          body: CategoryBody,
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
        if (settings.critical && settings.marketing)
          throw new ProblemError('validation_failed', 'A category cannot be both critical and marketing.', [
            { field: 'body/marketing', message: 'must be false when critical is true' },
          ]);
        const updatedAt = await withTransaction(deps.pool, (client) =>
          putCategory(client, caller.serviceId, request.params.category, settings),
        );
        return presentCategory(request.params.category, { ...settings, updatedAt });
      },
    );

    app.get(
      '/v1/categories/:category',
      {
        onRequest: requirePermission(deps.authenticate, ['send', 'templates', 'admin']),
        schema: {
          summary: "One of the calling service's categories (the defaults when never set)",
          tags: ['preferences'],
          params: Type.Object({ category: CategoryName }),
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
