// Protects providers and the pipeline from each other: a circuit breaker per provider key (the
// provider, or for webhooks the receiving origin, so one broken receiver does not stop the
// others), an optional token-bucket rate limit, and an optional cap on calls in flight (a
// bulkhead: a slow provider cannot take every worker slot). A call the guard holds back is
// deferred: the delivery goes back to the queue without spending an attempt (DESIGN 6).
import { CircuitBreaker, type BreakerOptions } from '../domain/circuit-breaker.js';
import type { DeliveryOutcome } from '../domain/outcome.js';
import { TokenBucket } from '../domain/token-bucket.js';

export interface KeyLimits {
  /** Calls per second (per process); undefined: no limit. */
  ratePerSecond?: number;
  /** Calls in flight at once (per process); undefined: no limit. */
  concurrency?: number;
}

export interface ProviderGuardOptions {
  breaker: BreakerOptions;
  limitsFor?: (key: string) => KeyLimits;
  now: () => number;
  onOpen?: (key: string) => void;
}

export type DeferReason = 'circuit_open' | 'rate_limited' | 'provider_busy';
export type Admission = { ok: true } | { ok: false; reason: DeferReason; delayMs: number };

/** How long a call held back by a full bulkhead waits before it is claimed again. */
const busyDelayMs = 250;

export class ProviderGuard {
  private readonly breakers = new Map<string, CircuitBreaker>();
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly inFlight = new Map<string, number>();

  constructor(private readonly options: ProviderGuardOptions) {}

  /** How long an opened circuit stays open. */
  get openMs(): number {
    return this.options.breaker.openMs;
  }

  /** Asks to make a call; an admitted call must be followed by `record` (which ends it). */
  admit(key: string): Admission {
    const now = this.options.now();
    const limits = this.options.limitsFor?.(key) ?? {};
    const busy = this.inFlight.get(key) ?? 0;
    if (limits.concurrency !== undefined && busy >= limits.concurrency)
      return { ok: false, reason: 'provider_busy', delayMs: busyDelayMs };
    // The rate limit before the breaker: a half-open breaker admits one probe, which must then be made.
    const rate = limits.ratePerSecond;
    if (rate !== undefined) {
      let bucket = this.buckets.get(key);
      if (bucket === undefined) {
        bucket = new TokenBucket(rate, Math.max(1, Math.ceil(rate / 10)), now);
        this.buckets.set(key, bucket);
      }
      const token = bucket.take(now);
      if (!token.ok) return { ok: false, reason: 'rate_limited', delayMs: token.waitMs };
    }
    const admitted = this.breakerFor(key).admit(now);
    if (!admitted.ok) return { ok: false, reason: 'circuit_open', delayMs: admitted.retryInMs };
    this.inFlight.set(key, busy + 1);
    return { ok: true };
  }

  /** Calls in flight for a key (admitted, not yet recorded). */
  busy(key: string): number {
    return this.inFlight.get(key) ?? 0;
  }

  /**
   * Counts an admitted call's outcome. Only provider trouble (retry: 5xx, 429, timeouts,
   * connection errors) counts as failure; a refused message or an invalid target says nothing
   * about the provider's health. A configuration error opens the circuit at once.
   */
  record(key: string, outcome: DeliveryOutcome | 'aborted'): void {
    const busy = (this.inFlight.get(key) ?? 1) - 1;
    if (busy > 0) this.inFlight.set(key, busy);
    else this.inFlight.delete(key);
    if (outcome === 'aborted') return;
    const breaker = this.breakerFor(key);
    const now = this.options.now();
    const before = breaker.state(now);
    if (outcome.kind === 'config_error') breaker.trip(now);
    else breaker.record(outcome.kind === 'retry', now);
    if (before !== 'open' && breaker.state(now) === 'open') this.options.onOpen?.(key);
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

/** The key a delivery's provider health is judged by. */
export function guardKey(providerName: string, channel: string, target: string): string {
  if (channel !== 'webhook') return providerName;
  try {
    return `${providerName}:${new URL(target).origin}`;
  } catch {
    return providerName;
  }
}
