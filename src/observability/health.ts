// /healthz (the process runs), /readyz (database reachable, migrations current) and /metrics.
// Health stays on every port; where /metrics is served is the composition root's choice
// (OPS_ENDPOINTS).
import type { FastifyPluginAsync } from 'fastify';
import type { Metrics } from './metrics.js';
import type { Readiness } from '../domain/readiness.js';

export function opsRoutes(deps: {
  readiness: () => Promise<Readiness>;
  roles: readonly string[];
}): FastifyPluginAsync {
  return async (app) => {
    const schema = { tags: ['operations'], security: [] };
    app.get('/healthz', { schema: { ...schema, summary: 'Liveness' } }, () => ({
      status: 'ok',
      roles: deps.roles,
    }));
    app.get(
      '/readyz',
      { schema: { ...schema, summary: 'Readiness: database reachable and migrated' } },
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
