// Per calling service ingest quota, kept in this api process: a token bucket per service that
// refills INGEST_QUOTA_PER_MINUTE requests a minute and holds at most that many. With several
// api processes each keeps its own buckets, so a service may send up to N times the quota.
import { TokenBucket } from '../domain/token-bucket.js';
import { ProblemError } from '../domain/problems.js';

export class IngestQuota {
  private readonly buckets = new Map<number, TokenBucket>();

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number,
  ) {}

  /** Takes one request from the service's bucket, or throws 429 rate_limited with Retry-After. */
  take(serviceId: number): void {
    const nowMs = this.now();
    let bucket = this.buckets.get(serviceId);
    if (bucket === undefined) {
      bucket = new TokenBucket(this.perMinute / 60, this.perMinute, nowMs);
      this.buckets.set(serviceId, bucket);
    }
    const taken = bucket.take(nowMs);
    if (taken.ok) return;
    const seconds = Math.max(1, Math.ceil(taken.waitMs / 1000));
    throw new ProblemError(
      'rate_limited',
      `This service is over its quota of ${String(this.perMinute)} requests a minute; retry in ${String(seconds)} s.`,
      undefined,
      { headers: { 'retry-after': String(seconds) } },
    );
  }
}
