// Listens for wake-up hints (LISTEN/NOTIFY) on a dedicated connection and reconnects with
// backoff. A hint is only a hint: waiters also wake on a timer, and every
// reconnect wakes everyone, since NOTIFYs sent while disconnected are lost.
import pg from 'pg';
import type { Logger } from 'pino';
import type { WakeChannel } from './wake-notifier.js';
import { backoffMs } from '../domain/retry-policy.js';

export class WakeListener {
  private client: pg.Client | undefined;
  private readonly waiters = new Map<WakeChannel, Set<() => void>>();
  /** Channels hinted while nobody waited: the next wait returns at once. */
  private readonly hinted = new Set<WakeChannel>();
  /** Callbacks that want each hint's payload; '' after a (re)connect: anything may have changed. */
  private readonly subscribers = new Map<WakeChannel, Set<(payload: string) => void>>();
  private stopped = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private attempt = 0;

  constructor(
    private readonly connectionString: string,
    private readonly channels: readonly WakeChannel[],
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    await this.connect().catch((error: unknown) => {
      this.logger.warn({ err: error }, 'wake-up listener could not connect; polling until it does');
      this.scheduleReconnect();
    });
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.connectionString,
      application_name: 'herald-listen',
    });
    client.on('notification', (message) => {
      this.publish(message.channel as WakeChannel, message.payload ?? '');
      this.wake(message.channel as WakeChannel);
    });
    client.on('error', (error) => {
      this.logger.warn({ err: error }, 'wake-up listener connection lost');
      this.dropClient(client);
    });
    client.on('end', () => this.dropClient(client));
    await client.connect();
    for (const channel of this.channels) await client.query(`LISTEN ${channel}`);
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.attempt = 0;
    // Anything committed while we were not listening went unannounced.
    for (const channel of this.channels) {
      this.publish(channel, '');
      this.wake(channel);
    }
  }

  /** Whether hints are being received now (false while reconnecting). */
  get listening(): boolean {
    return this.client !== undefined;
  }

  /** Calls `fn` with the payload of every hint on `channel` (and '' after each reconnect). */
  subscribe(channel: WakeChannel, fn: (payload: string) => void): void {
    const set = this.subscribers.get(channel) ?? new Set();
    set.add(fn);
    this.subscribers.set(channel, set);
  }

  private publish(channel: WakeChannel, payload: string): void {
    for (const fn of this.subscribers.get(channel) ?? []) fn(payload);
  }

  private dropClient(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = undefined;
    void client.end().catch(() => undefined);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.reconnectTimer !== undefined) return;
    const delay = backoffMs(this.attempt, { baseMs: 200, maxMs: 10_000 });
    this.attempt += 1;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connect().catch((error: unknown) => {
        this.logger.debug({ err: error }, 'wake-up listener reconnect failed');
        this.scheduleReconnect();
      });
    }, delay);
  }

  wake(channel: WakeChannel): void {
    const set = this.waiters.get(channel);
    if (set === undefined || set.size === 0) {
      this.hinted.add(channel);
      return;
    }
    this.waiters.delete(channel);
    for (const resolve of set) resolve();
  }

  /** Resolves on a hint for `channel`, or after `timeoutMs` (the polling fallback). */
  wait(channel: WakeChannel, timeoutMs: number): Promise<void> {
    if (this.hinted.delete(channel) || this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const set = this.waiters.get(channel) ?? new Set();
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      set.add(done);
      this.waiters.set(channel, set);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    for (const channel of this.channels) this.wake(channel);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }
}
