// Fan-out: claims due recipients (transactional lane first) and expands each into deliveries,
// one transaction per batch. Runs in the worker role, outside any request, so
// ingest latency does not grow with recipients, devices or preferences.
import type { Logger } from 'pino';
import { withTransaction, type Pool } from '../db/pools.js';
import {
  claimDueRecipients,
  loadFanOutInputs,
  writeFanOut,
  type DueRecipient,
  type NewDelivery,
} from '../db/stores/fan-out-store.js';
import { wakeChannels, type WakeNotifier } from '../db/wake-notifier.js';
import { planDeliveries, type SkippedChannel } from '../domain/fan-out.js';
import { backoffMs } from '../domain/retry-policy.js';
import type { Metrics } from '../observability/metrics.js';
import type { PipelineEvents } from './pipeline-events.js';
import type { WakeListener } from '../db/wake-listener.js';
import { isConnectionError } from '../db/pg-errors.js';
import { categoryKey } from '../db/stores/category-store.js';
import { loadUserDeliverySettings } from '../db/stores/preference-store.js';
import { lockAndCountCapUsage, type CapQuery } from '../db/stores/cap-usage-store.js';
import type { Channel } from '../domain/notification.js';
import { decideDelivery, type DeliveryDecision, type RecipientSettings } from '../domain/preferences.js';
import type { SettingsCache } from './settings-cache.js';

export interface FanOutStageDeps {
  pool: Pool;
  listener: WakeListener;
  notifier: WakeNotifier;
  metrics: Metrics;
  events: PipelineEvents;
  logger: Logger;
  batchSize: number;
  pollIntervalMs: number;
  maxAttempts: number;
  now: () => Date;
  /** Preferences and category settings (applied here, not at ingest: they may change before a scheduled send). */
  settings: SettingsCache;
}

/** A user unknown to Herald (no users row): UTC, no preferences, no quiet hours. */
const unknownRecipient: RecipientSettings = {
  timeZone: 'UTC',
  noMarketing: false,
  quietHours: null,
  preferences: [],
};

export class FanOutStage {
  private running = false;
  private loop: Promise<void> | undefined;

  constructor(private readonly deps: FanOutStageDeps) {}

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.deps.listener.wake(wakeChannels.fanOut);
    await this.loop;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (this.running) {
      try {
        const claimed = await this.fanOutBatch();
        failures = 0;
        if (claimed < this.deps.batchSize)
          await this.deps.listener.wait(wakeChannels.fanOut, this.deps.pollIntervalMs);
      } catch (error) {
        failures += 1;
        const level = isConnectionError(error) ? 'warn' : 'error';
        this.deps.logger[level]({ err: error }, 'fan-out batch failed; retrying');
        await this.deps.listener.wait(
          wakeChannels.fanOut,
          backoffMs(failures, { baseMs: 100, maxMs: 10_000 }),
        );
      }
    }
  }

  /** Fans out one batch; returns how many recipients it claimed. */
  async fanOutBatch(): Promise<number> {
    const { deps } = this;
    const result = await withTransaction(deps.pool, async (client) => {
      const transactional = await claimDueRecipients(client, 'transactional', deps.batchSize);
      const bulk = await claimDueRecipients(client, 'bulk', deps.batchSize - transactional.length);
      const recipients = [...transactional, ...bulk];
      if (recipients.length === 0)
        return { recipients: 0, created: new Map<string, number>(), inboxUsers: [], decided: [] };
      const inputs = await loadFanOutInputs(client, recipients);
      const userIds = [...new Set(recipients.map((r) => r.userId))];
      const preferences = await deps.settings.preferencesFor(client, userIds);
      const users = await loadUserDeliverySettings(client, userIds);
      const categories = await deps.settings.categoriesFor(
        client,
        [...inputs.notifications.values()].map((n) => ({ serviceId: n.serviceId, category: n.category })),
      );
      const now = deps.now();
      const planned = recipients.map((recipient) => {
        const notification = inputs.notifications.get(recipient.notificationId);
        if (notification === undefined)
          throw new Error(`recipient of missing notification ${recipient.notificationId}`);
        const plan = planDeliveries(
          notification.channels,
          inputs.users.get(recipient.userId),
          inputs.devices.get(recipient.userId) ?? [],
          { webhookUrl: notification.serviceWebhookUrl, chatWebhookUrl: notification.serviceChatUrl },
        );
        const user = users.get(recipient.userId);
        const settings =
          categories.get(categoryKey(notification.serviceId, notification.category)) ?? undefined;
        const recipientSettings: RecipientSettings =
          user === undefined
            ? unknownRecipient
            : { ...user, preferences: preferences.get(recipient.userId) ?? [] };
        return { recipient, notification, plan, settings, recipientSettings };
      });
      // Frequency caps: lock the users concerned and count what they already got.
      const capKeys = new Map<string, CapQuery>();
      const capKey = (userId: string, category: string, channel: Channel, lane: string) =>
        JSON.stringify([userId, category, channel, lane]);
      for (const p of planned) {
        if (p.settings === undefined || p.settings.critical) continue;
        for (const channel of new Set(p.plan.deliveries.map((d) => d.channel))) {
          const cap = p.settings.caps[channel]?.[p.recipient.lane];
          if (cap === undefined) continue;
          capKeys.set(capKey(p.recipient.userId, p.notification.category, channel, p.recipient.lane), {
            userId: p.recipient.userId,
            category: p.notification.category,
            channel,
            lane: p.recipient.lane,
            per: cap.per,
            timeZone: p.recipientSettings.timeZone,
          });
        }
      }
      const capQueries = [...capKeys.entries()];
      const counted = await lockAndCountCapUsage(
        client,
        capQueries.map(([, q]) => q),
        now,
      );
      const usage = new Map(capQueries.map(([key], i) => [key, counted.get(i) ?? new Map<number, number>()]));

      const deliveries: NewDelivery[] = [];
      const fannedOut: { recipient: DueRecipient; skipped: SkippedChannel[] }[] = [];
      const decided: { channel: Channel; decision: DeliveryDecision; targets: number }[] = [];
      for (const { recipient, notification, plan, settings, recipientSettings } of planned) {
        // One decision per channel: a notification counts once against a cap, however many devices.
        const decisions = new Map<Channel, DeliveryDecision>();
        for (const channel of new Set(plan.deliveries.map((d) => d.channel))) {
          const used = usage.get(capKey(recipient.userId, notification.category, channel, recipient.lane));
          const decision = decideDelivery({
            channel,
            category: notification.category,
            lane: recipient.lane,
            now,
            settings,
            recipient: recipientSettings,
            capUsage: (bucket) => used?.get(bucket) ?? 0,
          });
          if (decision.kind !== 'suppress' && decision.capBucket !== undefined)
            used?.set(decision.capBucket, (used.get(decision.capBucket) ?? 0) + 1);
          decisions.set(channel, decision);
          decided.push({
            channel,
            decision,
            targets: plan.deliveries.filter((d) => d.channel === channel).length,
          });
        }
        for (const d of plan.deliveries) {
          const decision = decisions.get(d.channel);
          deliveries.push({
            notificationId: notification.id,
            notificationCreatedAt: notification.createdAt,
            serviceId: notification.serviceId,
            userId: recipient.userId,
            channel: d.channel,
            target: d.target,
            lane: recipient.lane,
            category: notification.category,
            ...(decision?.kind === 'suppress' ? { suppressed: decision.detail } : {}),
            ...(decision?.kind === 'defer'
              ? { deferred: { runAt: decision.runAt, detail: decision.detail } }
              : {}),
          });
        }
        fannedOut.push({ recipient, skipped: plan.skipped });
      }
      const { created, inboxUsers } = await writeFanOut(
        client,
        { deliveries, fannedOut, maxAttempts: deps.maxAttempts },
        deps.now().getTime(),
      );
      return { recipients: recipients.length, created, inboxUsers, decided };
    });
    deps.metrics.claimBatchSize.observe({ stage: 'fan_out' }, result.recipients);
    for (const { channel, decision, targets } of result.decided) {
      if (decision.kind === 'suppress')
        deps.metrics.deliveriesSuppressed.inc({ channel, reason: decision.reason }, targets);
      else if (decision.kind === 'defer')
        deps.metrics.deliveriesDeferred.inc({ channel, reason: decision.reason }, targets);
    }
    let toSend = 0;
    for (const [channel, n] of result.created) {
      deps.metrics.deliveriesCreated.inc({ channel }, n);
      if (channel === 'in_app') deps.metrics.deliveryOutcomes.inc({ channel, outcome: 'delivered' }, n);
      else toSend += n;
    }
    if (toSend > 0) deps.notifier.notify(wakeChannels.deliveries);
    deps.notifier.notifyInbox(result.inboxUsers);
    return result.recipients;
  }
}
