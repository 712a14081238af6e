// Query role: a user's inbox, for apps acting for one user (a user token: every service's items)
// or services acting for any user (an API key with the inbox permission: only the service's own
// items, docs/security.md). Lists read from the read pool (a replica when
// configured), so users can read while ingest is down; changes go to the primary and append to
// the user's event stream, which the realtime stream (inbox-stream.ts) follows. docs/inbox.md.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { withTransaction, type Pool } from '../db/pools.js';
import { callerOf, requirePermission, type Authenticate } from '../http/api-key-auth.js';
import { ProblemError } from '../domain/problems.js';
import { KeyedQuota } from '../domain/token-bucket.js';
import type { WakeNotifier } from '../db/wake-notifier.js';
import {
  applyItemAction,
  countInbox,
  findInboxItems,
  listInbox,
  markAll,
  serviceScope,
  type InboxPosition,
  type ItemAction,
  type ServiceScope,
} from '../db/stores/inbox-store.js';
import { revokeUserTokens } from '../db/stores/user-token-store.js';
import type { InboxPresenter } from './inbox-presenter.js';
import { inboxCallerOf, requireInboxAccess, type InboxCaller, type UserTokens } from './user-auth.js';
import type { InboxStreams } from './inbox-stream.js';
import type { CredentialRevocations } from './credential-revocations.js';

export interface InboxRouteDeps {
  /** Reads: the replica when DATABASE_READ_URL is set. */
  readPool: Pool;
  /** Changes (read state): always the primary. */
  pool: Pool;
  tokens: UserTokens;
  authenticate: Authenticate;
  revocations: CredentialRevocations;
  notifier: WakeNotifier;
  streams: InboxStreams;
  presenter: InboxPresenter;
  /** Signs cursors to the user they were given to. */
  cursorKey: Uint8Array;
  maxTokenTtlSeconds?: number;
  /** User tokens one key may have issued per minute (per query process). */
  tokenIssuesPerMinute: number;
  now: () => Date;
}

/** A service's key sees only its own items; a user's token sees the whole inbox. */
function scopeOf(caller: InboxCaller): ServiceScope {
  return caller.kind === 'service' ? serviceScope(caller.caller.serviceName) : undefined;
}

const UserId = Type.String({ minLength: 1, maxLength: 128 });
const NotificationId = Type.String({ minLength: 1, maxLength: 200 });
const UserParams = Type.Object({ userId: UserId });
const ItemParams = Type.Object({ userId: UserId, notificationId: NotificationId });
const Category = Type.String({ minLength: 1, maxLength: 64 });

const itemActions: Record<string, ItemAction> = {
  read: 'read',
  unread: 'unread',
  seen: 'seen',
  archive: 'archived',
  unarchive: 'unarchived',
};

export function inboxRoutes(deps: InboxRouteDeps): FastifyPluginAsync {
  const { presenter } = deps;
  const cursors = new CursorCodec(deps.cursorKey);
  const access = { tokens: deps.tokens, authenticate: deps.authenticate, revocations: deps.revocations };
  const guard = requireInboxAccess(access, ['inbox']);
  const issuesPerKey = new KeyedQuota<number>(deps.tokenIssuesPerMinute);
  const itemOf = async (userId: string, notificationId: string, scope: ServiceScope) => {
    const rows = await findInboxItems(deps.pool, [{ userId, notificationId }], scope);
    const [item] = await presenter.present(deps.pool, rows);
    if (item === undefined) throw new ProblemError('not_found', 'No such item in this inbox.');
    return item;
  };

  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

    app.post(
      '/v1/users/:userId/token',
      {
        onRequest: requirePermission(deps.authenticate, ['user_tokens']),
        preValidation: emptyBodyAllowed,
        schema: {
          summary: 'Issue a short-lived user token: apps use it to read and change this user’s inbox',
          tags: ['inbox'],
          params: UserParams,
          body: Type.Object(
            {
              ttl_seconds: Type.Optional(
                Type.Integer({ minimum: 60, maximum: deps.maxTokenTtlSeconds ?? 86_400 }),
              ),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (request, reply) => {
        const caller = callerOf(request);
        const taken = issuesPerKey.take(caller.keyId, deps.now().getTime());
        if (!taken.ok)
          throw new ProblemError(
            'rate_limited',
            `This key may issue ${String(deps.tokenIssuesPerMinute)} user tokens a minute; retry in ${String(taken.retryAfterSeconds)} s.`,
            undefined,
            { headers: { 'retry-after': String(taken.retryAfterSeconds) } },
          );
        const issued = await deps.tokens.issue(
          request.params.userId,
          caller.keyId,
          (request.body as { ttl_seconds?: number } | undefined)?.ttl_seconds,
        );
        reply.header('cache-control', 'no-store');
        return reply.code(201).send({
          token: issued.token,
          token_type: 'Bearer',
          expires_at: issued.expiresAt.toISOString(),
          user_id: request.params.userId,
        });
      },
    );

    app.post(
      '/v1/users/:userId/tokens/revoke',
      {
        // The user (signing out everywhere) or a key that may issue tokens.
        onRequest: requireInboxAccess(access, ['user_tokens']),
        preValidation: emptyBodyAllowed,
        schema: {
          summary: 'Revoke the user’s tokens issued before a time (default: now), on every query process',
          tags: ['inbox'],
          params: UserParams,
          body: Type.Object(
            { before: Type.Optional(Type.String({ format: 'date-time' })) },
            { additionalProperties: false },
          ),
        },
      },
      async (request) => {
        const { before } = request.body;
        const now = deps.now();
        const at = before === undefined ? now : new Date(before);
        // A revocation reaches back, never forward: tokens issued later are the user's new sign-ins.
        const revokedBefore = await revokeUserTokens(deps.pool, request.params.userId, at > now ? now : at);
        return { user_id: request.params.userId, revoked_before: revokedBefore.toISOString() };
      },
    );

    app.get(
      '/v1/users/:userId/inbox',
      {
        onRequest: guard,
        schema: {
          summary:
            "A user's in-app notifications of the last 90 days, newest first, each in its latest version",
          tags: ['inbox'],
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
          tags: ['inbox'],
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
          tags: ['inbox'],
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

    app.get(
      '/v1/users/:userId/inbox/:notificationId',
      {
        onRequest: guard,
        schema: { summary: 'One item of a user’s inbox', tags: ['inbox'], params: ItemParams },
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
          tags: ['inbox'],
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
        schema: { summary: 'Delete an item from a user’s inbox', tags: ['inbox'], params: ItemParams },
      },
      async (request, reply) => {
        await change(
          request.params.userId,
          request.params.notificationId,
          'deleted',
          scopeOf(inboxCallerOf(request)),
        );
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
            tags: ['inbox'],
            params: UserParams,
            body: Type.Object({ category: Type.Optional(Category) }, { additionalProperties: false }),
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

/** A POST whose options are all optional may come without a body: it means `{}`. */
function emptyBodyAllowed(request: FastifyRequest, _reply: FastifyReply, done: () => void): void {
  request.body ??= {};
  done();
}

function parseEventId(text: string): number {
  if (!/^\d{1,15}$/.test(text))
    throw new ProblemError('validation_failed', 'Last-Event-ID must be an event id this stream sent.', [
      { field: 'headers/last-event-id', message: 'must be a non-negative integer' },
    ]);
  return Number(text);
}

/**
 * Cursors are opaque: the position of the page's last item, signed together with the user id,
 * so a cursor given to one user is refused for another (400 cursor_invalid, whatever it names).
 */
class CursorCodec {
  constructor(private readonly key: Uint8Array) {}

  encode(userId: string, position: InboxPosition): string {
    const payload = Buffer.from(`${String(position.arrivedUs)}:${position.id}`, 'utf8').toString('base64url');
    return `${payload}.${this.sign(userId, payload)}`;
  }

  decode(userId: string, cursor: string): InboxPosition {
    const [payload, signature, extra] = cursor.split('.');
    const invalid = new ProblemError('cursor_invalid', 'Use the next_cursor of a page of this inbox.');
    if (payload === undefined || signature === undefined || extra !== undefined) throw invalid;
    const expected = Buffer.from(this.sign(userId, payload), 'utf8');
    const given = Buffer.from(signature, 'utf8');
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) throw invalid;
    const text = Buffer.from(payload, 'base64url').toString('utf8');
    const colon = text.indexOf(':');
    const arrivedUs = Number(text.slice(0, colon));
    if (colon < 1 || !Number.isSafeInteger(arrivedUs)) throw invalid;
    return { arrivedUs, id: text.slice(colon + 1) };
  }

  private sign(userId: string, payload: string): string {
    return createHmac('sha256', this.key)
      .update(`inbox-cursor\n${userId}\n${payload}`)
      .digest()
      .subarray(0, 16)
      .toString('base64url');
  }
}
