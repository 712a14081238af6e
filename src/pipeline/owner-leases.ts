// The lease owners a worker's session has registered (a new one after each lost session), each
// with what claims and records under it. Outcomes are recorded under the owner that claimed, so
// an older owner's lease stays while sends it claimed are running, and goes with its last one:
// a worker whose session is lost again and again holds one lease per owner still in use, not
// one per owner it ever had.

interface Held<L> {
  lease: L;
  sends: number;
}

export class OwnerLeases<L extends { owner: string }> {
  /** Oldest first; the last is the current owner's. */
  private held: Held<L>[] = [];

  constructor(private readonly make: (owner: string) => L) {}

  /** The lease of `owner`, the session's current one: made when it is new. */
  current(owner: string): L {
    const latest = this.held.at(-1);
    if (latest?.lease.owner === owner) return latest.lease;
    this.held = this.held.filter((h) => h.sends > 0);
    const lease = this.make(owner);
    this.held.push({ lease, sends: 0 });
    return lease;
  }

  /** A send claimed under `lease` starts; `end` when its outcome is recorded. */
  begin(lease: L): void {
    const held = this.find(lease);
    if (held !== undefined) held.sends += 1;
  }

  end(lease: L): void {
    const held = this.find(lease);
    if (held === undefined) return;
    held.sends -= 1;
    if (held.sends === 0 && held !== this.held.at(-1)) this.held = this.held.filter((h) => h !== held);
  }

  /** Every lease still held, oldest first. */
  all(): readonly L[] {
    return this.held.map((h) => h.lease);
  }

  private find(lease: L): Held<L> | undefined {
    return this.held.find((h) => h.lease === lease);
  }
}
