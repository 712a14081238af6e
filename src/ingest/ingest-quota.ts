// Per calling service ingest quota, kept in this api process: a token bucket per service that
// refills INGEST_QUOTA_PER_MINUTE requests a minute and holds at most that many. With several
// api processes each keeps its own buckets, so a service may send up to N times the quota.
import { KeyedQuota } from '../domain/token-bucket.js';
import { ProblemError } from '../domain/problems.js';

export class IngestQuota {
  private readonly quota: KeyedQuota<number>;

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number,
  ) {
    this.quota = new KeyedQuota(perMinute);
  }

  /** Takes one request from the service's bucket, or throws 429 rate_limited with Retry-After. */
  take(serviceId: number): void {
    const taken = this.quota.take(serviceId, this.now());
    if (taken.ok) return;
    const seconds = taken.retryAfterSeconds;
    throw new ProblemError(
      'rate_limited',
      `This service is over its quota of ${String(this.perMinute)} requests a minute; retry in ${String(seconds)} s.`,
      undefined,
      { headers: { 'retry-after': String(seconds) } },
    );
  }
}
