// Sends LISTEN/NOTIFY wake-up hints after commits, coalesced: many commits within a few
// milliseconds cause one NOTIFY per channel (PostgreSQL serialises commits that NOTIFY, so one
// per batch). The hint is sent after commit, outside the data transaction;
// if it is lost, the listeners' polling finds the work anyway.
import type { Logger } from 'pino';
import type { Pool } from './pools.js';

export const wakeChannels = {
  fanOut: 'herald_fan_out',
  deliveries: 'herald_deliveries',
  /** Preferences or category settings changed; the payload names the cache entry (settings-change.ts). */
  settings: 'herald_settings',
  /** Users' inbox streams moved; the payload is a JSON array of user ids, or '*' for "any". */
  inbox: 'herald_inbox',
  /** A key was revoked (`key:<id>`) or a user's tokens were (`user:<id>`): drop cached credentials. */
  auth: 'herald_auth',
  /** Status callback messages were queued (the triggers of migration 0018 send it) or replayed. */
  callbacks: 'herald_callbacks',
} as const;

/** NOTIFY payloads must stay under 8000 bytes; a longer list of users is sent as '*'. */
const maxInboxPayloadBytes = 7900;
export type WakeChannel = (typeof wakeChannels)[keyof typeof wakeChannels];

export class WakeNotifier {
  private readonly pending = new Set<WakeChannel>();
  private readonly inboxUsers = new Set<string>();
  private inboxAll = false;
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

  /** Tells the query role's realtime streams that these users' inboxes changed. */
  notifyInbox(userIds: Iterable<string>): void {
    let any = false;
    for (const id of userIds) {
      any = true;
      if (!this.inboxAll) this.inboxUsers.add(id);
      if (this.inboxUsers.size > 500) {
        this.inboxAll = true;
        this.inboxUsers.clear();
      }
    }
    if (any) this.notify(wakeChannels.inbox);
  }

  private inboxPayload(): string {
    const users = [...this.inboxUsers];
    const all = this.inboxAll;
    this.inboxUsers.clear();
    this.inboxAll = false;
    if (all) return '*';
    const payload = JSON.stringify(users);
    return Buffer.byteLength(payload) > maxInboxPayloadBytes ? '*' : payload;
  }

  private async flush(): Promise<void> {
    const channels = [...this.pending];
    this.pending.clear();
    const payloads = channels.map((c) => (c === wakeChannels.inbox ? this.inboxPayload() : ''));
    try {
      await this.pool.query('SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS t(c, p)', [
        channels,
        payloads,
      ]);
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
