import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../../test/helpers/test-herald.js';
import { waitFor } from '../../test/helpers/wait-for.js';
import { WebhookReceiver } from '../../test/stand-ins/webhook-receiver.js';
import { ProviderGuard, guardKey } from './provider-guard.js';

let db: TestDatabase;
let h: TestHerald;
let failing: WebhookReceiver;
let healthy: WebhookReceiver;
let secret: string | undefined;
let failingIsDown = true;

before(async () => {
  db = await createTestDatabase();
  failing = new WebhookReceiver(() => secret);
  healthy = new WebhookReceiver(() => secret);
  await failing.start();
  await healthy.start();
  failing.answer(() => (failingIsDown ? { status: 503 } : { status: 200 }));
  h = await startTestHerald(db, {
    env: {
      MAX_ATTEMPTS: '3',
      RETRY_BASE_MS: '50',
      RETRY_MAX_MS: '200',
      PROVIDER_BREAKER_MIN_CALLS: '4',
      PROVIDER_BREAKER_FAILURE_RATIO: '0.5',
      PROVIDER_BREAKER_WINDOW_MS: '10000',
      PROVIDER_BREAKER_OPEN_MS: '300',
    },
  });
  secret = (await h.call('PUT', '/v1/service/webhook', { url: healthy.url })).body.webhook_secret;
});
after(async () => {
  await h.stop();
  await failing.stop();
  await healthy.stop();
  await db.drop();
});

test('the guard key is the provider, or the receiving origin for webhooks', () => {
  assert.equal(
    guardKey('webhook', 'webhook', 'https://hooks.example.com:8443/a/b?c=1'),
    'webhook:https://hooks.example.com:8443',
  );
  assert.equal(guardKey('apns', 'push', 'device-1'), 'apns');
});

test('a rate limit applies only to the keys it is given for, each key on its own', async () => {
  const guard = new ProviderGuard({
    breaker: { windowMs: 1000, minimumCalls: 100, failureRatio: 0.5, openMs: 1000 },
    limitsFor: (key) => (key.startsWith('webhook:') ? { ratePerSecond: 1 } : {}),
    now: () => 0,
  });
  assert.deepEqual(await guard.acquire('webhook:http://a'), { ok: true });
  guard.record('webhook:http://a', { kind: 'sent', providerMessageId: null });
  assert.deepEqual(await guard.acquire('webhook:http://a'), {
    ok: false,
    reason: 'rate_limited',
    delayMs: 1000,
  });
  assert.deepEqual(await guard.acquire('webhook:http://b'), { ok: true });
  for (let i = 0; i < 10; i++) assert.deepEqual(await guard.acquire('slack'), { ok: true });
  assert.equal(guard.busy('webhook:http://a'), 0, 'a call turned away holds no slot');
});

test('a concurrency cap (bulkhead): calls over it wait for a slot, a bounded number of them for a bounded time', async () => {
  const guard = new ProviderGuard({
    breaker: { windowMs: 1000, minimumCalls: 100, failureRatio: 0.5, openMs: 1000 },
    limitsFor: (key) => (key === 'smtp' ? { concurrency: 2 } : {}),
    now: () => 0,
    maxWaitMs: 200,
  });
  const sent = { kind: 'sent', providerMessageId: null } as const;
  assert.ok((await guard.acquire('smtp')).ok);
  assert.ok((await guard.acquire('smtp')).ok);
  // Two may wait (as many as the cap); the third is turned away at once.
  const first = guard.acquire('smtp');
  const second = guard.acquire('smtp');
  assert.equal(guard.queued('smtp'), 2);
  assert.deepEqual(await guard.acquire('smtp'), { ok: false, reason: 'provider_busy', delayMs: 250 });
  assert.ok((await guard.acquire('fcm')).ok, 'another provider is not held back');
  // A finished call hands its slot to the first waiter.
  guard.record('smtp', sent);
  assert.deepEqual(await first, { ok: true });
  assert.equal(guard.busy('smtp'), 2);
  // The second waits out its time and is deferred.
  assert.deepEqual(await second, { ok: false, reason: 'provider_busy', delayMs: 250 });
  assert.equal(guard.queued('smtp'), 0);
  guard.record('smtp', sent);
  guard.record('smtp', sent);
  assert.equal(guard.busy('smtp'), 0);
  // An aborted wait gives up at once.
  await guard.acquire('smtp');
  await guard.acquire('smtp');
  const controller = new AbortController();
  const aborted = guard.acquire('smtp', controller.signal);
  controller.abort();
  assert.equal((await aborted).ok, false);
});

test('maxHeldPerKey bounds in flight plus waiting for a key', async () => {
  const guard = new ProviderGuard({
    breaker: { windowMs: 1000, minimumCalls: 100, failureRatio: 0.5, openMs: 1000 },
    limitsFor: () => ({ concurrency: 2 }),
    now: () => 0,
    maxWaitMs: 50,
    maxHeldPerKey: 5,
  });
  const calls = Array.from({ length: 7 }, () => guard.acquire('smtp'));
  assert.equal(guard.busy('smtp') + guard.queued('smtp'), 5);
  const results = await Promise.all(calls);
  assert.deepEqual(
    results.map((r) => r.ok),
    [true, true, false, false, false, false, false],
  );
  // The two turned away at once, the three that waited out their time: none holds a slot.
  assert.equal(guard.queued('smtp'), 0);
  assert.equal(guard.busy('smtp'), 2);
});

test('a configuration error opens the circuit at once', async () => {
  let opened = '';
  const guard = new ProviderGuard({
    breaker: { windowMs: 1000, minimumCalls: 100, failureRatio: 0.5, openMs: 5000 },
    now: () => 0,
    onOpen: (key) => (opened = key),
  });
  assert.ok((await guard.acquire('ses')).ok);
  guard.record('ses', { kind: 'config_error', reason: 'bad credentials' });
  assert.equal(opened, 'ses');
  assert.deepEqual(await guard.acquire('ses'), { ok: false, reason: 'circuit_open', delayMs: 5000 });
});

test('the report gives each key its breaker state and the calls, failures and latency since the previous report', async () => {
  let now = 1000;
  const guard = new ProviderGuard({
    breaker: { windowMs: 10_000, minimumCalls: 2, failureRatio: 0.5, openMs: 60_000 },
    now: () => now,
  });
  for (const [elapsed, outcome] of [
    [20, { kind: 'sent', providerMessageId: null }],
    [10, { kind: 'sent', providerMessageId: null }],
    [300, { kind: 'retry', reason: 'HTTP 503' }],
    [40, { kind: 'retry', reason: 'timeout' }],
  ] as const) {
    assert.ok((await guard.acquire('fcm')).ok);
    guard.record('fcm', outcome, elapsed);
  }
  now = 16_000;
  const [fcm] = guard.report();
  assert.deepEqual(fcm, {
    key: 'fcm',
    breakerState: 'open',
    periodMs: 15_000,
    calls: 4,
    failures: 2,
    latencyMsSum: 370,
    latencyMsMax: 300,
  });
  now = 17_000;
  assert.deepEqual(guard.report(), [
    {
      key: 'fcm',
      breakerState: 'open',
      periodMs: 1000,
      calls: 0,
      failures: 0,
      latencyMsSum: 0,
      latencyMsMax: 0,
    },
  ]);
});

test("a failing receiver's circuit opens and defers its deliveries without spending attempts; other receivers flow; after recovery each arrives once", async () => {
  const send = async (user: string) => {
    const res = await h.call('POST', '/v1/notifications', {
      recipients: [user],
      channels: ['webhook'],
      content: { default: { title: user } },
    });
    assert.equal(res.status, 202);
    return res.body.id as string;
  };
  for (let i = 0; i < 10; i++)
    await h.call('PUT', `/v1/users/down-${String(i)}`, { webhook_url: failing.url });
  const down = await Promise.all(Array.from({ length: 10 }, (_, i) => send(`down-${String(i)}`)));
  const up = await Promise.all(Array.from({ length: 10 }, (_, i) => send(`up-${String(i)}`)));

  // The circuit opens: deliveries to the failing origin are deferred, not attempted.
  await waitFor('deferred deliveries', async () => {
    const r = await db.pool.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM delivery_events WHERE detail = 'deferred: circuit open'",
    );
    return (r.rows[0]?.n ?? 0) > 0;
  });
  // Meanwhile the healthy receiver gets every one of its deliveries.
  await waitFor('healthy receiver served and recorded', async () => {
    const r = await db.pool.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM deliveries WHERE notification_id = ANY($1) AND state = 'sent'",
      [up],
    );
    return r.rows[0]?.n === 10;
  });
  assert.equal(healthy.accepted().size, 10);

  // While down for longer than 3 attempts' worth of backoff, nothing died: held-back calls are free.
  const attemptsWhileDown = failing.ledger.length;
  const dead = await db.pool.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM deliveries WHERE state = 'dead'",
  );
  assert.equal(dead.rows[0]?.n, 0);
  assert.ok(
    attemptsWhileDown < 30,
    `the failing receiver saw ${String(attemptsWhileDown)} calls, not 10 × 3`,
  );

  failingIsDown = false;
  await waitFor('recovered receiver served and recorded', async () => {
    const r = await db.pool.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM deliveries WHERE notification_id = ANY($1) AND state = 'sent'",
      [down],
    );
    return r.rows[0]?.n === 10;
  });
  const downStates = await db.pool.query<{ state: string; attempts: number }>(
    'SELECT state, attempts FROM deliveries WHERE notification_id = ANY($1)',
    [down],
  );
  for (const d of downStates.rows) {
    assert.equal(d.state, 'sent');
    assert.ok(d.attempts <= 3, `attempts ${String(d.attempts)}`);
  }
  assert.deepEqual(
    [...failing.accepted().values()],
    Array.from({ length: 10 }, () => 1),
  );
  const metrics = await fetch(`${h.herald.apiUrl ?? ''}/metrics`).then((r) => r.text());
  assert.match(metrics, /herald_circuits_opened_total\{provider="webhook"\} [1-9]/);
  assert.match(metrics, /herald_deliveries_deferred_total\{channel="webhook",reason="circuit_open"\} [1-9]/);
});
