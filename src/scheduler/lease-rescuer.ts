// Job: make deliveries whose lease expired claimable again (their worker was killed or hung).
import type { Logger } from 'pino';
import type { Pool } from '../db/pools.js';
import { rescueExpiredLeases } from '../db/stores/delivery-store.js';
import { wakeChannels, type WakeNotifier } from '../db/wake-notifier.js';
import type { Metrics } from '../observability/metrics.js';

export function leaseRescuer(deps: {
  pool: Pool;
  notifier: WakeNotifier;
  metrics: Metrics;
  logger: Logger;
}): () => Promise<void> {
  return async () => {
    for (;;) {
      const { retried, dead } = await rescueExpiredLeases(deps.pool, 1000);
      if (retried + dead === 0) return;
      deps.metrics.leasesRescued.inc(retried + dead);
      deps.logger.warn({ retried, dead }, 'rescued deliveries with expired leases');
      if (retried > 0) deps.notifier.notify(wakeChannels.deliveries);
      if (retried + dead < 1000) return;
    }
  };
}
