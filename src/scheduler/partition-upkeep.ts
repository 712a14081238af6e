// Job: keep monthly partitions created ahead of time, so inserts never meet a missing month.
import type { Logger } from 'pino';
import type { Pool } from '../db/pools.js';
import { ensurePartitions } from '../db/partitions.js';

/** Hourly: partitions are kept months ahead, so an hour's delay never meets a missing month. */
export const partitionUpkeepIntervalMs = 3_600_000;

export function partitionUpkeep(deps: {
  pool: Pool;
  monthsAhead: number;
  now: () => Date;
  logger: Logger;
}): () => Promise<void> {
  return async () => {
    const created = await ensurePartitions(deps.pool, deps.now(), deps.monthsAhead);
    if (created.length > 0) deps.logger.info({ created }, 'created partitions');
  };
}
