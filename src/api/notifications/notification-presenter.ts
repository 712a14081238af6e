// How a notification is shown: its status (summed up in domain/notification-status.ts, which the
// console shares) and every delivery's state.
import type { NotificationView } from '../../db/stores/notification-store.js';
import type { Caller } from '../../domain/caller.js';
import { presentTarget } from '../../domain/contact.js';
import { notificationStatus, notificationStatuses } from '../../domain/notification-status.js';
import { skipReasons } from '../../domain/fan-out.js';
import { channels, lanes } from '../../domain/notification.js';
import { deliveryStates } from '../../domain/delivery.js';
import { Type, type Static } from 'typebox';
import { Answer, Enum, FreeForm, Nullable, Timestamp } from '../../http/openapi-contract.js';
import { Content } from './notification-input.js';

const ChannelName = Enum(channels);

const notificationProperties = {
  id: Type.String(),
  status: Enum(notificationStatuses),
  version: Type.Integer(),
  lane: Enum(lanes),
  category: Type.String(),
  channels: Type.Array(ChannelName),
  content: Content,
  template: Nullable(
    Answer(
      { key: Type.String(), version: Type.Integer(), params: FreeForm() },
      'The template it was sent with.',
    ),
  ),
  data: Nullable(FreeForm()),
  send_at: Nullable(Timestamp()),
  created_at: Timestamp(),
  updated_at: Timestamp(),
  canceled_at: Nullable(Timestamp()),
  recipients: Type.Array(
    Answer({
      user_id: Type.String(),
      state: Enum(['pending', 'held', 'fanned_out', 'canceled']),
      skipped: Type.Array(Answer({ channel: ChannelName, reason: Enum(skipReasons) }), {
        description: 'Channels this user was not sent on, and why: no contact for it, or no such user.',
      }),
    }),
  ),
  deliveries: Type.Array(
    Answer({
      id: Type.String(),
      user_id: Type.String(),
      channel: ChannelName,
      target: Type.String({ description: 'Masked unless the key may read users (users:read).' }),
      state: Enum(deliveryStates),
      attempts: Type.Integer(),
      last_error: Nullable(Type.String()),
      provider_message_id: Nullable(Type.String()),
      next_attempt_at: Nullable(Timestamp()),
      updated_at: Timestamp(),
    }),
  ),
};

export const NotificationSchema = Answer(
  notificationProperties,
  'A notification with the state of every delivery.',
);

export const PatchedNotificationSchema = Answer(
  {
    ...notificationProperties,
    applied: Type.Boolean({
      description: 'false: the stored version was already this one (nothing changed).',
    }),
  },
  'The notification after the update.',
);

/** Delivery targets are shown in full only to a key allowed to read contact data (docs/security.md). */
export function presentNotification(
  view: NotificationView,
  now: Date,
  caller: Caller,
): Static<typeof NotificationSchema> {
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
    recipients: view.recipients.map((r) => ({ user_id: r.userId, state: r.state, skipped: r.skipped })),
    deliveries: view.deliveries.map((d) => ({
      id: d.id,
      user_id: d.userId,
      channel: d.channel,
      target: presentTarget(d.channel, d.target, inFull),
      state: d.state,
      attempts: d.attempts,
      last_error: d.lastError,
      provider_message_id: d.providerMessageId,
      next_attempt_at: d.state === 'pending' || d.state === 'retrying' ? d.runAt.toISOString() : null,
      updated_at: d.updatedAt.toISOString(),
    })),
  };
}
