// The console role's pages (docs/console.md): sign-in, home, the overview, people, the audit log,
// notifications, dead letters, support, services, categories, providers and the stylesheet. Every
// answer carries a Content Security Policy that allows scripts, styles and requests from this
// origin only, and forms that post only here.
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
import type { WakeNotifier } from '../db/wake-notifier.js';
import { consoleUserRoutes } from './console-user-routes.js';
import { requireConsole, sessionOf, type SessionSettings } from './console-session.js';
import { consoleViews, layoutData } from './console-views.js';
import { loginRoutes } from './login-routes.js';

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
  /** The providers as configured, credentials reduced to whether they are set (composition builds it). */
  providers: ProviderOverview;
}

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
    const stylesheet = await readFile(join(packageRoot, 'src', 'console', 'assets', 'console.css'));
    app.get('/assets/console.css', { schema: { hide: true } }, async (_request, reply) =>
      reply.type('text/css; charset=utf-8').send(stylesheet),
    );
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
    await app.register(loginRoutes({ ...deps, render }));
    await app.register(consoleUserRoutes({ ...deps, render }));
    await app.register(auditRoutes({ ...deps, render }));
    await app.register(deadLetterPages({ ...deps, render }));
    await app.register(supportPages({ ...deps, render }));
    await app.register(servicePages({ ...deps, render }));
    await app.register(notificationPages({ ...deps, render }));
    await app.register(overviewPages({ ...deps, render }));
    await app.register(categoryPages({ ...deps, render }));
    await app.register(providerPages({ ...deps, render }));
  };
}
