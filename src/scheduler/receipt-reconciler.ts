// Job: apply provider receipts that arrived before their delivery's send was recorded, and
// forget those that never found a delivery within a day.
import type { Logger } from 'pino';
import type { Pool } from '../db/pools.js';
import { applyEarlyReceipts } from '../db/stores/receipt-store.js';

/** How often: a receipt that raced its send waits at most this long to be applied. */
export const receiptReconcileIntervalMs = 5_000;

export function receiptReconciler(deps: { pool: Pool; logger: Logger }): () => Promise<void> {
  return async () => {
    const { applied, expired } = await applyEarlyReceipts(deps.pool, 1000);
    if (applied > 0) deps.logger.info({ applied }, 'applied early provider receipts');
    if (expired > 0)
      deps.logger.warn({ expired }, 'dropped provider receipts that matched no delivery for a day');
  };
}
