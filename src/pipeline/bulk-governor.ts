// Bulk work yields the worker's event loop to transactional work. The reserved share keeps
// slots free for transactional deliveries, but a slot is not enough when the process has no
// time to run them: a bulk drain keeps the event loop busy enough that every callback, a
// one-time code's included, waits behind a queue of bulk sends and outcomes. So while
// transactional deliveries are flowing (one was dispatched within the last two seconds), the
// bulk lane's slots follow the loop's delay: halved after an interval whose delay p99 passed
// the target, grown back by a tenth of the cap after each interval under it (additive
// increase, multiplicative decrease). Without transactional work, bulk grows back to its whole
// cap. Transactional work never waits for the governor.
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

export interface BulkGovernorOptions {
  /** The bulk lane's cap from the reserved share (read each time: it changes at runtime). */
  cap: () => number;
  /** Event-loop delay p99 above which bulk slots shrink; 0 turns the governor off. */
  targetMs: number;
  /** How often the delay is read and the slots adjusted. */
  intervalMs?: number;
  /** Called after each adjustment with the slots bulk may now hold. */
  onChange?: (slots: number) => void;
  now?: () => number;
}

/** How long after the last transactional dispatch bulk still yields. */
const transactionalWindowMs = 2000;

export class BulkGovernor {
  private readonly histogram: IntervalHistogram;
  private timer: NodeJS.Timeout | undefined;
  private current: number;
  private lastTransactionalAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: BulkGovernorOptions) {
    this.histogram = monitorEventLoopDelay({ resolution: 5 });
    this.current = options.cap();
  }

  start(): void {
    if (this.options.targetMs <= 0 || this.timer !== undefined) return;
    this.histogram.enable();
    this.timer = setInterval(() => {
      this.adjust(this.histogram.percentile(99) / 1e6);
      this.histogram.reset();
    }, this.options.intervalMs ?? 250);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.histogram.disable();
  }

  /** A transactional delivery was dispatched: bulk yields for the next two seconds. */
  noteTransactional(): void {
    const now = this.now();
    // Transactional work after a pause finds bulk at full speed: halve it now, not at the next reading.
    if (now - this.lastTransactionalAt >= transactionalWindowMs && this.options.targetMs > 0)
      this.current = Math.max(1, Math.floor(Math.min(this.current, this.options.cap()) / 2));
    this.lastTransactionalAt = now;
  }

  /** One step for an interval whose event-loop delay p99 was `delayMs`. */
  adjust(delayMs: number): void {
    const cap = this.options.cap();
    const yielding = this.now() - this.lastTransactionalAt < transactionalWindowMs;
    this.current =
      yielding && delayMs > this.options.targetMs
        ? Math.max(1, Math.floor(this.current / 2))
        : Math.min(cap, this.current + Math.max(1, Math.ceil(cap / 10)));
    this.options.onChange?.(this.slots());
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  /** The bulk slots the worker may hold now: at most the cap, at least one. */
  slots(): number {
    if (this.options.targetMs <= 0) return this.options.cap();
    return Math.max(1, Math.min(this.current, this.options.cap()));
  }
}
