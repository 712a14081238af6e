// How a notification is shown: its status (summed up in domain/notification-status.ts, which the
// console shares) and every delivery's state.
import type { NotificationView } from '../../db/stores/notification-store.js';
import type { Caller } from '../../domain/caller.js';
import { presentTarget } from '../../domain/contact.js';
import type { Channel } from '../../domain/notification.js';
import { notificationStatus } from '../../domain/notification-status.js';

/** Delivery targets are shown in full only to a key allowed to read contact data (docs/security.md). */
export function presentNotification(view: NotificationView, now: Date, caller: Caller) {
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
