// The fault suite's harness: Herald as real processes on a dedicated embedded PostgreSQL
// (so the suite may stop and restart it), a client that retries with the same idempotency
// keys, a seeded fault schedule, and a checker comparing what was accepted with what the
// receiver's ledger holds. Loopback only; it kills only processes it started, by pid.
import { freePort } from '../helpers/free-port.js';
import { join } from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { createPool, type Pool } from '../../src/db/pools.js';
import { migrate } from '../../src/db/migrate.js';
import { ensurePartitions } from '../../src/db/partitions.js';
import { createApiKey, ensureService } from '../../src/db/stores/api-key-store.js';
import { packageRoot } from '../../src/db/package-root.js';
import { createLogger } from '../../src/observability/logger.js';
import { spawnHerald, type HeraldProcess } from '../helpers/spawn-herald.js';
import { FaultReceiver } from './fault-receiver.js';
import { permissions } from '../../src/domain/permissions.js';
import { loopbackNetworks } from '../helpers/loopback-allowed.js';

export const faultsDataDir = join(packageRoot, '.faults-data');
const pgPort = 54349;
const logger = createLogger('warn');

/** mulberry32: a small seeded PRNG, so a fault schedule can be replayed with its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export { freePort };

export interface Figures {
  scenario: string;
  seed: number;
  requests: number;
  accepted: number;
  delivered: number;
  lost: number;
  duplicated: number;
  phantom: number;
  dead: number;
  ambiguous: number;
  faults: string;
  recovery: string;
  seconds: number;
}

export interface SendOptions {
  requests: number;
  recipientsPerRequest: number;
  concurrency: number;
  lane?: 'transactional' | 'bulk';
  /** Called after each accepted request (fault schedules hook in here). */
  onAccepted?: (accepted: number) => void;
  /** Workflow steps each request carries (docs/workflows.md). */
  steps?: unknown[];
}

export class FaultHarness {
  embedded: EmbeddedPostgres | undefined;
  url = '';
  pool: Pool | undefined;
  apiKey = '';
  apiPort = 0;
  readonly processes: HeraldProcess[] = [];
  readonly receiver: FaultReceiver;
  readonly random: () => number;
  /** Idempotency key → notification id, for every request the client saw answered 202. */
  readonly acked = new Map<string, string>();
  /** Requests that saw an error or no answer before their 202 (they were retried). */
  ambiguous = 0;
  /** Non-202 statuses seen by the client, by status ('network' for no answer). */
  readonly statuses = new Map<string, number>();
  readonly env: Record<string, string> = {};

  constructor(
    readonly scenario: string,
    readonly seed: number,
    receiverDelayMs = 0,
  ) {
    this.random = seededRandom(seed);
    this.receiver = new FaultReceiver(receiverDelayMs);
  }

  get db(): Pool {
    if (this.pool === undefined) throw new Error('harness not set up');
    return this.pool;
  }

  async setup(env: Record<string, string> = {}): Promise<void> {
    this.embedded = await startEmbeddedPostgres({ dataDir: faultsDataDir, port: pgPort, logger });
    const admin = new pg.Client({ connectionString: this.embedded.url.replace(/\/herald$/, '/postgres') });
    await admin.connect();
    await admin.query('DROP DATABASE IF EXISTS herald_faults WITH (FORCE)');
    await admin.query('CREATE DATABASE herald_faults');
    await admin.end();
    this.url = this.embedded.url.replace(/\/herald$/, '/herald_faults');
    this.pool = createPool(this.url, 4, logger, 'faults');
    await migrate(this.pool);
    await ensurePartitions(this.pool, new Date(), 2);
    this.apiKey = await createApiKey(this.pool, await ensureService(this.pool, 'faults'), permissions);
    await this.receiver.start();
    await this.pool.query("UPDATE services SET webhook_url = $1 WHERE name = 'faults'", [this.receiver.url]);
    this.apiPort = await freePort();
    Object.assign(this.env, {
      DATABASE_URL: this.url,
      API_PORT: String(this.apiPort),
      QUERY_PORT: '0',
      CONSOLE_PORT: '0',
      LEASE_SECONDS: '3',
      WEBHOOK_TIMEOUT_MS: '1000',
      POLL_INTERVAL_MS: '250',
      MAINTENANCE_INTERVAL_MS: '250',
      RETRY_BASE_MS: '100',
      RETRY_MAX_MS: '1000',
      SHUTDOWN_TIMEOUT_MS: '3000',
      WORKER_CONCURRENCY: '100',
      // The receiver listens on loopback, which the outbound policy refuses unless allowed.
      OUTBOUND_ALLOWED_NETWORKS: loopbackNetworks,
      ...env,
    });
  }

  /** Starts a Herald process with `roles` and waits until it runs. */
  async spawn(roles: string[], env: Record<string, string> = {}): Promise<HeraldProcess> {
    const process = spawnHerald(roles, { ...this.env, ...env });
    this.processes.push(process);
    const deadline = Date.now() + 60_000;
    while (!process.output().includes('Herald is running')) {
      if (process.child.exitCode !== null)
        throw new Error(`herald ${roles.join(' ')} exited: ${process.output()}`);
      if (Date.now() > deadline)
        throw new Error(`herald ${roles.join(' ')} did not start: ${process.output()}`);
      await sleep(50);
    }
    return process;
  }

  async kill(process: HeraldProcess): Promise<void> {
    process.kill('SIGKILL');
    await process.exited;
  }

  /** Sends notifications with idempotency keys, retrying each until it gets a 202. */
  async send(options: SendOptions, deadlineMs = 300_000): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    let next = 0;
    await Promise.all(
      Array.from({ length: options.concurrency }, async () => {
        while (next < options.requests) {
          const n = next++;
          const key = `${this.scenario}-${String(this.seed)}-${String(n)}`;
          const body = JSON.stringify({
            recipients: Array.from(
              { length: options.recipientsPerRequest },
              (_, i) => `u${String(n)}-${String(i)}`,
            ),
            channels: ['webhook'],
            lane: options.lane ?? 'transactional',
            content: { default: { title: `Fault test ${String(n)}` } },
            ...(options.steps === undefined ? {} : { steps: options.steps }),
          });
          let failedBefore = false;
          for (;;) {
            if (Date.now() > deadline) throw new Error(`request ${key} not accepted before the deadline`);
            let status: string;
            try {
              const res = await fetch(`http://127.0.0.1:${String(this.apiPort)}/v1/notifications`, {
                method: 'POST',
                headers: {
                  'content-type': 'application/json',
                  authorization: `Bearer ${this.apiKey}`,
                  'idempotency-key': key,
                },
                body,
                signal: AbortSignal.timeout(10_000),
              });
              const answer = (await res.json()) as { id?: string; code?: string };
              if (res.status === 202 && answer.id !== undefined) {
                this.acked.set(key, answer.id);
                if (failedBefore) this.ambiguous += 1;
                options.onAccepted?.(this.acked.size);
                break;
              }
              if (res.status < 500 && res.status !== 429)
                throw new Error(`request ${key} rejected: ${String(res.status)} ${answer.code ?? ''}`);
              status = String(res.status);
            } catch (error) {
              if (error instanceof Error && error.message.startsWith(`request ${key}`)) throw error;
              status = 'network';
            }
            failedBefore = true;
            this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1);
            await sleep(100);
          }
        }
      }),
    );
  }

  /** Waits until no recipient or delivery has work left. */
  async quiesce(timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.db.query<{ open: number }>(
        `SELECT (SELECT count(*) FROM recipients WHERE state = 'pending')
              + (SELECT count(*) FROM deliveries WHERE state IN ('pending', 'retrying', 'sending'))::int AS open`,
      );
      if (r.rows[0]?.open === 0) return;
      if (Date.now() > deadline) {
        const states = await this.db.query<{ what: string; n: number }>(
          `SELECT 'recipients:' || state AS what, count(*)::int AS n FROM recipients GROUP BY state
           UNION ALL SELECT 'deliveries:' || state, count(*)::int FROM deliveries GROUP BY state`,
        );
        const tails = this.processes.map((p) => p.output().slice(-600)).join('\n---\n');
        throw new Error(
          `not quiescent: ${states.rows.map((x) => `${x.what}=${String(x.n)}`).join(' ')}\n${tails}`,
        );
      }
      await sleep(200);
    }
  }

  /**
   * The checker. For every accepted request: every recipient must have a delivery in a final
   * state; a 'sent' one must be in the receiver's ledger (else lost). Duplicates are ledger
   * entries beyond the first per delivery; phantoms are notifications the client never had
   * accepted, or ledger entries for deliveries Herald does not know.
   */
  async check(
    requestsSent: number,
    recipientsPerRequest: number,
    faults: string,
    recovery: string,
    started: number,
  ): Promise<Figures> {
    const ledger = this.receiver.counts();
    const deliveries = await this.db.query<{ id: string; notification_id: string; state: string }>(
      "SELECT id, notification_id, state FROM deliveries WHERE channel = 'webhook'",
    );
    const byNotification = new Map<string, { id: string; state: string }[]>();
    for (const d of deliveries.rows) {
      const list = byNotification.get(d.notification_id) ?? [];
      list.push(d);
      byNotification.set(d.notification_id, list);
    }
    const ackedIds = new Set(this.acked.values());
    let lost = 0;
    let dead = 0;
    for (const id of ackedIds) {
      const list = byNotification.get(id) ?? [];
      lost += Math.max(0, recipientsPerRequest - list.length);
      for (const d of list) {
        if (d.state === 'dead') dead += 1;
        else if (d.state !== 'sent' || !ledger.has(d.id)) lost += 1;
      }
    }
    const known = new Set(deliveries.rows.map((d) => d.id));
    const phantomLedger = [...ledger.keys()].filter((id) => !known.has(id)).length;
    const notifications = await this.db.query<{ id: string }>('SELECT id FROM notifications');
    const phantomRows = notifications.rows.filter((n) => !ackedIds.has(n.id)).length;
    let duplicated = 0;
    for (const n of ledger.values()) duplicated += n - 1;
    return {
      scenario: this.scenario,
      seed: this.seed,
      requests: requestsSent,
      accepted: ackedIds.size * recipientsPerRequest,
      delivered: ledger.size,
      lost,
      duplicated,
      phantom: phantomLedger + phantomRows,
      dead,
      ambiguous: this.ambiguous,
      faults,
      recovery,
      seconds: Math.round((Date.now() - started) / 100) / 10,
    };
  }

  async teardown(): Promise<void> {
    for (const p of this.processes) p.kill('SIGKILL');
    await Promise.all(this.processes.map((p) => p.exited));
    await this.receiver.stop();
    await this.pool?.end().catch(() => undefined);
    await this.embedded?.stop();
  }
}
