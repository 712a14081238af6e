// /healthz (the process runs), /readyz (database reachable, migrations current) and /metrics.
import type { FastifyPluginAsync } from 'fastify';
import type { Pool } from '../db/pools.js';
import { MigrationError, pendingMigrations, type Migration } from '../db/migrate.js';
import type { Metrics } from './metrics.js';

export function opsRoutes(deps: {
  pool: Pool;
  migrations: Migration[];
  metrics: Metrics;
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
    app.get(
      '/metrics',
      { schema: { ...schema, summary: 'Prometheus metrics', hide: true } },
      async (_request, reply) => {
        const body = await deps.metrics.registry.metrics();
        return reply.type(deps.metrics.registry.contentType).send(body);
      },
    );
  };
}
