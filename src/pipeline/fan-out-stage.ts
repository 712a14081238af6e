// Fan-out: claims due recipients (transactional lane first) and expands each into deliveries,
// one transaction per batch. Runs in the worker role, outside any request (DESIGN 5).
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
import type { Metrics } from '../observability/metrics.js';
import type { PipelineEvents } from './pipeline-events.js';
import type { WakeListener } from './wake-up.js';
import { isConnectionError } from '../db/pg-errors.js';

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
}

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
        await this.deps.listener.wait(wakeChannels.fanOut, Math.min(10_000, 100 * 2 ** failures));
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
      if (recipients.length === 0) return { recipients: 0, created: new Map<string, number>() };
      const inputs = await loadFanOutInputs(client, recipients);
      const deliveries: NewDelivery[] = [];
      const fannedOut: { recipient: DueRecipient; skipped: SkippedChannel[] }[] = [];
      for (const recipient of recipients) {
        const notification = inputs.notifications.get(recipient.notificationId);
        if (notification === undefined)
          throw new Error(`recipient of missing notification ${recipient.notificationId}`);
        const plan = planDeliveries(
          notification.channels,
          inputs.users.get(recipient.userId),
          inputs.devices.get(recipient.userId) ?? [],
          { webhookUrl: notification.serviceWebhookUrl, chatWebhookUrl: notification.serviceChatUrl },
        );
        for (const planned of plan.deliveries) {
          deliveries.push({
            notificationId: notification.id,
            notificationCreatedAt: notification.createdAt,
            serviceId: notification.serviceId,
            userId: recipient.userId,
            channel: planned.channel,
            target: planned.target,
            lane: recipient.lane,
            category: notification.category,
          });
        }
        fannedOut.push({ recipient, skipped: plan.skipped });
      }
      const created = await writeFanOut(
        client,
        { deliveries, fannedOut, maxAttempts: deps.maxAttempts },
        deps.now().getTime(),
      );
      return { recipients: recipients.length, created };
    });
    deps.metrics.claimBatchSize.observe({ stage: 'fan_out' }, result.recipients);
    let toSend = 0;
    for (const [channel, n] of result.created) {
      deps.metrics.deliveriesCreated.inc({ channel }, n);
      if (channel === 'in_app') deps.metrics.deliveryOutcomes.inc({ channel, outcome: 'delivered' }, n);
      else toSend += n;
    }
    if (toSend > 0) deps.notifier.notify(wakeChannels.deliveries);
    return result.recipients;
  }
}
