// Runs one maintenance job on an interval. Runs never overlap; a failing run is logged and
// the job tries again at its next tick. stop() waits for a run in progress.
import type { Logger } from 'pino';

export class PeriodicJob {
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<void> | undefined;
  private stopped = false;

  constructor(
    readonly name: string,
    private readonly intervalMs: number,
    private readonly job: () => Promise<void>,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.stopped = false;
    this.tick();
  }

  /** Runs the job now (used by start and by tests); resolves when this run ends. */
  runOnce(): Promise<void> {
    this.current ??= this.job()
      .catch((error: unknown) => {
        this.logger.warn({ err: error, job: this.name }, 'maintenance job failed; will retry');
      })
      .finally(() => {
        this.current = undefined;
      });
    return this.current;
  }

  private tick(): void {
    void this.runOnce().then(() => {
      if (!this.stopped) this.timer = setTimeout(() => this.tick(), this.intervalMs);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.current;
  }
}
