// Support lookup (query role, read pool): one user's notifications from every service in a time
// range of up to 12 months, each with every delivery attempt on every channel, for API keys with
// the support role. Contact addresses are masked. See docs/support.md.
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { answers } from '../http/openapi-contract.js';
import type { Pool } from '../db/pools.js';
import {
  lookupUserHistory,
  type HistoryDelivery,
  type HistoryNotification,
  type HistoryPosition,
} from '../db/stores/support-store.js';
import { parseNotificationId } from '../domain/ids.js';
import { ProblemError, type ProblemDetail } from '../domain/problems.js';
import { requirePermission, type Authenticate } from '../http/api-key-auth.js';
import { maskTarget } from '../domain/contact.js';

const dayMs = 86_400_000;
/** Longest range one request may ask for, and how far back `from` may lie: 12 months. */
export const supportRangeDays = 366;

const Timestamp = Type.String({ format: 'date-time' });
const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);
const NullableString = Type.Union([Type.String(), Type.Null()]);

const EventSchema = Type.Object({
  state: Type.String(),
  attempt: Type.Integer(),
  detail: NullableString,
  created_at: Timestamp,
});

const DeliverySchema = Type.Object({
  id: Type.String(),
  channel: Type.String(),
  target: Type.String({ description: 'Email addresses and phone numbers masked; URLs cut to their origin.' }),
  provider: NullableString,
  state: Type.String(),
  attempts: Type.Integer(),
  run_at: Timestamp,
  last_error: NullableString,
  provider_message_id: NullableString,
  created_at: Timestamp,
  updated_at: Timestamp,
  events: Type.Array(EventSchema),
});

const NotificationSchema = Type.Object({
  id: Type.String(),
  service: Type.String(),
  category: Type.String(),
  lane: Type.String(),
  channels: Type.Array(Type.String()),
  template: Type.Union([
    Type.Object({ key: Type.String(), version: Type.Union([Type.Integer(), Type.Null()]) }),
    Type.Null(),
  ]),
  version: Type.Integer(),
  created_at: Timestamp,
  updated_at: Timestamp,
  canceled_at: NullableTimestamp,
  recipient: Type.Object({
    state: Type.String(),
    send_at: Timestamp,
    fanned_out_at: NullableTimestamp,
    skipped: Type.Array(Type.Object({ channel: Type.String(), reason: Type.String() })),
  }),
  inbox: Type.Union([
    Type.Object({
      created_at: Timestamp,
      read_at: NullableTimestamp,
      seen_at: NullableTimestamp,
      archived_at: NullableTimestamp,
      deleted_at: NullableTimestamp,
    }),
    Type.Null(),
  ]),
  deliveries: Type.Array(DeliverySchema),
});

const HistorySchema = Type.Object({
  user_id: Type.String(),
  from: Timestamp,
  to: Timestamp,
  notifications: Type.Array(NotificationSchema),
  next_cursor: NullableString,
});

export function supportRoutes(deps: {
  readPool: Pool;
  /** The archive store (retention moves months there); absent: the service store only. */
  archivePool?: Pool | undefined;
  authenticate: Authenticate;
  now?: () => Date;
}): FastifyPluginAsync {
  const now = deps.now ?? (() => new Date());
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    app.get(
      '/v1/support/users/:userId/notifications',
      {
        onRequest: requirePermission(deps.authenticate, ['support']),
        schema: {
          summary:
            "Support lookup: a user's notifications from every service created in [from, to), newest first, with every delivery and delivery event",
          operationId: 'lookupUserHistory',
          tags: ['support'],
          params: Type.Object({ userId: Type.String({ minLength: 1, maxLength: 128 }) }),
          querystring: Type.Object(
            {
              from: Type.String({ format: 'date-time', description: 'Inclusive; at most 366 days ago.' }),
              to: Type.String({
                format: 'date-time',
                description: 'Exclusive; at most 366 days after from.',
              }),
              limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
              cursor: Type.Optional(
                Type.String({ maxLength: 300, description: 'next_cursor of the previous page.' }),
              ),
            },
            { additionalProperties: false },
          ),
          response: answers({ 200: HistorySchema }),
        },
      },
      async (request) => {
        const { from, to } = checkRange(request.query.from, request.query.to, now());
        const cursor = request.query.cursor;
        const page = await lookupUserHistory(
          { service: deps.readPool, archive: deps.archivePool },
          {
            userId: request.params.userId,
            from,
            to,
            limit: request.query.limit ?? 50,
            ...(cursor === undefined ? {} : { after: decodeCursor(cursor) }),
          },
        );
        return {
          user_id: request.params.userId,
          from: from.toISOString(),
          to: to.toISOString(),
          notifications: page.notifications.map(presentNotification),
          next_cursor: page.next === undefined ? null : encodeCursor(page.next),
        };
      },
    );
  };
}

/** The range as dates, or 400 validation_failed naming every field at fault. */
function checkRange(fromText: string, toText: string, now: Date): { from: Date; to: Date } {
  const from = new Date(fromText);
  const to = new Date(toText);
  const errors: ProblemDetail[] = [];
  // The schema's date-time format admits values Date cannot represent (a leap second, 24:00).
  if (Number.isNaN(from.getTime()))
    errors.push({ field: 'querystring/from', message: 'is not a representable date-time' });
  else if (from.getTime() < now.getTime() - supportRangeDays * dayMs)
    errors.push({
      field: 'querystring/from',
      message: `must be no earlier than ${String(supportRangeDays)} days ago`,
    });
  if (Number.isNaN(to.getTime()))
    errors.push({ field: 'querystring/to', message: 'is not a representable date-time' });
  else if (!Number.isNaN(from.getTime())) {
    if (to.getTime() <= from.getTime())
      errors.push({ field: 'querystring/to', message: 'must be later than from' });
    else if (to.getTime() - from.getTime() > supportRangeDays * dayMs)
      errors.push({
        field: 'querystring/to',
        message: `must be at most ${String(supportRangeDays)} days after from`,
      });
  }
  const first = errors[0];
  if (first !== undefined)
    throw new ProblemError('validation_failed', `${first.field ?? 'querystring'} ${first.message}.`, errors);
  return { from, to };
}

/** Opaque cursor: base64url of "<created_at in µs since 1970>|<notification id>". */
function encodeCursor(position: HistoryPosition): string {
  return Buffer.from(`${String(position.createdUs)}|${position.id}`).toString('base64url');
}

function decodeCursor(cursor: string): HistoryPosition {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const bar = text.indexOf('|');
  const micros = text.slice(0, bar);
  const id = text.slice(bar + 1);
  const createdUs = Number(micros);
  if (
    bar < 1 ||
    !/^\d{1,16}$/.test(micros) ||
    !Number.isSafeInteger(createdUs) ||
    parseNotificationId(id) === undefined
  )
    throw new ProblemError('cursor_invalid', 'The cursor is not one this lookup gave out.', [
      { field: 'querystring/cursor', message: 'invalid' },
    ]);
  return { createdUs, id };
}

const iso = (date: Date | null): string | null => date?.toISOString() ?? null;

function presentNotification(n: HistoryNotification) {
  return {
    id: n.id,
    service: n.service,
    category: n.category,
    lane: n.lane,
    channels: n.channels,
    template: n.template,
    version: n.version,
    created_at: n.createdAt.toISOString(),
    updated_at: n.updatedAt.toISOString(),
    canceled_at: iso(n.canceledAt),
    recipient: {
      state: n.recipient.state,
      send_at: n.recipient.sendAt.toISOString(),
      fanned_out_at: iso(n.recipient.fannedOutAt),
      skipped: n.recipient.skipped,
    },
    inbox:
      n.inbox === null
        ? null
        : {
            created_at: n.inbox.createdAt.toISOString(),
            read_at: iso(n.inbox.readAt),
            seen_at: iso(n.inbox.seenAt),
            archived_at: iso(n.inbox.archivedAt),
            deleted_at: iso(n.inbox.deletedAt),
          },
    deliveries: n.deliveries.map(presentDelivery),
  };
}

function presentDelivery(d: HistoryDelivery) {
  return {
    id: d.id,
    channel: d.channel,
    target: maskTarget(d.channel, d.target),
    provider: d.provider,
    state: d.state,
    attempts: d.attempts,
    run_at: d.runAt.toISOString(),
    last_error: d.lastError,
    provider_message_id: d.providerMessageId,
    created_at: d.createdAt.toISOString(),
    updated_at: d.updatedAt.toISOString(),
    events: d.events.map((e) => ({
      state: e.state,
      attempt: e.attempt,
      detail: e.detail,
      created_at: e.createdAt.toISOString(),
    })),
  };
}
