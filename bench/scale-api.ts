// The api role scaled out: 1, 2 and 4 `herald api` processes, each on its own port, against one
// PostgreSQL, with one autocannon spreading its connections over them (round robin by
// connection). Per run: committed requests/s, latency, and CPU per request from /proc (utime +
// stime) for the api processes, for the PostgreSQL backends of the bench database, for this
// process (the load generator), and what the rest of the machine did meanwhile.
import { cpuSeconds, machineBusySeconds } from './cpu.js';
import { fmt, httpLoad, startChild, stopChild, type BenchDatabase, type Child } from './bench-lib.js';

export interface ApiScaleOptions {
  db: BenchDatabase;
  processes: number;
  seconds: number;
  warmUpSeconds: number;
  connections: number;
  /** Each api process's DATABASE_POOL_SIZE. */
  poolSize: number;
}

export interface ApiScaleRun {
  processes: number;
  requestsPerSecond: number;
  p50: number;
  p99: number;
  non2xx: number;
  /** Per api process: requests it answered 202 and its CPU seconds, during the measured run. */
  perProcess: { requests: number; cpu: number }[];
  /** CPU seconds of the bench database's PostgreSQL backends; undefined when /proc does not show them. */
  postgresCpu: number | undefined;
  /** Transactions committed in the bench database during the run, read-only ones included (pg_stat_database). */
  commits: number;
  loadGeneratorCpu: number;
  machineCpu: number;
  seconds: number;
}

const body = JSON.stringify({
  recipients: ['user-1'],
  channels: ['in_app'],
  lane: 'bulk',
  content: { default: { title: 'Your order shipped', body: 'Order 1234 is on its way.' } },
});

/** 202 answers to POST /v1/notifications an api process has counted, from its /metrics. */
async function acceptedCount(child: Child): Promise<number> {
  const text = await (await fetch(`${child.url ?? ''}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('herald_http_requests_total{')) continue;
    if (!line.includes('route="/v1/notifications"') || !line.includes('status="202"')) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

/** CPU seconds of each backend connected to the bench database, except the bench's own pool. */
async function backendCpu(db: BenchDatabase): Promise<Map<number, number> | undefined> {
  const result = await db.pool.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity
      WHERE datname = current_database() AND application_name <> 'herald-bench' AND backend_type = 'client backend'`,
  );
  const cpu = new Map<number, number>();
  try {
    for (const { pid } of result.rows) cpu.set(pid, cpuSeconds(pid));
  } catch {
    return undefined; // PostgreSQL on another machine, or /proc not readable
  }
  return cpu;
}

/** Transactions committed in the bench database so far (statistics lag by up to a second). */
async function commitCount(db: BenchDatabase): Promise<number> {
  const result = await db.pool.query<{ n: string }>(
    'SELECT xact_commit::text AS n FROM pg_stat_database WHERE datname = current_database()',
  );
  return Number(result.rows[0]?.n ?? 0);
}

/** CPU the backends spent between two readings (a backend seen only at the end counts from 0). */
function backendDelta(before: Map<number, number> | undefined, after: Map<number, number> | undefined) {
  if (before === undefined || after === undefined) return undefined;
  let total = 0;
  for (const [pid, end] of after) total += end - (before.get(pid) ?? 0);
  return total;
}

export async function runApiScale(options: ApiScaleOptions): Promise<ApiScaleRun> {
  const { db, processes, seconds, connections } = options;
  const children: Child[] = [];
  try {
    for (let i = 0; i < processes; i++)
      children.push(
        await startChild(['src/main.ts', 'api'], {
          DATABASE_URL: db.url,
          API_PORT: '0',
          DATABASE_POOL_SIZE: String(options.poolSize),
        }),
      );
    const load = (duration: number) =>
      httpLoad({
        // autocannon takes several URLs and spreads its connections over them; its types say string.
        url: children.map((c) => `${c.url ?? ''}/v1/notifications`) as unknown as string,
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${db.apiKey}` },
        body,
        connections,
        duration,
      });
    await load(options.warmUpSeconds);
    const pids = children.map((c) => c.process.pid ?? 0);
    const accepted0 = await Promise.all(children.map(acceptedCount));
    const cpu0 = pids.map((pid) => cpuSeconds(pid));
    const pg0 = await backendCpu(db);
    const commits0 = await commitCount(db);
    const self0 = process.cpuUsage();
    const machine0 = machineBusySeconds();
    const started = performance.now();
    const run = await load(seconds);
    const elapsed = (performance.now() - started) / 1000;
    const machine1 = machineBusySeconds();
    const self1 = process.cpuUsage(self0);
    const pg1 = await backendCpu(db);
    // Let the backends flush their statistics (PostgreSQL 15 reports them at most once a second).
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const commits1 = await commitCount(db);
    const cpu1 = pids.map((pid) => cpuSeconds(pid));
    const accepted1 = await Promise.all(children.map(acceptedCount));
    return {
      processes,
      requestsPerSecond: run.requestsPerSecond,
      p50: run.p50,
      p99: run.p99,
      non2xx: run.non2xx,
      perProcess: pids.map((_, i) => ({
        requests: (accepted1[i] ?? 0) - (accepted0[i] ?? 0),
        cpu: (cpu1[i] ?? 0) - (cpu0[i] ?? 0),
      })),
      postgresCpu: backendDelta(pg0, pg1),
      commits: commits1 - commits0,
      loadGeneratorCpu: (self1.user + self1.system) / 1e6,
      machineCpu: machine1 - machine0,
      seconds: elapsed,
    };
  } finally {
    for (const child of children) await stopChild(child);
  }
}

const micros = (cpuSeconds: number, requests: number) =>
  requests > 0 ? fmt((cpuSeconds * 1e6) / requests) : '—';

/** One table row per run. */
export function apiScaleRow(r: ApiScaleRun, base: ApiScaleRun | undefined): string[] {
  const requests = r.perProcess.reduce((s, p) => s + p.requests, 0);
  const apiCpu = r.perProcess.reduce((s, p) => s + p.cpu, 0);
  const others = r.machineCpu - apiCpu - (r.postgresCpu ?? 0) - r.loadGeneratorCpu;
  return [
    `${String(r.processes)} api process(es)`,
    fmt(r.requestsPerSecond),
    `${String(r.p50)} / ${String(r.p99)}`,
    String(r.non2xx),
    micros(apiCpu, requests),
    r.perProcess.map((p) => micros(p.cpu, p.requests)).join(' / '),
    r.postgresCpu === undefined ? '—' : micros(r.postgresCpu, requests),
    requests > 0 ? (requests / Math.max(1, r.commits)).toFixed(1) : '—',
    micros(r.loadGeneratorCpu, requests),
    `${(r.machineCpu / r.seconds).toFixed(2)} (${(others / r.seconds).toFixed(2)})`,
    base === undefined ? '—' : (r.requestsPerSecond / base.requestsPerSecond).toFixed(2),
  ];
}

export const apiScaleHeader = [
  'api processes',
  'requests/s',
  'p50 / p99 ms',
  'non-2xx',
  'api CPU µs/req',
  'per process µs/req',
  'PG backends µs/req',
  'req/xact',
  'load gen µs/req',
  'cores busy (others)',
  '÷ 1 process',
];
