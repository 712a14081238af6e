// A user's opt-outs of topics on the query role: a user token for that user (every service's
// topics: apps act for their users across services, as in the inbox), or an API key with
// users:read / users:write acting for any user, which sees and changes only its own service's
// topics. The fan-out skips an opted-out user; the subscription stays (docs/topics.md).
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Pool } from '../db/pools.js';
import { findServiceId, listUserTopicOptOuts, setTopicOptOut } from '../db/stores/topic-store.js';
import { ProblemError } from '../domain/problems.js';
import { topicKeyPattern } from '../domain/topic.js';
import { Answer, answers } from '../http/openapi-contract.js';
import { inboxCallerOf, requireInboxAccess, type InboxAccess } from './user-auth.js';
import { UserParams } from './inbox-request.js';

const OptOutParams = Type.Object({
  userId: UserParams.properties.userId,
  service: Type.String({
    minLength: 1,
    maxLength: 100,
    description: 'The name of the service whose topic it is.',
  }),
  key: Type.String({ pattern: topicKeyPattern }),
});

export function userTopicOptOutRoutes(deps: { pool: Pool; access: InboxAccess }): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const read = requireInboxAccess(deps.access, ['users:read', 'users:write']);
    const write = requireInboxAccess(deps.access, ['users:write']);

    app.get(
      '/v1/users/:userId/topic-opt-outs',
      {
        onRequest: read,
        schema: {
          summary: "The topics the user opted out of (a key: its own service's only)",
          operationId: 'listUserTopicOptOuts',
          tags: ['topics'],
          params: UserParams,
          response: answers({
            200: Answer({ opt_outs: Type.Array(Answer({ service: Type.String(), topic: Type.String() })) }),
          }),
        },
      },
      async (request) => {
        const caller = inboxCallerOf(request);
        const all = await listUserTopicOptOuts(deps.pool, request.params.userId);
        const own = caller.kind === 'user' ? all : all.filter((o) => o.service === caller.caller.serviceName);
        return { opt_outs: own };
      },
    );

    for (const optedOut of [true, false]) {
      const route = {
        onRequest: write,
        schema: {
          summary: optedOut ? "The user opts out of a service's topic" : 'The user opts back into a topic',
          operationId: optedOut ? 'userOptsOutOfTopic' : 'userOptsIntoTopic',
          tags: ['topics'],
          params: OptOutParams,
          response: answers({ 204: null }),
        },
      };
      const path = '/v1/users/:userId/topic-opt-outs/:service/:key';
      const handler = async (
        request: { params: { userId: string; service: string; key: string } },
        reply: { code: (status: number) => { send: () => unknown } },
      ) => {
        const caller = inboxCallerOf(request as never);
        const { userId, service, key } = request.params;
        // A key acts for its own service only; another service's topic is not found.
        const serviceId =
          caller.kind === 'service' && caller.caller.serviceName !== service
            ? undefined
            : await findServiceId(deps.pool, service);
        if (serviceId === undefined || !(await setTopicOptOut(deps.pool, serviceId, key, userId, optedOut)))
          throw new ProblemError('not_found', 'No such user, or no such topic of that service.');
        return reply.code(204).send();
      };
      if (optedOut) app.put(path, route, handler);
      else app.delete(path, route, handler);
    }
  };
}
