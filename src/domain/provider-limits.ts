// How much one provider (or one webhook origin) may be called: the rate limit holds for the whole
// deployment (every worker process together), the concurrency cap for each worker process.

export interface KeyLimits {
  /** Calls per second, deployment-wide (shared by the workers calling the key); undefined: no limit. */
  ratePerSecond?: number;
  /** Calls in flight at once (per process); undefined: no limit. */
  concurrency?: number;
}

/**
 * One worker's share of a deployment-wide rate: the limit divided evenly among the workers that
 * call the key (this one included; at least one).
 */
export function rateShare(ratePerSecond: number, workers: number): number {
  return ratePerSecond / Math.max(1, workers);
}

/** The burst a bucket of this rate allows: a tenth of a second's worth, at least one call. */
export function burstFor(ratePerSecond: number): number {
  return Math.max(1, Math.ceil(ratePerSecond / 10));
}
