// Changes to a user's inbox: one item (read, unread, seen, archive, unarchive, delete) or all of
// them (read-all, seen-all). Changes go to the primary and append to the user's event stream.
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { Answer, answers } from '../http/openapi-contract.js';
import { InboxItemSchema } from './inbox-presenter.js';
import { withTransaction } from '../db/pools.js';
import { ProblemError } from '../domain/problems.js';
import {
  applyItemAction,
  findInboxItems,
  markAll,
  type ItemAction,
  type ServiceScope,
} from '../db/stores/inbox-store.js';
import { inboxCallerOf, requireInboxAccess } from './user-auth.js';
import {
  Category,
  emptyBodyAllowed,
  ItemParams,
  NotificationId,
  scopeOf,
  UserId,
  UserParams,
  type InboxRouteDeps,
} from './inbox-request.js';

const itemActions: Record<string, ItemAction> = {
  read: 'read',
  unread: 'unread',
  seen: 'seen',
  archive: 'archived',
  unarchive: 'unarchived',
};

export function inboxItemRoutes(deps: InboxRouteDeps): FastifyPluginAsync {
  const { presenter } = deps;
  const access = { tokens: deps.tokens, authenticate: deps.authenticate, revocations: deps.revocations };
  const guard = requireInboxAccess(access, ['inbox']);
  const itemOf = async (userId: string, notificationId: string, scope: ServiceScope) => {
    const rows = await findInboxItems(deps.pool, [{ userId, notificationId }], scope);
    const [item] = await presenter.present(deps.pool, rows);
    if (item === undefined) throw new ProblemError('not_found', 'No such item in this inbox.');
    return item;
  };

  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

    app.get(
      '/v1/users/:userId/inbox/:notificationId',
      {
        onRequest: guard,
        schema: {
          summary: 'One item of a user’s inbox',
          operationId: 'getInboxItem',
          tags: ['inbox'],
          params: ItemParams,
          response: answers({ 200: InboxItemSchema }),
        },
      },
      async (request) =>
        itemOf(request.params.userId, request.params.notificationId, scopeOf(inboxCallerOf(request))),
    );

    app.post(
      '/v1/users/:userId/inbox/:notificationId/:action',
      {
        onRequest: guard,
        schema: {
          summary: 'Mark an item read, unread or seen; archive or unarchive it',
          operationId: 'changeInboxItem',
          tags: ['inbox'],
          response: answers({ 200: InboxItemSchema }),
          params: Type.Object({
            userId: UserId,
            notificationId: NotificationId,
            action: Type.Union(Object.keys(itemActions).map((a) => Type.Literal(a))),
          }),
        },
      },
      async (request) => {
        const { userId, notificationId, action } = request.params;
        const kind = itemActions[action];
        if (kind === undefined) throw new ProblemError('route_not_found');
        const scope = scopeOf(inboxCallerOf(request));
        await change(userId, notificationId, kind, scope);
        return itemOf(userId, notificationId, scope);
      },
    );

    app.delete(
      '/v1/users/:userId/inbox/:notificationId',
      {
        onRequest: guard,
        schema: {
          summary: 'Delete an item from a user’s inbox',
          operationId: 'deleteInboxItem',
          tags: ['inbox'],
          params: ItemParams,
          response: answers({ 204: null }),
        },
      },
      async (request, reply) => {
        const { userId, notificationId } = request.params;
        await change(userId, notificationId, 'deleted', scopeOf(inboxCallerOf(request)));
        return reply.code(204).send();
      },
    );

    for (const [path, kind] of [
      ['read-all', 'read_all'],
      ['seen-all', 'seen_all'],
    ] as const) {
      app.post(
        `/v1/users/:userId/inbox/${path}`,
        {
          onRequest: guard,
          preValidation: emptyBodyAllowed,
          schema: {
            summary: `Mark every item (optionally of one category) ${kind === 'read_all' ? 'read' : 'seen'}`,
            operationId: kind === 'read_all' ? 'markAllRead' : 'markAllSeen',
            tags: ['inbox'],
            params: UserParams,
            body: Type.Object({ category: Type.Optional(Category) }, { additionalProperties: false }),
            response: answers({ 200: Answer({ changed: Type.Integer({ description: 'Items changed.' }) }) }),
          },
        },
        async (request) => {
          const { userId } = request.params;
          const scope = scopeOf(inboxCallerOf(request));
          const changed = await withTransaction(deps.pool, (client) =>
            markAll(client, userId, kind, request.body.category, scope),
          );
          if (changed > 0) deps.notifier.notifyInbox([userId]);
          return { changed };
        },
      );
    }
  };

  async function change(
    userId: string,
    notificationId: string,
    action: ItemAction,
    scope: ServiceScope,
  ): Promise<void> {
    const result = await withTransaction(deps.pool, (client) =>
      applyItemAction(client, userId, notificationId, action, scope),
    );
    if (result === 'missing') throw new ProblemError('not_found', 'No such item in this inbox.');
    if (result === 'changed') deps.notifier.notifyInbox([userId]);
  }
}
