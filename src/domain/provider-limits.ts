// How much one provider (or one webhook origin) may be called by one worker process.

export interface KeyLimits {
  /** Calls per second (per process); undefined: no limit. */
  ratePerSecond?: number;
  /** Calls in flight at once (per process); undefined: no limit. */
  concurrency?: number;
}
