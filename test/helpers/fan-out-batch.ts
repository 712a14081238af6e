// Fan-out batches for the domain's unit tests (src/domain/fan-out-*.test.ts): who gets which
// notification on which lane, the users Herald knows, the categories' settings; planned,
// counted and decided as the fan-out stage does, without a database.
import {
  decideFanOut,
  planFanOut,
  type CapQuery,
  type DueRecipient,
  type FanOutInputs,
  type FanOutNotification,
  type UserDeliverySettings,
} from '../../src/domain/fan-out-decision.js';
import type { FanOutDevice, FanOutUser } from '../../src/domain/fan-out.js';
import type { Channel, Lane } from '../../src/domain/notification.js';
import { categoryKey, type CategorySettings, type Preference } from '../../src/domain/preferences.js';

export const now = new Date('2025-06-01T12:00:00Z'); // 21:00 in Seoul
export const serviceId = 1;

export function notification(id: string, category: string, channels: Channel[]): FanOutNotification {
  return {
    id,
    createdAt: new Date('2025-06-01T11:59:00Z'),
    serviceId,
    channels,
    category,
    serviceWebhookUrl: null,
    serviceChatUrl: null,
  };
}

export function contact(id: string): FanOutUser {
  return { id, email: `${id}@example.com`, phone: '+821012345678', webhookUrl: null, chatWebhookUrl: null };
}

const utc: UserDeliverySettings = { timeZone: 'UTC', noMarketing: false, quietHours: null };

export interface UserSetup {
  settings?: Partial<UserDeliverySettings>;
  preferences?: Preference[];
  devices?: FanOutDevice[];
}

/** A batch: who gets which notification on which lane, who is known to Herald, the categories. */
export interface BatchSetup {
  sends: { notification: FanOutNotification; userId: string; lane?: Lane }[];
  users?: Record<string, UserSetup>;
  categories?: Record<string, Partial<CategorySettings>>;
}

export function inputsOf(batch: BatchSetup): FanOutInputs {
  const users = Object.entries(batch.users ?? {});
  const recipients: DueRecipient[] = batch.sends.map((s) => ({
    notificationId: s.notification.id,
    notificationCreatedAt: s.notification.createdAt,
    userId: s.userId,
    lane: s.lane ?? 'bulk',
  }));
  return {
    recipients,
    notifications: new Map(batch.sends.map((s) => [s.notification.id, s.notification])),
    users: new Map(users.map(([id]) => [id, contact(id)])),
    devices: new Map(users.map(([id, u]) => [id, u.devices ?? []])),
    userSettings: new Map(users.map(([id, u]) => [id, { ...utc, ...u.settings }])),
    preferences: new Map(users.map(([id, u]) => [id, u.preferences ?? []])),
    categories: new Map(
      Object.entries(batch.categories ?? {}).map(([category, s]) => [
        categoryKey(serviceId, category),
        { critical: false, marketing: false, defaults: {}, caps: {}, ...s },
      ]),
    ),
  };
}

/** Plans, counts (from `counted`: window start → notifications already there) and decides. */
export function fanOut(
  batch: BatchSetup,
  counted: (query: CapQuery) => Record<number, number> = () => ({}),
  at = now,
) {
  const planned = planFanOut(inputsOf(batch));
  const counts = new Map(
    planned.capQueries.map((q, i) => [
      i,
      new Map(Object.entries(counted(q)).map(([bucket, n]) => [Number(bucket), n])),
    ]),
  );
  return { planned, ...decideFanOut(planned, counts, at) };
}

/** Each delivery as [user, channel, target, what was decided]. */
export function outcomes(deliveries: ReturnType<typeof fanOut>['deliveries']) {
  return deliveries.map((d) => [
    d.userId,
    d.channel,
    d.target,
    d.suppressed ?? (d.deferred === undefined ? 'due' : d.deferred.detail),
  ]);
}
