// What a worker learns from the others about its provider keys, so rate limits and open circuits
// hold for the whole deployment (docs/decisions/0009-shared-provider-limits.md).
//
// A worker that wants to call a rate-limited key writes a heartbeat row for it a few times a
// second (`refreshMs`); each worker then sends at the key's limit divided by the workers with a
// live heartbeat, from its own token bucket, so no send waits for the database. A worker that
// joins a key others already call waits `joinHoldMs` before its first send: until the others
// have counted it and their calls paced at the larger share have gone out. A worker that
// dies stops refreshing and drops out of the count after `expiryMs`; one that stops cleanly
// removes its rows at once. A circuit a worker opens is written with the next refresh (started
// at once) and read by every other worker with theirs, which hold their own breaker open until
// then. If the database cannot be reached, the worker keeps the last counts and circuits it
// learned.
import type { Logger } from 'pino';
import type { Pool } from '../db/pools.js';
import {
  leaveProviderLimits,
  pruneProviderLimits,
  refreshProviderLimits,
} from '../db/stores/provider-limits-store.js';
import { defaultMaxRateWaitMs } from './provider-guard.js';

export interface SharedLimitsOptions {
  pool: Pool;
  workerId: string;
  logger: Logger;
  now: () => number;
  /** How often heartbeats are written and the others' read (default 250 ms). */
  refreshMs?: number;
  /** A heartbeat older than this no longer counts (default 3000 ms). */
  expiryMs?: number;
  /**
   * How long a worker that finds others calling a key waits before its first send to it: one
   * refresh of theirs, then the longest a call they reserved at their old share waits (the
   * guard's maxRateWaitMs). Default refreshMs + the guard's default maxRateWaitMs (500).
   */
  joinHoldMs?: number;
  /** Called after each successful refresh with what this worker now knows. */
  onRefresh?: (view: SharedView) => void;
}

export interface SharedView {
  /** Workers sharing each rate-limited key this worker calls (itself included). */
  workers: Map<string, number>;
  /** Keys whose circuit is open deployment-wide, with the local time it stays open until. */
  openUntil: Map<string, number>;
  /** Keys this worker is counted on but may not send to yet: it joined others calling them. */
  holding: ReadonlySet<string>;
}

/** Extra refreshes (a new key, a circuit opened) start no sooner than this after the previous one. */
const minGapMs = 50;
/** Rows long past are pruned about this often. */
const pruneEveryMs = 60_000;

export class SharedLimits {
  readonly refreshMs: number;
  private readonly expiryMs: number;
  /** Rate-limited keys this worker asked about, with when it last did. */
  private readonly wanted = new Map<string, number>();
  /** Keys the last successful refresh counted, with their live workers (this one included). */
  private workers = new Map<string, number>();
  /** Keys whose heartbeat a previous refresh committed. */
  private beating = new Set<string>();
  /** Keys this worker joined while others called them, with when it may start sending. */
  private readonly joining = new Map<string, number>();
  private readonly joinHoldMs: number;
  private openUntil = new Map<string, number>();
  private opened: { key: string; openMs: number }[] = [];
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  private lastStartedAt = Number.NEGATIVE_INFINITY;
  private lastPrunedAt: number;
  private timer: NodeJS.Timeout | undefined;
  private soon: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: SharedLimitsOptions) {
    this.refreshMs = options.refreshMs ?? 250;
    this.expiryMs = options.expiryMs ?? 3000;
    this.joinHoldMs = options.joinHoldMs ?? this.refreshMs + defaultMaxRateWaitMs;
    this.lastPrunedAt = options.now();
  }

  /**
   * How many workers share a rate-limited key's limit (this one included), or undefined while
   * this worker may not send to it yet: before a refresh has counted it (a refresh starts at
   * once), and for `joinHoldMs` after it joined others calling it. Asking marks the key as wanted.
   */
  workersFor(key: string): number | undefined {
    const now = this.options.now();
    this.wanted.set(key, now);
    const workers = this.workers.get(key);
    if (workers === undefined) this.refreshSoon();
    const from = this.joining.get(key);
    if (from !== undefined) {
      if (now < from) return undefined;
      this.joining.delete(key);
    }
    return workers;
  }

  /** How long until workersFor counts the key: the rest of a join's hold, else one refresh. */
  untilKnownMs(key: string): number {
    const from = this.joining.get(key);
    return from === undefined ? this.refreshMs : Math.max(1, from - this.options.now());
  }

  /** Until when (local clock) another worker holds the key's circuit open, if it does. */
  circuitOpenUntil(key: string): number | undefined {
    return this.openUntil.get(key);
  }

  /** This worker opened a key's circuit for `openMs`: tell the others now. */
  circuitOpened(key: string, openMs: number): void {
    this.opened.push({ key, openMs });
    this.refreshSoon();
  }

  start(): void {
    this.timer = setInterval(() => void this.refresh(), this.refreshMs);
    this.timer.unref();
    void this.refresh();
  }

  /** Stops refreshing and removes this worker's heartbeats. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.soon);
    await this.running;
    await leaveProviderLimits(this.options.pool, this.options.workerId).catch((error: unknown) =>
      this.options.logger.debug({ err: error }, 'could not remove provider heartbeats; they expire'),
    );
  }

  /**
   * A refresh that starts after this call (what a caller means: counts read after what it
   * just did). One already in flight began earlier, so one more is queued behind it, shared by
   * every caller meanwhile.
   */
  refresh(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running === undefined) {
      this.running = this.runRefresh().finally(() => (this.running = undefined));
      return this.running;
    }
    this.queued ??= this.running.then(() => {
      this.queued = undefined;
      return this.refresh();
    });
    return this.queued;
  }

  private refreshSoon(): void {
    if (this.soon !== undefined || this.stopped) return;
    const wait = Math.max(0, this.lastStartedAt + minGapMs - this.options.now());
    this.soon = setTimeout(() => {
      this.soon = undefined;
      void this.refresh();
    }, wait);
    this.soon.unref();
  }

  private async runRefresh(): Promise<void> {
    const { pool, workerId, now, logger } = this.options;
    const startedAt = now();
    this.lastStartedAt = startedAt;
    // Keys not asked about for expiryMs are no longer wanted: their heartbeats lapse.
    for (const [key, at] of this.wanted) if (startedAt - at > this.expiryMs) this.wanted.delete(key);
    const keys = [...this.wanted.keys()];
    const opened = this.opened;
    this.opened = [];
    try {
      const snapshot = await refreshProviderLimits(pool, { workerId, keys, opened, expiryMs: this.expiryMs });
      const at = now();
      // A key's count is trusted only from its second heartbeat on: a worker starting to call a
      // key at the same time as another may not see the other's first heartbeat, but both
      // commit before either's second refresh reads, which comes right after (minGapMs).
      const counted = keys.filter((key) => this.beating.has(key));
      if (counted.length < keys.length) this.refreshSoon();
      this.beating = new Set(keys);
      const workers = new Map(counted.map((key) => [key, 1 + (snapshot.others.get(key) ?? 0)]));
      // Counted for the first time (or again, after it was no longer wanted) with others already
      // sending at a larger share: they learn of this worker with their next refresh.
      for (const [key, n] of workers)
        if (n > 1 && !this.workers.has(key) && this.joinHoldMs > 0)
          this.joining.set(key, at + this.joinHoldMs);
      for (const key of this.joining.keys()) if (!workers.has(key)) this.joining.delete(key);
      this.workers = workers;
      this.openUntil = new Map([...snapshot.openForMs].map(([key, ms]) => [key, at + ms]));
      const holding = new Set([...this.joining].filter(([, until]) => until > at).map(([key]) => key));
      this.options.onRefresh?.({ workers: this.workers, openUntil: this.openUntil, holding });
    } catch (error) {
      this.opened.unshift(...opened);
      logger.warn({ err: error }, 'could not refresh shared provider limits; keeping the last ones');
    }
    if (startedAt - this.lastPrunedAt >= pruneEveryMs) {
      this.lastPrunedAt = startedAt;
      await pruneProviderLimits(pool, pruneEveryMs).catch((error: unknown) =>
        logger.debug({ err: error }, 'could not prune provider heartbeats'),
      );
    }
  }
}
