// The calling services' tracking opt-outs (per category and template), as the renderer needs
// them: loaded per claimed batch for the services it has not read in the last few seconds.
import type { Pool } from '../db/pools.js';
import { loadTrackingOptOuts } from '../db/stores/engagement-store.js';

/** How long a service's opt-outs are used before they are read again. */
const freshMs = 5_000;

export class TrackingOptOuts {
  private readonly byService = new Map<number, { readAt: number; keys: Set<string> }>();

  constructor(
    private readonly pool: Pool,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Reads the opt-outs of the services not read within freshMs. */
  async refresh(serviceIds: readonly number[]): Promise<void> {
    const now = this.clock();
    const stale = [...new Set(serviceIds)].filter((id) => {
      const entry = this.byService.get(id);
      return entry === undefined || now - entry.readAt >= freshMs;
    });
    if (stale.length === 0) return;
    const keys = await loadTrackingOptOuts(this.pool, stale);
    for (const id of stale) {
      const own = new Set([...keys].filter((k) => k.startsWith(`${String(id)}/`)));
      this.byService.set(id, { readAt: now, keys: own });
    }
  }

  /** Whether an email of this category and template is tracked; false when the opt-outs are unknown. */
  tracks(serviceId: number, category: string, template: string | undefined): boolean {
    const entry = this.byService.get(serviceId);
    if (entry === undefined) return false;
    if (entry.keys.has(`${String(serviceId)}/category/${category}`)) return false;
    return template === undefined || !entry.keys.has(`${String(serviceId)}/template/${template}`);
  }
}
