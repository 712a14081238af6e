// A service's topics (API key): create, list, read, delete; subscribe and unsubscribe users in
// bounded batches; list subscribers (keyset pages); a user's opt-outs of the service's topics.
// A topic belongs to the service that created it: another service's key finds nothing (404).
// Sending to a topic is POST /v1/notifications with `topic` (docs/topics.md).
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { withTransaction, type Pool } from '../../db/pools.js';
import {
  addSubscribers,
  createTopic,
  deleteTopic,
  findTopic,
  listSubscribers,
  listTopicOptOuts,
  listTopics,
  removeSubscribers,
  setTopicOptOut,
  type Topic,
} from '../../db/stores/topic-store.js';
import { ProblemError } from '../../domain/problems.js';
import { maxSubscribersPerRequest, maxTopicPage, topicKeyPattern } from '../../domain/topic.js';
import { callerOf, requirePermission, type Authenticate } from '../../http/api-key-auth.js';
import { Answer, answers, Nullable, Timestamp } from '../../http/openapi-contract.js';

const TopicKey = Type.String({ pattern: topicKeyPattern });
const UserId = Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\s]+$' });
const KeyParam = Type.Object({ key: TopicKey });
const PageQuery = Type.Object({
  after: Type.Optional(
    Type.String({ maxLength: 200, description: 'The `next_after` of the previous page.' }),
  ),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: maxTopicPage, default: 100 })),
});

const TopicSchema = Answer({
  key: Type.String(),
  name: Nullable(Type.String()),
  subscribers: Type.Integer({ description: 'Subscribed users (opted-out ones included).' }),
  created_at: Timestamp(),
});

const UserIdsBody = Type.Object(
  { user_ids: Type.Array(UserId, { minItems: 1, maxItems: maxSubscribersPerRequest }) },
  { additionalProperties: false },
);

function presentTopic(t: Topic) {
  return { key: t.key, name: t.name, subscribers: t.subscribers, created_at: t.createdAt.toISOString() };
}

function notFound(key: string): ProblemError {
  return new ProblemError('topic_not_found', `This service has no topic "${key}".`);
}

export function topicRoutes(deps: { pool: Pool; authenticate: Authenticate }): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    // Topics are audiences made of users: managing them is the user directory's (users:write).
    const writer = requirePermission(deps.authenticate, ['users:write']);
    const reader = requirePermission(deps.authenticate, ['users:read', 'users:write', 'send']);
    const tags = ['topics'];

    app.post(
      '/v1/topics',
      {
        onRequest: writer,
        schema: {
          summary: 'Create a topic of the calling service',
          operationId: 'createTopic',
          tags,
          body: Type.Object(
            { key: TopicKey, name: Type.Optional(Type.String({ maxLength: 200 })) },
            { additionalProperties: false },
          ),
          response: answers({ 201: TopicSchema }),
        },
      },
      async (request, reply) => {
        const caller = callerOf(request);
        const topic = await createTopic(
          deps.pool,
          caller.serviceId,
          request.body.key,
          request.body.name ?? null,
        );
        if (topic === undefined)
          throw new ProblemError('topic_exists', `This service already has a topic "${request.body.key}".`);
        return reply.code(201).send(presentTopic(topic));
      },
    );

    app.get(
      '/v1/topics',
      {
        onRequest: reader,
        schema: {
          summary: "The calling service's topics, in key order",
          operationId: 'listTopics',
          tags,
          querystring: PageQuery,
          response: answers({
            200: Answer({ topics: Type.Array(TopicSchema), next_after: Nullable(Type.String()) }),
          }),
        },
      },
      async (request) => {
        const limit = request.query.limit ?? 100;
        const page = await listTopics(deps.pool, callerOf(request).serviceId, request.query.after, limit);
        return {
          topics: page.map(presentTopic),
          next_after: page.length === limit ? (page[page.length - 1]?.key ?? null) : null,
        };
      },
    );

    app.get(
      '/v1/topics/:key',
      {
        onRequest: reader,
        schema: {
          summary: "One of the calling service's topics",
          operationId: 'getTopic',
          tags,
          params: KeyParam,
          response: answers({ 200: TopicSchema }),
        },
      },
      async (request) => {
        const topic = await findTopic(deps.pool, callerOf(request).serviceId, request.params.key);
        if (topic === undefined) throw notFound(request.params.key);
        return presentTopic(topic);
      },
    );

    app.delete(
      '/v1/topics/:key',
      {
        onRequest: writer,
        schema: {
          summary: 'Delete a topic, its subscriptions and opt-outs; its sends not yet expanded stop',
          operationId: 'deleteTopic',
          tags,
          params: KeyParam,
          response: answers({ 204: null }),
        },
      },
      async (request, reply) => {
        if (!(await deleteTopic(deps.pool, callerOf(request).serviceId, request.params.key)))
          throw notFound(request.params.key);
        return reply.code(204).send();
      },
    );
  };
}

/** Subscribing and unsubscribing users in bounded batches; subscribers in keyset pages. */
export function topicSubscriberRoutes(deps: { pool: Pool; authenticate: Authenticate }): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const writer = requirePermission(deps.authenticate, ['users:write']);
    const reader = requirePermission(deps.authenticate, ['users:read', 'users:write', 'send']);
    const tags = ['topics'];

    app.post(
      '/v1/topics/:key/subscribers',
      {
        onRequest: writer,
        schema: {
          summary: `Subscribe users to a topic (at most ${String(maxSubscribersPerRequest)} per request)`,
          operationId: 'addTopicSubscribers',
          tags,
          params: KeyParam,
          body: UserIdsBody,
          response: answers({
            200: Answer({
              added: Type.Integer({
                description: 'Newly subscribed (already subscribed ones are not counted).',
              }),
              unknown: Type.Array(Type.String(), { description: 'Ids of no user: not subscribed.' }),
            }),
          }),
        },
      },
      async (request) =>
        withTransaction(deps.pool, async (client) => {
          const topic = await findTopic(client, callerOf(request).serviceId, request.params.key, {
            lock: true,
          });
          if (topic === undefined) throw notFound(request.params.key);
          return addSubscribers(client, topic.id, request.body.user_ids);
        }),
    );

    app.post(
      '/v1/topics/:key/subscribers/remove',
      {
        onRequest: writer,
        schema: {
          summary: `Unsubscribe users from a topic (at most ${String(maxSubscribersPerRequest)} per request)`,
          operationId: 'removeTopicSubscribers',
          tags,
          params: KeyParam,
          body: UserIdsBody,
          response: answers({ 200: Answer({ removed: Type.Integer() }) }),
        },
      },
      async (request) =>
        withTransaction(deps.pool, async (client) => {
          const topic = await findTopic(client, callerOf(request).serviceId, request.params.key, {
            lock: true,
          });
          if (topic === undefined) throw notFound(request.params.key);
          return { removed: await removeSubscribers(client, topic.id, request.body.user_ids) };
        }),
    );

    app.get(
      '/v1/topics/:key/subscribers',
      {
        onRequest: reader,
        schema: {
          summary: "A page of a topic's subscribers, in user id order",
          operationId: 'listTopicSubscribers',
          tags,
          params: KeyParam,
          querystring: PageQuery,
          response: answers({
            200: Answer({
              subscribers: Type.Array(Answer({ user_id: Type.String(), subscribed_at: Timestamp() })),
              next_after: Nullable(Type.String()),
            }),
          }),
        },
      },
      async (request) => {
        const topic = await findTopic(deps.pool, callerOf(request).serviceId, request.params.key);
        if (topic === undefined) throw notFound(request.params.key);
        const limit = request.query.limit ?? 100;
        const page = await listSubscribers(deps.pool, topic.id, request.query.after, limit);
        return {
          subscribers: page.map((s) => ({ user_id: s.userId, subscribed_at: s.subscribedAt.toISOString() })),
          next_after: page.length === limit ? (page[page.length - 1]?.userId ?? null) : null,
        };
      },
    );
  };
}

/** A user's opt-outs of the calling service's topics: the fan-out skips them; the subscription stays. */
export function topicOptOutRoutes(deps: { pool: Pool; authenticate: Authenticate }): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const writer = requirePermission(deps.authenticate, ['users:write']);
    const reader = requirePermission(deps.authenticate, ['users:read', 'users:write']);
    const params = Type.Object({ userId: UserId, key: TopicKey });
    const change = async (
      serviceId: number,
      p: { userId: string; key: string },
      optedOut: boolean,
    ): Promise<void> => {
      if (!(await setTopicOptOut(deps.pool, serviceId, p.key, p.userId, optedOut)))
        throw new ProblemError('not_found', `No user "${p.userId}", or no topic "${p.key}" of this service.`);
    };

    app.put(
      '/v1/users/:userId/topic-opt-outs/:key',
      {
        onRequest: writer,
        schema: {
          summary: "The user opts out of one of the calling service's topics",
          operationId: 'optOutOfTopic',
          tags: ['topics'],
          params,
          response: answers({ 204: null }),
        },
      },
      async (request, reply) => {
        await change(callerOf(request).serviceId, request.params, true);
        return reply.code(204).send();
      },
    );

    app.delete(
      '/v1/users/:userId/topic-opt-outs/:key',
      {
        onRequest: writer,
        schema: {
          summary: 'The user opts back into a topic',
          operationId: 'optIntoTopic',
          tags: ['topics'],
          params,
          response: answers({ 204: null }),
        },
      },
      async (request, reply) => {
        await change(callerOf(request).serviceId, request.params, false);
        return reply.code(204).send();
      },
    );

    app.get(
      '/v1/users/:userId/topic-opt-outs',
      {
        onRequest: reader,
        schema: {
          summary: "The calling service's topics the user opted out of",
          operationId: 'listTopicOptOuts',
          tags: ['topics'],
          params: Type.Object({ userId: UserId }),
          response: answers({ 200: Answer({ topics: Type.Array(Type.String()) }) }),
        },
      },
      async (request) => ({
        topics: await listTopicOptOuts(deps.pool, callerOf(request).serviceId, request.params.userId),
      }),
    );
  };
}
