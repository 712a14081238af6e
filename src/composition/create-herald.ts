// The composition root: opens what the process's roles share (infrastructure.ts), starts each
// role (one module per role, `start(infra, config)`), and returns a handle that stops them all.
// The only code that constructs infrastructure and reads Config.
import type { Pool } from '../db/pools.js';
import type { FanOutStage } from '../pipeline/fan-out-stage.js';
import type { PipelineEvents } from '../pipeline/pipeline-events.js';
import type { Metrics } from '../observability/metrics.js';
import type { OpenApiDocument } from '../http/build-server.js';
import { openInfrastructure, type HeraldOptions } from './infrastructure.js';
import { roleNames, type RoleName } from './roles.js';
import { startApiRole } from './api-role.js';
import { startQueryRole } from './query-role.js';
import { startWorkerRole } from './worker-role.js';
import { startSchedulerRole } from './scheduler-role.js';
import { startConsoleRole } from './console-role.js';
import { startIntakeRole } from './intake-role.js';
import { startOpsServer } from './ops-server.js';

export type { HeraldOptions } from './infrastructure.js';
export { lifecycleSettings } from './scheduler-role.js';

export interface Herald {
  readonly databaseUrl: string;
  readonly pool: Pool;
  /** The archive store's pool (docs/retention.md); opened for the query and scheduler roles. */
  readonly archivePool: Pool | undefined;
  readonly metrics: Metrics;
  readonly events: PipelineEvents;
  readonly apiUrl: string | undefined;
  readonly queryUrl: string | undefined;
  readonly consoleUrl: string | undefined;
  /** The ops port's server (OPS_PORT), when this process listens on it. */
  readonly opsUrl: string | undefined;
  readonly devApiKey: string | undefined;
  readonly fanOut: FanOutStage | undefined;
  stop(): Promise<void>;
}

export async function startHerald(options: HeraldOptions): Promise<Herald> {
  const { config, logger } = options;
  const infra = await openInfrastructure(options);
  try {
    const documents: { role: RoleName; document: () => OpenApiDocument }[] = [];
    const api = infra.roles.has('api') ? await startApiRole(infra, config) : undefined;
    if (api !== undefined) documents.push({ role: 'api', document: api.document });
    const query = infra.roles.has('query') ? await startQueryRole(infra, config) : undefined;
    if (query !== undefined) documents.push({ role: 'query', document: query.document });
    const consoleUrl = infra.roles.has('console') ? await startConsoleRole(infra, config) : undefined;
    const opsUrl = await startOpsServer(infra, config, documents);
    const worker = infra.roles.has('worker') ? startWorkerRole(infra, config) : undefined;
    if (infra.roles.has('scheduler')) startSchedulerRole(infra, config);
    if (infra.roles.has('intake')) await startIntakeRole(infra, config);
    logger.info(
      {
        roles: roleNames.filter((r) => infra.roles.has(r)),
        apiUrl: api?.url,
        queryUrl: query?.url,
        consoleUrl,
        embedded: infra.embedded,
      },
      'herald started',
    );
    return {
      databaseUrl: infra.databaseUrl,
      pool: infra.pool,
      archivePool: infra.archivePool,
      metrics: infra.metrics,
      events: infra.events,
      apiUrl: api?.url,
      queryUrl: query?.url,
      consoleUrl,
      opsUrl,
      devApiKey: infra.devApiKey,
      fanOut: worker?.fanOut,
      stop: () => infra.close(),
    };
  } catch (error) {
    await infra.close();
    throw error;
  }
}
