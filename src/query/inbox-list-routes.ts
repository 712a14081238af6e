// A user's inbox read: the list (cursor pages, filters), the counts, and the realtime stream.
// Reads go to the read pool.
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { Answer, answers, Nullable } from '../http/openapi-contract.js';
import { InboxItemSchema } from './inbox-presenter.js';
import { ProblemError } from '../domain/problems.js';
import { countInbox, listInbox } from '../db/stores/inbox-store.js';
import { inboxCallerOf, requireInboxAccess } from './user-auth.js';
import { CursorCodec } from './inbox-cursor.js';
import { Category, scopeOf, UserParams, type InboxRouteDeps } from './inbox-request.js';

const InboxPage = Answer({
  items: Type.Array(InboxItemSchema),
  next_cursor: Nullable(Type.String({ description: 'Pass as `cursor` for the next page; null: no more.' })),
});

export function inboxListRoutes(deps: InboxRouteDeps): FastifyPluginAsync {
  const { presenter } = deps;
  const cursors = new CursorCodec(deps.cursorKey);
  const access = { tokens: deps.tokens, authenticate: deps.authenticate, revocations: deps.revocations };
  const guard = requireInboxAccess(access, ['inbox']);
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

    app.get(
      '/v1/users/:userId/inbox',
      {
        onRequest: guard,
        schema: {
          summary:
            "A user's in-app notifications of the last 90 days, newest first, each in its latest version",
          operationId: 'listInbox',
          tags: ['inbox'],
          response: answers({ 200: InboxPage }),
          params: UserParams,
          querystring: Type.Object(
            {
              limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
              cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 400 })),
              unread: Type.Optional(Type.Boolean()),
              archived: Type.Optional(Type.Boolean()),
              category: Type.Optional(Category),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (request) => {
        const { userId } = request.params;
        const { limit = 20, cursor, unread, archived, category } = request.query;
        const after = cursor === undefined ? undefined : cursors.decode(userId, cursor);
        const rows = await listInbox(
          deps.readPool,
          userId,
          {
            scope: scopeOf(inboxCallerOf(request)),
            ...(unread === undefined ? {} : { unread }),
            ...(archived === undefined ? {} : { archived }),
            ...(category === undefined ? {} : { category }),
          },
          after,
          limit + 1,
        );
        const page = rows.slice(0, limit);
        const last = page.at(-1);
        return {
          items: await presenter.present(deps.readPool, page),
          next_cursor:
            rows.length > limit && last !== undefined
              ? cursors.encode(userId, { arrivedUs: last.arrived_us, id: last.id })
              : null,
        };
      },
    );

    app.get(
      '/v1/users/:userId/inbox/count',
      {
        onRequest: guard,
        schema: {
          summary: 'Unread and unseen items of a user’s inbox (archived ones do not count)',
          operationId: 'countInbox',
          tags: ['inbox'],
          response: answers({ 200: Answer({ unread: Type.Integer(), unseen: Type.Integer() }) }),
          params: UserParams,
        },
      },
      async (request) => countInbox(deps.readPool, request.params.userId, scopeOf(inboxCallerOf(request))),
    );

    app.get(
      '/v1/users/:userId/inbox/stream',
      {
        onRequest: requireInboxAccess(access, ['inbox'], { allowQueryToken: true }),
        schema: {
          summary:
            'Server-Sent Events: new and changed items and the unread count, replayed from Last-Event-ID',
          operationId: 'streamInbox',
          tags: ['inbox'],
          produces: ['text/event-stream'],
          response: answers({
            200: Type.String({
              description:
                'An event stream (text/event-stream): `item` events carry an inbox item, `count` events the counts; each has an id to resume from.',
            }),
          }),
          params: UserParams,
          querystring: Type.Object(
            {
              access_token: Type.Optional(Type.String({ maxLength: 4096 })),
              last_event_id: Type.Optional(Type.String({ maxLength: 20 })),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (request, reply) => {
        const header = request.headers['last-event-id'];
        const text = typeof header === 'string' ? header : request.query.last_event_id;
        const lastEventId = text === undefined || text === '' ? undefined : parseEventId(text);
        const caller = inboxCallerOf(request);
        await deps.streams.open(
          { userId: request.params.userId, credential: caller.credential, scope: scopeOf(caller) },
          lastEventId,
          reply,
        );
      },
    );
  };
}

function parseEventId(text: string): number {
  if (!/^\d{1,15}$/.test(text))
    throw new ProblemError('validation_failed', 'Last-Event-ID must be an event id this stream sent.', [
      { field: 'headers/last-event-id', message: 'must be a non-negative integer' },
    ]);
  return Number(text);
}
