// /v1/notifications/:id: update (versioned: older versions never win) and cancel what has not
// been sent yet.
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { withTransaction, type Pool } from '../../db/pools.js';
import {
  cancelNotification,
  findNotificationRow,
  getNotificationView,
  patchNotification,
} from '../../db/stores/notification-store.js';
import { ProblemError } from '../../domain/problems.js';
import { callerOf, requirePermission } from '../../http/api-key-auth.js';
import { checkProviderLimits, checkTemplateRenders } from '../../ingest/accept-notifications.js';
import { findTemplateVersion } from '../../db/stores/template-store.js';
import { NotificationIdParam, ownNotificationId, PatchSchema } from './notification-input.js';
import { PatchedNotificationSchema, presentNotification } from './notification-presenter.js';
import { Type } from 'typebox';
import { Answer, answers } from '../../http/openapi-contract.js';
import type { NotificationRouteDeps } from './notification-routes.js';

export function notificationChangeRoutes(deps: NotificationRouteDeps): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const guard = requirePermission(deps.authenticate, ['send']);

    app.patch(
      '/v1/notifications/:id',
      {
        onRequest: guard,
        schema: {
          summary: 'Update a notification (versioned: older versions never win)',
          operationId: 'updateNotification',
          tags: ['notifications'],
          params: NotificationIdParam,
          body: PatchSchema,
          response: answers({ 200: PatchedNotificationSchema }),
        },
      },
      async (request) => {
        const id = ownNotificationId(callerOf(request), request.params.id);
        const { version, content, data } = request.body;
        const current = await getNotificationView(deps.pool, id);
        if (current === undefined) throw new ProblemError('not_found', 'No notification with this id.');
        if (current.template !== null && content !== undefined) {
          throw new ProblemError(
            'validation_failed',
            'The content of a templated notification is its template.',
            [{ field: 'body/content', message: 'not allowed for a templated notification' }],
          );
        }
        const nextData = data === undefined ? current.data : data;
        // A templated notification's content is its template, rendered with the new data.
        const ref = current.template;
        const template =
          ref === null
            ? undefined
            : await findTemplateVersion(deps.pool, current.serviceId, ref.key, ref.version);
        if (ref === null || template === undefined)
          checkProviderLimits(deps, current.channels, content ?? current.content, nextData);
        else await checkTemplateRenders(deps, template, current.channels, ref.params, nextData);
        const result = await patchNotification(deps.pool, id, version, content, data, deps.now());
        switch (result.kind) {
          case 'not_found':
            throw new ProblemError('not_found', 'No notification with this id.');
          case 'stale':
            throw new ProblemError(
              'version_conflict',
              `The stored version is ${String(result.version)}; send a higher version.`,
            );
          case 'applied':
            deps.notifier.notifyInbox(result.inboxUsers);
            break;
          case 'unchanged':
            break;
        }
        const view = await getNotificationView(deps.pool, id);
        if (view === undefined) throw new ProblemError('not_found');
        return {
          ...presentNotification(view, deps.now(), callerOf(request)),
          applied: result.kind === 'applied',
        };
      },
    );

    app.post(
      '/v1/notifications/:id/cancel',
      {
        onRequest: guard,
        schema: {
          summary: 'Cancel what has not been sent yet (e.g. a scheduled notification)',
          operationId: 'cancelNotification',
          tags: ['notifications'],
          params: NotificationIdParam,
          response: answers({
            200: Answer({
              id: Type.String(),
              canceled_recipients: Type.Integer({
                description: 'Recipients not yet fanned out, now canceled.',
              }),
              canceled_deliveries: Type.Integer({ description: 'Deliveries not yet sent, now canceled.' }),
            }),
          }),
        },
      },
      async (request) => {
        const id = ownNotificationId(callerOf(request), request.params.id);
        const pool: Pool = deps.pool;
        const row = await findNotificationRow(pool, id);
        if (row === undefined) throw new ProblemError('not_found', 'No notification with this id.');
        const result = await withTransaction(pool, (client) =>
          cancelNotification(client, row.id, row.created_at, deps.now()),
        );
        if (result.recipients + result.deliveries + result.topicSends === 0) {
          throw new ProblemError(
            'not_cancelable',
            'Every delivery of this notification was already handed to a provider or finished.',
          );
        }
        return { id, canceled_recipients: result.recipients, canceled_deliveries: result.deliveries };
      },
    );
  };
}
