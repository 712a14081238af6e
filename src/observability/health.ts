// /healthz (the process runs), /readyz (database reachable, migrations current) and /metrics.
// Health stays on every port; where /metrics is served is the composition root's choice
// (OPS_ENDPOINTS).
import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import type { Metrics } from './metrics.js';
import type { Readiness } from '../domain/readiness.js';

const Health = Type.Object(
  {
    status: Type.Literal('ok'),
    roles: Type.Array(Type.String(), { description: 'The roles this process runs.' }),
  },
  { additionalProperties: false, description: 'The process runs.' },
);
const Readiness = Type.Object(
  {
    status: Type.Enum(['ready', 'migrations pending', 'migrations invalid', 'database unreachable']),
    pending: Type.Optional(Type.Array(Type.String(), { description: 'Migrations not yet applied.' })),
    detail: Type.Optional(Type.String()),
  },
  {
    additionalProperties: false,
    description: 'Whether the database answers and every migration is applied.',
  },
);

export function opsRoutes(deps: {
  readiness: () => Promise<Readiness>;
  roles: readonly string[];
  /** The error answers every route documents (problem+json), added to the probes' own. */
  errorAnswers: Record<string, unknown>;
}): FastifyPluginAsync {
  return async (app) => {
    const schema = { tags: ['operations'], security: [] };
    app.get(
      '/healthz',
      {
        schema: {
          ...schema,
          summary: 'Liveness',
          operationId: 'health',
          response: { 200: Health, ...deps.errorAnswers },
        },
      },
      () => ({
        status: 'ok' as const,
        roles: deps.roles,
      }),
    );
    app.get(
      '/readyz',
      {
        schema: {
          ...schema,
          summary: 'Readiness: database reachable and migrated',
          operationId: 'readiness',
          response: { 200: Readiness, 503: Readiness, ...deps.errorAnswers },
        },
      },
      async (_request, reply) => {
        const readiness = await deps.readiness();
        return reply.code(readiness.status === 'ready' ? 200 : 503).send(readiness);
      },
    );
  };
}

export function metricsRoutes(metrics: Metrics): FastifyPluginAsync {
  return async (app) => {
    app.get(
      '/metrics',
      { schema: { tags: ['operations'], security: [], summary: 'Prometheus metrics', hide: true } },
      async (_request, reply) => {
        const body = await metrics.registry.metrics();
        return reply.type(metrics.registry.contentType).send(body);
      },
    );
  };
}
