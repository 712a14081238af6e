// Claims work for free worker slots, transactional lane first. The bulk lane may never hold
// more than (1 − reserved share) of the slots, so a transactional delivery always finds one
// free, however large the bulk backlog (a campaign never delays a one-time code).
import type { Pool } from '../db/pools.js';
import { claimDeliveries, type ClaimedDelivery } from '../db/stores/delivery-store.js';

export interface LaneLimits {
  concurrency: number;
  reservedShare: number;
  batchSize: number;
}

/** Most bulk deliveries one worker may hold at once. */
export function bulkCapacity(limits: LaneLimits): number {
  return Math.max(1, Math.floor(limits.concurrency * (1 - limits.reservedShare)));
}

export class DeliveryClaimer {
  constructor(
    private readonly pool: Pool,
    private readonly owner: string,
    private readonly limits: LaneLimits,
    private readonly leaseSeconds: number,
  ) {}

  /**
   * Claims for `free` open slots, both lanes in one statement, while `bulkInFlight` bulk
   * deliveries are already held of the `bulkSlots` bulk may hold (0: transactional only; at most
   * the lane's cap). `backlog` says whether more work may be waiting (a lane filled all the room
   * it had, or bulk was held back by its cap), so the caller knows to claim again as soon as
   * room frees up.
   */
  async claim(
    free: number,
    bulkInFlight: number,
    bulkSlots = bulkCapacity(this.limits),
  ): Promise<{ deliveries: ClaimedDelivery[]; backlog: boolean }> {
    const room = Math.min(free, this.limits.batchSize);
    if (room <= 0) return { deliveries: [], backlog: true };
    const bulkLimit = Math.max(0, Math.min(bulkSlots, bulkCapacity(this.limits)) - bulkInFlight);
    const deliveries = await claimDeliveries(
      this.pool,
      { limit: room, bulkLimit },
      this.owner,
      this.leaseSeconds,
    );
    const bulk = deliveries.filter((d) => d.lane === 'bulk').length;
    const transactional = deliveries.length - bulk;
    const bulkRoom = Math.min(room - transactional, bulkLimit);
    const backlog = transactional === room || bulkRoom <= 0 || bulk === bulkRoom;
    return { deliveries, backlog };
  }
}
