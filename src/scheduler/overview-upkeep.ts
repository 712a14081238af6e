// Job: keep the overview's counts small — fold minutes older than the previous hour into hours,
// drop counts older than the service store keeps notifications, and forget the provider reports
// of workers that stopped reporting an hour ago.
import type { Pool } from '../db/pools.js';
import { compactOverview } from '../db/stores/overview-store.js';

export const overviewUpkeepIntervalMs = 5 * 60_000;

const dayMs = 86_400_000;
const silentWorkerMs = 3_600_000;

export function overviewUpkeep(deps: { pool: Pool; now: () => Date; keepDays: number }): () => Promise<void> {
  return async () => {
    const now = deps.now().getTime();
    await compactOverview(deps.pool, new Date(now - deps.keepDays * dayMs), new Date(now - silentWorkerMs));
  };
}
