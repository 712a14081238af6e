// /v1/callback-dead-letters: a service's status callback messages that were given up on, and
// their replay (docs/callbacks.md). Only the calling service's own messages are listed or moved.
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Pool } from '../../db/pools.js';
import { listCallbackDeadLetters, replayCallbackDeadLetters } from '../../db/stores/callback-store.js';
import { wakeChannels, type WakeNotifier } from '../../db/wake-notifier.js';
import { callbackEventTypes } from '../../domain/callbacks.js';
import { uuidPatternText } from '../../domain/ids.js';
import { ProblemError } from '../../domain/problems.js';
import { callerOf, requirePermission, type Authenticate } from '../../http/api-key-auth.js';
import { Answer, answers, Enum, FreeForm, Nullable, Timestamp } from '../../http/openapi-contract.js';
import { auditedChange } from '../audited-change.js';
import { decodeTimeIdCursor, encodeTimeIdCursor } from '../../http/time-id-cursor.js';

const DeadLetterPage = Answer({
  dead_letters: Type.Array(
    Answer({
      id: Type.String({ description: 'The message id (its webhook-id header; replay by it).' }),
      subscription_id: Type.String(),
      type: Enum(callbackEventTypes),
      payload: FreeForm('The event as it was queued.'),
      attempts: Type.Integer(),
      last_error: Nullable(Type.String()),
      died_at: Timestamp(),
    }),
  ),
  next_cursor: Nullable(Type.String({ description: 'Pass as `cursor` for the next page; null: no more.' })),
});

const maxReplay = 10_000;

export function callbackDeadLetterRoutes(deps: {
  pool: Pool;
  authenticate: Authenticate;
  notifier: WakeNotifier;
}): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const tags = ['callback subscriptions'];

    app.get(
      '/v1/callback-dead-letters',
      {
        onRequest: requirePermission(deps.authenticate, ['admin', 'notifications:read']),
        schema: {
          summary: "Your service's status callbacks that were given up on, newest first",
          operationId: 'listCallbackDeadLetters',
          tags,
          querystring: Type.Object(
            {
              limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
              cursor: Type.Optional(Type.String({ maxLength: 200 })),
            },
            { additionalProperties: false },
          ),
          response: answers({ 200: DeadLetterPage }),
        },
      },
      async (request) => {
        const limit = request.query.limit ?? 100;
        const before =
          request.query.cursor === undefined ? undefined : decodeTimeIdCursor(request.query.cursor);
        const rows = await listCallbackDeadLetters(deps.pool, callerOf(request).serviceId, limit, before);
        const last = rows.at(-1);
        return {
          dead_letters: rows.map((r) => ({
            id: r.id,
            subscription_id: r.subscriptionId,
            type: r.eventType as (typeof callbackEventTypes)[number],
            payload: r.payload,
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
      '/v1/callback-dead-letters/replay',
      {
        onRequest: requirePermission(deps.authenticate, ['admin']),
        schema: {
          summary: 'Queue dead status callbacks again (by ids, by subscription, or all)',
          operationId: 'replayCallbackDeadLetters',
          tags,
          body: Type.Object(
            {
              ids: Type.Optional(
                Type.Array(Type.String({ pattern: uuidPatternText }), { minItems: 1, maxItems: 1000 }),
              ),
              subscription_id: Type.Optional(Type.String({ pattern: uuidPatternText })),
              all: Type.Optional(Type.Literal(true)),
            },
            { additionalProperties: false },
          ),
          response: answers({
            200: Answer({
              replayed: Type.Integer(),
              ids: Type.Array(Type.String(), { description: 'The messages queued again.' }),
            }),
          }),
        },
      },
      async (request) => {
        const { ids, subscription_id: subscriptionId, all } = request.body;
        if (ids === undefined && subscriptionId === undefined && all !== true)
          throw new ProblemError('validation_failed', 'Name ids, a subscription_id, or all: true.', [
            { field: 'body', message: 'empty selection' },
          ]);
        const caller = callerOf(request);
        const moved = await auditedChange(
          deps.pool,
          request,
          { action: 'callback_dead_letters.replay', target: `service:${caller.serviceName}` },
          async (client) => {
            const replayed = await replayCallbackDeadLetters(
              client,
              caller.serviceId,
              { ids, subscriptionId },
              maxReplay,
            );
            return {
              result: replayed,
              changed: replayed.length > 0,
              after: { replayed: replayed.length, ids: replayed.slice(0, 100) },
            };
          },
        );
        if (moved.length > 0) deps.notifier.notify(wakeChannels.callbacks);
        return { replayed: moved.length, ids: moved };
      },
    );
  };
}
