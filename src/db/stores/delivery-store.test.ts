// The outcome writers against the real database: they store exactly the decided values, the
// fence holds, and the lock functions return the rows as they are.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '../../../test/helpers/test-database.js';
import { withTransaction } from '../pools.js';
import type { Transition } from '../../domain/outcome-policy.js';
import { ensureService } from './api-key-store.js';
import { claimDeliveries, outcomeKey, writeOutcomes, type OutcomeWrite } from './delivery-store.js';
import { lockDeliveries, lockExpiredLeases } from './delivery-lease-store.js';

let db: TestDatabase;
let serviceId: number;
const createdAt = new Date();
const owner = randomUUID();

before(async () => {
  db = await createTestDatabase();
  serviceId = await ensureService(db.pool, 'shop');
});
after(() => db.drop());
beforeEach(async () => {
  await db.pool.query('TRUNCATE notifications, deliveries, delivery_events');
});

interface Row {
  state: string;
  attempts: number;
  run_at: Date;
  db_now: Date;
  last_error: string | null;
  provider_message_id: string | null;
  provider: string | null;
  lease_owner: string | null;
  lease_expires_at: Date | null;
}

/** One webhook delivery in `state`, leased by `leaseOwner` at `attempts`. */
async function delivery(
  options: {
    state?: string;
    attempts?: number;
    leaseOwner?: string | null;
    leaseExpired?: boolean;
    channel?: string;
    target?: string;
    lastError?: string | null;
  } = {},
): Promise<{ id: string; channel: string; target: string }> {
  const notificationId = `shop#${randomUUID()}`;
  const id = randomUUID();
  const channel = options.channel ?? 'webhook';
  const target = options.target ?? 'https://receiver.example/hook';
  await db.pool.query(
    `INSERT INTO notifications (id, created_at, service_id, lane, category, channels, content, updated_at)
     VALUES ($1, $2, $3, 'transactional', 'general', ARRAY[$4], '{"default":{"title":"t"}}', $2)`,
    [notificationId, createdAt, serviceId, channel],
  );
  await db.pool.query(
    `INSERT INTO deliveries (id, notification_id, notification_created_at, service_id, user_id, channel, target, lane,
                             state, attempts, max_attempts, run_at, lease_owner, lease_expires_at, last_error)
     VALUES ($1, $2, $3, $4, 'u1', $5, $6, 'transactional', $7, $8, 3, now() - interval '1 hour', $9,
             now() + CASE WHEN $10 THEN interval '-1 second' ELSE interval '1 minute' END, $11)`,
    [
      id,
      notificationId,
      createdAt,
      serviceId,
      channel,
      target,
      options.state ?? 'sending',
      options.attempts ?? 1,
      options.leaseOwner === undefined ? owner : options.leaseOwner,
      options.leaseExpired ?? false,
      options.lastError ?? null,
    ],
  );
  return { id, channel, target };
}

async function row(id: string): Promise<Row> {
  const r = await db.pool.query<Row>(
    `SELECT state, attempts, run_at, now() AS db_now, last_error, provider_message_id, provider, lease_owner,
            lease_expires_at
       FROM deliveries WHERE id = $1`,
    [id],
  );
  const found = r.rows[0];
  assert.ok(found !== undefined);
  return found;
}

async function events(id: string): Promise<{ state: string; attempt: number; detail: string | null }[]> {
  const r = await db.pool.query<{ state: string; attempt: number; detail: string | null }>(
    'SELECT state, attempt, detail FROM delivery_events WHERE delivery_id = $1 ORDER BY created_at',
    [id],
  );
  return r.rows;
}

const transition = (overrides: Partial<Transition> = {}): Transition => ({
  from: 'sending',
  fromAttempts: 1,
  to: 'retrying',
  attempts: 1,
  delayMs: 60_000,
  lastError: 'HTTP 503',
  providerMessageId: null,
  disableTarget: false,
  acceptedLate: false,
  event: { attempt: 1, detail: 'HTTP 503' },
  ...overrides,
});

function write(
  d: { id: string; channel: string; target: string },
  t: Transition,
  provider: string | null = 'webhook',
): OutcomeWrite {
  return {
    id: d.id,
    notificationCreatedAt: createdAt,
    channel: d.channel,
    target: d.target,
    provider,
    transition: t,
  };
}

const writeAll = (by: string | null, writes: OutcomeWrite[]) =>
  withTransaction(db.pool, (client) => writeOutcomes(client, by, writes));

describe('writeOutcomes: the values', () => {
  test('stores exactly the decided values, ends the lease and records the event', async () => {
    const d = await delivery({ lastError: 'earlier' });
    const written = await writeAll(owner, [write(d, transition())]);
    assert.deepEqual([...written], [outcomeKey(d.id, 1)]);
    const r = await row(d.id);
    assert.equal(r.state, 'retrying');
    assert.equal(r.attempts, 1);
    assert.equal(r.last_error, 'HTTP 503');
    assert.equal(r.provider, 'webhook');
    assert.equal(r.lease_owner, null);
    assert.equal(r.lease_expires_at, null);
    // run_at = the database's now() + the delay.
    const dueIn = r.run_at.getTime() - r.db_now.getTime();
    assert.ok(dueIn > 59_000 && dueIn <= 60_000, `due in ${String(dueIn)} ms`);
    assert.deepEqual(await events(d.id), [{ state: 'retrying', attempt: 1, detail: 'HTTP 503' }]);
  });

  test('null means unchanged: a send keeps last_error and run_at, and stores the message id', async () => {
    const d = await delivery({ lastError: 'HTTP 503 on attempt 1', attempts: 2 });
    const before = await row(d.id);
    await writeAll(owner, [
      write(
        d,
        transition({
          fromAttempts: 2,
          attempts: 2,
          to: 'sent',
          delayMs: null,
          lastError: null,
          providerMessageId: 'msg-1',
          event: { attempt: 2, detail: 'msg-1' },
        }),
      ),
    ]);
    const r = await row(d.id);
    assert.equal(r.state, 'sent');
    assert.equal(r.last_error, 'HTTP 503 on attempt 1');
    assert.equal(r.provider_message_id, 'msg-1');
    assert.equal(r.run_at.getTime(), before.run_at.getTime());
  });

  test('an attempt that does not count is taken back', async () => {
    const d = await delivery({ attempts: 3 });
    await writeAll(owner, [
      write(
        d,
        transition({ fromAttempts: 3, attempts: 2, delayMs: 0, lastError: 'deferred: circuit open' }),
        null,
      ),
    ]);
    const r = await row(d.id);
    assert.equal(r.attempts, 2);
    assert.equal(r.provider, null);
    assert.ok(r.run_at.getTime() <= r.db_now.getTime());
  });
});

describe('writeOutcomes: the fence and the targets', () => {
  test('the fence: another owner, another attempt or another state writes nothing', async () => {
    const otherOwner = await delivery({ leaseOwner: randomUUID() });
    const laterAttempt = await delivery({ attempts: 2 });
    const rescued = await delivery({ state: 'retrying', leaseOwner: null });
    const mine = await delivery();
    const written = await writeAll(owner, [
      write(otherOwner, transition()),
      write(laterAttempt, transition()),
      write(rescued, transition()),
      write(mine, transition()),
    ]);
    assert.deepEqual([...written], [outcomeKey(mine.id, 1)]);
    assert.equal((await row(otherOwner.id)).state, 'sending');
    assert.equal((await row(laterAttempt.id)).state, 'sending');
    assert.equal((await row(rescued.id)).state, 'retrying');
    assert.deepEqual(await events(rescued.id), []);
  });

  test('without an owner, the expected state and attempts alone decide (rows the caller holds locked)', async () => {
    const dead = await delivery({ state: 'dead', attempts: 3, leaseOwner: null });
    const t = transition({
      from: 'dead',
      fromAttempts: 3,
      attempts: 3,
      to: 'sent',
      delayMs: null,
      lastError: null,
      providerMessageId: 'late-1',
      acceptedLate: true,
      event: { attempt: 3, detail: 'accepted late' },
    });
    assert.equal((await writeAll(null, [write(dead, t)])).size, 1);
    assert.equal((await row(dead.id)).state, 'sent');
    // Written once: the same write again finds it no longer dead.
    assert.equal((await writeAll(null, [write(dead, t)])).size, 0);
  });

  test('two attempts of one delivery in a batch: only the one still leased is written, and named', async () => {
    const d = await delivery({ attempts: 2 });
    const written = await writeAll(owner, [
      write(d, transition()),
      write(d, transition({ fromAttempts: 2, attempts: 2, event: { attempt: 2, detail: 'x' } })),
    ]);
    assert.deepEqual([...written], [outcomeKey(d.id, 2)]);
  });

  test('an invalid target is stopped: the push device disabled, the chat URL removed', async () => {
    const deviceId = randomUUID();
    const chatUrl = `https://hooks.slack.example/${randomUUID()}`;
    await db.pool.query(
      "INSERT INTO users (id, chat_webhook_url) VALUES ('u1', $1) ON CONFLICT (id) DO UPDATE SET chat_webhook_url = $1",
      [chatUrl],
    );
    await db.pool.query(
      "INSERT INTO devices (id, user_id, platform, app_id, token) VALUES ($1, 'u1', 'ios', 'app', $2)",
      [deviceId, randomUUID()],
    );
    const push = await delivery({ channel: 'push', target: deviceId });
    const chat = await delivery({ channel: 'chat', target: chatUrl });
    const invalid = (reason: string) =>
      transition({
        to: 'target_invalid',
        delayMs: null,
        lastError: reason,
        disableTarget: true,
        event: { attempt: 1, detail: reason },
      });
    await writeAll(owner, [write(push, invalid('Unregistered')), write(chat, invalid('HTTP 404'))]);
    const device = await db.pool.query<{ enabled: boolean; disabled_reason: string }>(
      'SELECT enabled, disabled_reason FROM devices WHERE id = $1',
      [deviceId],
    );
    assert.deepEqual(device.rows[0], { enabled: false, disabled_reason: 'Unregistered' });
    const user = await db.pool.query<{ chat_webhook_url: string | null }>(
      "SELECT chat_webhook_url FROM users WHERE id = 'u1'",
    );
    assert.equal(user.rows[0]?.chat_webhook_url, null);
  });
});

describe('lockExpiredLeases and lockDeliveries', () => {
  test('only sending rows whose lease expired, and a row one scheduler holds is skipped by another', async () => {
    const expired = await delivery({ leaseExpired: true, attempts: 2 });
    await delivery();
    await delivery({ state: 'retrying', leaseOwner: null, leaseExpired: true });
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      const first = await lockExpiredLeases(client, 10);
      assert.deepEqual(
        first.map((l) => ({ id: l.id, state: l.state, attempts: l.attempts, maxAttempts: l.maxAttempts })),
        [{ id: expired.id, state: 'sending', attempts: 2, maxAttempts: 3 }],
      );
      const second = await withTransaction(db.pool, (other) => lockExpiredLeases(other, 10));
      assert.deepEqual(second, []);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });

  test('lockDeliveries returns each delivery as it is now; a missing one is left out', async () => {
    const dead = await delivery({ state: 'dead', attempts: 3, leaseOwner: null });
    const leased = await delivery({ attempts: 2 });
    const rows = await withTransaction(db.pool, (client) =>
      lockDeliveries(client, [
        { id: dead.id, notificationCreatedAt: createdAt },
        { id: leased.id, notificationCreatedAt: createdAt },
        { id: randomUUID(), notificationCreatedAt: createdAt },
      ]),
    );
    const byId = new Map(rows.map((r) => [r.id, { state: r.state, attempts: r.attempts }]));
    assert.equal(rows.length, 2);
    assert.deepEqual(byId.get(dead.id), { state: 'dead', attempts: 3 });
    assert.deepEqual(byId.get(leased.id), { state: 'sending', attempts: 2 });
  });
});

describe('claimDeliveries: the push device', () => {
  test("a push delivery gets its user's device, and none once the token was registered by another user", async () => {
    const deviceId = randomUUID();
    await db.pool.query("INSERT INTO users (id) VALUES ('u1'), ('u2') ON CONFLICT (id) DO NOTHING");
    await db.pool.query(
      "INSERT INTO devices (id, user_id, platform, app_id, token) VALUES ($1, 'u1', 'ios', 'app', 'tok')",
      [deviceId],
    );
    const claim = async () => {
      const push = await delivery({
        channel: 'push',
        target: deviceId,
        state: 'pending',
        attempts: 0,
        leaseOwner: null,
      });
      const claimed = await claimDeliveries(db.pool, { limit: 10, bulkLimit: 10 }, randomUUID(), 30);
      return claimed.find((c) => c.id === push.id);
    };
    assert.deepEqual((await claim())?.device, { id: deviceId, platform: 'ios', appId: 'app', token: 'tok' });
    // The token moves to u2 (upsertDevice keeps the row and its id): u1's delivery must not reach it.
    await db.pool.query("UPDATE devices SET user_id = 'u2' WHERE id = $1", [deviceId]);
    const moved = await claim();
    assert.ok(moved !== undefined, 'the delivery was claimed');
    assert.equal(moved.device, null);
  });
});
