// The worker's database session (docs/decisions/0011-session-leases.md): a dedicated connection,
// kept open for the process's lifetime, that registers the lease owner the dispatcher claims
// under. When the process dies PostgreSQL ends the session, and the scheduler takes the owner's
// deliveries back within seconds. If the connection breaks while the process lives, the owner
// is given up for good: its deliveries may be taken back from then on (their late outcomes are
// refused by the lease fence), so claiming waits until a NEW owner is registered on a new
// connection. The connection must reach PostgreSQL directly: a transaction-mode pooler would not
// keep the session, nor its lock.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import pg from 'pg';
import type { Logger } from 'pino';
import { backoffMs } from '../domain/retry-policy.js';
import { registerWorkerSession } from './stores/worker-session-store.js';

export class WorkerSession {
  private client: pg.Client | undefined;
  private current: string | undefined;
  private stopped = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private attempt = 0;

  constructor(
    private readonly connectionString: string,
    private readonly logger: Logger,
    /** Called once a new owner is registered (to wake the claim loop). */
    private readonly onRegistered: (owner: string) => void = () => undefined,
  ) {}

  /** The lease owner to claim under now; undefined while no session holds one. */
  get owner(): string | undefined {
    return this.current;
  }

  async start(): Promise<void> {
    await this.connect().catch((error: unknown) => {
      this.logger.warn({ err: error }, 'worker session could not register; not claiming until it does');
      this.scheduleReconnect();
    });
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.connectionString,
      application_name: 'herald-worker-session',
      keepAlive: true,
    });
    client.on('error', (error) => {
      this.logger.warn({ err: error, owner: this.current }, 'worker session lost; claiming paused');
      this.drop(client);
    });
    client.on('end', () => this.drop(client));
    const owner = randomUUID();
    try {
      await client.connect();
      await registerWorkerSession(client, { owner, host: hostname(), pid: process.pid });
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.current = owner;
    this.attempt = 0;
    this.onRegistered(owner);
  }

  /** The owner ends with its connection: a later session registers a new one. */
  private drop(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = undefined;
    this.current = undefined;
    void client.end().catch(() => undefined);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.reconnectTimer !== undefined) return;
    // At most a second apart: claiming waits for the session (after a PostgreSQL restart, too).
    const delay = backoffMs(this.attempt, { baseMs: 100, maxMs: 1000 });
    this.attempt += 1;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connect().catch((error: unknown) => {
        this.logger.debug({ err: error }, 'worker session reconnect failed');
        this.scheduleReconnect();
      });
    }, delay);
  }

  /**
   * Ends the session. Run after the dispatcher stopped: deliveries it left in `sending` are then
   * taken back by the scheduler at once, and the row is deleted with them.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    const client = this.client;
    this.client = undefined;
    this.current = undefined;
    await client?.end().catch(() => undefined);
  }
}
