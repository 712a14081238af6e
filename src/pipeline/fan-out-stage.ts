// Fan-out: claims due recipients (transactional lane first) and expands each into deliveries,
// one transaction per batch. Runs in the worker role, outside any request, so
// ingest latency does not grow with recipients, devices or preferences.
// A batch loads, decides, then writes: the decisions (targets, preferences, quiet hours, caps)
// are pure domain functions, planFanOut and decideFanOut, tested without a database.
import type { Logger } from 'pino';
import { withTransaction, type Pool, type PoolClient } from '../db/pools.js';
import { claimDueRecipients, loadFanOutInputs, writeFanOut } from '../db/stores/fan-out-store.js';
import { wakeChannels, type WakeNotifier } from '../db/wake-notifier.js';
import {
  decideFanOut,
  planFanOut,
  type ChannelDecision,
  type DueRecipient,
  type FanOutInputs,
} from '../domain/fan-out-decision.js';
import { backoffMs } from '../domain/retry-policy.js';
import type { Metrics } from '../observability/metrics.js';
import type { PipelineEvents } from './pipeline-events.js';
import type { WakeListener } from '../db/wake-listener.js';
import { isConnectionError } from '../db/pg-errors.js';
import { loadUserDeliverySettings } from '../db/stores/preference-store.js';
import { lockAndCountCapUsage } from '../db/stores/cap-usage-store.js';
import type { SettingsCache } from './settings-cache.js';
import { expandTopicChunk } from '../db/stores/topic-store.js';
import { claimBudgeted, decideWithinBudgets } from './budget-pacing.js';

export interface FanOutStageDeps {
  pool: Pool;
  listener: WakeListener;
  notifier: WakeNotifier;
  metrics: Metrics;
  events: PipelineEvents;
  logger: Logger;
  batchSize: number;
  /** Topic subscribers expanded into recipients per transaction (TOPIC_FAN_OUT_CHUNK). */
  topicChunk: number;
  pollIntervalMs: number;
  maxAttempts: number;
  now: () => Date;
  /** Preferences and category settings (applied here, not at ingest: they may change before a scheduled send). */
  settings: SettingsCache;
}

/** What a committed batch did, for the counters and wake-ups after the commit. */
interface BatchResult {
  recipients: number;
  /** Deliveries created to be sent (or delivered, in_app), per channel. */
  created: ReadonlyMap<string, number>;
  inboxUsers: readonly string[];
  decided: readonly ChannelDecision[];
  /** Rate budgets held recipients back for a later second (src/pipeline/budget-pacing.ts). */
  budgetsHeld: boolean;
}

const emptyBatch: BatchResult = {
  recipients: 0,
  created: new Map(),
  inboxUsers: [],
  decided: [],
  budgetsHeld: false,
};

export class FanOutStage {
  private running = false;
  private loop: Promise<void> | undefined;
  private budgetsHeld = false;

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
    // A topic send is looked for after each wait (a new send wakes the loop), after a chunk that
    // found one, and at least every poll interval while recipients keep the loop busy; not on
    // every batch, so a deployment without topic sends pays no extra transaction per batch.
    let lookForTopics = true;
    let topicsLookedAt = 0;
    while (this.running) {
      try {
        const now = Date.now();
        let expanded = false;
        if (lookForTopics || now - topicsLookedAt >= this.deps.pollIntervalMs) {
          expanded = await this.expandTopicChunk();
          topicsLookedAt = now;
        }
        lookForTopics = expanded;
        const claimed = await this.fanOutBatch();
        failures = 0;
        if (claimed < this.deps.batchSize && !expanded) {
          // Held by a rate budget: its next window opens at the next second.
          const waitMs = this.budgetsHeld
            ? Math.min(this.deps.pollIntervalMs, 1005 - (Date.now() % 1000))
            : this.deps.pollIntervalMs;
          await this.deps.listener.wait(wakeChannels.fanOut, waitMs);
          lookForTopics = true;
        }
      } catch (error) {
        failures += 1;
        lookForTopics = true;
        const level = isConnectionError(error) ? 'warn' : 'error';
        this.deps.logger[level]({ err: error }, 'fan-out batch failed; retrying');
        await this.deps.listener.wait(
          wakeChannels.fanOut,
          backoffMs(failures, { baseMs: 100, maxMs: 10_000 }),
        );
      }
    }
  }

  /**
   * Expands the next chunk of one due topic send into recipients rows (they are fanned out by
   * the batches that follow); true when there was one.
   */
  async expandTopicChunk(): Promise<boolean> {
    const chunk = await withTransaction(this.deps.pool, (client) =>
      expandTopicChunk(client, this.deps.topicChunk),
    );
    if (chunk === undefined) return false;
    this.deps.metrics.topicRecipientsExpanded.inc(chunk.inserted);
    return true;
  }

  /** Fans out one batch; returns how many recipients it claimed. */
  async fanOutBatch(): Promise<number> {
    const { deps } = this;
    const result = await withTransaction(deps.pool, async (client): Promise<BatchResult> => {
      const transactional = await claimDueRecipients(client, 'transactional', deps.batchSize);
      const bulk = await claimDueRecipients(client, 'bulk', deps.batchSize - transactional.length);
      const budgeted = await claimBudgeted(client, deps.batchSize - transactional.length - bulk.length);
      const recipients = [...transactional, ...bulk, ...budgeted.recipients];
      if (recipients.length === 0) return { ...emptyBatch, budgetsHeld: budgeted.held };
      const planned = planFanOut(await this.loadInputs(client, recipients));
      const now = deps.now();
      // Locks the users concerned until commit, so two batches cannot both see room for a slot.
      const capCounts = await lockAndCountCapUsage(client, planned.capQueries, now);
      const { decision, held } = await decideWithinBudgets(client, budgeted, planned, (p) =>
        decideFanOut(p, capCounts, now),
      );
      const { deliveries, fannedOut, decided } = decision;
      const { created, inboxUsers } = await writeFanOut(
        client,
        { deliveries, fannedOut, maxAttempts: deps.maxAttempts },
        deps.now().getTime(),
      );
      return { recipients: recipients.length, created, inboxUsers, decided, budgetsHeld: held };
    });
    this.budgetsHeld = result.budgetsHeld;
    this.afterCommit(result);
    return result.recipients;
  }

  /** The notifications, users, devices and settings the batch's recipients need. */
  private async loadInputs(client: PoolClient, recipients: DueRecipient[]): Promise<FanOutInputs> {
    const { settings } = this.deps;
    const { notifications, users, devices } = await loadFanOutInputs(client, recipients);
    const userIds = [...new Set(recipients.map((r) => r.userId))];
    const preferences = await settings.preferencesFor(client, userIds);
    const userSettings = await loadUserDeliverySettings(client, userIds);
    const categories = await settings.categoriesFor(
      client,
      [...notifications.values()].map((n) => ({ serviceId: n.serviceId, category: n.category })),
    );
    return { recipients, notifications, users, devices, userSettings, preferences, categories };
  }

  /** Counts the batch and wakes the workers and inbox streams it has work for. */
  private afterCommit(result: BatchResult): void {
    const { deps } = this;
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
  }
}
