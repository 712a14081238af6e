// /healthz (the process runs), /readyz (database reachable, migrations current) and /metrics.
// Health stays on every port; where /metrics is served is the composition root's choice
// (OPS_ENDPOINTS).
import type { FastifyPluginAsync } from 'fastify';
import type { Pool } from '../db/pools.js';
import { MigrationError, pendingMigrations, type Migration } from '../db/migrate.js';
import type { Metrics } from './metrics.js';

export function opsRoutes(deps: {
  pool: Pool;
  migrations: Migration[];
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
        try {
          const pending = await pendingMigrations(deps.pool, deps.migrations);
          if (pending.length > 0)
            return await reply.code(503).send({ status: 'migrations pending', pending });
          return { status: 'ready' };
        } catch (error) {
          if (error instanceof MigrationError) {
            return reply.code(503).send({ status: 'migrations invalid', detail: error.message });
          }
          return reply.code(503).send({ status: 'database unreachable' });
        }
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
