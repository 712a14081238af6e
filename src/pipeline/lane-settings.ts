// Keeps a worker's lane limits (the dispatcher's LaneLimits object) in step with the lane
// settings row (`herald settings`, docs/budgets.md): loaded at start, and again on each
// herald_settings 'lanes' hint (sent when a change commits) and after a reconnect of the
// listener (''), so a change applies to running workers within a claim or two, without a
// restart. A setting the row leaves null is the configured value.
import type { Logger } from 'pino';
import type { Pool } from '../db/pools.js';
import { loadLaneSettings } from '../db/stores/lane-settings-store.js';
import { settingsChange } from '../db/settings-change.js';
import { wakeChannels } from '../db/wake-notifier.js';
import type { WakeListener } from '../db/wake-listener.js';
import type { LaneLimits } from './delivery-claimer.js';

export class LaneSettings {
  private loading: Promise<void> = Promise.resolve();

  /**
   * `limits` is the object the dispatcher reads on every claim; its reservedShare and
   * batchSize are set here, `configured` keeps the configuration's values.
   */
  constructor(
    private readonly deps: { pool: Pool; listener: WakeListener; logger: Logger },
    private readonly limits: LaneLimits,
    private readonly configured: Readonly<Pick<LaneLimits, 'reservedShare' | 'batchSize'>>,
  ) {
    deps.listener.subscribe(wakeChannels.settings, (payload) => {
      if (payload === settingsChange.lanes || payload === '') void this.reload();
    });
  }

  /** Loads the row once (a failure leaves the configured values and is logged). */
  async start(): Promise<void> {
    await this.reload();
  }

  /** Waits for a load in progress (for a clean stop). */
  async stop(): Promise<void> {
    await this.loading;
  }

  private reload(): Promise<void> {
    // Loads run one after another, so the last hint's load is the last one applied.
    this.loading = this.loading.then(async () => {
      try {
        const row = await loadLaneSettings(this.deps.pool);
        this.limits.reservedShare = row.reservedShare ?? this.configured.reservedShare;
        this.limits.batchSize = row.batchSize ?? this.configured.batchSize;
      } catch (error) {
        this.deps.logger.warn({ err: error }, 'lane settings reload failed; keeping the current values');
      }
    });
    return this.loading;
  }
}
