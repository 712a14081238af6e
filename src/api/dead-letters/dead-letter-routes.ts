// /v1/dead-letters: list a service's dead deliveries and re-queue them.
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Pool } from '../../db/pools.js';
import { listDeadLetters, replayDeadLetters } from '../../db/stores/dead-letter-store.js';
import { wakeChannels, type WakeNotifier } from '../../db/wake-notifier.js';
import { parseNotificationId, uuidPatternText } from '../../domain/ids.js';
import { ProblemError } from '../../domain/problems.js';
import type { Channel } from '../../domain/notification.js';
import { presentTarget } from '../../domain/contact.js';
import { callerOf, requirePermission, type Authenticate } from '../../http/api-key-auth.js';
import { auditedChange } from '../audited-change.js';
import { Answer, answers, Enum, Nullable, Timestamp } from '../../http/openapi-contract.js';
import { channels } from '../../domain/notification.js';
import { decodeTimeIdCursor, encodeTimeIdCursor } from '../../http/time-id-cursor.js';

const DeadLetterPage = Answer({
  dead_letters: Type.Array(
    Answer({
      id: Type.String({ description: 'The delivery id (replay by it).' }),
      notification_id: Type.String(),
      user_id: Type.String(),
      channel: Enum(channels),
      target: Type.String({ description: 'Masked unless the key may read users (users:read).' }),
      attempts: Type.Integer(),
      last_error: Nullable(Type.String()),
      died_at: Timestamp(),
    }),
  ),
  next_cursor: Nullable(Type.String({ description: 'Pass as `cursor` for the next page; null: no more.' })),
});

const maxReplay = 10_000;

interface DeadLetterRouteDeps {
  pool: Pool;
  authenticate: Authenticate;
  notifier: WakeNotifier;
  /**
   * Dead letters of notifications older than this many days are not replayed: their month may
   * be on its way to the archive (docs/retention.md), and a replayed delivery there would be
   * dropped from under the worker. One day less than SERVICE_RETENTION_DAYS.
   */
  replayableDays: number;
  now: () => Date;
}

/** Re-queues the selection in one transaction with its audit entry (when something moved). */
function replayAudited(
  deps: DeadLetterRouteDeps,
  request: FastifyRequest,
  selection: { ids?: string[]; notificationId?: string },
  all: boolean,
): Promise<string[]> {
  const caller = callerOf(request);
  return auditedChange(
    deps.pool,
    request,
    { action: 'dead_letters.replay', target: `service:${caller.serviceName}` },
    async (client) => {
      const moved = await replayDeadLetters(
        client,
        caller.serviceId,
        selection,
        maxReplay,
        new Date(deps.now().getTime() - deps.replayableDays * 86_400_000),
      );
      return {
        result: moved,
        changed: moved.length > 0,
        // What was asked for and what moved (the first 100 ids, as the console records).
        after: {
          ...(selection.ids === undefined ? {} : { ids_asked: selection.ids.length }),
          ...(selection.notificationId === undefined ? {} : { notification_id: selection.notificationId }),
          ...(all ? { all } : {}),
          replayed: moved.length,
          ids: moved.slice(0, 100),
        },
      };
    },
  );
}

export function deadLetterRoutes(deps: DeadLetterRouteDeps): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const tags = ['dead letters'];

    app.get(
      '/v1/dead-letters',
      {
        onRequest: requirePermission(deps.authenticate, ['notifications:read']),
        schema: {
          summary: "Your service's dead deliveries, newest first",
          operationId: 'listDeadLetters',
          tags,
          response: answers({ 200: DeadLetterPage }),
          querystring: Type.Object(
            {
              limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
              cursor: Type.Optional(Type.String({ maxLength: 200 })),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (request) => {
        const limit = request.query.limit ?? 100;
        const before =
          request.query.cursor === undefined ? undefined : decodeTimeIdCursor(request.query.cursor);
        const rows = await listDeadLetters(deps.pool, callerOf(request).serviceId, limit, before);
        const last = rows.at(-1);
        const inFull = callerOf(request).permissions.includes('users:read');
        return {
          dead_letters: rows.map((r) => ({
            id: r.id,
            notification_id: r.notificationId,
            user_id: r.userId,
            channel: r.channel,
            target: presentTarget(r.channel as Channel, r.target, inFull),
            attempts: r.attempts,
            last_error: r.lastError,
            died_at: r.diedAt.toISOString(),
          })),
          next_cursor:
            rows.length === limit && last !== undefined ? encodeTimeIdCursor(last.diedAt, last.id) : null,
        };
      },
    );

    app.post(
      '/v1/dead-letters/replay',
      {
        onRequest: requirePermission(deps.authenticate, ['admin']),
        schema: {
          summary: 'Re-queue dead deliveries (by ids, by notification, or all)',
          operationId: 'replayDeadLetters',
          tags,
          response: answers({
            200: Answer({
              replayed: Type.Integer(),
              ids: Type.Array(Type.String(), { description: 'The deliveries re-queued.' }),
            }),
          }),
          body: Type.Object(
            {
              ids: Type.Optional(
                Type.Array(Type.String({ pattern: uuidPatternText }), { minItems: 1, maxItems: 1000 }),
              ),
              notification_id: Type.Optional(Type.String({ maxLength: 200 })),
              all: Type.Optional(Type.Literal(true)),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (request) => {
        const { ids, notification_id: notificationText, all } = request.body;
        if (ids === undefined && notificationText === undefined && all !== true) {
          throw new ProblemError('validation_failed', 'Name ids, a notification_id, or all: true.', [
            { field: 'body', message: 'empty selection' },
          ]);
        }
        let notificationId: string | undefined;
        if (notificationText !== undefined) {
          const parsed = parseNotificationId(notificationText);
          if (parsed === undefined)
            throw new ProblemError(
              'invalid_notification_id',
              'The notification_id must be "<service>#<uuid>".',
            );
          if (parsed.service !== callerOf(request).serviceName)
            throw new ProblemError('forbidden', 'This notification belongs to another service.');
          notificationId = `${parsed.service}#${parsed.uuid}`;
        }
        const selection = {
          ...(ids === undefined ? {} : { ids }),
          ...(notificationId === undefined ? {} : { notificationId }),
        };
        const replayed = await replayAudited(deps, request, selection, all === true);
        if (replayed.length > 0) deps.notifier.notify(wakeChannels.deliveries);
        return { replayed: replayed.length, ids: replayed };
      },
    );
  };
}
