// Job: take back deliveries whose lease expired (their worker was killed or hung). Load, decide,
// write: a batch of expired leases is locked, the outcome policy decides each (retrying, due now,
// or dead once its attempts are used up), and the transitions are written in one statement.
import type { Logger } from 'pino';
import { withTransaction, type Pool } from '../db/pools.js';
import {
  lockExpiredLeases,
  outcomeKey,
  writeOutcomes,
  type OutcomeWrite,
} from '../db/stores/delivery-store.js';
import { wakeChannels, type WakeNotifier } from '../db/wake-notifier.js';
import { decideOutcome, type OutcomePolicy } from '../domain/outcome-policy.js';
import type { Metrics } from '../observability/metrics.js';

const batchSize = 1000;

export interface LeaseRescuerDeps {
  pool: Pool;
  notifier: WakeNotifier;
  metrics: Metrics;
  logger: Logger;
  policy: OutcomePolicy;
  random: () => number;
}

export function leaseRescuer(deps: LeaseRescuerDeps): () => Promise<void> {
  return async () => {
    for (;;) {
      const { retried, dead } = await rescueExpiredLeases(deps, batchSize);
      if (retried + dead === 0) return;
      deps.metrics.leasesRescued.inc(retried + dead);
      deps.logger.warn({ retried, dead }, 'rescued deliveries with expired leases');
      if (retried > 0) deps.notifier.notify(wakeChannels.deliveries);
      if (retried + dead < batchSize) return;
    }
  };
}

/** One batch of up to `limit` expired leases, in one transaction; counts what they became. */
export async function rescueExpiredLeases(
  deps: Pick<LeaseRescuerDeps, 'pool' | 'policy' | 'random'>,
  limit: number,
): Promise<{ retried: number; dead: number }> {
  return withTransaction(deps.pool, async (client) => {
    const expired = await lockExpiredLeases(client, limit);
    const writes = expired.flatMap((lease): OutcomeWrite[] => {
      const decision = decideOutcome({
        attempt: lease.attempts,
        maxAttempts: lease.maxAttempts,
        lease: { kind: 'current' },
        result: { kind: 'lease_expired' },
        aborted: false,
        policy: deps.policy,
        random: deps.random,
      });
      if (decision.kind === 'ignore') return [];
      return [{ ...lease, provider: null, transition: decision.transition }];
    });
    const written = await writeOutcomes(client, null, writes);
    const made = writes.filter((w) => written.has(outcomeKey(w.id, w.transition.fromAttempts)));
    const dead = made.filter((w) => w.transition.to === 'dead').length;
    return { retried: made.length - dead, dead };
  });
}
