// The calling service's engagement figures (sent, delivered, opened, clicked, read, failed and
// suppressed per reason), read from the rollups only, and its tracking opt-outs per category and
// template (docs/tracking.md). A key sees and changes only its own service's.
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Pool } from '../../db/pools.js';
import {
  isTrackingOptedOut,
  readEngagementFigures,
  setTrackingOptOut,
  type FigureRow,
} from '../../db/stores/engagement-store.js';
import {
  engagementGroupings,
  engagementMetrics,
  maxEngagementRangeDays,
  type EngagementGrouping,
} from '../../domain/engagement.js';
import { ProblemError } from '../../domain/problems.js';
import { callerOf, requirePermission, type Authenticate } from '../../http/api-key-auth.js';
import { Answer, answers, Enum } from '../../http/openapi-contract.js';

const Day = Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$', description: 'A UTC day, YYYY-MM-DD.' });
const Count = Type.Integer({ minimum: 0 });
const ByReason = Type.Record(Type.String(), Count, { description: 'The count per reason.' });

const GroupSchema = Type.Object(
  {
    key: Type.String({ description: 'The day, template key ("" for none), channel or category.' }),
    ...Object.fromEntries(engagementMetrics.map((m) => [m, Count])),
    failed_by_reason: ByReason,
    suppressed_by_reason: ByReason,
  },
  { additionalProperties: false },
);

const FiguresSchema = Answer({
  from: Day,
  to: Day,
  group_by: Enum(engagementGroupings),
  groups: Type.Array(GroupSchema),
});

type Group = Record<string, unknown> & {
  key: string;
  failed_by_reason: Record<string, number>;
  suppressed_by_reason: Record<string, number>;
};

function groupsOf(rows: readonly FigureRow[]): Group[] {
  const groups = new Map<string, Group>();
  for (const row of rows) {
    let group = groups.get(row.group);
    if (group === undefined) {
      group = {
        key: row.group,
        ...Object.fromEntries(engagementMetrics.map((m) => [m, 0])),
        failed_by_reason: {},
        suppressed_by_reason: {},
      };
      groups.set(row.group, group);
    }
    group[row.metric] = ((group[row.metric] as number | undefined) ?? 0) + row.count;
    if (row.metric === 'failed' || row.metric === 'suppressed') {
      const byReason = row.metric === 'failed' ? group.failed_by_reason : group.suppressed_by_reason;
      byReason[row.reason] = (byReason[row.reason] ?? 0) + row.count;
    }
  }
  return [...groups.values()];
}

const dayMs = 86_400_000;

/** The checked range: both days real, from ≤ to, at most maxEngagementRangeDays long. */
function rangeOf(from: string, to: string): { from: string; to: string } {
  const start = Date.parse(`${from}T00:00:00Z`);
  const end = Date.parse(`${to}T00:00:00Z`);
  const real = (day: string, ms: number) => !Number.isNaN(ms) && new Date(ms).toISOString().startsWith(day);
  if (
    !real(from, start) ||
    !real(to, end) ||
    end < start ||
    (end - start) / dayMs + 1 > maxEngagementRangeDays
  )
    throw new ProblemError(
      'engagement_range_invalid',
      `from and to must be real days, from no later than to, at most ${String(maxEngagementRangeDays)} days.`,
    );
  return { from, to };
}

const Scope = Type.Union([Type.Literal('categories'), Type.Literal('templates')]);
const TrackingSchema = Answer({
  scope: Scope,
  name: Type.String(),
  tracked: Type.Boolean({ description: 'false: no open pixel and no link rewriting for it.' }),
});

export function engagementRoutes(deps: { pool: Pool; authenticate: Authenticate }): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

    app.get(
      '/v1/engagement',
      {
        onRequest: requirePermission(deps.authenticate, ['notifications:read', 'admin']),
        schema: {
          summary: "The calling service's engagement figures over a range of UTC days",
          operationId: 'getEngagement',
          tags: ['engagement'],
          querystring: Type.Object(
            {
              from: Day,
              to: Day,
              group_by: Type.Optional(Enum(engagementGroupings, { description: 'Default: day.' })),
            },
            { additionalProperties: false },
          ),
          response: answers({ 200: FiguresSchema }),
        },
      },
      async (request) => {
        const caller = callerOf(request);
        const range = rangeOf(request.query.from, request.query.to);
        const groupBy: EngagementGrouping = request.query.group_by ?? 'day';
        const rows = await readEngagementFigures(deps.pool, caller.serviceId, range, groupBy);
        return { ...range, group_by: groupBy, groups: groupsOf(rows) };
      },
    );

    const params = Type.Object({
      scope: Scope,
      name: Type.String({ minLength: 1, maxLength: 128 }),
    });
    const scopeName = (scope: 'categories' | 'templates') =>
      scope === 'categories' ? 'category' : 'template';

    app.put(
      '/v1/tracking/:scope/:name',
      {
        onRequest: requirePermission(deps.authenticate, ['admin']),
        schema: {
          summary: 'Switch email open and click tracking on or off for a category or template',
          operationId: 'setTracking',
          tags: ['engagement'],
          params,
          body: Type.Object({ tracked: Type.Boolean() }, { additionalProperties: false }),
          response: answers({ 200: TrackingSchema }),
        },
      },
      async (request) => {
        const { scope, name } = request.params;
        const caller = callerOf(request);
        await setTrackingOptOut(deps.pool, caller.serviceId, scopeName(scope), name, !request.body.tracked);
        return { scope, name, tracked: request.body.tracked };
      },
    );

    app.get(
      '/v1/tracking/:scope/:name',
      {
        onRequest: requirePermission(deps.authenticate, ['send', 'templates', 'admin']),
        schema: {
          summary: 'Whether email opens and clicks are tracked for a category or template',
          operationId: 'getTracking',
          tags: ['engagement'],
          params,
          response: answers({ 200: TrackingSchema }),
        },
      },
      async (request) => {
        const { scope, name } = request.params;
        const caller = callerOf(request);
        const optedOut = await isTrackingOptedOut(deps.pool, caller.serviceId, scopeName(scope), name);
        return { scope, name, tracked: !optedOut };
      },
    );
  };
}
