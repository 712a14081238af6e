// A per-provider circuit breaker. Closed: calls flow and results are counted in a rolling
// window. When at least `minimumCalls` results in the window fail at `failureRatio` or more, it
// opens: calls fail fast (the delivery is requeued, its attempt not spent) for `openMs`. Then it
// half-opens: one probe call goes through; success closes it, failure opens it again.

export type BreakerState = 'closed' | 'open' | 'half_open';

export interface BreakerOptions {
  windowMs: number;
  minimumCalls: number;
  failureRatio: number;
  openMs: number;
}

export class CircuitBreaker {
  private results: { at: number; failed: boolean }[] = [];
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
        this.results = [];
      }
      return;
    }
    this.results.push({ at: nowMs, failed });
    const since = nowMs - this.options.windowMs;
    this.results = this.results.filter((r) => r.at > since);
    const failures = this.results.filter((r) => r.failed).length;
    if (
      this.results.length >= this.options.minimumCalls &&
      failures / this.results.length >= this.options.failureRatio
    ) {
      this.open(nowMs);
    }
  }

  /** Opens at once, whatever the window says (a configuration error: no call can succeed). */
  trip(nowMs: number): void {
    this.probing = false;
    this.open(nowMs);
  }

  private open(nowMs: number): void {
    this.current = 'open';
    this.openedAt = nowMs;
    this.results = [];
  }
}
