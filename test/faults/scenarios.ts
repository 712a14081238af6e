// The fault scenarios. Each runs a known workload with idempotency keys while injecting
// faults from the harness's seeded schedule, waits until quiescent, and returns the checker's
// figures; run-faults.ts asserts lost = 0 and phantom = 0 for every one.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { packageRoot } from '../../src/db/package-root.js';
import { createLogger } from '../../src/observability/logger.js';
import { FaultHarness, faultsDataDir, freePort, sleep, type Figures } from './harness.js';
import { FaultReceiver } from './fault-receiver.js';
import { loopbackNetworks } from '../helpers/loopback-allowed.js';
import { providerOutage } from './provider-outage.js';
import { workflowDelayKill } from './workflow-delay-kill.js';
import { workerKills } from './worker-kills.js';
import { intakeScenarios, intakeSmokeSkipped } from './intake-scenarios.js';

/** Scenarios `--smoke` runs only when named with `--only`. */
export const smokeSkipped: ReadonlySet<string> = intakeSmokeSkipped;

export interface ScenarioOptions {
  seed: number;
  smoke: boolean;
}

export type Scenario = (options: ScenarioOptions) => Promise<Figures & { extraFailures: string[] }>;

/** kill -9 of the api process during ingest; the client retries with the same keys. */
export const apiKills: Scenario = async ({ seed, smoke }) => {
  const h = new FaultHarness('api-kills', seed);
  const started = Date.now();
  try {
    await h.setup();
    await h.spawn(['worker', 'scheduler'], { API_PORT: '0' });
    let api = await h.spawn(['api']);
    const requests = smoke ? 1000 : 5000;
    const kills = smoke ? 2 : 5;
    const progress = { done: false };
    const sending = h
      .send({ requests, recipientsPerRequest: 1, concurrency: 16 })
      .finally(() => (progress.done = true));
    let killed = 0;
    while (killed < kills && !progress.done) {
      await sleep(500 + Math.floor(h.random() * 1000));
      await h.kill(api);
      killed += 1;
      api = await h.spawn(['api']);
    }
    await sending;
    await h.quiesce();
    const figures = await h.check(
      requests,
      1,
      `${String(killed)} api kill -9 during ingest`,
      'client retried with the same key',
      started,
    );
    const rows = await h.db.query<{ n: number }>('SELECT count(*)::int AS n FROM notifications');
    const extraFailures =
      rows.rows[0]?.n === requests
        ? []
        : [`${String(rows.rows[0]?.n)} notifications for ${String(requests)} keys`];
    return { ...figures, extraFailures };
  } finally {
    await h.teardown();
  }
};

/** PostgreSQL stopped in immediate mode (a crash) and restarted mid-run. */
export const postgresRestart: Scenario = async ({ seed, smoke }) => {
  const h = new FaultHarness('postgres-restart', seed, 5);
  const started = Date.now();
  try {
    await h.setup();
    await h.spawn(['api', 'scheduler']);
    await h.spawn(['worker']);
    await h.spawn(['worker']);
    const requests = smoke ? 40 : 200;
    const acceptedAt: number[] = [];
    const sending = h.send({
      requests,
      recipientsPerRequest: 100,
      concurrency: 4,
      onAccepted: () => acceptedAt.push(Date.now()),
    });
    while (h.acked.size < requests / 3) await sleep(20);
    const downMs = 2000 + Math.floor(h.random() * 2000);
    const stoppedAt = Date.now();
    await h.embedded?.stop('immediate');
    const downAt = Date.now();
    await sleep(downMs);
    if (h.embedded === undefined) throw new Error('no embedded PostgreSQL');
    const restartAt = Date.now();
    h.embedded = await startEmbeddedPostgres({
      dataDir: faultsDataDir,
      port: 54349,
      logger: createLogger('silent'),
    });
    const upAt = Date.now();
    await sending;
    await h.quiesce();
    const firstAfter = h.receiver.accepted
      .filter((e) => e.start >= upAt)
      .reduce((min, e) => Math.min(min, e.start), Number.POSITIVE_INFINITY);
    const figures = await h.check(
      requests,
      100,
      `PostgreSQL stop -m immediate for ${String(Date.now() - stoppedAt - (Date.now() - upAt))} ms; client saw ${[...h.statuses].map(([s, n]) => `${String(n)}×${s}`).join(', ')}`,
      `first delivery ${String(firstAfter - upAt)} ms after PostgreSQL was up`,
      started,
    );
    // 202 means committed: none may arrive between the server's death and its restart (an
    // answer in flight when it died gets a few milliseconds' grace).
    const during = acceptedAt.filter((t) => t > downAt + 50 && t < restartAt).length;
    const extraFailures: string[] = [];
    if (during > 0) extraFailures.push(`${String(during)} requests answered 202 while PostgreSQL was down`);
    if ((h.statuses.get('503') ?? 0) === 0)
      extraFailures.push('the api never answered 503 while PostgreSQL was down');
    return { ...figures, extraFailures };
  } finally {
    await h.teardown();
  }
};

/** A receiver that fails (5xx, 429 + Retry-After, timeouts, resets) for a while, then recovers. */
export const receiverFaults: Scenario = async ({ seed, smoke }) => {
  const h = new FaultHarness('receiver-faults', seed);
  const started = Date.now();
  try {
    // Retries and dead letters are under test here; the circuit breaker, which would hold most
    // calls back at this failure rate, has its own test (src/pipeline/provider-guard.test.ts).
    await h.setup({
      MAX_ATTEMPTS: '4',
      RETRY_BASE_MS: '100',
      RETRY_MAX_MS: '400',
      PROVIDER_BREAKER_MIN_CALLS: '1000000',
    });
    await h.spawn(['api', 'scheduler']);
    await h.spawn(['worker']);
    const requests = smoke ? 10 : 50;
    // Four of five requests fail (503, 429 + Retry-After, a hang past the timeout, a reset)
    // until every delivery has ended sent or dead; then the receiver recovers.
    h.receiver.mode = 'mixed_faults';
    await h.send({ requests, recipientsPerRequest: 100, concurrency: 4 });
    await h.quiesce();
    h.receiver.mode = 'ok';
    const before = await h.check(requests, 100, '', '', started);
    const extraFailures: string[] = [];
    if (before.lost > 0)
      extraFailures.push(`${String(before.lost)} deliveries neither sent nor dead before replay`);
    if (before.dead === 0)
      extraFailures.push('no delivery went dead: the fault window did not outlast the retries');
    // Replay every dead letter, then everything must be delivered.
    for (;;) {
      const res = await fetch(`http://127.0.0.1:${String(h.apiPort)}/v1/dead-letters/replay`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${h.apiKey}` },
        body: JSON.stringify({ all: true }),
      });
      const body = (await res.json()) as { replayed: number };
      if (body.replayed === 0) break;
    }
    await h.quiesce();
    const answers = [...h.receiver.answers].map(([k, n]) => `${String(n)}×${k}`).join(', ');
    const figures = await h.check(
      requests,
      100,
      `receiver answered ${answers}; ${String(before.dead)} dead before replay`,
      'all dead letters replayed',
      started,
    );
    if (figures.dead > 0) extraFailures.push(`${String(figures.dead)} still dead after replay`);
    return { ...figures, extraFailures };
  } finally {
    await h.teardown();
  }
};

/** Eight workers claiming the same deliveries: none may be in flight twice at once. */
export const eightWorkers: Scenario = async ({ seed, smoke }) => {
  const h = new FaultHarness('eight-workers', seed, 2);
  const started = Date.now();
  try {
    // No faults here, so production-like timing: eight workers, the api, PostgreSQL and this
    // harness share two cores, and the suite's 1 s timeout would turn a slow answer into a
    // retry (and a second send) that this scenario is not about.
    await h.setup({ WORKER_CONCURRENCY: '50', WEBHOOK_TIMEOUT_MS: '10000', LEASE_SECONDS: '30' });
    await h.spawn(['api', 'scheduler']);
    for (let i = 0; i < 8; i++) await h.spawn(['worker']);
    const requests = smoke ? 50 : 500;
    await h.send({ requests, recipientsPerRequest: 100, concurrency: 4, lane: 'bulk' });
    await h.quiesce();
    const figures = await h.check(requests, 100, '8 worker processes, no faults', '—', started);
    const extraFailures: string[] = [];
    if (h.receiver.concurrentDuplicates > 0)
      extraFailures.push(
        `${String(h.receiver.concurrentDuplicates)} deliveries were in flight twice at once`,
      );
    const claims = await h.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM (SELECT delivery_id FROM delivery_events WHERE state = 'sending' GROUP BY delivery_id HAVING count(*) > 1) AS x",
    );
    if ((claims.rows[0]?.n ?? 0) > 0)
      extraFailures.push(`${String(claims.rows[0]?.n)} deliveries were claimed more than once`);
    if (figures.duplicated > 0)
      extraFailures.push(`${String(figures.duplicated)} duplicate sends without any fault`);
    return {
      ...figures,
      faults: `${figures.faults}; concurrent duplicates ${String(h.receiver.concurrentDuplicates)}`,
      extraFailures,
    };
  } finally {
    await h.teardown();
  }
};

/** `npm start` killed with -9 (its embedded PostgreSQL orphaned), then started again. */
export const npmStartKill: Scenario = async ({ seed, smoke }) => {
  const dataDir = join(packageRoot, '.faults-start');
  await stopLeftoverPostgres(dataDir, 54359);
  rmSync(dataDir, { recursive: true, force: true });
  const receiver = new FaultReceiver(0);
  await receiver.start();
  const apiPort = await freePort();
  const queryPort = await freePort();
  const pgPort = 54359;
  // npm start needs PATH and the like from the environment, but no DATABASE_URL.
  const inherited = { ...process.env };
  delete inherited['DATABASE_URL'];
  const env = {
    ...inherited,
    HERALD_DATA_DIR: dataDir,
    API_PORT: String(apiPort),
    QUERY_PORT: String(queryPort),
    CONSOLE_PORT: '0',
    EMBEDDED_PG_PORT: String(pgPort),
    LOG_LEVEL: 'warn',
    LEASE_SECONDS: '3',
    WEBHOOK_TIMEOUT_MS: '1000',
    MAINTENANCE_INTERVAL_MS: '250',
    // The receiver listens on loopback, which the outbound policy refuses unless allowed.
    OUTBOUND_ALLOWED_NETWORKS: loopbackNetworks,
  };
  const started = Date.now();
  const npmStart = async () => {
    const child = spawn('npm', ['start'], { cwd: packageRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const deadline = Date.now() + 120_000;
    while (!out.includes('Herald is running')) {
      if (child.exitCode !== null) throw new Error(`npm start exited: ${out}`);
      if (Date.now() > deadline) throw new Error(`npm start did not come up: ${out}`);
      await sleep(100);
    }
    return { child, output: () => out };
  };
  /** The node process under npm (npm → sh → node), found among our own descendants only. */
  const heraldPid = (npmPid: number): number => {
    const children = (pid: number): number[] =>
      execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' })
        .split('\n')
        .map((l) => Number(l.trim()))
        .filter((n) => n > 0);
    const queue = [npmPid];
    for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
      const args = execFileSync('ps', ['-o', 'args=', '-p', String(pid)], { encoding: 'utf8' });
      // The node process itself, not the `sh -c node dist/src/main.js start` wrapper above it.
      if (/^\S*node\s+dist\/src\/main\.js/.test(args.trim())) return pid;
      queue.push(...children(pid));
    }
    throw new Error('Herald process not found under npm start');
  };
  const h = new FaultHarness('npm-start-kill-9', seed);
  let first: Awaited<ReturnType<typeof npmStart>> | undefined;
  let second: Awaited<ReturnType<typeof npmStart>> | undefined;
  try {
    first = await npmStart();
    const key = readFileSync(join(dataDir, 'dev-api-key'), 'utf8').trim();
    const call = (method: string, path: string, body?: unknown) =>
      fetch(`http://127.0.0.1:${String(apiPort)}${path}`, {
        method,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    const hook = await call('PUT', '/v1/service/webhook', { url: receiver.url });
    if (hook.status !== 200)
      throw new Error(`setting the webhook answered ${String(hook.status)}: ${await hook.text()}`);
    // Reuse the harness's client and checker against this Herald.
    h.apiKey = key;
    h.apiPort = apiPort;
    Object.defineProperty(h, 'receiver', { value: receiver });
    const requests = smoke ? 300 : 2000;
    const sending = h.send({ requests, recipientsPerRequest: 1, concurrency: 8 });
    while (h.acked.size < requests / 3) await sleep(20);
    const victim = heraldPid(first.child.pid ?? 0);
    process.kill(victim, 'SIGKILL');
    await new Promise((r) => first?.child.once('exit', r));
    const postmasterLeft = existsSync(join(dataDir, 'pg', 'postmaster.pid'));
    const restartAt = Date.now();
    second = await npmStart();
    const upMs = Date.now() - restartAt;
    await sending;
    const password = readFileSync(join(dataDir, 'pg-password'), 'utf8').trim();
    h.pool = new pg.Pool({
      connectionString: `postgres://herald:${encodeURIComponent(password)}@127.0.0.1:${String(pgPort)}/herald`,
      max: 2,
    });
    await h.quiesce();
    const figures = await h.check(
      requests,
      1,
      `kill -9 of the Herald under npm start (orphaned postmaster: ${postmasterLeft ? 'yes' : 'no'})`,
      `npm start up again in ${String(upMs)} ms (includes the build)`,
      started,
    );
    const extraFailures: string[] = [];
    if (!second.output().includes('adopting embedded PostgreSQL'))
      extraFailures.push('the second start did not adopt the orphaned PostgreSQL');
    await h.pool.end();
    h.pool = undefined;
    // Ctrl-C stops Herald and its PostgreSQL.
    const node = heraldPid(second.child.pid ?? 0);
    process.kill(node, 'SIGINT');
    await new Promise((r) => second?.child.once('exit', r));
    if (existsSync(join(dataDir, 'pg', 'postmaster.pid')))
      extraFailures.push('PostgreSQL still running after Ctrl-C');
    return { ...figures, extraFailures };
  } finally {
    for (const run of [first, second]) {
      if (run === undefined || run.child.exitCode !== null) continue;
      // Kill the Herald under npm first (killing npm alone would orphan it), then npm.
      try {
        process.kill(heraldPid(run.child.pid ?? 0), 'SIGKILL');
      } catch {
        // already gone
      }
      run.child.kill('SIGKILL');
    }
    // Stop a postmaster this scenario left behind, whatever happened above.
    if (existsSync(join(dataDir, 'pg', 'postmaster.pid'))) {
      const embedded = await startEmbeddedPostgres({
        dataDir,
        port: pgPort,
        logger: createLogger('silent'),
      }).catch(() => undefined);
      await embedded?.stop();
    }
    await receiver.stop();
  }
};

/** Stops a postmaster an earlier run of this scenario left in `dataDir` (adopt, then stop). */
async function stopLeftoverPostgres(dataDir: string, port: number): Promise<void> {
  if (!existsSync(join(dataDir, 'pg', 'postmaster.pid'))) return;
  const embedded = await startEmbeddedPostgres({ dataDir, port, logger: createLogger('silent') }).catch(
    () => undefined,
  );
  await embedded?.stop();
}

export const scenarios: Record<string, Scenario> = {
  'worker-kills': workerKills,
  'api-kills': apiKills,
  'postgres-restart': postgresRestart,
  'receiver-faults': receiverFaults,
  'eight-workers': eightWorkers,
  'npm-start-kill-9': npmStartKill,
  'provider-outage': providerOutage,
  'workflow-delay-kill': workflowDelayKill,
  ...intakeScenarios,
};
