// /v1/notifications: accept, read back with per-delivery states, update (versioned), cancel.
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import { withTransaction, type Pool } from '../../db/pools.js';
import {
  cancelNotification,
  findNotificationRow,
  getNotificationView,
  patchNotification,
  type NotificationView,
} from '../../db/stores/notification-store.js';
import { parseNotificationId } from '../../domain/ids.js';
import { channels, lanes, type Channel } from '../../domain/notification.js';
import { ProblemError } from '../../domain/problems.js';
import { callerOf, requirePermission, type Authenticate } from '../../http/api-key-auth.js';
import { acceptNotifications, checkProviderLimits, type AcceptDeps } from './accept-notifications.js';
import type { Caller } from '../../domain/caller.js';
import { presentTarget } from '../../domain/contact.js';
import { findTemplateVersion } from '../../db/stores/template-store.js';
import { templateKeyPattern } from '../../domain/template.js';

const ChannelContent = Type.Object(
  {
    title: Type.Optional(Type.String({ maxLength: 256 })),
    body: Type.Optional(Type.String({ maxLength: 4000 })),
    url: Type.Optional(Type.String({ maxLength: 2048, format: 'uri' })),
    status: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
);

const Content = Type.Object(
  Object.fromEntries(['default', ...channels].map((c) => [c, Type.Optional(ChannelContent)])) as Record<
    'default' | (typeof channels)[number],
    ReturnType<typeof Type.Optional<typeof ChannelContent>>
  >,
  { additionalProperties: false, description: 'Content per channel; each channel falls back to `default`.' },
);

const UserId = Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\s]+$' });
const NotificationIdParam = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) });

export const NotificationRequestSchema = Type.Object(
  {
    id: Type.Optional(Type.String({ maxLength: 200, description: 'Your own id, `<service>#<uuid>`.' })),
    recipients: Type.Array(UserId, { minItems: 1, maxItems: 100_000, description: 'User ids.' }),
    channels: Type.Array(Type.Union(channels.map((c) => Type.Literal(c))), {
      minItems: 1,
      uniqueItems: true,
    }),
    // No schema defaults: an absent lane or category is the template's (else transactional, general).
    lane: Type.Optional(
      Type.Union(
        lanes.map((l) => Type.Literal(l)),
        { description: "Default: the template's lane, else transactional." },
      ),
    ),
    category: Type.Optional(
      Type.String({
        pattern: '^[a-z0-9][a-z0-9_.-]{0,63}$',
        description: "Default: the template's category, else general.",
      }),
    ),
    content: Type.Optional(Content),
    template: Type.Optional(
      Type.String({
        pattern: templateKeyPattern,
        description: 'A template key, instead of content; its current version is used.',
      }),
    ),
    params: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), { description: "The template's declared parameters." }),
    ),
    send_at: Type.Optional(Type.String({ format: 'date-time', description: 'Send later (scheduled).' })),
    data: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), { description: 'Free-form data passed to the channels.' }),
    ),
  },
  { additionalProperties: false },
);

const AcceptedSchema = Type.Object({
  id: Type.String(),
  status: Type.Union([Type.Literal('accepted'), Type.Literal('scheduled')]),
  recipients: Type.Integer(),
  created_at: Type.String(),
  send_at: Type.Union([Type.String(), Type.Null()]),
});

const PatchSchema = Type.Object(
  {
    version: Type.Integer({
      minimum: 2,
      maximum: 9_007_199_254_740_991,
      description: 'Must exceed the stored version.',
    }),
    content: Type.Optional(Content),
    data: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
);

const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({ minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7e]+$' }),
  ),
});

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
    };

    app.post(
      '/v1/notifications',
      {
        onRequest: guard,
        schema: {
          summary: 'Send a notification to one or many users',
          tags: ['notifications'],
          headers: IdempotencyHeaders,
          body: NotificationRequestSchema,
          response: { 202: AcceptedSchema },
        },
      },
      async (request, reply) => {
        const result = await acceptNotifications(
          acceptDeps,
          callerOf(request),
          request.body,
          request.headers['idempotency-key'],
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
          tags: ['notifications'],
          params: NotificationIdParam,
        },
      },
      async (request) => {
        const id = ownNotificationId(callerOf(request), request.params.id);
        const view = await getNotificationView(deps.pool, id);
        if (view === undefined) throw new ProblemError('not_found', 'No notification with this id.');
        return presentNotification(view, deps.now(), callerOf(request));
      },
    );

    app.patch(
      '/v1/notifications/:id',
      {
        onRequest: guard,
        schema: {
          summary: 'Update a notification (versioned: older versions never win)',
          tags: ['notifications'],
          params: NotificationIdParam,
          body: PatchSchema,
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
        checkProviderLimits(
          deps,
          current.channels as Channel[],
          content ?? current.content,
          data === undefined ? current.data : data,
        );
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
          tags: ['notifications'],
          params: NotificationIdParam,
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
        if (result.recipients + result.deliveries === 0) {
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

/** 400 for a malformed id, 403 for another service's (its name is in the id, so this leaks nothing). */
function ownNotificationId(caller: Caller, text: string): string {
  const parsed = parseNotificationId(text);
  if (parsed === undefined)
    throw new ProblemError('invalid_notification_id', 'The id must be "<service>#<uuid>".');
  if (parsed.service !== caller.serviceName)
    throw new ProblemError('forbidden', 'This notification belongs to another service.');
  return `${parsed.service}#${parsed.uuid}`;
}

export type NotificationStatus = 'scheduled' | 'accepted' | 'processing' | 'completed' | 'canceled';

export function notificationStatus(view: NotificationView, now: Date): NotificationStatus {
  const pendingRecipients = view.recipients.some((r) => r.state === 'pending');
  const openDeliveries = view.deliveries.some((d) => ['pending', 'retrying', 'sending'].includes(d.state));
  if (view.canceledAt !== null && !pendingRecipients && !openDeliveries) return 'canceled';
  if (pendingRecipients) return view.sendAt !== null && view.sendAt > now ? 'scheduled' : 'accepted';
  return openDeliveries ? 'processing' : 'completed';
}

/** Delivery targets are shown in full only to a key allowed to read contact data (docs/security.md). */
function presentNotification(view: NotificationView, now: Date, caller: Caller) {
  const inFull = caller.permissions.includes('users:read');
  return {
    id: view.id,
    status: notificationStatus(view, now),
    version: view.version,
    lane: view.lane,
    category: view.category,
    channels: view.channels,
    content: view.content,
    template:
      view.template === null
        ? null
        : { key: view.template.key, version: view.template.version, params: view.template.params },
    data: view.data,
    send_at: view.sendAt?.toISOString() ?? null,
    created_at: view.createdAt.toISOString(),
    updated_at: view.updatedAt.toISOString(),
    canceled_at: view.canceledAt?.toISOString() ?? null,
    recipients: view.recipients.map((r) => ({ user_id: r.userId, state: r.state, skipped: r.skipped ?? [] })),
    deliveries: view.deliveries.map((d) => ({
      id: d.id,
      user_id: d.userId,
      channel: d.channel,
      target: presentTarget(d.channel as Channel, d.target, inFull),
      state: d.state,
      attempts: d.attempts,
      last_error: d.lastError,
      provider_message_id: d.providerMessageId,
      next_attempt_at: d.state === 'pending' || d.state === 'retrying' ? d.runAt.toISOString() : null,
      updated_at: d.updatedAt.toISOString(),
    })),
  };
}

export type NotificationRequestBody = Static<typeof NotificationRequestSchema>;
