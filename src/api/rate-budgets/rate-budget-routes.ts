// A service's rate budgets for its bulk sends (docs/budgets.md): named rates, in deliveries
// per second, that bulk notifications name with `budget` (or fall under, the one named
// `default`). A key sees and changes only its own service's budgets.
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Pool } from '../../db/pools.js';
import {
  deleteRateBudget,
  getRateBudget,
  listRateBudgets,
  putRateBudget,
  type RateBudget,
} from '../../db/stores/rate-budget-store.js';
import { maxBudgetPerSecond, rateBudgetNamePattern } from '../../domain/rate-budget.js';
import { ProblemError } from '../../domain/problems.js';
import { callerOf, requirePermission, type Authenticate } from '../../http/api-key-auth.js';
import { auditedChange } from '../audited-change.js';
import { Answer, answers, Timestamp } from '../../http/openapi-contract.js';

const RateBudgetSchema = Answer({
  name: Type.String(),
  per_second: Type.Integer({ description: 'Most deliveries its sends create in one second.' }),
  updated_at: Timestamp(),
});

const NameParams = Type.Object({ name: Type.String({ pattern: rateBudgetNamePattern }) });

const present = (b: RateBudget) => ({
  name: b.name,
  per_second: b.perSecond,
  updated_at: b.updatedAt.toISOString(),
});

const notFound = (name: string) =>
  new ProblemError('not_found', `This service has no rate budget "${name}".`);

export interface RateBudgetRouteDeps {
  pool: Pool;
  authenticate: Authenticate;
  /**
   * Called after a budget was created or deleted, so this process's ingest stops using what it
   * cached at once (other processes hear the change's NOTIFY).
   */
  onChanged?: (serviceId: number, name: string) => void;
}

export function rateBudgetRoutes(deps: RateBudgetRouteDeps): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const writeGuard = requirePermission(deps.authenticate, ['budgets', 'admin']);
    const readGuard = requirePermission(deps.authenticate, ['budgets', 'send', 'admin']);

    app.put(
      '/v1/rate-budgets/:name',
      {
        onRequest: writeGuard,
        schema: {
          summary: "Create or change one of the calling service's rate budgets",
          tags: ['budgets'],
          operationId: 'putRateBudget',
          params: NameParams,
          body: Type.Object(
            { per_second: Type.Integer({ minimum: 1, maximum: maxBudgetPerSecond }) },
            { additionalProperties: false },
          ),
          response: answers({ 200: RateBudgetSchema }),
        },
      },
      async (request) => {
        const caller = callerOf(request);
        const { name } = request.params;
        const saved = await auditedChange(
          deps.pool,
          request,
          { action: 'rate_budget.update', target: `rate_budget:${caller.serviceName}/${name}` },
          async (client) => {
            const { budget, before } = await putRateBudget(
              client,
              caller.serviceId,
              name,
              request.body.per_second,
            );
            return {
              result: present(budget),
              before: before === undefined ? null : { per_second: before.perSecond },
              after: { per_second: budget.perSecond },
            };
          },
        );
        deps.onChanged?.(caller.serviceId, name);
        return saved;
      },
    );

    app.get(
      '/v1/rate-budgets',
      {
        onRequest: readGuard,
        schema: {
          summary: "The calling service's rate budgets",
          tags: ['budgets'],
          operationId: 'listRateBudgets',
          response: answers({ 200: Answer({ items: Type.Array(RateBudgetSchema) }) }),
        },
      },
      async (request) => ({
        items: (await listRateBudgets(deps.pool, callerOf(request).serviceId)).map(present),
      }),
    );

    app.get(
      '/v1/rate-budgets/:name',
      {
        onRequest: readGuard,
        schema: {
          summary: "One of the calling service's rate budgets",
          tags: ['budgets'],
          operationId: 'getRateBudget',
          params: NameParams,
          response: answers({ 200: RateBudgetSchema }),
        },
      },
      async (request) => {
        const found = await getRateBudget(deps.pool, callerOf(request).serviceId, request.params.name);
        if (found === undefined) throw notFound(request.params.name);
        return present(found);
      },
    );

    app.delete(
      '/v1/rate-budgets/:name',
      {
        onRequest: writeGuard,
        schema: {
          summary: "Delete one of the calling service's rate budgets; its pending sends are no longer paced",
          tags: ['budgets'],
          operationId: 'deleteRateBudget',
          params: NameParams,
          response: answers({ 204: null }),
        },
      },
      async (request, reply) => {
        const caller = callerOf(request);
        const { name } = request.params;
        await auditedChange(
          deps.pool,
          request,
          { action: 'rate_budget.delete', target: `rate_budget:${caller.serviceName}/${name}` },
          async (client) => {
            const deleted = await deleteRateBudget(client, caller.serviceId, name);
            if (deleted === undefined) throw notFound(name);
            return { result: undefined, before: { per_second: deleted.perSecond }, after: null };
          },
        );
        deps.onChanged?.(caller.serviceId, name);
        return reply.status(204).send();
      },
    );
  };
}
