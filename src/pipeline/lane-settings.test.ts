// Lane settings changed at runtime: `herald settings set transactional-reserved-share …` while a
// worker runs changes the bulk lane's cap of in-flight sends without a restart (the worker
// reloads on the herald_settings 'lanes' hint), and `unset` goes back to the configured share.
// The receiver holds every request open, so the requests it holds are the sends in flight.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../../test/helpers/test-herald.js';
import { spawnHerald } from '../../test/helpers/spawn-herald.js';
import { waitFor } from '../../test/helpers/wait-for.js';
import { WebhookReceiver } from '../../test/stand-ins/webhook-receiver.js';

let db: TestDatabase;
let h: TestHerald;
let receiver: WebhookReceiver;
let secret: string | undefined;

before(async () => {
  db = await createTestDatabase();
  receiver = new WebhookReceiver(() => secret);
  receiver.answer(() => ({ hang: true }));
  await receiver.start();
  // 8 slots; a reserved share of 0.75 leaves the bulk lane 2 of them.
  h = await startTestHerald(db, {
    roles: ['api', 'worker'],
    env: {
      WORKER_CONCURRENCY: '8',
      TRANSACTIONAL_RESERVED_SHARE: '0.75',
      WEBHOOK_RATE_PER_SECOND: '0',
      // The held sends stay in flight for the whole test: none times out and frees its slot.
      WEBHOOK_TIMEOUT_MS: '120000',
      LEASE_SECONDS: '300',
    },
  });
  secret = (await h.call('PUT', '/v1/service/webhook', { url: receiver.url })).body.webhook_secret;
});
after(async () => {
  await receiver.stop();
  await h.stop();
  await db.drop();
});

async function herald(...args: string[]): Promise<string> {
  const run = spawnHerald(args, { DATABASE_URL: db.url, TRANSACTIONAL_RESERVED_SHARE: '0.75' });
  assert.equal(await run.exited, 0, run.output());
  return run.output();
}

const post = (lane: string, users: string[]) =>
  h.call('POST', '/v1/notifications', {
    recipients: users,
    channels: ['webhook'],
    lane,
    content: { default: { title: 'Hi' } },
  });

/** Deliveries of a lane the receiver holds (each once). */
const held = (lane: string) =>
  new Set(receiver.ledger.filter((r) => String(r.body.user_id).startsWith(lane)).map((r) => r.deliveryId))
    .size;

test('the reserved share changed with herald settings caps a running worker’s bulk sends at once', async () => {
  const users = Array.from({ length: 20 }, (_, i) => `bulk-${String(i)}`);
  assert.equal((await post('bulk', users)).status, 202);
  await waitFor('2 bulk sends in flight', () => held('bulk') >= 2, 30_000);
  // A transactional send is claimed after them: by then the worker has seen it may hold no more bulk.
  assert.equal((await post('transactional', ['tx-1'])).status, 202);
  await waitFor('the transactional send', () => held('tx') >= 1, 30_000);
  assert.equal(held('bulk'), 2);

  assert.match(await herald('settings', 'set', 'transactional-reserved-share', '0.25'), /reload/);
  // 8 × (1 − 0.25) = 6 bulk slots, without a restart.
  await waitFor('6 bulk sends in flight', () => held('bulk') >= 6, 30_000);
  assert.equal((await post('transactional', ['tx-2'])).status, 202);
  await waitFor('the second transactional send', () => held('tx') >= 2, 30_000);
  assert.equal(held('bulk'), 6);
  assert.match(await herald('settings', 'show'), /transactional-reserved-share 0\.25 \(set\)/);
  // unset: back to the configured value.
  assert.match(await herald('settings', 'unset', 'transactional-reserved-share'), /unset/);
  const row = await db.pool.query('SELECT transactional_reserved_share AS share FROM lane_settings');
  assert.deepEqual(row.rows, [{ share: null }]);
});

test('herald settings refuses an unknown name or a value out of range and changes nothing', async () => {
  const row = () => db.pool.query('SELECT * FROM lane_settings').then((r) => JSON.stringify(r.rows));
  const was = await row();
  const refused = [
    ['set', 'transactional-reserved-share', '0.95'],
    ['set', 'claim-batch-size', '2.5'],
    ['set', 'worker-concurrency', '4'],
  ];
  const runs = refused.map((args) => spawnHerald(['settings', ...args], { DATABASE_URL: db.url }));
  for (const [i, run] of runs.entries()) {
    assert.equal(await run.exited, 2, `${refused[i]?.join(' ') ?? ''}: ${run.output()}`);
    assert.match(run.output(), /usage: herald settings/);
  }
  assert.equal(await row(), was);
});
