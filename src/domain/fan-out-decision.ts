// What one fan-out batch writes: the deliveries of every claimed recipient, each in the state
// its user's preferences, quiet hours and frequency caps decide, and what each recipient
// skipped. Pure, in two steps, because caps need counts only the database has: planFanOut
// names the cap windows to count; decideFanOut takes those counts and the clock.
import {
  planDeliveries,
  type FanOutDevice,
  type FanOutPlan,
  type FanOutUser,
  type SkippedChannel,
} from './fan-out.js';
import type { Channel, Lane } from './notification.js';
import {
  categoryKey,
  decideDelivery,
  type CapPeriod,
  type CategorySettings,
  type DeliveryDecision,
  type Preference,
  type RecipientSettings,
} from './preferences.js';

/** A recipient row claimed for fan-out. */
export interface DueRecipient {
  notificationId: string;
  notificationCreatedAt: Date;
  userId: string;
  lane: Lane;
  /** A workflow step's channels (docs/workflows.md); absent: all the notification's channels. */
  channels?: readonly Channel[];
}

export interface FanOutNotification {
  id: string;
  createdAt: Date;
  serviceId: number;
  channels: Channel[];
  category: string;
  serviceWebhookUrl: string | null;
  serviceChatUrl: string | null;
}

/** A user's own delivery settings, their preferences apart. */
export type UserDeliverySettings = Omit<RecipientSettings, 'preferences'>;

/** Everything a batch's decision reads, loaded in the fan-out transaction. */
export interface FanOutInputs {
  recipients: readonly DueRecipient[];
  notifications: ReadonlyMap<string, FanOutNotification>;
  /** Contact targets by user id; absent for a user unknown to Herald. */
  users: ReadonlyMap<string, FanOutUser>;
  devices: ReadonlyMap<string, readonly FanOutDevice[]>;
  /** By user id; absent for a user unknown to Herald. */
  userSettings: ReadonlyMap<string, UserDeliverySettings>;
  preferences: ReadonlyMap<string, readonly Preference[]>;
  /** By categoryKey; null or absent when the category has no settings. */
  categories: ReadonlyMap<string, CategorySettings | null>;
}

/** One cap window series to count: a user's notifications of a category on a channel and lane. */
export interface CapQuery {
  userId: string;
  category: string;
  channel: Channel;
  lane: Lane;
  per: CapPeriod;
  timeZone: string;
}

interface PlannedRecipient {
  recipient: DueRecipient;
  notification: FanOutNotification;
  plan: FanOutPlan;
  settings: CategorySettings | undefined;
  recipientSettings: RecipientSettings;
}

export interface PlannedFanOut {
  recipients: readonly PlannedRecipient[];
  /** Counted (under a per-user lock) before decideFanOut; counts are passed back by index. */
  capQueries: readonly CapQuery[];
}

/** Window start (ms) → notifications already counted in it, per cap query index. */
export type CapCounts = ReadonlyMap<number, ReadonlyMap<number, number>>;

/** A delivery to insert; without `suppressed` or `deferred` it is due now. */
export interface NewDelivery {
  notificationId: string;
  notificationCreatedAt: Date;
  serviceId: number;
  userId: string;
  channel: Channel;
  target: string;
  lane: Lane;
  category: string;
  /** Ruled out by a preference or cap: written 'suppressed' with this reason. */
  suppressed?: string;
  /** Deferred (quiet hours, cap): claimable from then, with this event detail. */
  deferred?: { runAt: Date; detail: string };
}

export interface FannedOutRecipient {
  recipient: DueRecipient;
  skipped: SkippedChannel[];
}

/** One recipient's decision on one channel, and how many deliveries (targets) it covers. */
export interface ChannelDecision {
  channel: Channel;
  decision: DeliveryDecision;
  targets: number;
}

export interface FanOutDecision {
  /** Recipient by recipient, each in the order its request named the channels. */
  deliveries: NewDelivery[];
  fannedOut: FannedOutRecipient[];
  decided: ChannelDecision[];
}

/** A user unknown to Herald (no users row): UTC, no preferences, no quiet hours. */
export const unknownRecipient: RecipientSettings = {
  timeZone: 'UTC',
  noMarketing: false,
  quietHours: null,
  preferences: [],
};

/** Plans every recipient's targets and names the cap windows the decision needs counted. */
export function planFanOut(inputs: FanOutInputs): PlannedFanOut {
  const recipients = inputs.recipients.map((recipient) => planRecipient(recipient, inputs));
  return { recipients, capQueries: capQueriesFor(recipients) };
}

function planRecipient(recipient: DueRecipient, inputs: FanOutInputs): PlannedRecipient {
  const notification = inputs.notifications.get(recipient.notificationId);
  if (notification === undefined)
    throw new Error(`recipient of missing notification ${recipient.notificationId}`);
  const only = recipient.channels;
  const plan = planDeliveries(
    only === undefined ? notification.channels : notification.channels.filter((c) => only.includes(c)),
    inputs.users.get(recipient.userId),
    inputs.devices.get(recipient.userId) ?? [],
    { webhookUrl: notification.serviceWebhookUrl, chatWebhookUrl: notification.serviceChatUrl },
  );
  const user = inputs.userSettings.get(recipient.userId);
  const settings =
    inputs.categories.get(categoryKey(notification.serviceId, notification.category)) ?? undefined;
  const recipientSettings: RecipientSettings =
    user === undefined
      ? unknownRecipient
      : { ...user, preferences: inputs.preferences.get(recipient.userId) ?? [] };
  return { recipient, notification, plan, settings, recipientSettings };
}

function capKey(userId: string, category: string, channel: Channel, lane: string): string {
  return JSON.stringify([userId, category, channel, lane]);
}

/** The channels a recipient has targets on, in the request's order. */
function channelsOf(plan: FanOutPlan): Set<Channel> {
  return new Set(plan.deliveries.map((d) => d.channel));
}

/** One query per user × category × channel × lane with a cap; critical categories have none. */
function capQueriesFor(planned: readonly PlannedRecipient[]): CapQuery[] {
  const queries = new Map<string, CapQuery>();
  for (const p of planned) {
    if (p.settings === undefined || p.settings.critical) continue;
    for (const channel of channelsOf(p.plan)) {
      const cap = p.settings.caps[channel]?.[p.recipient.lane];
      if (cap === undefined) continue;
      const { userId, lane } = p.recipient;
      const category = p.notification.category;
      queries.set(capKey(userId, category, channel, lane), {
        userId,
        category,
        channel,
        lane,
        per: cap.per,
        timeZone: p.recipientSettings.timeZone,
      });
    }
  }
  return [...queries.values()];
}

/**
 * Decides every planned delivery. Cap usage starts from `capCounts` and grows with what this
 * batch delivers or defers, so two notifications in one batch cannot both take the last slot.
 */
export function decideFanOut(planned: PlannedFanOut, capCounts: CapCounts, now: Date): FanOutDecision {
  // Copies: the batch's own usage is added to them, and the caller's counts stay as loaded.
  const usage = new Map(
    planned.capQueries.map((q, i) => [
      capKey(q.userId, q.category, q.channel, q.lane),
      new Map(capCounts.get(i) ?? []),
    ]),
  );
  const decision: FanOutDecision = { deliveries: [], fannedOut: [], decided: [] };
  for (const p of planned.recipients) {
    const decisions = decideChannels(p, usage, now);
    for (const d of decisions) decision.decided.push(d);
    const byChannel = new Map(decisions.map((d) => [d.channel, d.decision]));
    for (const target of p.plan.deliveries)
      decision.deliveries.push(newDelivery(p, target.channel, target.target, byChannel.get(target.channel)));
    decision.fannedOut.push({ recipient: p.recipient, skipped: p.plan.skipped });
  }
  return decision;
}

/** One decision per channel: a notification counts once against a cap, however many devices. */
function decideChannels(
  p: PlannedRecipient,
  usage: Map<string, Map<number, number>>,
  now: Date,
): ChannelDecision[] {
  const { recipient, notification } = p;
  return [...channelsOf(p.plan)].map((channel) => {
    const used = usage.get(capKey(recipient.userId, notification.category, channel, recipient.lane));
    const decision = decideDelivery({
      channel,
      category: notification.category,
      lane: recipient.lane,
      now,
      settings: p.settings,
      recipient: p.recipientSettings,
      capUsage: (bucket) => used?.get(bucket) ?? 0,
    });
    if (decision.kind !== 'suppress' && decision.capBucket !== undefined)
      used?.set(decision.capBucket, (used.get(decision.capBucket) ?? 0) + 1);
    const targets = p.plan.deliveries.filter((d) => d.channel === channel).length;
    return { channel, decision, targets };
  });
}

function newDelivery(
  p: PlannedRecipient,
  channel: Channel,
  target: string,
  decision: DeliveryDecision | undefined,
): NewDelivery {
  return {
    notificationId: p.notification.id,
    notificationCreatedAt: p.notification.createdAt,
    serviceId: p.notification.serviceId,
    userId: p.recipient.userId,
    channel,
    target,
    lane: p.recipient.lane,
    category: p.notification.category,
    ...(decision?.kind === 'suppress' ? { suppressed: decision.detail } : {}),
    ...(decision?.kind === 'defer' ? { deferred: { runAt: decision.runAt, detail: decision.detail } } : {}),
  };
}
