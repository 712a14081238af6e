// Protects providers and the pipeline from each other: a circuit breaker per provider key (the
// provider, or for webhooks the receiving origin, so one broken receiver does not stop the
// others), an optional token-bucket rate limit, and an optional cap on calls in flight (a
// bulkhead). A call over the cap waits in a short queue for at most `maxWaitMs`; in flight plus
// waiting, one key holds at most `maxHeldPerKey` of a worker's slots, so a slow or hanging
// provider always leaves room for the others. A call the guard holds back is deferred: the
// delivery goes back to the queue without spending an attempt.
//
// With `shared`, the rate limit and the circuits hold for the whole deployment: this worker's
// bucket refills at its share of the limit (the limit divided by the workers calling the key),
// and a circuit another worker opened is held open here too (see shared-limits.ts). Half-open
// probing stays per worker: when an opened circuit's time is up, each worker lets one probe
// through.
import { burstFor, rateShare, type KeyLimits } from '../domain/provider-limits.js';
import { CircuitBreaker, type BreakerOptions, type BreakerState } from '../domain/circuit-breaker.js';
import type { DeliveryOutcome } from '../domain/outcome.js';
import { TokenBucket } from '../domain/token-bucket.js';

/** What the guard needs from the deployment-wide view (SharedLimits in shared-limits.ts). */
export interface SharedKeyView {
  /** Workers sharing the key's rate (this one included); undefined: not to be called yet. */
  workersFor(key: string): number | undefined;
  /** When workersFor answers undefined: about how long until it will not. */
  untilKnownMs(key: string): number;
  /** Until when (this process's clock) the deployment holds the key's circuit open. */
  circuitOpenUntil(key: string): number | undefined;
}

export interface ProviderGuardOptions {
  breaker: BreakerOptions;
  limitsFor?: (key: string) => KeyLimits;
  /** The deployment-wide view; without it limits and circuits hold per process. */
  shared?: SharedKeyView;
  now: () => number;
  onOpen?: (key: string) => void;
  /** Longest a call waits for a free slot under the cap before it is deferred (default 1000). */
  maxWaitMs?: number;
  /**
   * Longest a call holding a slot waits for its key's next rate token (paced one token apart)
   * before it is deferred instead (default 500: a call reserved at a share that then shrinks
   * goes out at the old pace for at most this long).
   */
  maxRateWaitMs?: number;
  /**
   * Longest a call holding a slot waits for its share of a shared rate to be known (the first
   * refreshes after the key is first called, a join's hold) before it is deferred instead
   * (default 1000): the delivery stays with the worker that is about to send it.
   */
  maxShareWaitMs?: number;
  /** Slots one key may hold, in flight plus waiting (default: twice its cap). */
  maxHeldPerKey?: number;
}

export type DeferReason = 'circuit_open' | 'rate_limited' | 'provider_busy';
export type Admission = { ok: true } | { ok: false; reason: DeferReason; delayMs: number };

/** Default of `maxRateWaitMs`; a worker joining others holds back this long after a refresh. */
export const defaultMaxRateWaitMs = 500;

/** How long a call the full bulkhead turned away waits before it is claimed again. */
const busyDelayMs = 250;

interface Waiter {
  grant: (granted: boolean) => void;
}

interface Tally {
  calls: number;
  failures: number;
  latencyMsSum: number;
  latencyMsMax: number;
}

/** A provider key's health over the period since the previous report (see `report`). */
export interface KeyReport extends Tally {
  key: string;
  breakerState: BreakerState;
  periodMs: number;
}

export class ProviderGuard {
  private readonly breakers = new Map<string, CircuitBreaker>();
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly inFlight = new Map<string, number>();
  private readonly waiting = new Map<string, Waiter[]>();
  private tallies = new Map<string, Tally>();
  private tallyingSince: number;

  constructor(private readonly options: ProviderGuardOptions) {
    this.tallyingSince = options.now();
  }

  /** How long an opened circuit stays open. */
  get openMs(): number {
    return this.options.breaker.openMs;
  }

  /**
   * Asks to make a call, waiting briefly for a slot when the key's cap is reached. An admitted
   * call must be followed by `record` (which ends it and hands its slot on).
   */
  async acquire(key: string, signal?: AbortSignal): Promise<Admission> {
    const now = this.options.now();
    const breaker = this.breakerFor(key);
    const openUntil = this.options.shared?.circuitOpenUntil(key);
    if (openUntil !== undefined) breaker.holdOpenUntil(openUntil, now);
    if (breaker.state(now) === 'open') return this.circuitOpen(breaker, now);
    const limits = this.options.limitsFor?.(key) ?? {};
    const busy = this.inFlight.get(key) ?? 0;
    if (limits.concurrency !== undefined && busy >= limits.concurrency) {
      const queue = this.waiting.get(key) ?? [];
      const queueLimit =
        this.options.maxHeldPerKey === undefined
          ? limits.concurrency
          : this.options.maxHeldPerKey - limits.concurrency;
      if (queue.length >= queueLimit || signal?.aborted === true)
        return { ok: false, reason: 'provider_busy', delayMs: busyDelayMs };
      if (!(await this.waitForSlot(key, queue, signal)))
        return { ok: false, reason: 'provider_busy', delayMs: busyDelayMs };
    } else {
      this.inFlight.set(key, busy + 1);
    }
    // Holding a slot now: the rate limit, then the breaker (a half-open breaker admits one probe,
    // which must then be made).
    const at = this.options.now();
    const rate = limits.ratePerSecond;
    if (rate !== undefined) {
      let taken = this.takeToken(key, rate, at);
      if (taken.share === 'unknown' && taken.waitMs <= (this.options.maxShareWaitMs ?? 1000)) {
        if (await pause(taken.waitMs, signal)) taken = this.takeToken(key, rate, this.options.now());
      }
      if (!taken.ok || !(await pause(taken.waitMs, signal))) {
        this.release(key);
        return { ok: false, reason: 'rate_limited', delayMs: Math.max(1, taken.waitMs) };
      }
    }
    const admitted = breaker.admit(rate === undefined ? at : this.options.now());
    if (!admitted.ok) {
      this.release(key);
      return { ok: false, reason: 'circuit_open', delayMs: admitted.retryInMs };
    }
    return { ok: true };
  }

  /** Calls in flight for a key (admitted, not yet recorded). */
  busy(key: string): number {
    return this.inFlight.get(key) ?? 0;
  }

  /** Calls waiting for a slot of a key. */
  queued(key: string): number {
    return this.waiting.get(key)?.length ?? 0;
  }

  /**
   * Counts an admitted call's outcome. Only provider trouble (retry: 5xx, 429, timeouts,
   * connection errors) counts as failure; a refused message or an invalid target says nothing
   * about the provider's health. A configuration error opens the circuit at once; an exception
   * from the provider counts as a failure, like `retry`.
   */
  record(key: string, outcome: DeliveryOutcome | { kind: 'threw' } | 'aborted', elapsedMs = 0): void {
    this.release(key);
    if (outcome === 'aborted') return;
    const breaker = this.breakerFor(key);
    const now = this.options.now();
    const before = breaker.state(now);
    const failed = outcome.kind === 'retry' || outcome.kind === 'threw' || outcome.kind === 'config_error';
    if (outcome.kind === 'config_error') breaker.trip(now);
    else breaker.record(failed, now);
    if (before !== 'open' && breaker.state(now) === 'open') this.options.onOpen?.(key);
    const tally = this.tallies.get(key) ?? { calls: 0, failures: 0, latencyMsSum: 0, latencyMsMax: 0 };
    tally.calls += 1;
    if (failed) tally.failures += 1;
    tally.latencyMsSum += elapsedMs;
    tally.latencyMsMax = Math.max(tally.latencyMsMax, elapsedMs);
    this.tallies.set(key, tally);
  }

  /**
   * Each key's breaker state and its calls, failures and latency since the previous report
   * (the counts start again at zero). Keys without calls in the period are reported with their
   * breaker state, so an open circuit is seen even while nothing is let through.
   */
  report(): KeyReport[] {
    const now = this.options.now();
    const periodMs = Math.max(1, now - this.tallyingSince);
    const tallies = this.tallies;
    this.tallies = new Map();
    this.tallyingSince = now;
    return [...this.breakers].map(([key, breaker]) => ({
      key,
      breakerState: breaker.state(now),
      periodMs,
      ...(tallies.get(key) ?? { calls: 0, failures: 0, latencyMsSum: 0, latencyMsMax: 0 }),
    }));
  }

  /**
   * A token from the key's bucket, which refills at this worker's share of the rate. Until the
   * share is known (the first refresh after the key is first called), and while this worker
   * joins others calling the key, nothing is sent.
   */
  private takeToken(
    key: string,
    rate: number,
    at: number,
  ): { ok: boolean; waitMs: number; share?: 'unknown' } {
    const shared = this.options.shared;
    let share = rate;
    if (shared !== undefined) {
      const workers = shared.workersFor(key);
      if (workers === undefined) return { ok: false, waitMs: shared.untilKnownMs(key), share: 'unknown' };
      share = rateShare(rate, workers);
    }
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      bucket = new TokenBucket(share, burstFor(share), at);
      this.buckets.set(key, bucket);
    } else bucket.setRate(share, burstFor(share), at);
    return bucket.reserve(at, this.options.maxRateWaitMs ?? defaultMaxRateWaitMs);
  }

  private circuitOpen(breaker: CircuitBreaker, now: number): Admission {
    const admitted = breaker.admit(now);
    return { ok: false, reason: 'circuit_open', delayMs: admitted.ok ? 1 : admitted.retryInMs };
  }

  /** Queues for a slot; resolves true once one is handed over, false on timeout or abort. */
  private waitForSlot(key: string, queue: Waiter[], signal: AbortSignal | undefined): Promise<boolean> {
    this.waiting.set(key, queue);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        grant: (granted) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', give);
          resolve(granted);
        },
      };
      const give = () => {
        const at = queue.indexOf(waiter);
        if (at >= 0) queue.splice(at, 1);
        waiter.grant(false);
      };
      const timer = setTimeout(give, this.options.maxWaitMs ?? 1000);
      timer.unref();
      signal?.addEventListener('abort', give, { once: true });
      queue.push(waiter);
    });
  }

  /** Ends a call: its slot goes to the first waiter, or is freed. */
  private release(key: string): void {
    const next = this.waiting.get(key)?.shift();
    if (next !== undefined) {
      next.grant(true);
      return;
    }
    const busy = (this.inFlight.get(key) ?? 1) - 1;
    if (busy > 0) this.inFlight.set(key, busy);
    else this.inFlight.delete(key);
  }

  private breakerFor(key: string): CircuitBreaker {
    let breaker = this.breakers.get(key);
    if (breaker === undefined) {
      breaker = new CircuitBreaker(this.options.breaker);
      this.breakers.set(key, breaker);
    }
    return breaker;
  }
}

/** Waits `ms` (none: at once); false if the signal aborts first. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  if (signal?.aborted === true) return Promise.resolve(false);
  if (ms <= 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', abort);
      resolve(ok);
    };
    const abort = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal?.addEventListener('abort', abort, { once: true });
  });
}

/** The key a delivery's provider health is judged by. */
export function guardKey(providerName: string, channel: string, target: string): string {
  if (channel !== 'webhook') return providerName;
  try {
    return `${providerName}:${new URL(target).origin}`;
  } catch {
    return providerName;
  }
}
