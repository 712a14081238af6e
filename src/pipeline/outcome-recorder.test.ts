// The outcome recorder against the real database: outcomes decided by the policy and written
// under the lease; a provider's acceptance that arrives after its lease was lost (the rescuer
// took the delivery back, or another worker claimed it) is recorded late, so neither a retry, a
// newer claim nor a dead-letter replay sends it again.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { ensureService } from '../db/stores/api-key-store.js';
import { type ClaimedDelivery } from '../db/stores/delivery-store.js';
import { listDeadLetters, replayDeadLetters } from '../db/stores/dead-letter-store.js';
import type { CallResult } from '../domain/outcome-policy.js';
import { createLogger } from '../observability/logger.js';
import { rescueExpiredLeases } from '../scheduler/lease-rescuer.js';
import { DeliveryClaimer } from './delivery-claimer.js';
import { OutcomeRecorder } from './outcome-recorder.js';

let db: TestDatabase;
let serviceId: number;
const createdAt = new Date();
const policy = { retry: { baseMs: 1000, maxMs: 60_000 }, circuitOpenMs: 30_000 };
const limits = { concurrency: 10, reservedShare: 0.25, batchSize: 10 };

before(async () => {
  db = await createTestDatabase();
  serviceId = await ensureService(db.pool, 'shop');
});
after(() => db.drop());
beforeEach(async () => {
  await db.pool.query('TRUNCATE notifications, deliveries, delivery_events');
});

/** A worker: its claimer and its recorder under one lease owner. */
function worker() {
  const owner = randomUUID();
  const claimer = new DeliveryClaimer(db.pool, owner, limits, 60);
  const recorder = new OutcomeRecorder({
    pool: db.pool,
    owner,
    logger: createLogger('silent'),
    policy,
    random: () => 0.5,
  });
  return {
    async claimOne(): Promise<ClaimedDelivery> {
      const { deliveries } = await claimer.claim(1, 0);
      const claimed = deliveries[0];
      assert.ok(claimed !== undefined, 'a delivery was claimed');
      return claimed;
    },
    /** Claims one, then loses the lease: it expires and the rescuer takes the delivery back. */
    async claimAndLoseLease(): Promise<ClaimedDelivery> {
      const claimed = await this.claimOne();
      await expireLeases();
      await rescue();
      return claimed;
    },
    report: (delivery: ClaimedDelivery, result: CallResult, aborted = false) =>
      recorder.record({ delivery, result, provider: 'webhook', aborted }),
  };
}

/** A due webhook delivery with `maxAttempts`, and `attempts` already used. */
async function pending(maxAttempts: number, attempts = 0): Promise<string> {
  const notificationId = `shop#${randomUUID()}`;
  const id = randomUUID();
  await db.pool.query(
    `INSERT INTO notifications (id, created_at, service_id, lane, category, channels, content, updated_at)
     VALUES ($1, $2, $3, 'transactional', 'general', '{webhook}', '{"default":{"title":"t"}}', $2)`,
    [notificationId, createdAt, serviceId],
  );
  await db.pool.query(
    `INSERT INTO deliveries (id, notification_id, notification_created_at, service_id, user_id, channel, target, lane,
                             state, attempts, max_attempts, run_at)
     VALUES ($1, $2, $3, $4, 'u1', 'webhook', 'https://receiver.example/hook', 'transactional', 'pending', $5, $6,
             now() - interval '1 second')`,
    [id, notificationId, createdAt, serviceId, attempts, maxAttempts],
  );
  return id;
}

async function expireLeases(): Promise<void> {
  await db.pool.query(
    "UPDATE delivery_queue SET lease_expires_at = now() - interval '1 second' WHERE lease_owner IS NOT NULL",
  );
}

const rescue = () => rescueExpiredLeases({ pool: db.pool, policy, random: () => 0.5 }, 100);

async function state(id: string) {
  const r = await db.pool.query<{
    state: string;
    attempts: number;
    provider_message_id: string | null;
    provider: string | null;
    lease_owner: string | null;
  }>('SELECT state, attempts, provider_message_id, provider, lease_owner FROM deliveries WHERE id = $1', [
    id,
  ]);
  return r.rows[0];
}

async function events(id: string) {
  const r = await db.pool.query<{ state: string; attempt: number; detail: string | null }>(
    'SELECT state, attempt, detail FROM delivery_events WHERE delivery_id = $1 ORDER BY created_at, state',
    [id],
  );
  return r.rows.map((e) => `${e.state}#${String(e.attempt)}${e.detail === null ? '' : ` ${e.detail}`}`);
}

const replay = (id: string) => replayDeadLetters(db.pool, serviceId, { ids: [id] }, 100, new Date(0));

describe('outcomes under the lease', () => {
  test('each result is written as the policy decides it', async () => {
    const w = worker();
    const ids = [await pending(3), await pending(3), await pending(3), await pending(3)];
    const claimed = await Promise.all(ids.map(() => w.claimOne()));
    const [a, b, c, d] = claimed;
    assert.ok(a !== undefined && b !== undefined && c !== undefined && d !== undefined);
    const recorded = await Promise.all([
      w.report(a, { kind: 'sent', providerMessageId: 'msg-a' }),
      w.report(b, { kind: 'retry', reason: 'HTTP 503' }),
      w.report(c, { kind: 'deferred', reason: 'rate_limited', delayMs: 500 }),
      w.report(d, { kind: 'threw', message: 'socket hang up' }, true),
    ]);
    assert.deepEqual(recorded, [
      { kind: 'recorded', state: 'sent' },
      { kind: 'recorded', state: 'retrying' },
      { kind: 'recorded', state: 'retrying' },
      { kind: 'recorded', state: 'retrying' },
    ]);
    assert.equal((await state(a.id))?.provider_message_id, 'msg-a');
    assert.equal((await state(b.id))?.attempts, 1);
    // Held back or released at shutdown: the attempt does not count.
    assert.equal((await state(c.id))?.attempts, 0);
    assert.equal((await state(d.id))?.attempts, 0);
    assert.deepEqual(await events(d.id), ['sending#1', 'retrying#1 released at shutdown']);
  });

  test('an outcome for a lease the rescuer took back is fenced off, unless it is an acceptance', async () => {
    const id = await pending(3);
    const w = worker();
    const claimed = await w.claimOne();
    await expireLeases();
    assert.deepEqual(await rescue(), { retried: 1, dead: 0 });
    assert.deepEqual(await w.report(claimed, { kind: 'retry', reason: 'late 503' }), { kind: 'fenced' });
    assert.equal((await state(id))?.state, 'retrying');
    assert.deepEqual(await events(id), ['sending#1', 'retrying#1 lease expired']);
  });
});

describe('a late acceptance', () => {
  test('the last attempt outlives its lease, the rescuer makes it dead, then the provider accepts: sent, and a replay moves nothing', async () => {
    const id = await pending(3, 2);
    const w = worker();
    const claimed = await w.claimOne();
    assert.equal(claimed.attempt, 3);
    await expireLeases();
    assert.deepEqual(await rescue(), { retried: 0, dead: 1 });
    assert.equal((await state(id))?.state, 'dead');

    const recorded = await w.report(claimed, { kind: 'sent', providerMessageId: 'msg-late' });
    assert.deepEqual(recorded, { kind: 'accepted_late' });
    assert.deepEqual(await state(id), {
      state: 'sent',
      attempts: 3,
      provider_message_id: 'msg-late',
      provider: 'webhook',
      lease_owner: null,
    });
    assert.deepEqual(await events(id), [
      'sending#3',
      'dead#3 lease expired',
      'sent#3 accepted late, after the lease of attempt 3 was lost: msg-late',
    ]);
    assert.deepEqual(await replay(id), []);
    assert.deepEqual(await listDeadLetters(db.pool, serviceId, 10), []);
  });

  test('after a replay (pending again), the late acceptance still makes it sent', async () => {
    const id = await pending(1);
    const w = worker();
    const claimed = await w.claimAndLoseLease();
    assert.deepEqual(await replay(id), [id]);
    assert.deepEqual(await w.report(claimed, { kind: 'sent', providerMessageId: 'm' }), {
      kind: 'accepted_late',
    });
    assert.equal((await state(id))?.state, 'sent');
    // Nothing is due any more: no worker claims it.
    assert.deepEqual(
      (await new DeliveryClaimer(db.pool, randomUUID(), limits, 60).claim(10, 0)).deliveries,
      [],
    );
  });

  test('while another worker holds it: recorded as sent, that worker’s outcome is fenced off, nothing is left to rescue', async () => {
    const id = await pending(3);
    const a = worker();
    const b = worker();
    const first = await a.claimOne();
    await expireLeases();
    assert.deepEqual(await rescue(), { retried: 1, dead: 0 });
    const second = await b.claimOne();
    assert.equal(second.attempt, 2);

    assert.deepEqual(await a.report(first, { kind: 'sent', providerMessageId: 'msg-1' }), {
      kind: 'accepted_late',
    });
    const now = await state(id);
    assert.equal(now?.state, 'sent');
    assert.equal(now.lease_owner, null);
    assert.equal(now.attempts, 2);
    // B's call was the duplicate: its answer, whatever it is, changes nothing.
    assert.deepEqual(await b.report(second, { kind: 'sent', providerMessageId: 'msg-2' }), {
      kind: 'fenced',
    });
    assert.deepEqual(await b.report(second, { kind: 'retry', reason: '503' }), { kind: 'fenced' });
    assert.equal((await state(id))?.provider_message_id, 'msg-1');
    await expireLeases();
    assert.deepEqual(await rescue(), { retried: 0, dead: 0 });
    assert.deepEqual(await replay(id), []);
  });

  test('a delivery that ended otherwise stays as it is', async () => {
    const id = await pending(3);
    const w = worker();
    const claimed = await w.claimAndLoseLease();
    await db.pool.query("UPDATE deliveries SET state = 'canceled' WHERE id = $1", [id]);
    assert.deepEqual(await w.report(claimed, { kind: 'sent', providerMessageId: 'm' }), { kind: 'fenced' });
    assert.equal((await state(id))?.state, 'canceled');
  });

  test('two late acceptances of one delivery: the first is recorded, the second fenced', async () => {
    const id = await pending(3);
    const w = worker();
    const first = await w.claimAndLoseLease();
    const second = await w.claimAndLoseLease();
    const [one, two] = await Promise.all([
      w.report(first, { kind: 'sent', providerMessageId: 'm1' }),
      w.report(second, { kind: 'sent', providerMessageId: 'm2' }),
    ]);
    assert.deepEqual([one, two], [{ kind: 'accepted_late' }, { kind: 'fenced' }]);
    assert.equal((await state(id))?.provider_message_id, 'm1');
  });
});
