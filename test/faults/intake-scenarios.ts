// Broker intake under faults: services publish notification requests to a broker and Herald's
// intake role (a real process) accepts them, while the intake process is killed, the broker
// restarts or PostgreSQL crashes. Each scenario runs on every broker of intake-brokers.ts:
// `intake-kill` etc. on RabbitMQ, `intake-kill-nats` on NATS JetStream, `intake-kill-sqs` on SQS
// (the stand-in). Poison messages (bodies Herald refuses) sit at seeded
// positions in every stream.
//
// The count is independent of Herald: the publisher records each message the broker confirmed,
// with its message id (the idempotency key) and whether it is valid; afterwards the checker reads
// from PostgreSQL which keys became notifications (the idempotency_keys claims, and each
// notification's title, which is its key) and takes the dead-letter queue. lost = valid
// confirmed keys without a notification; duplicated = notifications beyond one per key;
// dead = distinct keys dead-lettered, which must be exactly the poison keys, each with the
// problem code POST /v1/notifications answers the same body with.
import { FaultHarness, sleep, type Figures } from './harness.js';
import type { Scenario } from './scenarios.js';
import type { IntakeBroker } from './intake-broker.js';
import { intakeBrokerKinds, type IntakeBrokerKind } from './intake-brokers.js';
import { badBodies, uniqueService, validRequest } from '../helpers/intake-cases.js';
import { ensureService } from '../../src/db/stores/api-key-store.js';
import { startEmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { createLogger } from '../../src/observability/logger.js';
import type { HeraldProcess } from '../helpers/spawn-herald.js';
import { faultsDataDir } from './harness.js';

/** Share of the stream that is poison. */
const poisonRate = 0.05;

interface Item {
  key: string;
  body: string;
  /** The badBodies case, for a poison message. */
  poison?: string;
}

class IntakeRun {
  readonly h: FaultHarness;
  readonly service = uniqueService('faultsintake');
  serviceId = 0;
  broker: IntakeBroker | undefined;
  intake: HeraldProcess | undefined;
  /** Confirmed by the broker: key → poison case ('' for a valid message). */
  readonly confirmed = new Map<string, string>();
  /** Publishes whose confirm came only after a failed attempt (the broker may hold two copies). */
  retried = 0;
  readonly started = Date.now();
  readonly items: Item[];

  constructor(scenario: string, seed: number, count: number) {
    this.h = new FaultHarness(scenario, seed);
    // Poison positions come from the seed, before any fault draws from it.
    this.items = Array.from({ length: count }, (_, i) => {
      const key = `${scenario}-${String(seed)}-${String(i)}`;
      if (this.h.random() < poisonRate) {
        const bad = badBodies[Math.floor(this.h.random() * badBodies.length)] ?? badBodies[0];
        if (bad !== undefined) return { key, body: bad.body, poison: bad.name };
      }
      return { key, body: JSON.stringify(validRequest(`iu${String(i % 100)}`, key)) };
    });
  }

  get b(): IntakeBroker {
    if (this.broker === undefined) throw new Error('no broker');
    return this.broker;
  }

  async setup(kind: IntakeBrokerKind): Promise<void> {
    await this.h.setup();
    this.serviceId = await ensureService(this.h.db, this.service);
    this.broker = await kind.open(this.service);
    await this.broker.prepare();
    await this.spawnAll();
  }

  /** The api (for HTTP's problem codes), worker and scheduler, and the intake, started together. */
  async spawnAll(): Promise<void> {
    [, this.intake] = await Promise.all([this.h.spawn(['api', 'worker', 'scheduler']), this.spawnIntake()]);
  }

  spawnIntake(): Promise<HeraldProcess> {
    return this.h.spawn(['intake'], { ...this.b.heraldEnv(), INTAKE_PREFETCH: '200', API_PORT: '0' });
  }

  /**
   * Publishes every item (`concurrency` at once), recording each confirmed one. With `maxAhead`
   * a publisher starts a message only while fewer than that many confirmed valid ones are not
   * yet committed, so publishing lasts as long as the intake's work and goes on across a fault.
   */
  async publish(concurrency: number, maxAhead = Infinity, deadlineMs = 300_000): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    let next = 0;
    let committed = 0;
    let validConfirmed = 0;
    const state = { done: false };
    const watching = (async () => {
      while (!state.done && Number.isFinite(maxAhead)) {
        committed = (await this.committed()) ?? committed;
        await sleep(100);
      }
    })();
    try {
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < this.items.length) {
            while (validConfirmed - committed > maxAhead) {
              if (Date.now() > deadline) throw new Error('the intake fell behind past the deadline');
              await sleep(50);
            }
            const item = this.items[next++];
            if (item === undefined) break;
            if (await this.b.publish(item.key, item.body, deadline)) this.retried += 1;
            this.confirmed.set(item.key, item.poison ?? '');
            if (item.poison === undefined) validConfirmed += 1;
          }
        }),
      );
    } finally {
      state.done = true;
      await watching;
    }
  }

  /** Valid keys committed so far (undefined while PostgreSQL cannot be reached). */
  async committed(): Promise<number | undefined> {
    try {
      const r = await this.h.db.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM idempotency_keys WHERE service_id = $1',
        [this.serviceId],
      );
      return r.rows[0]?.n ?? 0;
    } catch {
      return undefined;
    }
  }

  async waitCommitted(atLeast: number, timeoutMs = 300_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const n = await this.committed();
      if (n !== undefined && n >= atLeast) return n;
      if (Date.now() > deadline)
        throw new Error(`only ${String(n)} of ${String(atLeast)} keys committed in time`);
      await sleep(50);
    }
  }

  /** The problem code POST /v1/notifications answers each bad body with. */
  async httpCodes(): Promise<Map<string, string>> {
    const codes = new Map<string, string>();
    for (const bad of badBodies) {
      const res = await fetch(`http://127.0.0.1:${String(this.h.apiPort)}/v1/notifications`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${this.h.apiKey}`,
          'idempotency-key': `http-${bad.name.replace(/\W/g, '-')}`,
        },
        body: bad.body,
      });
      codes.set(bad.name, ((await res.json()) as { code?: string }).code ?? `HTTP ${String(res.status)}`);
    }
    return codes;
  }

  /**
   * Waits until every valid confirmed key is committed and the dead-letter queue holds every
   * poison key (or 30 s more have passed, plus the broker's redelivery delay: a poison message
   * held when its dead-lettering failed comes back only after it), lets deliveries finish, then
   * counts.
   */
  async check(faults: string, recovery: string): Promise<Figures & { extraFailures: string[] }> {
    const valid = [...this.confirmed].filter(([, p]) => p === '').map(([k]) => k);
    const poison = new Map([...this.confirmed].filter(([, p]) => p !== ''));
    const extraFailures: string[] = [];
    try {
      await this.waitCommitted(valid.length, 120_000);
    } catch (error) {
      extraFailures.push(error instanceof Error ? error.message : String(error));
    }
    const letters: Awaited<ReturnType<IntakeBroker['readDead']>> = [];
    const deadKeys = () => new Set(letters.map((l) => l.key));
    const deadDeadline = Date.now() + 30_000 + this.b.redeliveryMs;
    for (;;) {
      letters.push(...(await this.b.readDead()));
      if ([...poison.keys()].every((k) => deadKeys().has(k)) || Date.now() > deadDeadline) break;
      await sleep(250);
    }
    await sleep(500);
    letters.push(...(await this.b.readDead()));
    await this.h.quiesce();

    const claims = await this.h.db.query<{ key: string; notification_id: string }>(
      'SELECT key, notification_id FROM idempotency_keys WHERE service_id = $1',
      [this.serviceId],
    );
    const notifications = await this.h.db.query<{ id: string; title: string | null }>(
      "SELECT id, content->'default'->>'title' AS title FROM notifications WHERE service_id = $1",
      [this.serviceId],
    );
    const ids = new Set(notifications.rows.map((n) => n.id));
    // A message id is claimed as the Idempotency-Key header would be ('header:<key>').
    const claimed = new Map(claims.rows.map((c) => [c.key.replace(/^header:/, ''), c.notification_id]));
    const byTitle = new Map<string, number>();
    for (const n of notifications.rows) byTitle.set(n.title ?? '', (byTitle.get(n.title ?? '') ?? 0) + 1);
    const validSet = new Set(valid);
    let lost = 0;
    let accepted = 0;
    let duplicated = 0;
    for (const key of valid) {
      const id = claimed.get(key);
      const copies = byTitle.get(key) ?? 0;
      if (id === undefined || !ids.has(id) || copies === 0) lost += 1;
      else accepted += 1;
      duplicated += Math.max(0, copies - 1);
    }
    const phantom = notifications.rows.filter((n) => !validSet.has(n.title ?? '')).length;
    const claimedIds = new Set(claimed.values());
    const unclaimed = notifications.rows.filter((n) => !claimedIds.has(n.id)).length;
    if (unclaimed > 0) extraFailures.push(`${String(unclaimed)} notifications beyond the keys (no claim)`);
    if (duplicated > 0) extraFailures.push(`${String(duplicated)} duplicated notifications`);

    const codes = await this.httpCodes();
    const dead = deadKeys();
    const wrongCode = letters.filter((l) => {
      const name = poison.get(l.key);
      return name !== undefined && l.code !== codes.get(name);
    });
    const validDead = [...dead].filter((k) => validSet.has(k)).length;
    const missingDead = [...poison.keys()].filter((k) => !dead.has(k)).length;
    const strangers = [...dead].filter((k) => !validSet.has(k) && !poison.has(k)).length;
    if (missingDead > 0) extraFailures.push(`${String(missingDead)} poison messages not dead-lettered`);
    if (validDead > 0) extraFailures.push(`${String(validDead)} valid messages dead-lettered`);
    if (strangers > 0) extraFailures.push(`${String(strangers)} dead letters of unknown keys`);
    if (wrongCode.length > 0)
      extraFailures.push(
        `${String(wrongCode.length)} dead letters with another code than HTTP's (e.g. ${wrongCode[0]?.key ?? ''}: ${wrongCode[0]?.code ?? ''})`,
      );
    if (this.intake !== undefined && this.intake.child.exitCode !== null)
      extraFailures.push(`the intake process exited: ${this.intake.output().slice(-400)}`);
    const delivered = await this.h.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM deliveries d JOIN notifications n ON n.id = d.notification_id
        WHERE n.service_id = $1 AND d.state = 'delivered'`,
      [this.serviceId],
    );
    const byCode = new Map<string, number>();
    for (const l of letters) if (poison.has(l.key)) byCode.set(l.code, (byCode.get(l.code) ?? 0) + 1);
    const copies = letters.length - dead.size;
    return {
      scenario: this.h.scenario,
      seed: this.h.seed,
      requests: this.confirmed.size,
      accepted,
      delivered: delivered.rows[0]?.n ?? 0,
      lost,
      duplicated,
      phantom,
      dead: dead.size,
      ambiguous: this.retried,
      faults: `${faults}; ${String(poison.size)} poison (${[...byCode].map(([c, n]) => `${String(n)}×${c}`).join(', ')}${copies > 0 ? `; ${String(copies)} dead-letter copies` : ''})`,
      recovery,
      seconds: Math.round((Date.now() - this.started) / 100) / 10,
      extraFailures,
    };
  }

  async teardown(): Promise<void> {
    await this.broker?.close().catch(() => undefined);
    await this.h.teardown();
  }
}

/** Milliseconds from `since` to the first commit beyond `before` (-1: none within 120 s). */
async function nextCommitMs(run: IntakeRun, before: number | undefined, since: number): Promise<number> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const n = await run.committed();
    if (n !== undefined && (before === undefined || n > before)) return Date.now() - since;
    await sleep(100);
  }
  return -1;
}

const at = (run: IntakeRun) => `${String(Math.round((Date.now() - run.started) / 100) / 10)}s`;

/** kill -9 of the intake process while it holds unacknowledged messages; a new one starts. */
const intakeKill =
  (kind: IntakeBrokerKind): Scenario =>
  async ({ seed, smoke }) => {
    const run = new IntakeRun(`intake-kill${kind.suffix}`, seed, smoke ? 2000 : 20000);
    try {
      await run.setup(kind);
      const kills = smoke ? 1 : 3;
      const publishing = run.publish(32);
      const schedule: string[] = [];
      const valid = run.items.filter((i) => i.poison === undefined).length;
      for (let k = 0; k < kills; k++) {
        // Somewhere in the (k+1)-th slice of the stream.
        const target = Math.floor((valid * (k + 0.3 + 0.5 * run.h.random())) / (kills + 1));
        const committed = await run.waitCommitted(target);
        const ready = await run.b.ready();
        const held = Math.max(0, run.confirmed.size - committed - ready);
        if (run.intake === undefined) throw new Error('no intake process');
        const pid = run.intake.child.pid ?? 0;
        await run.h.kill(run.intake);
        schedule.push(
          `${at(run)} pid ${String(pid)} at ${String(committed)} committed, ≈${String(held)} held`,
        );
        run.intake = await run.spawnIntake();
      }
      await publishing;
      return await run.check(
        `${String(kills)} intake kill -9 (${schedule.join('; ')})`,
        'new intake process; redeliveries deduplicated by message id',
      );
    } finally {
      await run.teardown();
    }
  };

/** A broker of the suite's own stopped and started again mid-stream; the publisher retries. */
const intakeBrokerRestart =
  (kind: IntakeBrokerKind): Scenario =>
  async ({ seed, smoke }) => {
    const run = new IntakeRun(`intake-broker-restart${kind.suffix}`, seed, smoke ? 1000 : 10000);
    try {
      // The broker starts while Herald does: the intake finds no broker at first and connects once
      // it is up (the publisher's queue declaration waits for it).
      const own = await kind.own(run.service);
      run.broker = own.broker;
      const [nodeStart, heraldStart] = await Promise.allSettled([
        own.start(),
        (async () => {
          await run.h.setup();
          run.serviceId = await ensureService(run.h.db, run.service);
          await run.spawnAll();
        })(),
      ]);
      if (nodeStart.status === 'rejected') throw nodeStart.reason;
      if (heraldStart.status === 'rejected') throw heraldStart.reason;
      await run.b.prepare();
      if (run.intake === undefined) throw new Error('no intake process');
      const intakePid = run.intake.child.pid;
      // Kept at most 400 messages ahead of the commits, so the publisher meets the outage too.
      const publishing = run.publish(32, 400);
      const valid = run.items.filter((i) => i.poison === undefined).length;
      const committed = await run.waitCommitted(Math.floor(valid * (0.25 + 0.15 * run.h.random())));
      const downMs = smoke
        ? 2000 + Math.floor(run.h.random() * 2000)
        : 5000 + Math.floor(run.h.random() * 5000);
      const stoppedAt = at(run);
      const broker = run.b;
      if (broker.restartBroker === undefined) throw new Error('the broker cannot restart');
      const times = await broker.restartBroker(downMs);
      const upAt = Date.now();
      const before = await run.committed();
      await publishing;
      // The first commit after the broker is back, as seen from PostgreSQL.
      const resumedMs = await nextCommitMs(run, before, upAt);
      const figures = await run.check(
        `${kind.privateName} stopped at ${stoppedAt} (${String(committed)} committed), down ${String(times.stopMs + downMs + times.startMs)} ms (stop ${String(times.stopMs)}, start ${String(times.startMs)})`,
        resumedMs >= 0
          ? `same intake process reconnected; next commit ≤ ${String(resumedMs)} ms after the broker was up`
          : 'no commit after the broker came back',
      );
      if (run.intake.child.pid !== intakePid || run.intake.child.exitCode !== null)
        figures.extraFailures.push('the intake process did not survive the broker restart');
      return figures;
    } finally {
      await run.teardown();
    }
  };

/** PostgreSQL stopped in immediate mode for a few seconds mid-stream, then restarted. */
const intakePostgresRestart =
  (kind: IntakeBrokerKind): Scenario =>
  async ({ seed, smoke }) => {
    const run = new IntakeRun(`intake-postgres-restart${kind.suffix}`, seed, smoke ? 2000 : 20000);
    try {
      await run.setup(kind);
      const publishing = run.publish(32);
      const valid = run.items.filter((i) => i.poison === undefined).length;
      const committedBefore = await run.waitCommitted(Math.floor(valid * (0.25 + 0.15 * run.h.random())));
      const downMs = 2000 + Math.floor(run.h.random() * 3000);
      const stoppedAt = at(run);
      const readyBefore = await run.b.ready();
      await run.h.embedded?.stop('immediate');
      await sleep(downMs);
      // While PostgreSQL is down nothing can commit, so nothing may be acked: the queue keeps
      // what it held (it may only grow as the publisher goes on).
      const readyDuring = await run.b.ready();
      run.h.embedded = await startEmbeddedPostgres({
        dataDir: faultsDataDir,
        port: 54349,
        logger: createLogger('silent'),
      });
      const upAt = Date.now();
      const committedAfterCrash = await run.committed();
      const resumedMs = await nextCommitMs(run, committedAfterCrash, upAt);
      await publishing;
      const waited = (run.intake?.output() ?? '').includes('database unavailable');
      const figures = await run.check(
        `PostgreSQL stop -m immediate at ${stoppedAt} (${String(committedBefore)} committed) for ${String(downMs)} ms; queue ready ${String(readyBefore)} → ${String(readyDuring)} while down`,
        resumedMs >= 0
          ? `same intake process; next commit ${String(resumedMs)} ms after PostgreSQL was up`
          : 'no commit after PostgreSQL came back',
      );
      if (!waited) figures.extraFailures.push('the intake never reported waiting for the database');
      if (resumedMs < 0) figures.extraFailures.push('intake did not resume after PostgreSQL came back');
      return figures;
    } finally {
      await run.teardown();
    }
  };

/** intake-kill, intake-broker-restart, intake-postgres-restart (RabbitMQ), then -nats and -sqs. */
export const intakeScenarios: Record<string, Scenario> = Object.fromEntries(
  intakeBrokerKinds.flatMap((kind) => [
    [`intake-kill${kind.suffix}`, intakeKill(kind)],
    [`intake-broker-restart${kind.suffix}`, intakeBrokerRestart(kind)],
    [`intake-postgres-restart${kind.suffix}`, intakePostgresRestart(kind)],
  ]),
);

/**
 * Left out of `--smoke` without `--only` (CI): one scenario per added broker runs there
 * (intake-broker-restart-nats, intake-postgres-restart-sqs), the others only when named. An SQS
 * kill waits out the 60 s visibility timeout of the messages the killed process held.
 */
export const intakeSmokeSkipped = new Set([
  'intake-kill-nats',
  'intake-postgres-restart-nats',
  'intake-kill-sqs',
  'intake-broker-restart-sqs',
]);
