// Job: move months past service retention to the archive and drop what retention says to drop
// (src/archive/lifecycle.ts, docs/retention.md). One run at a time across processes.
import type { Logger } from 'pino';
import type { Pool } from '../db/pools.js';
import type { Metrics } from '../observability/metrics.js';
import { runLifecycle } from '../archive/lifecycle.js';
import type { LifecycleSettings } from '../archive/lifecycle-deps.js';

export function retention(deps: {
  pool: Pool;
  archivePool: Pool;
  now: () => Date;
  logger: Logger;
  metrics: Metrics;
  settings: LifecycleSettings;
  /** Aborted at shutdown, so a long copy stops after its current batch. */
  signal: AbortSignal;
}): () => Promise<void> {
  return async () => {
    await runLifecycle(deps);
  };
}
