// The providers as configured, read-only, for every console role: per channel, each provider with
// its fallbacks, its concurrency, rate and timeout, and the circuit breaker's settings. A
// credential is shown only as set or not set: the overview the composition root hands over holds
// no credential, not even the name of the variable or file it is read from.
import type { FastifyPluginAsync } from 'fastify';
import type { Channel } from '../domain/notification.js';
import { requireConsole, sessionOf, type SessionGuardDeps } from './console-session.js';
import { layoutData, type RenderView } from './console-views.js';

export interface ConfiguredProvider {
  name: string;
  /** The provider type: apns, fcm, smtp, …; webhook and slack are built in. */
  type: string;
  channel: Channel;
  /** The providers tried after this one, in order (its fallback, that one's fallback, …). */
  fallbacks: string[];
  /** Calls in flight at once per worker process, and whether that is the default. */
  concurrency: number;
  concurrencyIsDefault: boolean;
  /** Calls per second per worker process; undefined: no limit. */
  ratePerSecond: number | undefined;
  /** What the rate applies to (`per provider`, `per receiving origin`). */
  ratePer: string;
  timeoutMs: number;
  /** Each credential field (a path such as `headers.Authorization`) and whether it is set. */
  credentials: { field: string; set: boolean }[];
}

export interface ProviderOverview {
  providers: ConfiguredProvider[];
  breaker: { minCalls: number; failureRatio: number; windowMs: number; openMs: number };
  /** Share of a worker's slots one provider may hold. */
  maxSlotShare: number;
  /** Where the entries come from (HERALD_CONFIG_FILE's path), or '' when only the built-in ones run. */
  source: string;
}

export function providerPages(
  deps: SessionGuardDeps & { render: RenderView; providers: ProviderOverview },
): FastifyPluginAsync {
  return async (app) => {
    app.get(
      '/providers',
      { schema: { hide: true }, preHandler: requireConsole(deps, 'read') },
      async (request, reply) => {
        const { providers, breaker, maxSlotShare, source } = deps.providers;
        const channelsInUse = [...new Set(providers.map((p) => p.channel))];
        const html = await deps.render('providers', {
          ...layoutData(sessionOf(request), 'Providers'),
          source,
          channels: channelsInUse.map((channel) => ({
            name: channel,
            providers: providers
              .filter((p) => p.channel === channel)
              .map((p) => ({
                name: p.name,
                type: p.type,
                fallbacks: p.fallbacks.length === 0 ? 'none' : p.fallbacks.join(' → '),
                concurrency: `${String(p.concurrency)}${p.concurrencyIsDefault ? ' (default)' : ''}`,
                rate:
                  p.ratePerSecond === undefined ? 'no limit' : `${String(p.ratePerSecond)}/s ${p.ratePer}`,
                timeout: `${String(p.timeoutMs)} ms`,
                credentials: p.credentials.map((c) => ({ field: c.field, state: c.set ? 'set' : 'not set' })),
              })),
          })),
          breaker: {
            min_calls: String(breaker.minCalls),
            failure_ratio: `${String(Math.round(breaker.failureRatio * 100))} %`,
            window: `${String(breaker.windowMs / 1000)} s`,
            open: `${String(breaker.openMs / 1000)} s`,
          },
          max_slot_share: `${String(Math.round(maxSlotShare * 100))} %`,
        });
        return reply.type('text/html; charset=utf-8').send(html);
      },
    );
  };
}
