// Group commit for ingest: requests that arrive while a commit is in progress are written
// together in the next one (one row per commit tops out near 2.4k/s on 2 cores).
// A lone request is written at once, so batching adds no latency when traffic is light; a
// second commit next to one in flight starts only for enough recipients to be worth it.
import type { Pool } from '../db/pools.js';
import {
  commitNotificationBatch,
  type BatchOutcome,
  type PreparedNotification,
} from '../db/stores/notification-batch-store.js';

interface Entry {
  prepared: PreparedNotification;
  resolve: (outcome: BatchOutcome) => void;
  reject: (error: unknown) => void;
}

/**
 * Requests written in one commit at most: multi-row inserts of this size run at 50–70k rows/s on
 * two cores, and larger ones only lengthen the commit that later requests wait for.
 */
export const ingestBatchSize = 500;

/**
 * Recipients waiting that justify a commit next to one in flight (bench:ingest, 2 cores: one
 * commit at a time took single-recipient requests from 2,800 to 5,000/s, while 100-recipient
 * requests need two at once).
 */
export const parallelCommitRows = 200;

export class IngestBatcher {
  private queue: Entry[] = [];
  private inFlight = 0;
  private readonly idle = new Set<() => void>();

  constructor(
    private readonly pool: Pool,
    private readonly options: { maxBatch: number; maxConcurrentCommits: number },
  ) {}

  /** Resolves after the commit that contains this request (or rejects if it failed). */
  submit(prepared: PreparedNotification): Promise<BatchOutcome> {
    return new Promise((resolve, reject) => {
      this.queue.push({ prepared, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.options.maxConcurrentCommits && this.queue.length > 0) {
      // While a commit is in flight, another starts only for enough rows to keep a second
      // backend busy; small requests wait and share the next commit, which costs PostgreSQL
      // less than several small ones at once.
      if (this.inFlight > 0 && this.queuedRows() < parallelCommitRows) return;
      const batch = this.queue.splice(0, this.options.maxBatch);
      this.inFlight += 1;
      void this.commit(batch).finally(() => {
        this.inFlight -= 1;
        this.pump();
        if (this.inFlight === 0 && this.queue.length === 0) for (const done of this.idle) done();
      });
    }
  }

  private async commit(batch: Entry[]): Promise<void> {
    try {
      const outcomes = await commitNotificationBatch(
        this.pool,
        batch.map((e) => e.prepared),
      );
      batch.forEach((entry, i) => {
        const outcome = outcomes[i];
        if (outcome === undefined) entry.reject(new Error('batch returned fewer outcomes than requests'));
        else entry.resolve(outcome);
      });
    } catch (error) {
      // Nothing of the batch was committed. One request's bad data must not fail the others:
      // commit each alone, so only the request at fault (or all, if the database is down) fails.
      if (batch.length === 1) {
        batch[0]?.reject(error);
        return;
      }
      for (const entry of batch) await this.commit([entry]);
    }
  }

  /** Recipient rows the waiting requests write (a topic send counts as one). */
  private queuedRows(): number {
    let rows = 0;
    for (const entry of this.queue) {
      rows += Math.max(1, entry.prepared.notification.recipients.length);
      if (rows >= parallelCommitRows) break;
    }
    return rows;
  }

  /** Waits until every submitted request has been committed or failed. */
  async drain(): Promise<void> {
    if (this.inFlight === 0 && this.queue.length === 0) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.idle.delete(done);
        resolve();
      };
      this.idle.add(done);
    });
  }
}
