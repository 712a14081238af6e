// Records delivery outcomes in batches: while one batch commits, the next accumulates, so
// throughput grows with load without adding latency when idle. If the database
// is unreachable the outcomes wait and are retried; their leases keep others away meanwhile.
import type { Logger } from 'pino';
import type { Pool } from '../db/pools.js';
import { recordOutcomes, type RecordedOutcome } from '../db/stores/delivery-store.js';

interface Entry {
  outcome: RecordedOutcome;
  resolve: (recorded: boolean) => void;
}

export class OutcomeRecorder {
  private queue: Entry[] = [];
  private flushing = false;
  private failures = 0;
  private closed = false;

  constructor(
    private readonly pool: Pool,
    private readonly owner: string,
    private readonly logger: Logger,
    private readonly maxBatch = 500,
  ) {}

  /** Resolves once committed: true if recorded, false if the lease was lost meanwhile. */
  record(outcome: RecordedOutcome): Promise<boolean> {
    return new Promise((resolve) => {
      this.queue.push({ outcome, resolve });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.queue.length > 0) {
      const batch = this.queue.slice(0, this.maxBatch);
      try {
        const recorded = await recordOutcomes(
          this.pool,
          this.owner,
          batch.map((e) => e.outcome),
        );
        this.queue = this.queue.slice(batch.length);
        this.failures = 0;
        for (const entry of batch) entry.resolve(recorded.has(entry.outcome.id));
      } catch (error) {
        this.failures += 1;
        this.logger.warn({ err: error, pending: this.queue.length }, 'recording outcomes failed; retrying');
        if (this.closed) {
          // Shutting down without a database: give up; leases expire and the rescuer re-queues.
          for (const entry of this.queue) entry.resolve(false);
          this.queue = [];
          break;
        }
        await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** this.failures)));
      }
    }
    this.flushing = false;
  }

  /** After close, a failing flush drops its entries instead of retrying forever. */
  close(): void {
    this.closed = true;
  }
}
