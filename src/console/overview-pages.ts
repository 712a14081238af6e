// The console's overview (docs/console.md): accepted notifications and delivery states per lane
// and channel over a chosen range, the work waiting and the overdue notifications per lane,
// provider health and dead letters.
// The page renders the figures as tables (no script needed); /overview.json gives the same
// figures to assets/overview.js, which draws them with uPlot and refreshes them every 10 s.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from 'typebox';
import { join } from 'node:path';
import type { Pool } from '../db/pools.js';
import { packageRoot } from '../db/package-root.js';
import {
  countDeadLetters,
  readOverviewCounts,
  readProviderHealth,
  type CountRow,
} from '../db/stores/overview-store.js';
import { readBacklog, type PendingByLane } from '../db/stores/delivery-store.js';
import { overdueAfterMs, readOverdue } from '../db/stores/overdue-store.js';
import { readChannelFunnel } from '../db/stores/engagement-store.js';
import { channels as deliveryChannels } from '../domain/notification.js';
import { requireConsole, sessionOf, type SessionGuardDeps } from './console-session.js';
import { consoleTime, layoutData, type RenderView } from './console-views.js';

/** The series the overview draws, and the delivery states each one counts. */
export const overviewSeries = {
  accepted: ['accepted'],
  sent: ['sent'],
  delivered: ['delivered'],
  failed: ['failed', 'target_invalid', 'dead', 'bounced'],
  suppressed: ['suppressed'],
} as const;
export type SeriesName = keyof typeof overviewSeries;
const seriesNames = Object.keys(overviewSeries) as SeriesName[];

const ranges = {
  '1h': { spanSeconds: 3600, stepSeconds: 60 },
  '24h': { spanSeconds: 86_400, stepSeconds: 3600 },
  '7d': { spanSeconds: 7 * 86_400, stepSeconds: 3600 },
  '30d': { spanSeconds: 30 * 86_400, stepSeconds: 86_400 },
} as const;
type RangeName = keyof typeof ranges;

const lanes = ['transactional', 'bulk'] as const;

const Query = Type.Object(
  {
    range: Type.Optional(
      Type.Union([Type.Literal('1h'), Type.Literal('24h'), Type.Literal('7d'), Type.Literal('30d')]),
    ),
    lane: Type.Optional(Type.Union([Type.Literal(''), Type.Literal('transactional'), Type.Literal('bulk')])),
    channel: Type.Optional(Type.Union([Type.Literal(''), ...deliveryChannels.map((c) => Type.Literal(c))])),
  },
  { additionalProperties: false },
);
type Query = Static<typeof Query>;

/** How long a worker's provider report counts as current: two report periods and a margin. */
const reportFreshMs = 45_000;

export interface OverviewDeps extends SessionGuardDeps {
  render: RenderView;
}

export interface Overview {
  range: RangeName;
  lane: string;
  channel: string;
  from: string;
  to: string;
  stepSeconds: number;
  /** Unix seconds of each step's start. */
  times: number[];
  series: Record<SeriesName, number[]>;
  totals: Record<SeriesName, number>;
  /** Every counted state in the range, per lane and channel (accepted: channel ''). */
  breakdown: { lane: string; channel: string; state: string; count: number }[];
  /** Per lane, with its overdue notifications (the scheduler's overdue-notifications job counts the same). */
  waiting: (PendingByLane & { overdue: number })[];
  providers: (Omit<Awaited<ReturnType<typeof readProviderHealth>>[number], 'reportedAt'> & {
    errorRate: number | null;
    reportedAt: string;
  })[];
  deadLetters: number;
  /** Per channel, over the UTC days the range touches: sent → delivered → opened → clicked (and read). */
  engagement: EngagementFunnel[];
  generatedAt: string;
}

const funnelMetrics = ['sent', 'delivered', 'opened', 'clicked', 'read'] as const;
export type EngagementFunnel = { channel: string } & Record<(typeof funnelMetrics)[number], number>;

/** The engagement figures of every service per channel (src/db/stores/engagement-store.ts). */
function funnelOf(rows: readonly { channel: string; metric: string; count: number }[]): EngagementFunnel[] {
  const byChannel = new Map<string, EngagementFunnel>();
  for (const r of rows) {
    if (!(funnelMetrics as readonly string[]).includes(r.metric)) continue;
    const entry = byChannel.get(r.channel) ?? {
      channel: r.channel,
      ...(Object.fromEntries(funnelMetrics.map((m) => [m, 0])) as Record<
        (typeof funnelMetrics)[number],
        number
      >),
    };
    entry[r.metric as (typeof funnelMetrics)[number]] += r.count;
    byChannel.set(r.channel, entry);
  }
  return [...byChannel.values()].sort((a, b) => a.channel.localeCompare(b.channel));
}

/** The range's window: `to` is the end of the current step, `from` one span before it. */
function windowOf(range: RangeName, now: Date): { from: Date; to: Date; stepSeconds: number } {
  const { spanSeconds, stepSeconds } = ranges[range];
  // Hour-long and shorter steps start on their boundary; day steps start on the hour, so the
  // hourly counts kept for older days fall wholly inside one step.
  const align = Math.min(stepSeconds, 3600) * 1000;
  const to = new Date(Math.floor(now.getTime() / align) * align + align);
  return { from: new Date(to.getTime() - spanSeconds * 1000), to, stepSeconds };
}

/** Sums count rows into the overview's series, optionally for one lane and one channel. */
export function summarize(
  rows: readonly CountRow[],
  from: Date,
  to: Date,
  stepSeconds: number,
  filter: { lane: string; channel: string },
): Pick<Overview, 'times' | 'series' | 'totals' | 'breakdown'> {
  const steps = Math.round((to.getTime() - from.getTime()) / 1000 / stepSeconds);
  const start = from.getTime() / 1000;
  const times = Array.from({ length: steps }, (_, i) => start + i * stepSeconds);
  const series = Object.fromEntries(seriesNames.map((n) => [n, times.map(() => 0)])) as Overview['series'];
  const totals = Object.fromEntries(seriesNames.map((n) => [n, 0])) as Overview['totals'];
  const seriesOf = new Map<string, SeriesName>(
    seriesNames.flatMap((n) => overviewSeries[n].map((s) => [s, n] as const)),
  );
  const breakdown = new Map<string, Overview['breakdown'][number]>();
  for (const r of rows) {
    if (filter.lane !== '' && r.lane !== filter.lane) continue;
    // Accepted notifications have no channel: a channel filter leaves them counted.
    if (filter.channel !== '' && r.channel !== '' && r.channel !== filter.channel) continue;
    const key = `${r.lane}\u0000${r.channel}\u0000${r.state}`;
    const entry = breakdown.get(key) ?? { lane: r.lane, channel: r.channel, state: r.state, count: 0 };
    entry.count += r.count;
    breakdown.set(key, entry);
    const name = seriesOf.get(r.state);
    if (name === undefined) continue;
    const at = Math.floor((r.bucket.getTime() / 1000 - start) / stepSeconds);
    const slot = series[name];
    if (at >= 0 && at < slot.length) slot[at] = (slot[at] ?? 0) + r.count;
    totals[name] += r.count;
  }
  return { times, series, totals, breakdown: [...breakdown.values()] };
}

export async function readOverview(pool: Pool, now: Date, query: Query): Promise<Overview> {
  const range = query.range ?? '24h';
  const lane = query.lane ?? '';
  const channel = query.channel ?? '';
  const { from, to, stepSeconds } = windowOf(range, now);
  const day = (d: Date) => d.toISOString().slice(0, 10);
  const [rows, waiting, overdue, health, deadLetters, funnel] = await Promise.all([
    readOverviewCounts(pool, from, to, stepSeconds),
    readBacklog(pool),
    readOverdue(pool, new Date(now.getTime() - overdueAfterMs), 0),
    readProviderHealth(pool, reportFreshMs),
    countDeadLetters(pool),
    readChannelFunnel(pool, { from: day(from), to: day(new Date(to.getTime() - 1)) }),
  ]);
  return {
    range,
    lane,
    channel,
    from: from.toISOString(),
    to: to.toISOString(),
    stepSeconds,
    ...summarize(rows, from, to, stepSeconds, { lane, channel }),
    waiting: waiting
      .filter((w) => lane === '' || w.lane === lane)
      .map((w) => ({ ...w, overdue: overdue.find((o) => o.lane === w.lane)?.notifications ?? 0 })),
    providers: health.map((p) => ({
      ...p,
      errorRate: p.calls === 0 ? null : p.failures / p.calls,
      reportedAt: consoleTime(p.reportedAt),
    })),
    deadLetters,
    engagement: funnelOf(funnel),
    generatedAt: now.toISOString(),
  };
}

const uplotDir = join(createRequire(import.meta.url).resolve('uplot'), '..');

export function overviewPages(deps: OverviewDeps): FastifyPluginAsync {
  return async (app) => {
    const assets = {
      'uplot.js': ['text/javascript', await readFile(join(uplotDir, 'uPlot.iife.min.js'))],
      'uplot.css': ['text/css', await readFile(join(uplotDir, 'uPlot.min.css'))],
      'overview.js': [
        'text/javascript',
        await readFile(join(packageRoot, 'src', 'console', 'assets', 'overview.js')),
      ],
    } as const;
    for (const [name, [type, body]] of Object.entries(assets))
      app.get(`/assets/${name}`, { schema: { hide: true } }, async (_request, reply) =>
        reply.type(`${type}; charset=utf-8`).send(body),
      );
    const read = requireConsole(deps, 'read');
    app.get<{ Querystring: Query }>(
      '/overview.json',
      { schema: { hide: true, querystring: Query }, preHandler: read },
      async (request) => readOverview(deps.pool, deps.now(), request.query),
    );
    app.get<{ Querystring: Query }>(
      '/overview',
      { schema: { hide: true, querystring: Query }, preHandler: read },
      async (request, reply) => {
        const overview = await readOverview(deps.pool, deps.now(), request.query);
        const html = await deps.render('overview', {
          ...layoutData(sessionOf(request), 'Overview'),
          overview,
          seriesNames,
          rangeNames: Object.keys(ranges),
          lanes,
          channels: deliveryChannels,
          from: consoleTime(new Date(overview.from)),
          to: consoleTime(new Date(overview.to)),
          generated: consoleTime(new Date(overview.generatedAt)),
          percent: overview.providers.map((p) =>
            p.errorRate === null ? '' : `${(p.errorRate * 100).toFixed(1)} %`,
          ),
        });
        return reply.type('text/html; charset=utf-8').send(html);
      },
    );
  };
}
