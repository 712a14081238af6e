// Recurring schedules (API key): a five-field cron expression and a notification body, evaluated
// in each recipient's time zone (or one given zone); list, read, pause, resume, delete. The
// scheduler role fires them (src/scheduler/recurring-schedules.ts). Another service's schedule
// is not found (404).
import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import type { Caller } from '../../domain/caller.js';
import { withTransaction, type Pool } from '../../db/pools.js';
import {
  addScheduleRuns,
  audienceZones,
  deleteSchedule,
  findSchedule,
  insertSchedule,
  listSchedules,
  setScheduleState,
  type Schedule,
  type ScheduledRequest,
} from '../../db/stores/schedule-store.js';
import { ProblemError } from '../../domain/problems.js';
import { uuidPatternText } from '../../domain/ids.js';
import { checkCron, isTimeZone, nextOccurrence } from '../../domain/schedule.js';
import { callerOf, requirePermission, type Authenticate } from '../../http/api-key-auth.js';
import { Answer, answers, FreeForm, Nullable, Timestamp } from '../../http/openapi-contract.js';
import { checkNotificationRequest, type AcceptDeps } from '../../ingest/accept-notifications.js';
import { NotificationRequestSchema } from '../../ingest/notification-request.js';

const ScheduledNotification = Type.Omit(NotificationRequestSchema, ['id', 'send_at', 'budget'], {
  additionalProperties: false,
  description: 'What each occurrence sends: a notification request without id and send_at.',
});

const CreateBody = Type.Object(
  {
    cron: Type.String({
      minLength: 1,
      maxLength: 200,
      description: 'Five fields: minute hour day-of-month month day-of-week.',
    }),
    time_zone: Type.Optional(
      Type.String({
        maxLength: 64,
        description: "An IANA zone for every recipient; default: each recipient's own time zone.",
      }),
    ),
    notification: ScheduledNotification,
  },
  { additionalProperties: false },
);

const ScheduleSchema = Answer({
  id: Type.String({ pattern: uuidPatternText }),
  cron: Type.String(),
  time_zone: Nullable(Type.String()),
  state: Type.Union([Type.Literal('active'), Type.Literal('paused')]),
  notification: FreeForm('The notification body each occurrence sends.'),
  runs: Type.Array(
    Answer({ time_zone: Type.String(), next_run_at: Timestamp(), last_run_at: Nullable(Timestamp()) }),
    { description: 'The next occurrence per time zone of the audience.' },
  ),
  created_at: Timestamp(),
  updated_at: Timestamp(),
});

const IdParam = Type.Object({ id: Type.String({ pattern: uuidPatternText }) });

function presentSchedule(s: Schedule) {
  return {
    id: s.id,
    cron: s.cron,
    time_zone: s.timeZone,
    state: s.state,
    notification: { ...s.request },
    runs: s.runs.map((r) => ({
      time_zone: r.timeZone,
      next_run_at: r.nextRunAt.toISOString(),
      last_run_at: r.lastRunAt?.toISOString() ?? null,
    })),
    created_at: s.createdAt.toISOString(),
    updated_at: s.updatedAt.toISOString(),
  };
}

const notFound = () => new ProblemError('not_found', 'This service has no such schedule.');

export interface ScheduleRouteDeps {
  pool: Pool;
  authenticate: Authenticate;
  accept: AcceptDeps;
}

/**
 * Checks and stores a schedule with a run per time zone of its audience (its users' zones, or
 * the one zone given; UTC when no recipient is a user yet); returns its id.
 */
async function createSchedule(
  deps: ScheduleRouteDeps,
  caller: Caller,
  body: Static<typeof CreateBody>,
): Promise<string> {
  const { cron, notification } = body;
  const fixedZone = body.time_zone ?? null;
  if (fixedZone !== null && !isTimeZone(fixedZone))
    throw new ProblemError('cron_invalid', `"${fixedZone}" is not an IANA time zone.`, [
      { field: 'body/time_zone', message: 'unknown time zone' },
    ]);
  checkCron(cron, fixedZone ?? 'UTC');
  const { topic, recipients } = await checkNotificationRequest(deps.accept, caller, notification);
  const stored: ScheduledRequest = { ...notification, ...(topic === undefined ? { recipients } : {}) };
  const id = randomUUID();
  const at = deps.accept.now();
  await withTransaction(deps.pool, async (client) => {
    const found =
      fixedZone !== null
        ? [fixedZone]
        : (await audienceZones(client, topic === undefined ? { recipients } : { topicId: topic.id })).filter(
            isTimeZone,
          );
    const zones = found.length === 0 ? ['UTC'] : found;
    await insertSchedule(client, {
      id,
      serviceId: caller.serviceId,
      cron,
      timeZone: fixedZone,
      request: stored,
      topicId: topic?.id ?? null,
      now: at,
    });
    await addScheduleRuns(
      client,
      id,
      zones.map((z) => ({ timeZone: z, nextRunAt: nextOccurrence(cron, z, at) })),
    );
  });
  return id;
}

export function scheduleRoutes(deps: ScheduleRouteDeps): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const sender = requirePermission(deps.authenticate, ['send']);
    const reader = requirePermission(deps.authenticate, ['send', 'notifications:read']);
    const tags = ['schedules'];

    app.post(
      '/v1/schedules',
      {
        onRequest: sender,
        schema: {
          summary: "Create a recurring schedule (cron in each recipient's time zone)",
          operationId: 'createSchedule',
          tags,
          body: CreateBody,
          response: answers({ 201: ScheduleSchema }),
        },
      },
      async (request, reply) => {
        const id = await createSchedule(deps, callerOf(request), request.body);
        const schedule = await findSchedule(deps.pool, callerOf(request).serviceId, id);
        if (schedule === undefined) throw notFound();
        return reply.code(201).send(presentSchedule(schedule));
      },
    );

    app.get(
      '/v1/schedules',
      {
        onRequest: reader,
        schema: {
          summary: "The calling service's schedules, in id order",
          operationId: 'listSchedules',
          tags,
          querystring: Type.Object({
            after: Type.Optional(Type.String({ pattern: uuidPatternText })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
          }),
          response: answers({
            200: Answer({ schedules: Type.Array(ScheduleSchema), next_after: Nullable(Type.String()) }),
          }),
        },
      },
      async (request) => {
        const limit = request.query.limit ?? 50;
        const page = await listSchedules(deps.pool, callerOf(request).serviceId, request.query.after, limit);
        return {
          schedules: page.map(presentSchedule),
          next_after: page.length === limit ? (page[page.length - 1]?.id ?? null) : null,
        };
      },
    );

    app.get(
      '/v1/schedules/:id',
      {
        onRequest: reader,
        schema: {
          summary: "One of the calling service's schedules, with its next runs",
          operationId: 'getSchedule',
          tags,
          params: IdParam,
          response: answers({ 200: ScheduleSchema }),
        },
      },
      async (request) => {
        const schedule = await findSchedule(deps.pool, callerOf(request).serviceId, request.params.id);
        if (schedule === undefined) throw notFound();
        return presentSchedule(schedule);
      },
    );
  };
}

/** Pause, resume and cancel (delete). */
export function scheduleStateRoutes(deps: ScheduleRouteDeps): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const sender = requirePermission(deps.authenticate, ['send']);
    const tags = ['schedules'];
    const now = () => deps.accept.now();

    for (const [action, state] of [
      ['pause', 'paused'],
      ['resume', 'active'],
    ] as const) {
      app.post(
        `/v1/schedules/:id/${action}`,
        {
          onRequest: sender,
          schema: {
            summary:
              action === 'pause'
                ? 'Pause a schedule: no occurrence is sent until it is resumed'
                : 'Resume a schedule from its next occurrence (those while paused are not sent)',
            operationId: `${action}Schedule`,
            tags,
            params: IdParam,
            response: answers({ 200: ScheduleSchema }),
          },
        },
        async (request) => {
          const { serviceId } = callerOf(request);
          const at = now();
          const changed = await withTransaction(deps.pool, (client) =>
            setScheduleState(client, serviceId, request.params.id, state, at, (cron, zone) =>
              nextOccurrence(cron, zone, at),
            ),
          );
          const schedule = changed ? await findSchedule(deps.pool, serviceId, request.params.id) : undefined;
          if (schedule === undefined) throw notFound();
          return presentSchedule(schedule);
        },
      );
    }

    app.delete(
      '/v1/schedules/:id',
      {
        onRequest: sender,
        schema: {
          summary: 'Cancel a schedule: it is deleted; notifications it already sent stay',
          operationId: 'deleteSchedule',
          tags,
          params: IdParam,
          response: answers({ 204: null }),
        },
      },
      async (request, reply) => {
        if (!(await deleteSchedule(deps.pool, callerOf(request).serviceId, request.params.id)))
          throw notFound();
        return reply.code(204).send();
      },
    );
  };
}
