// /v1/notifications: accept, and read back with per-delivery states. Updates and cancels:
// notification-change-routes.ts.
import { findRateBudgetId } from '../../db/stores/rate-budget-store.js';
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Pool } from '../../db/pools.js';
import { getNotificationView } from '../../db/stores/notification-store.js';
import { ProblemError } from '../../domain/problems.js';
import { callerOf, requirePermission, type Authenticate } from '../../http/api-key-auth.js';
import { acceptNotifications, type AcceptDeps } from '../../ingest/accept-notifications.js';
import { findTemplateVersion } from '../../db/stores/template-store.js';
import { findTopic } from '../../db/stores/topic-store.js';
import {
  AcceptedSchema,
  IdempotencyHeaders,
  NotificationIdParam,
  NotificationRequestSchema,
  ownNotificationId,
} from './notification-input.js';
import { NotificationSchema, presentNotification } from './notification-presenter.js';
import { answers } from '../../http/openapi-contract.js';

export interface NotificationRouteDeps extends AcceptDeps {
  pool: Pool;
  authenticate: Authenticate;
}

export function notificationRoutes(deps: NotificationRouteDeps): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const guard = requirePermission(deps.authenticate, ['send']);
    const reader = requirePermission(deps.authenticate, ['notifications:read']);
    const acceptDeps: AcceptDeps = {
      ...deps,
      resolveTemplate:
        deps.resolveTemplate ?? ((serviceId, key) => findTemplateVersion(deps.pool, serviceId, key)),
      resolveTopic: deps.resolveTopic ?? ((serviceId, key) => findTopic(deps.pool, serviceId, key)),
      resolveBudget:
        deps.resolveBudget ?? ((serviceId, name) => findRateBudgetId(deps.pool, serviceId, name)),
    };

    app.post(
      '/v1/notifications',
      {
        onRequest: guard,
        schema: {
          summary: 'Send a notification to one or many users',
          operationId: 'sendNotification',
          tags: ['notifications'],
          headers: IdempotencyHeaders,
          body: NotificationRequestSchema,
          response: answers({ 202: AcceptedSchema }),
        },
      },
      async (request, reply) => {
        const result = await acceptNotifications(
          acceptDeps,
          callerOf(request),
          request.body,
          request.headers['idempotency-key'],
          request.traceContext,
        );
        if (result.replayed) void reply.header('idempotent-replayed', 'true');
        return reply.code(202).send({
          id: result.id,
          status: result.status,
          recipients: result.recipients,
          created_at: result.createdAt.toISOString(),
          send_at: result.sendAt?.toISOString() ?? null,
        });
      },
    );

    app.get(
      '/v1/notifications/:id',
      {
        onRequest: reader,
        schema: {
          summary: 'A notification with the state of every delivery',
          operationId: 'getNotification',
          tags: ['notifications'],
          params: NotificationIdParam,
          response: answers({ 200: NotificationSchema }),
        },
      },
      async (request) => {
        const id = ownNotificationId(callerOf(request), request.params.id);
        const view = await getNotificationView(deps.pool, id);
        if (view === undefined) throw new ProblemError('not_found', 'No notification with this id.');
        return presentNotification(view, deps.now(), callerOf(request));
      },
    );
  };
}
