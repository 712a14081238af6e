// What one run of the lifecycle job is given (docs/retention.md): both stores, the clock, the
// settings, and the shutdown signal. Every step of the run takes these; they live apart from
// lifecycle.ts, which imports every step, so the steps need no import back into it.
import type { Logger } from 'pino';
import type { Pool } from '../db/pools.js';
import type { Metrics } from '../observability/metrics.js';

export interface LifecycleSettings {
  serviceRetentionDays: number;
  archiveRetentionMonths: number;
  batchRows: number;
  idempotencyKeyRetentionDays: number;
}

export interface LifecycleDeps {
  pool: Pool;
  archivePool: Pool;
  now: () => Date;
  logger: Logger;
  metrics?: Metrics | undefined;
  settings: LifecycleSettings;
  dryRun?: boolean;
  /** Aborted at shutdown: the run stops after the batch in progress (nothing half-written). */
  signal?: AbortSignal | undefined;
}
