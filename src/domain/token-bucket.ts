// A token bucket: up to `ratePerSecond` calls per second on average, bursts up to `burst`.
// Time comes from the caller, so the limiter is deterministic under test.

export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private ratePerSecond: number,
    private burst: number,
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

  /** Changes the rate and burst from now on (tokens already earned are kept, up to the new burst). */
  setRate(ratePerSecond: number, burst: number, nowMs: number): void {
    if (ratePerSecond === this.ratePerSecond && burst === this.burst) return;
    if (ratePerSecond <= 0 || burst < 1)
      throw new RangeError('a token bucket needs a positive rate and a burst of at least 1');
    this.refill(nowMs);
    this.ratePerSecond = ratePerSecond;
    this.burst = burst;
    this.tokens = Math.min(this.tokens, burst);
  }

  isFull(nowMs: number): boolean {
    this.refill(nowMs);
    return this.tokens >= this.burst;
  }

  /**
   * Reserves the next token if it will be there within `maxWaitMs`: the caller waits `waitMs`,
   * then calls (reserved tokens are owed: the bucket goes below zero, so callers are paced one
   * token apart). Otherwise nothing is taken and `waitMs` says when to ask again.
   */
  reserve(nowMs: number, maxWaitMs: number): { ok: true; waitMs: number } | { ok: false; waitMs: number } {
    this.refill(nowMs);
    const waitMs = this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) * 1000) / this.ratePerSecond);
    if (waitMs > maxWaitMs) return { ok: false, waitMs };
    this.tokens -= 1;
    return { ok: true, waitMs };
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

/**
 * One token bucket per key (a service, an API key), each refilling `perMinute` a minute and
 * holding at most that many. Buckets that have refilled completely are dropped when the map
 * grows large: a full bucket is the same as none.
 */
export class KeyedQuota<K> {
  private readonly buckets = new Map<K, TokenBucket>();

  constructor(
    private readonly perMinute: number,
    private readonly maxKeys = 10_000,
  ) {}

  /** Takes one from the key's bucket; otherwise the whole seconds until one is there (at least 1). */
  take(key: K, nowMs: number): { ok: true } | { ok: false; retryAfterSeconds: number } {
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      if (this.buckets.size >= this.maxKeys) this.dropFull(nowMs);
      bucket = new TokenBucket(this.perMinute / 60, this.perMinute, nowMs);
      this.buckets.set(key, bucket);
    }
    const taken = bucket.take(nowMs);
    return taken.ok ? taken : { ok: false, retryAfterSeconds: Math.max(1, Math.ceil(taken.waitMs / 1000)) };
  }

  private dropFull(nowMs: number): void {
    for (const [key, bucket] of this.buckets) if (bucket.isFull(nowMs)) this.buckets.delete(key);
  }
}
