// Shared parts of the benchmarks: a fresh database (the configured server or an embedded one),
// Herald roles as child processes, and a results table. Every process started here is
// stopped here, by its handle.
import autocannon from 'autocannon';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { cpus, totalmem } from 'node:os';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { createLogger } from '../src/observability/logger.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../src/db/embedded-postgres.js';
import { createPool, type Pool } from '../src/db/pools.js';
import { migrate } from '../src/db/migrate.js';
import { ensurePartitions } from '../src/db/partitions.js';
import { createApiKey, findCallerByKey, ensureService } from '../src/db/stores/api-key-store.js';
import { packageRoot } from '../src/db/package-root.js';
import { BenchReceiver } from './bench-receiver.js';
import type { MeteredProcess } from './cost.js';
import { permissions } from '../src/domain/permissions.js';
import { loopbackNetworks } from '../test/helpers/loopback-allowed.js';

export const benchLogger = createLogger('warn');

export interface BenchDatabase {
  url: string;
  pool: Pool;
  apiKey: string;
  /** The API key's id (user tokens the bench signs itself name it as their issuer). */
  keyId: number;
  serviceId: number;
  embedded: boolean;
  close(): Promise<void>;
}

let embedded: EmbeddedPostgres | undefined;

/**
 * A fresh database named `name` on DATABASE_URL's server, or on an embedded PostgreSQL; with
 * `reuse`, the one a run with --keep left (migrated to this commit's schema, with a new key).
 */
export async function benchDatabase(name: string, reuse = false): Promise<BenchDatabase> {
  let serverUrl = process.env['DATABASE_URL'];
  if (serverUrl === undefined) {
    embedded ??= await startEmbeddedPostgres({
      dataDir: join(packageRoot, '.bench-data'),
      port: 54339,
      logger: benchLogger,
    });
    serverUrl = embedded.url;
  }
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  if (!reuse) {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    // The archive store a query or scheduler process creates beside it (src/archive/archive-store.ts).
    await admin.query(`DROP DATABASE IF EXISTS ${name}_archive WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${name}`);
  }
  await admin.end();
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  const url = u.toString();
  const pool = createPool(url, 4, benchLogger, 'bench');
  await migrate(pool);
  await ensurePartitions(pool, new Date(), 2);
  const serviceId = await ensureService(pool, 'bench');
  const apiKey = await createApiKey(pool, serviceId, permissions);
  const caller = await findCallerByKey(pool, apiKey);
  if (caller === undefined) throw new Error('the bench key was not stored');
  return {
    url,
    pool,
    apiKey,
    keyId: caller.keyId,
    serviceId,
    embedded: embedded !== undefined,
    close: () => pool.end(),
  };
}

export async function stopEmbedded(): Promise<void> {
  await embedded?.stop();
  embedded = undefined;
}

export interface Child {
  process: ChildProcess;
  url: string | undefined;
  /** Its OPS_PORT server (/metrics) when it has one. */
  opsUrl?: string | undefined;
}

/** Herald's entry point as `npm start` runs it: the compiled build, not the TypeScript sources. */
const heraldSource = 'src/main.ts';
const heraldBuild = join(packageRoot, 'dist', 'src', 'main.js');
let built: Promise<void> | undefined;

/**
 * Every child still running. However the benchmark ends (done, failed, or an error nothing
 * caught), they are killed with it, so none goes on working on the next run's database of the
 * same name.
 */
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** The newest modification time under `dir` of the files `keep` accepts. */
function newestMtime(dir: string, keep: (name: string) => boolean): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !keep(entry.name)) continue;
    newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/**
 * Runs `npm run build` once per benchmark when dist/ is missing or older than a source file
 * (migrations are read from migrations/, not built). Herald's roles run compiled, as users run
 * them: under tsx every named function expression gets a `__name` call (esbuild's keepNames)
 * each time it is created, 3 % of a webhook worker's CPU in a profile.
 */
function ensureBuilt(): Promise<void> {
  built ??= (async () => {
    const sources = newestMtime(
      join(packageRoot, 'src'),
      (n) => n.endsWith('.ts') && !n.endsWith('.test.ts'),
    );
    if (existsSync(heraldBuild) && statSync(heraldBuild).mtimeMs >= sources) return;
    await new Promise<void>((resolve, reject) => {
      const build = spawn('npm', ['run', 'build'], {
        cwd: packageRoot,
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      build.on('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`npm run build exited with ${String(code)}`)),
      );
    });
  })();
  return built;
}

/**
 * Starts a child process and resolves once it says it is running: Herald (`src/main.ts <roles>`)
 * from its build (see ensureBuilt), anything else under tsx. BENCH_NODE_ARGS adds node options
 * to every process a benchmark starts (NODE_OPTIONS refuses some, such as
 * `--cpu-prof --cpu-prof-dir=/tmp/prof`).
 */
export async function startChild(args: string[], env: Record<string, string>): Promise<Child> {
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  const herald = args.indexOf(heraldSource);
  if (herald >= 0) await ensureBuilt();
  const command =
    herald >= 0 ? args.map((a, i) => (i === herald ? heraldBuild : a)) : ['--import', 'tsx', ...args];
  const child = spawn(process.execPath, [...nodeArgs, ...command], {
    cwd: packageRoot,
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const url = /(?:listening|API:)\s+(http:\/\/[\d.:]+)/.exec(out)?.[1];
      const opsUrl = /Ops:\s+(http:\/\/[\d.:]+)/.exec(out)?.[1];
      if (url !== undefined || /Herald is running/.test(out)) resolve({ process: child, url, opsUrl });
    });
    child.on('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${String(code)}`)));
  });
}

export async function stopChild(child: Child): Promise<void> {
  const p = child.process;
  if (p.exitCode !== null || p.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    p.once('exit', () => resolve());
    p.kill('SIGTERM');
  });
}

export function machine(): string {
  return `${String(cpus().length)} cores, ${String(Math.round(totalmem() / 2 ** 30))} GiB, Node ${process.version}`;
}

export const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

export function table(title: string, header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [title, line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line), ''].join('\n');
}

/** Posts requests with at most `concurrency` in flight; returns when all got a 2xx. */
export async function postAll(
  url: string,
  apiKey: string,
  bodies: string[],
  concurrency: number,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < bodies.length) {
        const body = bodies[next++];
        const res = await fetch(`${url}/v1/notifications`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
          body,
        });
        await res.arrayBuffer();
        if (res.status !== 202) throw new Error(`ingest answered ${String(res.status)}`);
      }
    }),
  );
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

export async function until(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  everyMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface RunningSystem {
  receiver: BenchReceiver;
  apiUrl: string;
  /** The api and worker processes, for their CPU and statements (bench/cost.ts). */
  processes: MeteredProcess[];
  stop(): Promise<void>;
}

/** A port free on loopback now (for a child's OPS_PORT). */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * A bench receiver set as the bench service's webhook URL, and Herald as one `api scheduler`
 * process plus `workers` worker processes with `env`.
 */
export async function startSystem(
  db: BenchDatabase,
  receiverDelayMs: number,
  workers: number,
  env: Record<string, string>,
): Promise<RunningSystem> {
  const receiver = new BenchReceiver(receiverDelayMs);
  await receiver.start();
  await db.pool.query('UPDATE services SET webhook_url = $1 WHERE id = $2', [receiver.url, db.serviceId]);
  const children: Child[] = [];
  const stop = async () => {
    for (const child of children.reverse()) await stopChild(child);
    await receiver.stop();
  };
  try {
    const full = {
      DATABASE_URL: db.url,
      WORKER_CONCURRENCY: '200',
      CLAIM_BATCH_SIZE: '500',
      // The receiver listens on loopback, which the outbound policy refuses unless allowed.
      OUTBOUND_ALLOWED_NETWORKS: loopbackNetworks,
      ...env,
    };
    const api = await startChild(['src/main.ts', 'api', 'scheduler'], { ...full, API_PORT: '0' });
    children.push(api);
    const processes: MeteredProcess[] = [{ part: 'api', pid: api.process.pid ?? 0, metricsUrl: api.url }];
    for (let i = 0; i < workers; i++) {
      const worker = await startChild(['src/main.ts', 'worker'], {
        ...full,
        OPS_PORT: String(await freePort()),
      });
      children.push(worker);
      processes.push({ part: 'worker', pid: worker.process.pid ?? 0, metricsUrl: worker.opsUrl });
    }
    return { receiver, apiUrl: api.url ?? '', processes, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Runs a benchmark's main and exits: 0 when it printed its table, 1 with the error otherwise. */
export function runBenchmark(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(
        `benchmark failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
      process.exit(1);
    },
  );
}

/** What one autocannon run measured: requests/s, latency percentiles (ms) and failures. */
export interface HttpRun {
  requestsPerSecond: number;
  p50: number;
  p99: number;
  max: number;
  /** Non-2xx answers, connection errors and timeouts. */
  non2xx: number;
  /** 2xx answers. */
  ok: number;
}

/** One autocannon run; `stop` ends it early (with a long `duration`, it runs until stopped). */
export function httpLoad(options: autocannon.Options, stop?: AbortSignal): Promise<HttpRun> {
  return new Promise((resolve, reject) => {
    const instance = autocannon(options, (error: Error | null, result: autocannon.Result) => {
      if (error !== null) reject(error);
      else
        resolve({
          requestsPerSecond: result.requests.average,
          p50: result.latency.p50,
          p99: result.latency.p99,
          max: result.latency.max,
          non2xx: result.non2xx + result.errors + result.timeouts,
          ok: result['2xx'],
        });
    });
    stop?.addEventListener('abort', () => instance.stop(), { once: true });
  });
}

/** A user token for `userId`, issued by the query role at `queryUrl` for a sender key. */
export async function userToken(queryUrl: string, apiKey: string, userId: string): Promise<string> {
  const res = await fetch(`${queryUrl}/v1/users/${userId}/token`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: '{}',
  });
  const body = (await res.json()) as { token?: unknown };
  if (res.status !== 201 || typeof body.token !== 'string')
    throw new Error(`token request answered ${String(res.status)}: ${JSON.stringify(body)}`);
  return body.token;
}

/** Runs `sql` (CREATE or DROP DATABASE) from the maintenance database of `url`'s server. */
export async function onServer(url: string, sql: string): Promise<void> {
  const server = new URL(url);
  server.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: server.toString() });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

/** Drops the database `url` names, closing its sessions. */
export function dropDatabase(url: string): Promise<void> {
  return onServer(url, `DROP DATABASE IF EXISTS ${new URL(url).pathname.slice(1)} WITH (FORCE)`);
}
