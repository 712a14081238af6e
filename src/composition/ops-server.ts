// Health, readiness and metrics: on the api and query ports (OPS_ENDPOINTS=public, the
// default), and on OPS_PORT for processes without an HTTP role or when the operator keeps them
// off the public ports (OPS_ENDPOINTS=ops-port, docs/security.md).
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Config } from '../config/schema.js';
import { buildServer, roleDocumentRoutes, type OpenApiDocument } from '../http/build-server.js';
import { metricsRoutes, opsRoutes } from '../observability/health.js';
import { migrationReadiness } from '../db/migrate.js';
import type { Infrastructure } from './infrastructure.js';
import { roleNames, type RoleName } from './roles.js';
import { answers } from '../http/openapi-contract.js';

/** An HTTP role once listening: its URL, and its OpenAPI document for the ops port. */
export interface StartedHttpRole {
  url: string;
  document: () => OpenApiDocument;
}

export function operationsRoutes(infra: Infrastructure): {
  ops: FastifyPluginAsync;
  onRolePorts: FastifyPluginAsync[];
} {
  const ops = opsRoutes({
    readiness: () => migrationReadiness(infra.pool, infra.migrations),
    roles: roleNames.filter((r) => infra.roles.has(r)),
    errorAnswers: answers({}),
  });
  const opsPortOnly = infra.config.OPS_ENDPOINTS === 'ops-port';
  return { ops, onRolePorts: opsPortOnly ? [ops] : [ops, metricsRoutes(infra.metrics)] };
}

/** Listens on `port`; the server closes when the process stops. */
export async function serve(infra: Infrastructure, app: FastifyInstance, port: number): Promise<string> {
  infra.onStop(() => app.close());
  return app.listen({ port, host: infra.config.HOST });
}

/** The ops port's server, when this process has one; its URL. */
export async function startOpsServer(
  infra: Infrastructure,
  config: Config,
  documents: { role: RoleName; document: () => OpenApiDocument }[],
): Promise<string | undefined> {
  const httpRoles = infra.roles.has('api') || infra.roles.has('query');
  const wanted = config.OPS_ENDPOINTS === 'ops-port' || (!httpRoles && config.OPS_PORT > 0);
  if (!wanted) return undefined;
  const app = await buildServer(
    { ...infra.serverOptions, role: 'ops', title: 'Herald operations', description: 'Health and metrics.' },
    [
      operationsRoutes(infra).ops,
      metricsRoutes(infra.metrics),
      roleDocumentRoutes(documents.map((d) => ({ role: d.role, document: d.document() }))),
    ],
  );
  return serve(infra, app, config.OPS_PORT);
}
