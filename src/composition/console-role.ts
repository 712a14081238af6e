// The console role: the web console for operators and support staff, on CONSOLE_PORT
// (docs/console.md). People sign in with console accounts, not API keys.
import type { Config } from '../config/schema.js';
import { buildServer } from '../http/build-server.js';
import { consoleRoutes } from '../console/console-routes.js';
import { SingleSignOn } from '../console/single-sign-on.js';
import { templateCheckMs } from './ingest-deps.js';
import type { Infrastructure } from './infrastructure.js';
import { operationsRoutes, serve } from './ops-server.js';
import { providerOverview } from './provider-overview.js';

/** Single sign-on when CONSOLE_OIDC_ISSUER is set (loadConfig checked the others are too). */
function singleSignOnOf(infra: Infrastructure, config: Config): SingleSignOn | undefined {
  const { CONSOLE_OIDC_ISSUER: issuer, CONSOLE_OIDC_CLIENT_ID: clientId } = config;
  const { CONSOLE_OIDC_CLIENT_SECRET: clientSecret, CONSOLE_OIDC_REDIRECT_URL: redirectUrl } = config;
  if (
    issuer === undefined ||
    clientId === undefined ||
    clientSecret === undefined ||
    redirectUrl === undefined
  )
    return undefined;
  const singleSignOn = new SingleSignOn(
    {
      issuer: new URL(issuer),
      clientId,
      clientSecret,
      redirectUrl: new URL(redirectUrl),
      name: config.CONSOLE_OIDC_NAME,
    },
    infra.logger,
    infra.now,
  );
  infra.onStop(() => singleSignOn.close());
  // Discovered now, in the background: a provider that is down delays nothing and stops
  // nothing; the first single sign-on tries again.
  void singleSignOn.discover();
  return singleSignOn;
}

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
        singleSignOn: singleSignOnOf(infra, config),
        // As on the api role: a month leaves the service store a day after this.
        replayableDays: Math.max(1, config.SERVICE_RETENTION_DAYS - 1),
        contentProblems: (channel, content, data) => infra.providers.contentProblems(channel, content, data),
        // As the api role checks a template when it is saved or sent.
        templateRenderMs: templateCheckMs(config),
        providers: providerOverview(config),
      }),
    ],
  );
  return serve(infra, app, config.CONSOLE_PORT);
}
