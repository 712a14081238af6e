// Sends LISTEN/NOTIFY wake-up hints after commits, coalesced: many commits within a few
// milliseconds cause one NOTIFY per channel (DESIGN 12: PostgreSQL serialises commits that
// NOTIFY, so one per batch). The hint is sent after commit, outside the data transaction;
// if it is lost, the listeners' polling finds the work anyway.
import type { Logger } from 'pino';
import type { Pool } from './pools.js';

export const wakeChannels = {
  fanOut: 'herald_fan_out',
  deliveries: 'herald_deliveries',
  /** Preferences or category settings changed; the payload names the cache entry (preference-store.ts). */
  settings: 'herald_settings',
} as const;
export type WakeChannel = (typeof wakeChannels)[keyof typeof wakeChannels];

export class WakeNotifier {
  private readonly pending = new Set<WakeChannel>();
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> = Promise.resolve();

  constructor(
    private readonly pool: Pool,
    private readonly logger: Logger,
    private readonly coalesceMs = 5,
  ) {}

  notify(channel: WakeChannel): void {
    this.pending.add(channel);
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.inFlight = this.flush();
    }, this.coalesceMs);
  }

  private async flush(): Promise<void> {
    const channels = [...this.pending];
    this.pending.clear();
    try {
      await this.pool.query("SELECT pg_notify(c, '') FROM unnest($1::text[]) AS c", [channels]);
    } catch (error) {
      this.logger.debug({ err: error }, 'wake-up NOTIFY failed; listeners will poll');
    }
  }

  async close(): Promise<void> {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
      if (this.pending.size > 0) this.inFlight = this.flush();
    }
    await this.inFlight;
  }
}
