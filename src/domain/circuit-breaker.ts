// A per-provider circuit breaker. Closed: calls flow and results are counted in a rolling
// window (ten buckets of a tenth of it each, so counting costs the same at any call rate). When at least `minimumCalls` results in the window fail at `failureRatio` or more, it
// opens: calls fail fast (the delivery is requeued, its attempt not spent) for `openMs`. Then it
// half-opens: one probe call goes through; success closes it, failure opens it again.

export type BreakerState = 'closed' | 'open' | 'half_open';

export interface BreakerOptions {
  windowMs: number;
  minimumCalls: number;
  failureRatio: number;
  openMs: number;
}

/** The window is counted in this many buckets: O(1) per call, whatever the call rate. */
const bucketCount = 10;

interface Bucket {
  start: number;
  calls: number;
  failures: number;
}

export class CircuitBreaker {
  private buckets: Bucket[] = [];
  private openedAt = 0;
  private probing = false;
  private current: BreakerState = 'closed';

  constructor(private readonly options: BreakerOptions) {}

  state(nowMs: number): BreakerState {
    if (this.current === 'open' && nowMs - this.openedAt >= this.options.openMs) {
      this.current = 'half_open';
      this.probing = false;
    }
    return this.current;
  }

  /** May a call go out now? If not, `retryInMs` says when to ask again. */
  admit(nowMs: number): { ok: true } | { ok: false; retryInMs: number } {
    const state = this.state(nowMs);
    if (state === 'closed') return { ok: true };
    if (state === 'half_open' && !this.probing) {
      this.probing = true;
      return { ok: true };
    }
    const retryInMs = state === 'open' ? this.openedAt + this.options.openMs - nowMs : this.options.openMs;
    return { ok: false, retryInMs: Math.max(1, retryInMs) };
  }

  /** Records the result of an admitted call. */
  record(failed: boolean, nowMs: number): void {
    if (this.state(nowMs) === 'half_open') {
      this.probing = false;
      if (failed) this.open(nowMs);
      else {
        this.current = 'closed';
        this.buckets = [];
      }
      return;
    }
    const bucketMs = Math.max(1, Math.ceil(this.options.windowMs / bucketCount));
    const start = nowMs - (nowMs % bucketMs);
    let bucket = this.buckets.at(-1);
    if (bucket?.start !== start) {
      bucket = { start, calls: 0, failures: 0 };
      this.buckets.push(bucket);
      // Buckets wholly older than the window leave it.
      const since = nowMs - this.options.windowMs;
      while ((this.buckets[0]?.start ?? nowMs) + bucketMs <= since) this.buckets.shift();
    }
    bucket.calls += 1;
    if (failed) bucket.failures += 1;
    let calls = 0;
    let failures = 0;
    for (const b of this.buckets) {
      calls += b.calls;
      failures += b.failures;
    }
    if (calls >= this.options.minimumCalls && failures / calls >= this.options.failureRatio) {
      this.open(nowMs);
    }
  }

  /** Opens at once, whatever the window says (a configuration error: no call can succeed). */
  trip(nowMs: number): void {
    this.probing = false;
    this.open(nowMs);
  }

  /**
   * Holds the circuit open until `untilMs` because another worker opened it: never shortens an
   * open circuit, and ends a half-open probe phase (the probe's result is then ignored).
   * Returns whether the circuit was not already open until at least then.
   */
  holdOpenUntil(untilMs: number, nowMs: number): boolean {
    if (untilMs <= nowMs) return false;
    if (this.state(nowMs) === 'open' && this.openedAt + this.options.openMs >= untilMs) return false;
    this.probing = false;
    this.current = 'open';
    this.openedAt = untilMs - this.options.openMs;
    this.buckets = [];
    return true;
  }

  private open(nowMs: number): void {
    this.current = 'open';
    this.openedAt = nowMs;
    this.buckets = [];
  }
}
