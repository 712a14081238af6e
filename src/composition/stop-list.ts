// What a started part must undo, in the reverse order it was set up: a role registers its server's
// close after the things the server uses, so the server closes first.

export class StopList {
  private readonly stops: (() => Promise<void>)[] = [];

  constructor(private readonly onError: (error: unknown) => void) {}

  add(stop: () => Promise<void>): void {
    this.stops.push(stop);
  }

  /** Runs every stop, newest first; one that fails is reported and the rest still run. */
  async stopAll(): Promise<void> {
    for (const stop of this.stops.splice(0).reverse()) {
      await stop().catch(this.onError);
    }
  }
}
