// The console role: the web console for operators and support staff, on CONSOLE_PORT
// (docs/console.md). People sign in with console accounts, not API keys.
import type { Config } from '../config/schema.js';
import { buildServer } from '../http/build-server.js';
import { consoleRoutes } from '../console/console-routes.js';
import type { Infrastructure } from './infrastructure.js';
import { operationsRoutes, serve } from './ops-server.js';
import { providerOverview } from './provider-overview.js';

export async function startConsoleRole(infra: Infrastructure, config: Config): Promise<string> {
  const app = await buildServer(
    {
      role: 'console',
      ...infra.serverOptions,
      title: 'Herald console',
      description: 'The web console for people.',
      // Its pages are not an API: no OpenAPI document or UI on this port.
      exposeDocs: false,
    },
    [
      ...operationsRoutes(infra).onRolePorts,
      consoleRoutes({
        pool: infra.pool,
        now: infra.now,
        settings: {
          idleMs: config.CONSOLE_SESSION_IDLE_MINUTES * 60_000,
          maxAgeMs: config.CONSOLE_SESSION_MAX_HOURS * 3_600_000,
        },
        attemptsPerMinute: config.CONSOLE_LOGIN_ATTEMPTS_PER_MINUTE,
        lockAfterFailures: config.CONSOLE_LOCKOUT_FAILURES,
        lockoutMs: config.CONSOLE_LOCKOUT_MINUTES * 60_000,
        notifier: infra.notifier,
        archivePool: infra.archivePool,
        // As on the api role: a month leaves the service store a day after this.
        replayableDays: Math.max(1, config.SERVICE_RETENTION_DAYS - 1),
        providers: providerOverview(config),
      }),
    ],
  );
  return serve(infra, app, config.CONSOLE_PORT);
}
