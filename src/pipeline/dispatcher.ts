// The worker's delivery loop: claim for free slots, and per delivery render → provider.send
// → record the outcome. No provider call runs inside a transaction: a slow provider would hold
// row locks and a connection for as long as it takes. A claimed batch renders one delivery at a
// time within one render budget, yielding between renders, and each delivery's send starts as
// soon as it is rendered.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Pool } from '../db/pools.js';
import type { ClaimedDelivery, RecordedOutcome } from '../db/stores/delivery-store.js';
import { wakeChannels } from '../db/wake-notifier.js';
import { isConnectionError } from '../db/pg-errors.js';
import { contentFor, type Channel } from '../domain/notification.js';
import type { DeliveryOutcome } from '../domain/outcome.js';
import { guardKey, type DeferReason, type ProviderGuard } from './provider-guard.js';

/**
 * What sending produced: the provider's outcome, or a call held back (by the provider guard, or
 * because the claimed batch had spent its render budget before this delivery's turn).
 */
type SendResult =
  DeliveryOutcome | { kind: 'deferred'; reason: DeferReason | 'render_budget'; delayMs: number };
/** The result and the provider that produced it (null: no provider call was made). */
interface Sent {
  result: SendResult;
  provider: string | null;
}
/** A delivery ready to send through its provider chain, or already decided without a call. */
type Prepared =
  { kind: 'send'; message: RenderedMessage; chain: ChannelProvider[] } | { kind: 'done'; sent: Sent };
import { nextRetry, type RetryPolicy } from '../domain/retry-policy.js';
import type { ChannelProvider, RenderedMessage } from '../channels/channel-provider.js';
import type { ProviderRegistry } from '../channels/provider-registry.js';
import type { Metrics } from '../observability/metrics.js';
import { DeliveryClaimer, bulkCapacity, type LaneLimits } from './delivery-claimer.js';
import { OutcomeRecorder } from './outcome-recorder.js';
import type { PipelineEvents } from './pipeline-events.js';
import type { WakeListener } from '../db/wake-listener.js';
import type { RenderedVariant } from '../templates/template-renderer.js';
import type { BudgetedRenderer, RenderBudget } from '../templates/budgeted-renderer.js';
import { TemplateVersionCache } from '../templates/template-versions.js';

export interface DispatcherDeps {
  pool: Pool;
  providers: ProviderRegistry;
  guard: ProviderGuard;
  listener: WakeListener;
  metrics: Metrics;
  events: PipelineEvents;
  logger: Logger;
  limits: LaneLimits;
  leaseSeconds: number;
  pollIntervalMs: number;
  retry: RetryPolicy;
  shutdownTimeoutMs: number;
  random: () => number;
  /** Renders templated deliveries within a budget per claimed batch and a cap per delivery. */
  renderer: BudgetedRenderer;
  /** The one-click unsubscribe link for a message (email, PUBLIC_URL set), or undefined. */
  unsubscribeUrl?: (message: RenderedMessage) => string | undefined;
}

interface InFlight {
  delivery: ClaimedDelivery;
  controller: AbortController;
  done: Promise<void>;
}

export class Dispatcher {
  /** Lease owner id of this worker: outcomes are recorded only under it (fencing). */
  readonly owner = randomUUID();
  private readonly claimer: DeliveryClaimer;
  private readonly recorder: OutcomeRecorder;
  private readonly templates = new TemplateVersionCache();
  private readonly inFlight = new Map<string, InFlight>();
  private bulkInFlight = 0;
  private running = false;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private readonly roomWaiters = new Set<() => void>();
  /** Deliveries sent or sending whose outcome is not recorded yet. */
  private recording = 0;
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly deps: DispatcherDeps) {
    this.claimer = new DeliveryClaimer(deps.pool, this.owner, deps.limits, deps.leaseSeconds);
    this.recorder = new OutcomeRecorder(deps.pool, this.owner, deps.logger);
  }

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  /**
   * Stops claiming, lets in-flight sends finish within the shutdown timeout, then aborts the
   * rest; aborted deliveries are released (retrying, due now) for another worker.
   */
  async stop(): Promise<void> {
    this.running = false;
    this.stopping = true;
    this.deps.listener.wake(wakeChannels.deliveries);
    for (const check of [...this.roomWaiters]) check();
    await this.loop;
    const all = () => Promise.all([...this.pending]);
    const timedOut = await Promise.race([
      all().then(() => false),
      sleep(this.deps.shutdownTimeoutMs).then(() => true),
    ]);
    if (timedOut) {
      this.deps.logger.warn({ inFlight: this.inFlight.size }, 'shutdown timeout: aborting in-flight sends');
      for (const f of this.inFlight.values()) f.controller.abort();
      this.recorder.close();
      await Promise.race([all(), sleep(5000)]);
    }
  }

  private async run(): Promise<void> {
    const { deps } = this;
    const { concurrency } = deps.limits;
    // Claim again once a quarter of the slots (and of the bulk share) are free, so a busy
    // worker claims in batches instead of one statement per finished delivery.
    const roomThreshold = Math.max(1, Math.floor(concurrency / 4));
    const bulkThreshold = Math.max(1, Math.floor(bulkCapacity(deps.limits) / 4));
    let failures = 0;
    while (this.running) {
      const free = concurrency - this.recordingBacklog();
      try {
        const { deliveries, backlog } = await this.claimer.claim(free, this.bulkInFlight);
        await this.loadTemplates(deliveries);
        failures = 0;
        deps.metrics.claimBatchSize.observe({ stage: 'delivery' }, deliveries.length);
        const budget = deps.renderer.budget();
        for (const delivery of deliveries) this.dispatch(delivery, await this.prepare(delivery, budget));
        if (backlog) {
          // More is waiting: go on when room frees up, or at once for a wake-up hint (which
          // may be transactional work, served from the reserved share).
          await Promise.race([
            deps.listener.wait(wakeChannels.deliveries, deps.pollIntervalMs),
            this.roomFor(roomThreshold, bulkThreshold),
          ]);
        } else {
          await deps.listener.wait(wakeChannels.deliveries, deps.pollIntervalMs);
        }
      } catch (error) {
        failures += 1;
        deps.logger[isConnectionError(error) ? 'warn' : 'error'](
          { err: error },
          'claiming deliveries failed; retrying',
        );
        await deps.listener.wait(wakeChannels.deliveries, Math.min(10_000, 100 * 2 ** failures));
      }
    }
  }

  /** Loads the template versions a claimed batch renders with; a failure leaves those deliveries to retry. */
  private async loadTemplates(deliveries: readonly ClaimedDelivery[]): Promise<void> {
    try {
      await this.templates.prepare(this.deps.pool, deliveries);
    } catch (error) {
      this.deps.logger.warn({ err: error }, 'loading template versions failed');
    }
  }

  /**
   * Slots taken: sends in flight, plus outcomes beyond one batch's worth still waiting to be
   * recorded (a slow database holds back claiming).
   */
  private recordingBacklog(): number {
    const unrecorded = this.recording - this.inFlight.size;
    return this.inFlight.size + Math.max(0, unrecorded - this.deps.limits.concurrency);
  }

  /** Resolves once `slots` slots and `bulkSlots` bulk slots are free (or on stop). */
  private roomFor(slots: number, bulkSlots: number): Promise<void> {
    const enough = () =>
      !this.running ||
      (this.deps.limits.concurrency - this.recordingBacklog() >= slots &&
        bulkCapacity(this.deps.limits) - this.bulkInFlight >= bulkSlots);
    if (enough()) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (!enough()) return;
        this.roomWaiters.delete(check);
        resolve();
      };
      this.roomWaiters.add(check);
    });
  }

  /**
   * Sends one delivery. Its slot frees as soon as the provider answers; recording the outcome
   * joins the next batch (OutcomeRecorder). Outcomes waiting to be recorded count against
   * the room for new claims, so a slow database slows claiming instead of piling up work.
   */
  private dispatch(delivery: ClaimedDelivery, prepared: Prepared): void {
    const controller = new AbortController();
    if (delivery.lane === 'bulk') this.bulkInFlight += 1;
    // Keyed by attempt too: a rescued delivery may come back to this worker while the first
    // attempt's call is still running.
    const key = `${delivery.id}:${String(delivery.attempt)}`;
    const entry: InFlight = { delivery, controller, done: Promise.resolve() };
    this.inFlight.set(key, entry);
    this.recording += 1;
    entry.done = this.send(delivery, prepared, controller.signal)
      .then((sent) => {
        this.inFlight.delete(key);
        if (delivery.lane === 'bulk') this.bulkInFlight -= 1;
        this.notifyRoom();
        return this.record(delivery, sent, controller.signal.aborted);
      })
      .catch((error: unknown) => {
        this.deps.logger.error({ err: error, deliveryId: delivery.id }, 'delivery bookkeeping failed');
      })
      .finally(() => {
        if (this.inFlight.delete(key) && delivery.lane === 'bulk') this.bulkInFlight -= 1;
        this.recording -= 1;
        this.notifyRoom();
      });
    this.pending.add(entry.done);
    void entry.done.finally(() => this.pending.delete(entry.done));
  }

  private notifyRoom(): void {
    for (const check of [...this.roomWaiters]) check();
  }

  /**
   * Renders the delivery's message (within the batch's render budget), or decides its outcome
   * without a provider call: no device, no provider, template not loaded or not renderable.
   */
  private async prepare(delivery: ClaimedDelivery, budget: RenderBudget): Promise<Prepared> {
    const { deps } = this;
    const done = (result: SendResult): Prepared => ({ kind: 'done', sent: { result, provider: null } });
    const channel = delivery.channel as Channel;
    if (channel === 'push' && delivery.device === null)
      return done({ kind: 'failed', reason: 'device deleted or disabled since the fan-out' });
    const chain = deps.providers.chainFor(channel, delivery.device);
    if (chain.length === 0) {
      const what =
        delivery.device === null
          ? `channel ${channel}`
          : `${delivery.device.platform} app ${delivery.device.appId}`;
      return done({ kind: 'failed', reason: `no provider configured for ${what}` });
    }
    const template = delivery.template ?? null;
    if (template === null) return { kind: 'send', message: messageFor(delivery, undefined), chain };
    const version = this.templates.get(delivery.serviceId, template.key, template.version);
    if (version === undefined) return done({ kind: 'retry', reason: 'template version could not be loaded' });
    const rendered = await deps.renderer.render(budget, {
      version,
      channel,
      locale: delivery.locale,
      params: template.params,
    });
    if (rendered.ok) return { kind: 'send', message: messageFor(delivery, rendered.variant), chain };
    switch (rendered.reason) {
      case 'budget':
        // Not this delivery's fault: back to the queue, its attempt not spent, due at once.
        deps.metrics.deliveriesDeferred.inc({ channel, reason: 'render_budget' });
        return done({ kind: 'deferred', reason: 'render_budget', delayMs: 0 });
      case 'limit':
        // A first miss of the cap may be a cold process or a GC pause: retry, with backoff. A
        // second is permanent: ingest rendered this version with these params within half the
        // cap, so a render over the whole cap twice is built to be slow (or the process is
        // starved, where more attempts add load); retrying would spend the cap every time.
        return done(
          rendered.settled
            ? { kind: 'failed', reason: `template_render_limit: ${rendered.message}` }
            : { kind: 'retry', reason: `template_render_limit: ${rendered.message}` },
        );
      case 'error':
        // Params are checked against the version at ingest, so this is rare; retrying cannot help.
        return done({ kind: 'failed', reason: `template: ${rendered.message}` });
    }
  }

  /**
   * Sends through the delivery's provider chain: the primary, then each fallback while the
   * previous one fails with a retryable or configuration error or is held back by its guard.
   */
  private async send(delivery: ClaimedDelivery, prepared: Prepared, signal: AbortSignal): Promise<Sent> {
    const { deps } = this;
    if (prepared.kind === 'done') return prepared.sent;
    const { message, chain } = prepared;
    const channel = message.channel;
    message.unsubscribeUrl = deps.unsubscribeUrl?.(message);
    let held: Extract<SendResult, { kind: 'deferred' }> | undefined;
    let last: Sent | undefined;
    // The provider that failed or held the call back before this one, for the fallback count.
    let previous: string | undefined;
    for (const provider of chain) {
      if (last !== undefined && signal.aborted) break;
      const key = guardKey(provider.name, channel, delivery.target);
      const admission = await deps.guard.acquire(key, signal);
      if (!admission.ok) {
        if (held === undefined || admission.delayMs < held.delayMs)
          held = { kind: 'deferred', reason: admission.reason, delayMs: admission.delayMs };
        previous = provider.name;
        continue;
      }
      if (previous !== undefined) deps.metrics.providerFallbacks.inc({ from: previous, to: provider.name });
      const outcome = await this.call(provider, key, message, signal);
      if (outcome.kind !== 'retry' && outcome.kind !== 'config_error')
        return { result: outcome, provider: provider.name };
      last = { result: outcome, provider: provider.name };
      previous = provider.name;
    }
    if (last !== undefined) return last;
    // Every provider held the call back: requeue without an attempt.
    const deferred = held ?? { kind: 'deferred', reason: 'circuit_open', delayMs: deps.guard.openMs };
    deps.metrics.deliveriesDeferred.inc({ channel, reason: deferred.reason });
    return { result: deferred, provider: null };
  }

  private async call(
    provider: ChannelProvider,
    key: string,
    message: RenderedMessage,
    signal: AbortSignal,
  ): Promise<DeliveryOutcome> {
    const { deps } = this;
    const started = performance.now();
    let outcome: DeliveryOutcome;
    try {
      outcome = await provider.send(message, signal);
    } catch (error) {
      // An exception is a bug or an unknown answer: retry, and keep the evidence.
      deps.logger.warn(
        { err: error, deliveryId: message.deliveryId, provider: provider.name },
        'provider threw',
      );
      outcome = {
        kind: 'retry',
        reason: `provider error: ${error instanceof Error ? error.message : 'unknown'}`,
      };
    }
    deps.metrics.providerSendSeconds.observe(
      { channel: message.channel, provider: provider.name },
      (performance.now() - started) / 1000,
    );
    deps.guard.record(key, signal.aborted ? 'aborted' : outcome);
    if (outcome.kind === 'config_error') {
      deps.logger.error(
        { provider: provider.name, reason: outcome.reason },
        'provider configuration error: circuit opened',
      );
    }
    return outcome;
  }

  private async record(delivery: ClaimedDelivery, sent: Sent, aborted: boolean): Promise<void> {
    const { deps } = this;
    const channel = delivery.channel;
    const outcome = sent.result;
    const record = { ...this.toRecord(delivery, outcome, aborted), provider: sent.provider };
    if (!(await this.recorder.record(record))) {
      // The lease expired during the call and the delivery was claimed again: if this call
      // reached the provider, the next one is a duplicate (the window between a provider accepting
      // and Herald recording it, counted).
      deps.metrics.outcomesFenced.inc({ channel, outcome: outcome.kind });
      deps.logger.warn(
        { deliveryId: delivery.id, attempt: delivery.attempt },
        'lease lost before the outcome was recorded',
      );
      return;
    }
    deps.metrics.deliveryOutcomes.inc({
      channel,
      outcome: record.state === 'retrying' ? 'retry' : record.state,
    });
    deps.events.emit('delivery.finished', {
      id: delivery.id,
      notificationId: delivery.notificationId,
      channel,
      state: record.state,
      attempt: delivery.attempt,
    });
  }

  private toRecord(
    delivery: ClaimedDelivery,
    outcome: SendResult,
    aborted: boolean,
  ): Omit<RecordedOutcome, 'provider'> {
    const base = {
      id: delivery.id,
      notificationCreatedAt: delivery.notificationCreatedAt,
      notificationId: delivery.notificationId,
      channel: delivery.channel,
      attempt: delivery.attempt,
      providerMessageId: null,
      invalidTarget: null,
      delayMs: null,
      releaseAttempt: false,
    };
    switch (outcome.kind) {
      case 'deferred':
        // Not attempted: the attempt does not count. Jitter spreads the deferred deliveries
        // so they do not all come back in the same instant.
        return {
          ...base,
          state: 'retrying',
          detail: `deferred: ${outcome.reason.replace('_', ' ')}`,
          delayMs:
            outcome.delayMs + Math.floor(this.deps.random() * Math.min(1000, outcome.delayMs / 4 + 10)),
          releaseAttempt: true,
        };
      case 'config_error':
        // Not the delivery's fault: it waits for the circuit, its attempt not spent.
        return {
          ...base,
          state: 'retrying',
          detail: `provider configuration error: ${outcome.reason}`,
          delayMs: this.deps.guard.openMs + Math.floor(this.deps.random() * 1000),
          releaseAttempt: true,
        };
      case 'sent':
        return { ...base, state: 'sent', detail: null, providerMessageId: outcome.providerMessageId };
      case 'failed':
        return { ...base, state: 'failed', detail: outcome.reason };
      case 'target_invalid':
        return {
          ...base,
          state: 'target_invalid',
          detail: outcome.reason,
          invalidTarget: { channel: delivery.channel, target: delivery.target },
        };
      case 'retry': {
        if (aborted && this.stopping) {
          // Released at shutdown: due again now, for whichever worker claims next.
          return {
            ...base,
            state: 'retrying',
            detail: 'released at shutdown',
            delayMs: 0,
            releaseAttempt: true,
          };
        }
        const decision = nextRetry(
          { ...this.deps.retry, maxAttempts: delivery.maxAttempts },
          delivery.attempt,
          this.deps.random,
          outcome.retryAfterMs,
        );
        if (decision.kind === 'dead')
          return {
            ...base,
            state: 'dead',
            detail: `${outcome.reason} (after ${String(delivery.attempt)} attempts)`,
          };
        return { ...base, state: 'retrying', detail: outcome.reason, delayMs: decision.delayMs };
      }
    }
  }
}

/**
 * The message for a delivery: a templated notification's variant rendered with the version it
 * was accepted with, in the user's locale, else the notification's content for the channel.
 */
function messageFor(delivery: ClaimedDelivery, rendered: RenderedVariant | undefined): RenderedMessage {
  const channel = delivery.channel as Channel;
  return {
    deliveryId: delivery.id,
    notificationId: delivery.notificationId,
    version: delivery.version,
    channel,
    target: delivery.target,
    userId: delivery.userId,
    lane: delivery.lane,
    category: delivery.category,
    attempt: delivery.attempt,
    content: rendered?.content ?? contentFor(delivery.content, channel),
    ...(rendered?.html === undefined ? {} : { html: rendered.html }),
    data: delivery.data,
    signingSecret: delivery.webhookSecret,
    device: delivery.device,
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
