// Jobs: take back deliveries whose worker is gone. The lease rescuer takes those whose lease
// expired (their worker was killed or hung); the session rescuer, every second, those whose
// worker's database session ended (docs/decisions/0011-session-leases.md), seconds after a kill
// instead of a lease later. Load, decide, write: a batch of leases is locked, the outcome policy
// decides each (retrying, due now, or dead once its attempts are used up), and the transitions
// are written in one statement.
import type { Logger } from 'pino';
import { withTransaction, type Pool, type PoolClient } from '../db/pools.js';
import { outcomeKey, writeOutcomes, type OutcomeWrite } from '../db/stores/delivery-store.js';
import {
  lockExpiredLeases,
  lockLeasesOfOwners,
  type DeliveryAttempts,
} from '../db/stores/delivery-lease-store.js';
import { deleteEndedSessions, lockEndedSessions } from '../db/stores/worker-session-store.js';
import { wakeChannels, type WakeNotifier } from '../db/wake-notifier.js';
import { decideOutcome, type OutcomePolicy } from '../domain/outcome-policy.js';
import type { Metrics } from '../observability/metrics.js';

const batchSize = 1000;

/** How often the session rescuer looks for ended worker sessions (one small-table query). */
export const sessionRescueIntervalMs = 1000;

/**
 * How long after a session is found ended its deliveries are taken back: time for a worker that
 * lives on (its session dropped with a PostgreSQL restart) to record the outcomes it holds.
 */
export const sessionGraceSeconds = 2;

export interface LeaseRescuerDeps {
  pool: Pool;
  notifier: WakeNotifier;
  metrics: Metrics;
  logger: Logger;
  policy: OutcomePolicy;
  random: () => number;
}

type Rescue = (deps: LeaseRescuerDeps, limit: number) => Promise<{ retried: number; dead: number }>;

function rescuer(deps: LeaseRescuerDeps, rescue: Rescue, message: string): () => Promise<void> {
  return async () => {
    for (;;) {
      const { retried, dead } = await rescue(deps, batchSize);
      if (retried + dead === 0) return;
      deps.metrics.leasesRescued.inc(retried + dead);
      deps.logger.warn({ retried, dead }, message);
      if (retried > 0) deps.notifier.notify(wakeChannels.deliveries);
      if (retried + dead < batchSize) return;
    }
  };
}

export function leaseRescuer(deps: LeaseRescuerDeps): () => Promise<void> {
  return rescuer(deps, rescueExpiredLeases, 'rescued deliveries with expired leases');
}

export function sessionRescuer(deps: LeaseRescuerDeps): () => Promise<void> {
  return rescuer(
    deps,
    (d, limit) => rescueEndedSessions(d, limit, sessionGraceSeconds),
    'rescued deliveries of ended worker sessions',
  );
}

/** One batch of up to `limit` expired leases, in one transaction; counts what they became. */
export async function rescueExpiredLeases(
  deps: Pick<LeaseRescuerDeps, 'pool' | 'policy' | 'random'>,
  limit: number,
): Promise<{ retried: number; dead: number }> {
  return withTransaction(deps.pool, async (client) =>
    takeBack(deps, client, await lockExpiredLeases(client, limit)),
  );
}

/**
 * One batch of up to `limit` deliveries leased by owners whose session ended at least
 * `graceSeconds` ago, in one transaction; the ended sessions left without deliveries in
 * `sending` are deleted.
 */
export async function rescueEndedSessions(
  deps: Pick<LeaseRescuerDeps, 'pool' | 'policy' | 'random'>,
  limit: number,
  graceSeconds: number,
): Promise<{ retried: number; dead: number; ended: number }> {
  return withTransaction(deps.pool, async (client) => {
    const owners = await lockEndedSessions(client, graceSeconds);
    if (owners.length === 0) return { retried: 0, dead: 0, ended: 0 };
    const made = await takeBack(deps, client, await lockLeasesOfOwners(client, owners, limit));
    return { ...made, ended: await deleteEndedSessions(client, owners) };
  });
}

/** Decides each locked lease as expired and writes the transitions. */
async function takeBack(
  deps: Pick<LeaseRescuerDeps, 'policy' | 'random'>,
  client: PoolClient,
  leases: DeliveryAttempts[],
): Promise<{ retried: number; dead: number }> {
  const writes = leases.flatMap((lease): OutcomeWrite[] => {
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
}
