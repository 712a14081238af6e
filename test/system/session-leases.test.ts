// Session leases (docs/decisions/0011-session-leases.md) with real worker processes and the
// default 60 s lease: a worker killed with SIGKILL mid-send has its deliveries sent again within
// seconds; a live worker's slow call is not taken back; a worker whose session is terminated
// while it lives registers a new owner, and its old call's late outcome does not overwrite the
// delivery the scheduler took back and sent again.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { idPath, startTestHerald, type TestHerald } from '../helpers/test-herald.js';
import { startWorkerProcesses, type HeraldProcess } from '../helpers/spawn-herald.js';
import { waitFor } from '../helpers/wait-for.js';
import { WebhookReceiver, type Answer } from '../stand-ins/webhook-receiver.js';

let db: TestDatabase;
let h: TestHerald;
let receiver: WebhookReceiver;
let secret: string | undefined;
const workers: HeraldProcess[] = [];
/** How each user's webhook calls are answered, by the call's number for that user (0 first). */
let script: (user: string, call: number) => Answer = () => ({ status: 200 });

const workerEnv = () => ({
  DATABASE_URL: db.url,
  LEASE_SECONDS: '60',
  WEBHOOK_TIMEOUT_MS: '30000',
  POLL_INTERVAL_MS: '200',
});

before(async () => {
  db = await createTestDatabase();
  receiver = new WebhookReceiver(() => secret);
  receiver.answer((request) => {
    const user = String((request.body as { user_id?: unknown }).user_id);
    return script(user, calls(user).length);
  });
  await receiver.start();
  // api and scheduler (both rescuers) in this process; workers are separate processes.
  h = await startTestHerald(db, { roles: ['api', 'scheduler'] });
  secret = (await h.call('PUT', '/v1/service/webhook', { url: receiver.url })).body.webhook_secret;
});
after(async () => {
  for (const w of workers) w.kill('SIGKILL');
  await Promise.all(workers.map((w) => w.exited));
  await h.stop();
  await receiver.stop();
  await db.drop();
});

const calls = (user: string) =>
  receiver.ledger.filter((r) => (r.body as { user_id?: unknown }).user_id === user);

async function startWorker(): Promise<HeraldProcess> {
  const [worker] = await startWorkerProcesses(db.pool, 1, workerEnv());
  assert.ok(worker !== undefined);
  workers.push(worker);
  return worker;
}

async function send(recipients: string[]): Promise<string> {
  const res = await h.call('POST', '/v1/notifications', {
    recipients,
    channels: ['webhook'],
    content: { default: { title: 'Hi' } },
  });
  assert.equal(res.status, 202);
  return res.body.id;
}

async function webhookDeliveries(id: string): Promise<{ id: string; state: string; attempts: number }[]> {
  const view = await h.call('GET', `/v1/notifications/${idPath(id)}`);
  return view.body.deliveries.filter((d: { channel: string }) => d.channel === 'webhook');
}

/** Waits until the notification's webhook deliveries exist and are all sent. */
const allSent = (id: string) =>
  waitFor('the deliveries to be sent', async () => {
    const deliveries = await webhookDeliveries(id);
    return deliveries.length > 0 && deliveries.every((d) => d.state === 'sent') ? deliveries : undefined;
  });

async function eventStates(deliveryId: string): Promise<string[]> {
  const r = await db.pool.query<{ state: string }>(
    'SELECT state FROM delivery_events WHERE delivery_id = $1 ORDER BY created_at, state',
    [deliveryId],
  );
  return r.rows.map((e) => e.state);
}

test('a worker killed mid-send has its deliveries sent again within 10 s, not after its lease', async () => {
  const users = ['k1', 'k2', 'k3', 'k4'];
  script = (_user, call) => (call === 0 ? { hang: true } : { status: 200 });
  const a = await startWorker();
  const id = await send(users);
  await waitFor('worker A to call the receiver for all four', () =>
    users.every((u) => calls(u).length === 1),
  );
  await startWorker();
  a.kill('SIGKILL');
  assert.equal(await a.exited, 'SIGKILL');
  const killedAt = Date.now();
  const sent = await allSent(id);
  assert.equal(sent.length, 4);
  const resentAfterMs = Math.max(...users.map((u) => (calls(u)[1]?.at ?? Infinity) - killedAt));
  assert.ok(resentAfterMs < 10_000, `resent ${String(resentAfterMs)} ms after the kill`);
  for (const d of await webhookDeliveries(id)) {
    assert.equal(d.attempts, 2);
    assert.equal(receiver.accepted().get(d.id), 1);
  }
});

test('a live worker’s slow provider call is not taken back: its session lives', async () => {
  script = () => ({ status: 200, delayMs: 3500 });
  const id = await send(['slow']);
  const [delivery] = await allSent(id);
  assert.equal(delivery?.attempts, 1);
  assert.equal(calls('slow').length, 1);
  assert.deepEqual(await eventStates(delivery.id), ['pending', 'sending', 'sent']);
});

test('a worker whose session is terminated re-registers; its late outcome does not overwrite the resend', async () => {
  const worker = workers.at(-1);
  assert.ok(worker?.child.pid !== undefined);
  // The first call answers 503 after 4 s: by then the delivery was taken back and sent again.
  script = (_user, call) => (call === 0 ? { status: 503, delayMs: 4000 } : { status: 200 });
  const id = await send(['cut']);
  await waitFor('the first call', () => calls('cut').length === 1);
  const fenced = () => worker.output().split('lease lost before the outcome was recorded').length - 1;
  const fencedBefore = fenced();
  const before = await db.pool.query<{ owner: string }>('SELECT owner FROM worker_sessions WHERE pid = $1', [
    worker.child.pid,
  ]);
  assert.equal(before.rows.length, 1);
  await db.pool.query('SELECT pg_terminate_backend(backend_pid) FROM worker_sessions WHERE pid = $1', [
    worker.child.pid,
  ]);
  await waitFor('the old call’s 503 to be fenced', () => fenced() > fencedBefore, 30_000);
  const [delivery] = await webhookDeliveries(id);
  assert.equal(delivery?.state, 'sent');
  assert.equal(delivery.attempts, 2);
  assert.deepEqual(
    calls('cut').map((c) => c.answeredStatus),
    [503, 200],
  );
  assert.deepEqual(await eventStates(delivery.id), ['pending', 'sending', 'retrying', 'sending', 'sent']);
  const afterRows = await db.pool.query<{ owner: string }>(
    'SELECT owner FROM worker_sessions WHERE pid = $1',
    [worker.child.pid],
  );
  assert.equal(afterRows.rows.length, 1);
  assert.notEqual(afterRows.rows[0]?.owner, before.rows[0]?.owner);
  assert.ok(worker.child.exitCode === null, 'the worker lives on');
});
