// A worker killed with SIGKILL in the middle of a send loses its lease; another worker
// delivers the notification. A worker sent SIGTERM finishes its in-flight send and exits 0.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { idPath, startTestHerald, type TestHerald } from '../helpers/test-herald.js';
import { spawnHerald, type HeraldProcess } from '../helpers/spawn-herald.js';
import { waitFor } from '../helpers/wait-for.js';
import { WebhookReceiver } from '../stand-ins/webhook-receiver.js';

let db: TestDatabase;
let h: TestHerald;
let receiver: WebhookReceiver;
let secret: string | undefined;
const workers: HeraldProcess[] = [];

const workerEnv = () => ({
  DATABASE_URL: db.url,
  LEASE_SECONDS: '2',
  WEBHOOK_TIMEOUT_MS: '1500',
  POLL_INTERVAL_MS: '200',
  SHUTDOWN_TIMEOUT_MS: '10000',
});

before(async () => {
  db = await createTestDatabase();
  receiver = new WebhookReceiver(() => secret);
  await receiver.start();
  // api and scheduler (lease rescue) in this process; workers are separate processes.
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

async function webhookDelivery(id: string) {
  const view = await h.call('GET', `/v1/notifications/${idPath(id)}`);
  return view.body.deliveries.find((d: { channel: string }) => d.channel === 'webhook');
}

test('a delivery whose worker is killed mid-lease is delivered by another worker', async () => {
  // The first request is held open: worker A is mid-send when it dies.
  receiver.answer((_r, i) => (i === 0 ? { hang: true } : { status: 200 }));
  const a = spawnHerald(['worker'], workerEnv());
  workers.push(a);
  const res = await h.call('POST', '/v1/notifications', {
    recipients: ['k1'],
    channels: ['webhook'],
    content: { default: { title: 'Hi' } },
  });
  assert.equal(res.status, 202);
  await waitFor('worker A to call the receiver', () => receiver.ledger.length === 1, 30_000).catch(
    (error: unknown) => {
      throw new Error(`${String(error)}; worker A said: ${a.output()}`);
    },
  );
  const leased = await webhookDelivery(res.body.id);
  assert.equal(leased.state, 'sending');
  a.kill('SIGKILL');
  assert.equal(await a.exited, 'SIGKILL');

  const b = spawnHerald(['worker'], workerEnv());
  workers.push(b);
  const sent = await waitFor(
    'delivery sent by worker B',
    async () => {
      const d = await webhookDelivery(res.body.id);
      return d?.state === 'sent' ? d : undefined;
    },
    30_000,
  );
  assert.equal(sent.attempts, 2);
  assert.equal(receiver.accepted().get(sent.id), 1);
  const events = await db.pool.query<{ state: string; detail: string | null }>(
    'SELECT state, detail FROM delivery_events WHERE delivery_id = $1 ORDER BY created_at',
    [sent.id],
  );
  assert.deepEqual(
    events.rows.map((e) => e.state),
    ['pending', 'sending', 'retrying', 'sending', 'sent'],
  );
  assert.equal(events.rows[2]?.detail, 'lease expired');

  // SIGTERM mid-send: the worker stops claiming, finishes the send in flight, records it, exits 0.
  receiver.answer(() => ({ status: 200, delayMs: 800 }));
  const second = await h.call('POST', '/v1/notifications', {
    recipients: ['k2'],
    channels: ['webhook'],
    content: { default: { title: 'Bye' } },
  });
  const before = receiver.ledger.length;
  await waitFor('worker B to call the receiver', () => receiver.ledger.length > before, 30_000);
  b.kill('SIGTERM');
  assert.equal(await b.exited, 0, b.output());
  const finished = await webhookDelivery(second.body.id);
  assert.equal(finished.state, 'sent');
  assert.equal(finished.attempts, 1);
});
