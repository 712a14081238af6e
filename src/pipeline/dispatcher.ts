// The worker's delivery loop: claim for free slots, and per delivery render → send through its
// provider chain → record the outcome. No provider call runs inside a transaction: a slow
// provider would hold row locks and a connection for as long as it takes. A claimed batch renders
// one delivery at a time within one render budget, yielding between renders, and each delivery's
// send starts as soon as it is rendered. Rendering lives in delivery-renderer.ts, the provider
// chain in send-chain.ts, and what an outcome does to the delivery in outcome-recorder.ts.
import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import type { Pool } from '../db/pools.js';
import type { ClaimedDelivery } from '../db/stores/delivery-store.js';
import { wakeChannels } from '../db/wake-notifier.js';
import { isConnectionError } from '../db/pg-errors.js';
import type { CallResult, OutcomeState } from '../domain/outcome-policy.js';
import { backoffMs, type RetryPolicy } from '../domain/retry-policy.js';
import type { RenderedMessage } from '../channels/channel-provider.js';
import type { ProviderRegistry } from '../channels/provider-registry.js';
import type { Metrics } from '../observability/metrics.js';
import type { Tracer } from '../observability/tracing.js';
import { DeliveryClaimer, bulkCapacity, type LaneLimits } from './delivery-claimer.js';
import { DeliveryRenderer, type Prepared } from './delivery-renderer.js';
import type { BulkGovernor } from './bulk-governor.js';
import { OutcomeRecorder } from './outcome-recorder.js';
import { OwnerLeases } from './owner-leases.js';
import type { PipelineEvents } from './pipeline-events.js';
import type { ProviderGuard } from './provider-guard.js';
import { sendThroughChain, type Sent } from './send-chain.js';
import type { WakeListener } from '../db/wake-listener.js';
import type { TrackingLinks } from '../templates/tracking-links.js';
import type { BudgetedRenderer } from '../templates/budgeted-renderer.js';

/** Where the lease owner comes from: the worker's database session (src/db/worker-session.ts). */
export interface LeaseOwnerSource {
  /** The owner to claim under now; undefined while none is registered (claiming waits). */
  readonly owner: string | undefined;
}

export interface DispatcherDeps {
  pool: Pool;
  session: LeaseOwnerSource;
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
  /** Email open and click tracking (TRACKING_URL set), or undefined. */
  tracking?: TrackingLinks | undefined;
  /** Set when tracing is on: a client span per provider call. */
  tracer?: Tracer | undefined;
  /** Bulk slots that follow the event loop's delay (src/pipeline/bulk-governor.ts); none: the cap. */
  governor?: BulkGovernor | undefined;
}

/** An owner's claimer and recorder: outcomes are recorded under the owner that claimed. */
interface OwnerLease {
  owner: string;
  claimer: DeliveryClaimer;
  recorder: OutcomeRecorder;
}

interface InFlight {
  delivery: ClaimedDelivery;
  /** Its claimed batch's: aborted only at shutdown, for every send still running. */
  controller: AbortController;
  done: Promise<void>;
}

export class Dispatcher {
  /** Per lease owner the session registered (a new one after a lost session) still in use. */
  private readonly leases: OwnerLeases<OwnerLease>;
  private readonly messages: DeliveryRenderer;
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
    this.leases = new OwnerLeases((owner) => ({
      owner,
      claimer: new DeliveryClaimer(deps.pool, owner, deps.limits, deps.leaseSeconds),
      recorder: new OutcomeRecorder({
        pool: deps.pool,
        owner,
        logger: deps.logger,
        policy: { retry: deps.retry, circuitOpenMs: deps.guard.openMs },
        random: deps.random,
      }),
    }));
    this.messages = new DeliveryRenderer({
      pool: deps.pool,
      providers: deps.providers,
      metrics: deps.metrics,
      logger: deps.logger,
      renderer: deps.renderer,
      unsubscribeUrl: deps.unsubscribeUrl,
      tracking: deps.tracking,
    });
  }

  start(): void {
    this.running = true;
    this.deps.governor?.start();
    this.loop = this.run();
  }

  /**
   * Stops claiming, lets in-flight sends finish within the shutdown timeout, then aborts the
   * rest; aborted deliveries are released (retrying, due now) for another worker.
   */
  async stop(): Promise<void> {
    this.running = false;
    this.stopping = true;
    this.deps.governor?.stop();
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
      for (const lease of this.leases.all()) lease.recorder.close();
      await Promise.race([all(), sleep(5000)]);
    }
  }

  private async run(): Promise<void> {
    const { deps } = this;
    const { concurrency } = deps.limits;
    // After a claim that met a backlog, claim again once half the slots (and of the bulk share)
    // are free, capped at a batch, so claims are large; or once a quarter is, after a short
    // settle: a hanging provider may hold up to PROVIDER_MAX_SLOT_SHARE of the slots, and the
    // other channels must still be claimed for. A wake-up hint claims transactional work at once.
    const fill = (slots: number) => Math.max(1, Math.min(deps.limits.batchSize, Math.floor(slots / 2)));
    const some = (slots: number) => Math.max(1, Math.floor(slots / 4));
    let withBulk = true;
    let failures = 0;
    while (this.running) {
      const free = concurrency - this.recordingBacklog();
      // Read each round: the reserved share may change at runtime (herald settings).
      const bulkSlots = this.bulkSlots();
      const owner = deps.session.owner;
      if (owner === undefined) {
        await deps.listener.wait(wakeChannels.deliveries, deps.pollIntervalMs);
        continue;
      }
      const lease = this.leases.current(owner);
      try {
        const { deliveries, backlog } = await lease.claimer.claim(
          free,
          this.bulkInFlight,
          withBulk ? bulkSlots : 0,
        );
        await this.messages.loadTemplates(deliveries);
        failures = 0;
        deps.metrics.claimBatchSize.observe({ stage: 'delivery' }, deliveries.length);
        const budget = this.messages.budget();
        // One controller per batch, not per delivery: creating an AbortSignal costs more than
        // the listeners its sends add to it (each removes its own when it ends).
        const controller = new AbortController();
        setMaxListeners(0, controller.signal);
        for (const delivery of deliveries)
          this.dispatch(delivery, await this.messages.prepare(delivery, budget), lease, controller);
        if (backlog) {
          // More is waiting: go on when room frees up, or at once for a wake-up hint, then
          // transactional only (served from the reserved share; bulk waits for room).
          withBulk = await Promise.race([
            deps.listener.wait(wakeChannels.deliveries, deps.pollIntervalMs).then(() => false),
            this.roomFor(fill(concurrency), fill(bulkSlots)).then(() => true),
            this.roomFor(some(concurrency), some(bulkSlots))
              .then(() => sleep(settleMs))
              .then(() => true),
          ]);
        } else {
          await deps.listener.wait(wakeChannels.deliveries, deps.pollIntervalMs);
          withBulk = true;
        }
      } catch (error) {
        failures += 1;
        deps.logger[isConnectionError(error) ? 'warn' : 'error'](
          { err: error },
          'claiming deliveries failed; retrying',
        );
        await deps.listener.wait(
          wakeChannels.deliveries,
          backoffMs(failures, { baseMs: 100, maxMs: 10_000 }),
        );
      }
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

  /** Bulk deliveries this worker may hold now: the lane's cap, less while the governor says so. */
  private bulkSlots(): number {
    return this.deps.governor?.slots() ?? bulkCapacity(this.deps.limits);
  }

  /** Resolves once `slots` slots and `bulkSlots` bulk slots are free (or on stop). */
  private roomFor(slots: number, bulkSlots: number): Promise<void> {
    const enough = () =>
      !this.running ||
      (this.deps.limits.concurrency - this.recordingBacklog() >= slots &&
        this.bulkSlots() - this.bulkInFlight >= bulkSlots);
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
  private dispatch(
    delivery: ClaimedDelivery,
    prepared: Prepared,
    lease: OwnerLease,
    controller: AbortController,
  ): void {
    if (delivery.lane === 'bulk') this.bulkInFlight += 1;
    else this.deps.governor?.noteTransactional();
    // Keyed by attempt too: a rescued delivery may come back to this worker while the first
    // attempt's call is still running.
    const key = `${delivery.id}:${String(delivery.attempt)}`;
    const entry: InFlight = { delivery, controller, done: Promise.resolve() };
    this.inFlight.set(key, entry);
    this.leases.begin(lease);
    this.recording += 1;
    const sending: Promise<Sent> =
      prepared.kind === 'done'
        ? Promise.resolve({ result: prepared.result, provider: null })
        : sendThroughChain(this.deps, prepared.message, prepared.chain, controller.signal, delivery.trace);
    entry.done = sending
      .then((sent) => {
        this.inFlight.delete(key);
        if (delivery.lane === 'bulk') this.bulkInFlight -= 1;
        this.notifyRoom();
        return this.record(lease.recorder, delivery, sent, controller.signal.aborted && this.stopping);
      })
      .catch((error: unknown) => {
        this.deps.logger.error(
          { err: error, deliveryId: delivery.id, trace_id: delivery.trace?.traceId },
          'delivery bookkeeping failed',
        );
      })
      .finally(() => {
        if (this.inFlight.delete(key) && delivery.lane === 'bulk') this.bulkInFlight -= 1;
        this.leases.end(lease);
        this.recording -= 1;
        this.notifyRoom();
      });
    this.pending.add(entry.done);
    void entry.done.finally(() => this.pending.delete(entry.done));
  }

  private notifyRoom(): void {
    for (const check of [...this.roomWaiters]) check();
  }

  /** Records the attempt's end, then counts it and tells whoever waits for it. */
  private async record(
    recorder: OutcomeRecorder,
    delivery: ClaimedDelivery,
    sent: Sent,
    aborted: boolean,
  ): Promise<void> {
    const { deps } = this;
    const channel = delivery.channel;
    const recorded = await recorder.record({ delivery, ...sent, aborted });
    let state: OutcomeState;
    switch (recorded.kind) {
      case 'fenced':
        // The lease expired (or its session ended) during the call and the delivery was taken
        // back: if this call reached the provider, it may have sent a duplicate (the window
        // between a provider accepting and Herald recording it, counted).
        deps.metrics.outcomesFenced.inc({ channel, outcome: metricKind(sent.result.kind) });
        deps.logger.warn(
          { deliveryId: delivery.id, attempt: delivery.attempt, trace_id: delivery.trace?.traceId },
          'lease lost before the outcome was recorded',
        );
        return;
      case 'accepted_late':
        // The provider accepted after the lease was lost: the delivery is sent, and a retry, a
        // newer claim's outcome or a dead-letter replay no longer sends it again.
        deps.logger.warn(
          { deliveryId: delivery.id, attempt: delivery.attempt, trace_id: delivery.trace?.traceId },
          'provider accepted after the lease was lost: recorded as sent',
        );
        state = 'sent';
        break;
      case 'recorded':
        state = recorded.state;
        break;
    }
    deps.metrics.deliveryOutcomes.inc({ channel, outcome: state === 'retrying' ? 'retry' : state });
    deps.events.emit('delivery.finished', {
      id: delivery.id,
      notificationId: delivery.notificationId,
      channel,
      state,
      attempt: delivery.attempt,
    });
  }
}

/** The outcome label of the fenced counter: an exception is counted as the `retry` it is treated as. */
function metricKind(kind: CallResult['kind']): string {
  return kind === 'threw' ? 'retry' : kind;
}

/** How long a claim for a quarter of the slots waits for more to free up. */
const settleMs = 25;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
