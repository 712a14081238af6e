// Shared provider limits against a real PostgreSQL: several SharedLimits (one per simulated
// worker, each with its own id) on one database, as worker processes would be.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { createLogger } from '../observability/logger.js';
import { ProviderGuard } from './provider-guard.js';
import { SharedLimits, type SharedView } from './shared-limits.js';

let db: TestDatabase;
const started: SharedLimits[] = [];
const logger = createLogger('silent');

before(async () => {
  db = await createTestDatabase();
});
after(async () => {
  await Promise.all(started.map((s) => s.stop()));
  await db.drop();
});

/**
 * A worker's view; refreshed when the test says so (and right after a key's first heartbeat).
 * Without the join hold (its own test below), so a count is usable as soon as it is read.
 */
function worker(expiryMs = 3000): SharedLimits {
  const shared = new SharedLimits({
    pool: db.pool,
    workerId: randomUUID(),
    logger,
    now: Date.now,
    expiryMs,
    joinHoldMs: 0,
  });
  started.push(shared);
  return shared;
}

const breaker = { windowMs: 10_000, minimumCalls: 100, failureRatio: 0.5, openMs: 2000 };

test('workers calling a key count one another; one that leaves or stops refreshing drops out', async () => {
  const key = `sms-${randomUUID()}`;
  const a = worker(1500);
  const b = worker(1500);
  const c = worker(1500);
  assert.equal(a.workersFor(key), undefined, 'unknown until a refresh has counted it');
  b.workersFor(key);
  c.workersFor(key);
  await a.refresh();
  await b.refresh();
  await c.refresh();
  await a.refresh();
  await c.refresh();
  assert.equal(a.workersFor(key), 3);
  assert.equal(c.workersFor(key), 3);
  await c.refresh();
  await b.stop(); // a clean stop removes its heartbeat at once
  await a.refresh();
  assert.equal(a.workersFor(key), 2);
  // c dies: it refreshes no more. Within the expiry the others stop counting it.
  await new Promise((r) => setTimeout(r, 1600));
  a.workersFor(key); // a keeps calling the key
  await a.refresh();
  assert.equal(a.workersFor(key), 1);
  // A key nobody else calls is this worker's alone.
  const other = `smtp-${randomUUID()}`;
  a.workersFor(other);
  await a.refresh();
  await a.refresh();
  assert.equal(a.workersFor(other), 1);
});

test('a worker that no longer calls a key leaves its share to the others at its next refresh', async () => {
  const key = `webhook-${randomUUID()}`;
  const a = worker();
  let clock = Date.now();
  const b = new SharedLimits({ pool: db.pool, workerId: randomUUID(), logger, now: () => clock });
  started.push(b);
  a.workersFor(key);
  b.workersFor(key);
  for (let i = 0; i < 2; i++) {
    await a.refresh();
    await b.refresh();
  }
  await a.refresh();
  assert.equal(a.workersFor(key), 2);
  // b has had no delivery for the key for longer than the expiry: its heartbeat row goes with
  // its next refresh, so a counts itself alone at once instead of after the row expires.
  clock += 3001;
  await b.refresh();
  await a.refresh();
  assert.equal(a.workersFor(key), 1);
});

test('a worker joining a key others call sends only once they have counted it and sent what they paced at their larger share', async () => {
  const key = `webhook-${randomUUID()}`;
  let clock = Date.now();
  const view = (onRefresh?: (v: SharedView) => void) =>
    new SharedLimits({
      pool: db.pool,
      workerId: randomUUID(),
      logger,
      now: () => clock,
      refreshMs: 250,
      onRefresh,
    });
  // What b reports to its gauges: a key it holds back from counts 0 toward its share.
  const holding: string[][] = [];
  const a = view();
  const b = view((v) => holding.push([...v.holding]));
  started.push(a, b);
  a.workersFor(key);
  await a.refresh();
  await a.refresh();
  assert.equal(a.workersFor(key), 1, 'alone on the key: sends at once');
  b.workersFor(key);
  await b.refresh();
  await b.refresh();
  // b counts a, and holds back for a's next refresh plus a's half second of paced calls.
  assert.equal(b.workersFor(key), undefined);
  assert.equal(b.untilKnownMs(key), 750);
  assert.deepEqual(holding.at(-1), [key]);
  const guard = new ProviderGuard({
    breaker,
    limitsFor: () => ({ ratePerSecond: 20 }),
    shared: b,
    now: () => clock,
    maxShareWaitMs: 0, // simulated time: deferred rather than waiting
  });
  assert.deepEqual(await guard.acquire(key), { ok: false, reason: 'rate_limited', delayMs: 750 });
  await a.refresh();
  assert.equal(a.workersFor(key), 2, 'a, already sending, halves its share at once');
  clock += 749;
  await b.refresh();
  assert.equal(b.workersFor(key), undefined);
  assert.deepEqual(holding.at(-1), [key]);
  clock += 1;
  assert.equal(b.workersFor(key), 2);
  assert.deepEqual(await guard.acquire(key), { ok: true });
  await b.refresh();
  assert.deepEqual(holding.at(-1), [], 'sending at its share now');
});

test('a circuit opened by one worker is held open by the others until the same time', async () => {
  const key = `apns-${randomUUID()}`;
  const a = worker();
  const b = worker();
  a.circuitOpened(key, 1500);
  await a.refresh();
  await b.refresh();
  const until = b.circuitOpenUntil(key);
  assert.ok(until !== undefined, 'b learned the circuit');
  assert.ok(
    Math.abs(until - (Date.now() + 1500)) < 300,
    `open until ${String(until - Date.now())} ms from now`,
  );
  // A second opening never shortens it.
  b.circuitOpened(key, 10);
  await b.refresh();
  assert.ok((b.circuitOpenUntil(key) ?? 0) > Date.now() + 1000);
});

test("a guard sends at its share of the limit, and holds a circuit another worker's guard opened", async () => {
  const key = `gateway-${randomUUID()}`;
  const a = worker();
  const b = worker();
  let t = 1_000_000;
  const guard = (shared: SharedLimits, onOpen?: (key: string) => void) =>
    new ProviderGuard({
      breaker,
      limitsFor: () => ({ ratePerSecond: 20 }),
      shared,
      now: () => t,
      onOpen,
      maxRateWaitMs: 0, // simulated time: no pacing waits
      maxShareWaitMs: 0,
    });
  const ga = guard(a, (k) => a.circuitOpened(k, breaker.openMs));
  const gb = guard(b);
  // Before the first refresh the share is unknown: held back for about one refresh.
  assert.deepEqual(await ga.acquire(key), { ok: false, reason: 'rate_limited', delayMs: a.refreshMs });
  await gb.acquire(key);
  await a.refresh();
  await b.refresh();
  await a.refresh();
  // Two workers: 10 per second each (a burst of 1), over one simulated second.
  let sent = 0;
  for (let i = 0; i < 1000; i += 10, t += 10) {
    const admitted = await ga.acquire(key);
    if (admitted.ok) {
      sent += 1;
      ga.record(key, { kind: 'sent', providerMessageId: null });
    }
  }
  assert.ok(sent >= 10 && sent <= 11, `sent ${String(sent)} in one second`);
  // A configuration error opens a's circuit; b learns it with its next refresh.
  t += 200;
  assert.equal((await ga.acquire(key)).ok, true);
  ga.record(key, { kind: 'config_error', reason: 'bad credentials' });
  await a.refresh();
  await b.refresh();
  t = Date.now();
  const held = await gb.acquire(key);
  assert.ok(!held.ok);
  assert.equal(held.reason, 'circuit_open');
});

test('a call waits for its share of a key to be counted instead of going back to the queue', async () => {
  const key = `gateway-${randomUUID()}`;
  const guard = new ProviderGuard({
    breaker,
    limitsFor: () => ({ ratePerSecond: 20 }),
    shared: worker(),
    now: Date.now,
  });
  // The first call starts the refreshes that count the key (two, 50 ms apart) and waits for
  // them; without the wait it would be deferred for one refresh.
  assert.deepEqual(await guard.acquire(key), { ok: true });
});
