// Job: find notifications accepted over an hour ago that are still not final although their
// work has been due for an hour (src/db/stores/overdue-store.ts says exactly which), publish how
// many per lane, and log a few of their ids. Every accepted notification should reach a final
// state; one that stays overdue is work the pipeline lost track of or cannot do.
import type { Logger } from 'pino';
import type { Pool } from '../db/pools.js';
import { overdueAfterMs, readOverdue } from '../db/stores/overdue-store.js';
import type { Metrics } from '../observability/metrics.js';

export const overdueNotificationsIntervalMs = 5 * 60_000;

const sampleSize = 5;

export function overdueNotifications(deps: {
  pool: Pool;
  now: () => Date;
  metrics: Metrics;
  logger: Logger;
}): () => Promise<void> {
  return async () => {
    const cutoff = new Date(deps.now().getTime() - overdueAfterMs);
    const byLane = await readOverdue(deps.pool, cutoff, sampleSize);
    for (const { lane, notifications } of byLane)
      deps.metrics.overdueNotifications.set({ lane }, notifications);
    const overdue = byLane.filter((l) => l.notifications > 0);
    if (overdue.length === 0) return;
    // Notification ids and stages only: no content, no user ids or contact data.
    deps.logger.warn(
      {
        overdue: Object.fromEntries(overdue.map((l) => [l.lane, l.notifications])),
        sample: overdue.flatMap((l) => l.sample).slice(0, sampleSize),
      },
      'notifications accepted over an hour ago are not final',
    );
  };
}
