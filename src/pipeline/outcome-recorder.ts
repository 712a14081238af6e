// Records what each attempt ended with: the outcome policy decides the transition
// (src/domain/outcome-policy.ts), and transitions are written in batches, fenced by this worker's
// lease. While one batch commits the next accumulates, so throughput grows with load without
// adding latency when idle. An answer whose lease was lost is not written, except an acceptance:
// the delivery is then loaded, decided again and recorded as sent, so neither a retry nor a
// dead-letter replay sends it a second time. If the database is unreachable the outcomes wait
// and are retried; their leases keep others away meanwhile.
import type { Logger } from 'pino';
import { withTransaction, type Pool } from '../db/pools.js';
import {
  outcomeKey,
  writeOutcomes,
  writeTransitions,
  type ClaimedDelivery,
  type OutcomeWrite,
} from '../db/stores/delivery-store.js';
import { lockDeliveries } from '../db/stores/delivery-lease-store.js';
import {
  decideOutcome,
  type CallResult,
  type OutcomePolicy,
  type OutcomeState,
} from '../domain/outcome-policy.js';
import { backoffMs } from '../domain/retry-policy.js';

/** One attempt's end, as the dispatcher saw it. */
export interface AttemptReport {
  delivery: Pick<
    ClaimedDelivery,
    'id' | 'notificationCreatedAt' | 'channel' | 'target' | 'attempt' | 'maxAttempts'
  >;
  result: CallResult;
  /** The provider that made the call; null if none did. */
  provider: string | null;
  /** The send was aborted at shutdown. */
  aborted: boolean;
}

/**
 * `recorded`: written under this worker's lease. `accepted_late`: the lease was lost, and the
 * provider's acceptance was recorded since (the delivery is sent). `fenced`: the lease was lost
 * and nothing was written (a later claim's outcome, or the rescuer's, stands).
 */
export type Recorded =
  { kind: 'recorded'; state: OutcomeState } | { kind: 'accepted_late' } | { kind: 'fenced' };

export interface OutcomeRecorderDeps {
  pool: Pool;
  /** The lease owner this worker claims under. */
  owner: string;
  logger: Logger;
  policy: OutcomePolicy;
  random: () => number;
  /** Outcomes per transaction (default 500). */
  maxBatch?: number;
}

interface Entry {
  report: AttemptReport;
  write: OutcomeWrite;
  resolve: (recorded: Recorded) => void;
}

export class OutcomeRecorder {
  private queue: Entry[] = [];
  /** Acceptances whose lease was lost, to record late. */
  private late: Entry[] = [];
  private flushing = false;
  private failures = 0;
  private closed = false;
  private readonly maxBatch: number;

  constructor(private readonly deps: OutcomeRecorderDeps) {
    this.maxBatch = deps.maxBatch ?? 500;
  }

  /** Decides the attempt's transition; resolves once it is committed, or known not to be. */
  record(report: AttemptReport): Promise<Recorded> {
    const { delivery } = report;
    const decision = decideOutcome({
      attempt: delivery.attempt,
      maxAttempts: delivery.maxAttempts,
      lease: { kind: 'current' },
      result: report.result,
      aborted: report.aborted,
      policy: this.deps.policy,
      random: this.deps.random,
    });
    // The lease is taken as current, so there is always something to write; the fence checks it.
    if (decision.kind === 'ignore') return Promise.resolve({ kind: 'fenced' });
    const write: OutcomeWrite = {
      id: delivery.id,
      notificationCreatedAt: delivery.notificationCreatedAt,
      channel: delivery.channel,
      target: delivery.target,
      provider: report.provider,
      transition: decision.transition,
    };
    return new Promise((resolve) => {
      this.queue.push({ report, write, resolve });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.queue.length > 0 || this.late.length > 0) {
      try {
        if (this.late.length > 0) await this.recordLate();
        else await this.writeBatch();
        this.failures = 0;
      } catch (error) {
        this.failures += 1;
        this.deps.logger.warn(
          { err: error, pending: this.queue.length + this.late.length },
          'recording outcomes failed; retrying',
        );
        if (this.closed) {
          // Shutting down without a database: give up; leases expire and the rescuer re-queues.
          for (const entry of [...this.queue, ...this.late]) entry.resolve({ kind: 'fenced' });
          this.queue = [];
          this.late = [];
          break;
        }
        await new Promise((r) => setTimeout(r, backoffMs(this.failures, { baseMs: 50, maxMs: 1000 })));
      }
    }
    this.flushing = false;
  }

  /** Writes the next batch under this worker's lease; acceptances fenced off go to `late`. */
  private async writeBatch(): Promise<void> {
    const batch = this.queue.slice(0, this.maxBatch);
    const writes = batch.map((e) => e.write);
    const { pool, owner } = this.deps;
    // One statement commits by itself; a target disabled must commit with the state that disables it.
    const written = writes.some((w) => w.transition.disableTarget)
      ? await withTransaction(pool, (client) => writeOutcomes(client, owner, writes))
      : await writeTransitions(pool, owner, writes);
    this.queue = this.queue.slice(batch.length);
    for (const entry of batch) {
      const { id, transition } = entry.write;
      if (written.has(outcomeKey(id, transition.fromAttempts)))
        entry.resolve({ kind: 'recorded', state: transition.to });
      else if (entry.report.result.kind === 'sent') this.late.push(entry);
      else entry.resolve({ kind: 'fenced' });
    }
  }

  /**
   * Load, decide, write for acceptances whose lease was lost: each delivery is locked as it is
   * now (dead, retrying, pending, claimed again, or finished) and the policy decides again.
   */
  private async recordLate(): Promise<void> {
    const batch = this.late.slice(0, this.maxBatch);
    const outcomes = await withTransaction(this.deps.pool, async (client) => {
      const rows = await lockDeliveries(
        client,
        batch.map((e) => e.write),
      );
      const now = new Map(rows.map((r) => [r.id, r]));
      const writes: OutcomeWrite[] = [];
      const decided = batch.map((entry): OutcomeWrite | undefined => {
        const row = now.get(entry.write.id);
        // Gone: its month was dropped by retention.
        if (row === undefined) return undefined;
        const decision = decideOutcome({
          attempt: entry.report.delivery.attempt,
          maxAttempts: row.maxAttempts,
          lease: { kind: 'superseded', state: row.state, attempts: row.attempts },
          result: entry.report.result,
          aborted: entry.report.aborted,
          policy: this.deps.policy,
          random: this.deps.random,
        });
        if (decision.kind === 'ignore') return undefined;
        const write = { ...entry.write, transition: decision.transition };
        writes.push(write);
        // A second acceptance of the same delivery in this batch finds it sent.
        now.set(row.id, { ...row, state: decision.transition.to });
        return write;
      });
      const written = await writeOutcomes(client, null, writes);
      return decided.map((w) => w !== undefined && written.has(outcomeKey(w.id, w.transition.fromAttempts)));
    });
    this.late = this.late.slice(batch.length);
    batch.forEach((entry, i) =>
      entry.resolve(outcomes[i] === true ? { kind: 'accepted_late' } : { kind: 'fenced' }),
    );
  }

  /** After close, a failing flush drops its entries instead of retrying forever. */
  close(): void {
    this.closed = true;
  }
}
