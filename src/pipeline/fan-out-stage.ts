// Fan-out: claims due recipients and expands each into deliveries, one transaction per batch,
// in two loops: transactional recipients, and bulk recipients with topic sends. Runs in the
// worker role, outside any request, so ingest latency does not grow with recipients, devices
// or preferences.
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
import type { Lane } from '../domain/notification.js';
import { advanceTopicSend, claimTopicPage, insertPacedTopicRecipients } from '../db/stores/topic-store.js';
import { claimBudgeted, decideWithinBudgets, type BudgetedClaim } from './budget-pacing.js';

export interface FanOutStageDeps {
  pool: Pool;
  /**
   * The transactional loop's own connection (a pool of one), so it never queues behind the
   * bulk loop, the dispatcher or the outcome recorder for a connection of the write pool.
   */
  transactionalPool: Pool;
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
  private loops: Promise<void>[] = [];
  /** Wakes the bulk loop; the transactional loop forwards the listener's hints to it. */
  private readonly bulkWake = new LocalWake();
  /** The bulk loop's last batch left budgeted recipients for a later one-second window. */
  private budgetsHeld = false;

  constructor(private readonly deps: FanOutStageDeps) {}

  /**
   * Starts two loops, each on a connection of its own: one fans out transactional recipients
   * only, the other bulk recipients and topic sends. A transactional recipient never waits for
   * a bulk batch or a topic chunk in progress, however large the bulk backlog.
   */
  start(): void {
    this.running = true;
    this.loops = [this.runTransactional(), this.runBulk()];
  }

  async stop(): Promise<void> {
    this.running = false;
    this.deps.listener.wake(wakeChannels.fanOut);
    this.bulkWake.wake();
    await Promise.all(this.loops);
  }

  /** The listener's only waiter on the fan-out channel: each hint is passed on to the bulk loop. */
  private async runTransactional(): Promise<void> {
    const wait = async (ms: number) => {
      await this.deps.listener.wait(wakeChannels.fanOut, ms);
      this.bulkWake.wake();
    };
    await this.runLoop(
      wait,
      async () =>
        (await this.fanOutBatch(['transactional'], this.deps.transactionalPool)) >= this.deps.batchSize,
    );
  }

  private async runBulk(): Promise<void> {
    // A topic send is looked for after each wait (a new send wakes the loop), after a chunk that
    // found one, and at least every poll interval while recipients keep the loop busy; not on
    // every batch, so a deployment without topic sends pays no extra transaction per batch.
    let lookForTopics = true;
    let topicsLookedAt = 0;
    const wait = async (ms: number) => {
      // Held by a rate budget: its next window opens at the next second.
      const waitMs = this.budgetsHeld ? Math.min(ms, 1005 - (Date.now() % 1000)) : ms;
      this.budgetsHeld = false;
      await this.bulkWake.wait(waitMs);
      lookForTopics = true;
    };
    await this.runLoop(wait, async () => {
      const now = Date.now();
      let expanded = false;
      if (lookForTopics || now - topicsLookedAt >= this.deps.pollIntervalMs) {
        expanded = await this.fanOutTopicPage();
        topicsLookedAt = now;
      }
      lookForTopics = expanded;
      const claimed = await this.fanOutBatch(['bulk']);
      return claimed >= this.deps.batchSize || expanded;
    });
  }

  /** Runs `step` until stopped; waits when it found no more work, backs off when it failed. */
  private async runLoop(wait: (ms: number) => Promise<void>, step: () => Promise<boolean>): Promise<void> {
    let failures = 0;
    while (this.running) {
      try {
        const more = await step();
        failures = 0;
        if (!more) await wait(this.deps.pollIntervalMs);
      } catch (error) {
        failures += 1;
        const level = isConnectionError(error) ? 'warn' : 'error';
        this.deps.logger[level]({ err: error }, 'fan-out batch failed; retrying');
        await wait(backoffMs(failures, { baseMs: 100, maxMs: 10_000 }));
      }
    }
  }

  /**
   * Fans out the next page of one due topic send straight from its subscribers, and moves the
   * send's cursor, in one transaction; true when there was one. The page's recipients rows are
   * written once, already fanned out: a topic send of a million subscribers leaves no pending
   * rows to claim and update (docs/architecture.md). A send paced by a rate budget is the
   * exception: its page is written as pending recipients of the budget, which the bulk batch's
   * budget claim fans out as the budget's windows allow.
   */
  async fanOutTopicPage(): Promise<boolean> {
    const { deps } = this;
    const result = await withTransaction(deps.pool, async (client) => {
      const page = await claimTopicPage(client, deps.topicChunk);
      if (page === undefined) return undefined;
      if (page.budgetId !== null) {
        const inserted = await insertPacedTopicRecipients(client, page);
        await advanceTopicSend(client, page, deps.topicChunk, inserted);
        return { ...emptyBatch, recipients: inserted };
      }
      const recipients = page.userIds.map((userId) => ({
        notificationId: page.notificationId,
        notificationCreatedAt: page.notificationCreatedAt,
        userId,
        lane: page.lane,
      }));
      const batch = await this.fanOut(client, recipients, { insertRecipients: { sendAt: page.sendAt } });
      await advanceTopicSend(client, page, deps.topicChunk, recipients.length);
      return batch;
    });
    if (result === undefined) return false;
    deps.metrics.topicRecipientsExpanded.inc(result.recipients);
    this.afterCommit(result);
    return true;
  }

  /** Fans out one batch of `lanes` (in order); returns how many recipients it claimed. */
  async fanOutBatch(
    lanes: readonly Lane[] = ['transactional', 'bulk'],
    pool = this.deps.pool,
  ): Promise<number> {
    const { deps } = this;
    const result = await withTransaction(pool, async (client): Promise<BatchResult> => {
      const recipients: DueRecipient[] = [];
      for (const lane of lanes)
        recipients.push(...(await claimDueRecipients(client, lane, deps.batchSize - recipients.length)));
      // Rate budgets pace bulk sends only: the transactional loop never claims or locks one.
      if (!lanes.includes('bulk')) return this.fanOut(client, recipients);
      const budgeted = await claimBudgeted(client, deps.batchSize - recipients.length);
      return this.fanOut(client, recipients, { budgeted });
    });
    if (lanes.includes('bulk')) this.budgetsHeld = result.budgetsHeld;
    this.afterCommit(result);
    return result.recipients;
  }

  /**
   * Plans, decides and writes the deliveries of `recipients` and of `budgeted`'s (those that fit
   * their budgets' windows) in the caller's transaction.
   */
  private async fanOut(
    client: PoolClient,
    unbudgeted: DueRecipient[],
    {
      insertRecipients,
      budgeted = noBudgets(),
    }: { insertRecipients?: { sendAt: Date }; budgeted?: BudgetedClaim } = {},
  ): Promise<BatchResult> {
    const { deps } = this;
    const recipients = [...unbudgeted, ...budgeted.recipients];
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
      {
        deliveries,
        fannedOut,
        maxAttempts: deps.maxAttempts,
        ...(insertRecipients === undefined ? {} : { insertRecipients }),
      },
      deps.now().getTime(),
    );
    return { recipients: recipients.length, created, inboxUsers, decided, budgetsHeld: held };
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

function noBudgets(): BudgetedClaim {
  return { recipients: [], budgetOf: new Map(), windows: new Map(), held: false };
}

/** A wake-up hint between the two loops: one that comes while nobody waits is kept for the next wait. */
class LocalWake {
  private hinted = false;
  private waiter: (() => void) | undefined;

  wake(): void {
    if (this.waiter === undefined) this.hinted = true;
    else this.waiter();
  }

  wait(timeoutMs: number): Promise<void> {
    if (this.hinted) {
      this.hinted = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiter = undefined;
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.waiter = done;
    });
  }
}
