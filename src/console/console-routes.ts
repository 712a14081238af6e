// The console role's pages (docs/console.md): sign-in, home, the overview, people, the audit log,
// notifications, templates, dead letters, support, services, categories, providers, and the
// stylesheet and scripts. Every answer carries a Content Security Policy that allows scripts,
// styles and requests from this origin only, and forms that post only here.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import cookie from '@fastify/cookie';
import formBody from '@fastify/formbody';
import type { Pool } from '../db/pools.js';
import { packageRoot } from '../db/package-root.js';
import { capabilitiesOf, type ConsoleCapability } from '../domain/console-roles.js';
import { auditRoutes } from './audit-routes.js';
import { categoryPages } from './category-pages.js';
import { providerPages, type ProviderOverview } from './provider-pages.js';
import { deadLetterPages } from './dead-letter-pages.js';
import { supportPages } from './support-pages.js';
import { servicePages } from './service-pages.js';
import { notificationPages } from './notification-pages.js';
import { overviewPages } from './overview-pages.js';
import { templatePages } from './template-pages.js';
import { templateImportPages } from './template-import-pages.js';
import type { ContentProblems } from './template-page-data.js';
import type { WakeNotifier } from '../db/wake-notifier.js';
import { consoleUserRoutes } from './console-user-routes.js';
import { requireConsole, sessionOf, type SessionSettings } from './console-session.js';
import { consoleViews, layoutData } from './console-views.js';
import { loginRoutes } from './login-routes.js';
import { signInPage } from './sign-in-page.js';
import type { SingleSignOn } from './single-sign-on.js';
import { singleSignOnRoutes } from './single-sign-on-routes.js';

export interface ConsoleDeps {
  pool: Pool;
  now: () => Date;
  settings: SessionSettings;
  attemptsPerMinute: number;
  lockAfterFailures: number;
  lockoutMs: number;
  notifier: WakeNotifier;
  replayableDays: number;
  /** The archive store: the support lookup reads the months retention moved there. */
  archivePool: Pool | undefined;
  /** Single sign-on with an OpenID Connect provider, when configured. */
  singleSignOn: SingleSignOn | undefined;
  /** What the configured providers would refuse in a template preview's content. */
  contentProblems: ContentProblems;
  /** Wall-clock time one variant may take in a trial render or preview (as the api role's check). */
  templateRenderMs: number;
  /** The providers as configured, credentials reduced to whether they are set (composition builds it). */
  providers: ProviderOverview;
}

/** The files under src/console/assets/ the pages load, with their media types. */
const assets = {
  'console.css': 'text/css; charset=utf-8',
  'template-preview.js': 'text/javascript; charset=utf-8',
} as const;

const securityHeaders = {
  'content-security-policy': [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; '),
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store',
};

const capabilityText: Record<ConsoleCapability, string> = {
  read: 'see the overview, notifications and dead letters (contact targets masked)',
  'support:lookup': 'look up a user and their notifications (every lookup is audited)',
  'templates:write': 'edit and import templates, set categories',
  'dead_letters:replay': 'replay dead letters',
  'services:manage': 'create services and keys, rotate webhook secrets',
  'console_users:manage': 'create console accounts and change their roles',
  'audit:read': 'search the audit log',
};

export function consoleRoutes(deps: ConsoleDeps): FastifyPluginAsync {
  const render = consoleViews();
  return async (app) => {
    await app.register(cookie);
    await app.register(formBody, { bodyLimit: 65_536 });
    app.addHook('onSend', async (_request, reply, payload) => {
      void reply.headers(securityHeaders);
      return payload;
    });
    for (const [name, type] of Object.entries(assets)) {
      const file = await readFile(join(packageRoot, 'src', 'console', 'assets', name));
      app.get(`/assets/${name}`, { schema: { hide: true } }, async (_request, reply) =>
        reply.type(type).send(file),
      );
    }
    app.get(
      '/',
      { schema: { hide: true }, preHandler: requireConsole(deps, 'read') },
      async (request, reply) => {
        const session = sessionOf(request);
        const html = await render('home', {
          ...layoutData(session, 'Home'),
          allowed: capabilitiesOf(session.role).map((c) => capabilityText[c]),
        });
        return reply.type('text/html; charset=utf-8').send(html);
      },
    );
    const signIn = signInPage({ ...deps, render, singleSignOn: deps.singleSignOn?.name ?? '' });
    await app.register(loginRoutes({ ...deps, signIn }));
    if (deps.singleSignOn !== undefined)
      await app.register(singleSignOnRoutes({ ...deps, singleSignOn: deps.singleSignOn, render, signIn }));
    await app.register(consoleUserRoutes({ ...deps, render }));
    await app.register(auditRoutes({ ...deps, render }));
    await app.register(deadLetterPages({ ...deps, render }));
    await app.register(supportPages({ ...deps, render }));
    await app.register(servicePages({ ...deps, render }));
    await app.register(notificationPages({ ...deps, render }));
    await app.register(overviewPages({ ...deps, render }));
    await app.register(templatePages({ ...deps, render }));
    await app.register(templateImportPages({ ...deps, render }));
    await app.register(categoryPages({ ...deps, render }));
    await app.register(providerPages({ ...deps, render }));
  };
}
