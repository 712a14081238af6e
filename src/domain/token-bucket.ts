// A token bucket: up to `ratePerSecond` calls per second on average, bursts up to `burst`.
// Time comes from the caller, so the limiter is deterministic under test.

export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    nowMs: number,
  ) {
    if (ratePerSecond <= 0 || burst < 1)
      throw new RangeError('a token bucket needs a positive rate and a burst of at least 1');
    this.tokens = burst;
    this.updatedAt = nowMs;
  }

  private refill(nowMs: number): void {
    const elapsed = Math.max(0, nowMs - this.updatedAt);
    this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.ratePerSecond) / 1000);
    this.updatedAt = nowMs;
  }

  /** Takes a token if one is there; otherwise returns how many ms until one will be. */
  take(nowMs: number): { ok: true } | { ok: false; waitMs: number } {
    this.refill(nowMs);
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, waitMs: Math.ceil(((1 - this.tokens) * 1000) / this.ratePerSecond) };
  }
}
