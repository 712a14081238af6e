// Status callbacks end to end (docs/callbacks.md): a service subscribes a real loopback receiver,
// and the receiver verifies every event kind Herald produces with the stock `standardwebhooks`
// package; a failed POST is retried with the same webhook-id, a notification's events arrive in
// order under retries, a message out of attempts is a dead letter that replay delivers; another
// service sees and changes none of it; a slow or flooding receiver does not stall the sender.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../helpers/test-herald.js';
import { waitFor } from '../helpers/wait-for.js';
import { bodyServer, closeServer, listenOnLoopback } from '../helpers/loopback-server.js';
import { loopbackAllowed } from '../helpers/loopback-allowed.js';
import { Subscriber, verifies, type Received } from '../helpers/status-subscriber.js';
import { WebhookProvider } from '../../src/channels/webhook/webhook-provider.js';
import type { ChannelProvider, RenderedMessage } from '../../src/channels/channel-provider.js';
import { applyStatusUpdates } from '../../src/db/stores/receipt-store.js';
import { expireCallbackDeadLetters } from '../../src/db/stores/callback-store.js';
import { createApiKey, ensureService } from '../../src/db/stores/api-key-store.js';
import { callbackEventTypes } from '../../src/domain/callbacks.js';

/** The notification webhook's receiver: 400 for fay, 500 for dan, 200 for everyone else. */
async function channelReceiver(): Promise<{ server: Server; url: string }> {
  const server = bodyServer((_req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    const user = (JSON.parse(body.toString('utf8')) as { user_id: string }).user_id;
    res.writeHead(user === 'fay' ? 400 : user === 'dan' ? 500 : 200).end();
  });
  return { server, url: await listenOnLoopback(server) };
}

class CaptureEmail implements ChannelProvider {
  readonly name = 'capture-email';
  readonly channel = 'email' as const;
  send(message: RenderedMessage) {
    return Promise.resolve({ kind: 'sent' as const, providerMessageId: message.deliveryId });
  }
  close() {
    return Promise.resolve();
  }
}

let db: TestDatabase;
let h: TestHerald;
let sub: Subscriber;
let channel: { server: Server; url: string };
let secret = '';
let subscriptionId = '';
let rivalKey = '';

before(async () => {
  db = await createTestDatabase();
  sub = new Subscriber();
  await sub.start();
  channel = await channelReceiver();
  h = await startTestHerald(db, {
    roles: ['api', 'query', 'worker'],
    env: {
      MAX_ATTEMPTS: '2',
      CALLBACK_MAX_ATTEMPTS: '3',
      CALLBACK_RETRY_BASE_MS: '20',
      CALLBACK_RETRY_MAX_MS: '100',
      CALLBACK_TIMEOUT_MS: '1000',
    },
    providers: [new WebhookProvider({ timeoutMs: 2000, outbound: loopbackAllowed }), new CaptureEmail()],
  });
  rivalKey = await createApiKey(db.pool, await ensureService(db.pool, 'rival'), [
    'admin',
    'notifications:read',
  ]);
  assert.equal((await h.call('PUT', '/v1/service/webhook', { url: channel.url })).status, 200);
  const created = await h.call('POST', '/v1/callback-subscriptions', {
    url: sub.url,
    event_types: callbackEventTypes,
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  secret = created.body.secret as string;
  subscriptionId = created.body.id as string;
});
after(async () => {
  await h.stop();
  await sub.stop();
  await closeServer(channel.server);
  await db.drop();
});

async function send(user: string, channels: string[], extra: Record<string, unknown> = {}): Promise<string> {
  const res = await h.call('POST', '/v1/notifications', {
    recipients: [user],
    channels,
    content: { default: { title: 'Hi', body: 'there' } },
    ...extra,
  });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return res.body.id as string;
}

const arrived = (id: string, type: string) =>
  waitFor(`${type} of ${id}`, () => sub.of(id, type).find((r) => r.status === 200));

describe('every event kind reaches the subscriber, signed', () => {
  test('accepted, sent, delivered, failed, dead, suppressed, inbox.read, bounced, complained', async () => {
    assert.match(secret, /^whsec_[A-Za-z0-9+/]{32}$/);
    assert.equal((await h.call('PUT', '/v1/users/ann', { email: 'ann@example.com' })).status, 200);
    assert.equal((await h.call('PUT', '/v1/users/sam', {})).status, 200);
    const optOut = await h.call('PUT', '/v1/users/sam/preferences', {
      preferences: [{ channel: 'in_app', category: 'general', enabled: false }],
    });
    assert.equal(optOut.status, 200, JSON.stringify(optOut.body));

    const inApp = await send('ann', ['in_app']);
    const hook = await send('ann', ['webhook']);
    const refused = await send('fay', ['webhook']);
    const dead = await send('dan', ['webhook']);
    const suppressed = await send('sam', ['in_app']);
    const mail = await send('ann', ['email']);

    const seen: Received[] = [
      await arrived(inApp, 'notification.accepted'),
      await arrived(inApp, 'delivery.delivered'),
      await arrived(hook, 'delivery.sent'),
      await arrived(refused, 'delivery.failed'),
      await arrived(dead, 'delivery.dead'),
      await arrived(suppressed, 'delivery.suppressed'),
    ];
    const query = h.herald.queryUrl ?? '';
    const token = (await h.call('POST', '/v1/users/ann/token', {}, { base: query })).body.token as string;
    const read = await h.call('POST', `/v1/users/ann/inbox/${encodeURIComponent(inApp)}/read`, undefined, {
      base: query,
      key: token,
    });
    assert.ok(read.status < 300, JSON.stringify(read.body));
    seen.push(await arrived(inApp, 'inbox.read'));

    await arrived(mail, 'delivery.sent');
    const { rows } = await db.pool.query<{ id: string }>(
      'SELECT id FROM deliveries WHERE notification_id = $1',
      [mail],
    );
    const deliveryId = rows[0]?.id ?? '';
    await applyStatusUpdates(db.pool, 'capture-email', [
      { providerMessageId: deliveryId, state: 'complained', detail: 'abuse report' },
    ]);
    seen.push(await arrived(mail, 'email.complained'));
    await applyStatusUpdates(db.pool, 'capture-email', [
      { providerMessageId: deliveryId, state: 'bounced', detail: 'mailbox full' },
    ]);
    seen.push(await arrived(mail, 'email.bounced'));

    for (const r of seen) {
      assert.ok(verifies(secret, r), `${r.body.type} verifies with the subscription's secret`);
      assert.ok(!verifies(`whsec_${Buffer.alloc(24, 3).toString('base64')}`, r), 'and with no other');
      assert.match(r.id, /^[0-9a-f-]{36}$/);
    }
    const bounced = await arrived(mail, 'email.bounced');
    assert.equal(bounced.body.data['delivery_id'], deliveryId);
    assert.equal(bounced.body.data['user_id'], 'ann');
    assert.equal(bounced.body.data['state'], 'bounced');
    assert.equal(bounced.body.data['reason'], 'mailbox full');
    assert.equal(bounced.body.data['channel'], 'email');
    assert.equal((await arrived(refused, 'delivery.failed')).body.data['reason'], 'HTTP 400');
    assert.equal((await arrived(suppressed, 'delivery.suppressed')).body.data['channel'], 'in_app');
  });
});

describe('retries and order', () => {
  test('a 500 is retried with the same webhook-id, and the next event waits for it', async () => {
    let failures = 0;
    let target = '';
    sub.respond = (r) =>
      r.body.type === 'notification.accepted' && r.body.data['notification_id'] === target && failures++ < 2
        ? 500
        : 200;
    target = `shop#${crypto.randomUUID()}`;
    await send('ann', ['in_app'], { id: target });
    const delivered = await arrived(target, 'delivery.delivered');
    const accepted = sub.of(target, 'notification.accepted');
    assert.deepEqual(
      accepted.map((r) => r.status),
      [500, 500, 200],
    );
    assert.equal(new Set(accepted.map((r) => r.id)).size, 1, 'one webhook-id across attempts');
    for (const r of accepted) assert.ok(verifies(secret, r));
    assert.ok(
      sub.log.indexOf(delivered) > sub.log.indexOf(accepted[2] as Received),
      'delivered after accepted',
    );
    assert.equal(sub.of(target, 'delivery.delivered').length, 1);
    sub.respond = () => 200;
  });
});

describe('order with two senders', () => {
  test("each notification's events arrive in order while two workers send and POSTs fail", async () => {
    const second = await startTestHerald(db, {
      roles: ['worker'],
      env: { CALLBACK_MAX_ATTEMPTS: '10', CALLBACK_RETRY_BASE_MS: '20', CALLBACK_RETRY_MAX_MS: '100' },
      providers: [new WebhookProvider({ timeoutMs: 2000, outbound: loopbackAllowed })],
    });
    try {
      // Each accepted message fails twice (the notification's next event is due meanwhile), and
      // every third other message fails its first try (the first
      // Herald gives a message 3 attempts).
      const tries = new Map<string, number>();
      let n = 0;
      sub.respond = (r) => {
        const seen = (tries.get(r.id) ?? 0) + 1;
        tries.set(r.id, seen);
        if (r.body.type === 'notification.accepted') return seen <= 2 ? 500 : 200;
        return seen === 1 && n++ % 3 === 1 ? 500 : 200;
      };
      const ids = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          send('ann', ['in_app'], { id: `shop#${crypto.randomUUID()}` }).then((id) => [id, i] as const),
        ),
      );
      for (const [id] of ids) {
        const delivered = await arrived(id, 'delivery.delivered');
        const accepted = sub.of(id, 'notification.accepted');
        const firstDelivered = sub.log.findIndex(
          (r) => r.body.type === 'delivery.delivered' && r.body.data['notification_id'] === id,
        );
        const lastAccepted = sub.log.lastIndexOf(accepted.at(-1) as Received);
        assert.equal(accepted.at(-1)?.status, 200, id);
        assert.ok(
          lastAccepted < firstDelivered,
          `${id}: accepted was acknowledged before delivered was first sent`,
        );
        assert.equal(new Set(accepted.map((r) => r.id)).size, 1);
        assert.ok(verifies(secret, delivered));
      }
    } finally {
      sub.respond = () => 200;
      await second.stop();
    }
  });
});

describe('dead letters and replay', () => {
  test('a message out of attempts is listed to its service only, and replay delivers it', async () => {
    const target = `shop#${crypto.randomUUID()}`;
    sub.respond = (r) =>
      r.body.type === 'notification.accepted' && r.body.data['notification_id'] === target ? 503 : 200;
    await send('ann', ['in_app'], { id: target });
    const dead = await waitFor('the dead letter', async () => {
      const list = await h.call('GET', '/v1/callback-dead-letters');
      return (
        list.body.dead_letters as { id: string; payload: Record<string, unknown>; attempts: number }[]
      ).find((d) => d.payload['notification_id'] === target);
    });
    assert.equal(dead.attempts, 3);
    const firstId = sub.of(target, 'notification.accepted')[0]?.id;
    assert.equal(dead.id, firstId, 'the dead letter is the message the receiver saw');
    // A dead message no longer holds back the notification's later events.
    await arrived(target, 'delivery.delivered');

    // Another service sees none of it and replays nothing.
    const rival = await h.call('GET', '/v1/callback-dead-letters', undefined, { key: rivalKey });
    assert.deepEqual(rival.body.dead_letters, []);
    const rivalReplay = await h.call(
      'POST',
      '/v1/callback-dead-letters/replay',
      { ids: [dead.id] },
      { key: rivalKey },
    );
    assert.equal(rivalReplay.body.replayed, 0);
    const rivalAll = await h.call(
      'POST',
      '/v1/callback-dead-letters/replay',
      { all: true },
      { key: rivalKey },
    );
    assert.equal(rivalAll.body.replayed, 0);
    assert.equal(sub.of(target, 'notification.accepted').length, 3);

    sub.respond = () => 200;
    const replay = await h.call('POST', '/v1/callback-dead-letters/replay', { ids: [dead.id] });
    assert.equal(replay.status, 200, JSON.stringify(replay.body));
    assert.deepEqual(replay.body, { replayed: 1, ids: [dead.id] });
    const delivered = await arrived(target, 'notification.accepted');
    assert.equal(delivered.id, dead.id, 'the same webhook-id');
    assert.ok(verifies(secret, delivered));
    const after = await h.call('GET', '/v1/callback-dead-letters');
    assert.ok(!(after.body.dead_letters as { id: string }[]).some((d) => d.id === dead.id));
  });

  test('dead letters older than the retention are forgotten, newer ones kept', async () => {
    const insert = (age: string) =>
      db.pool.query<{ id: string }>(
        `INSERT INTO callback_messages (id, subscription_id, service_id, order_key, event_type, payload, state, updated_at)
         SELECT gen_random_uuid(), id, service_id, NULL, 'delivery.sent', '{}', 'dead', now() - $1::interval
           FROM callback_subscriptions WHERE id = $2 RETURNING id`,
        [age, subscriptionId],
      );
    const old = (await insert('91 days')).rows[0]?.id;
    const recent = (await insert('89 days')).rows[0]?.id;
    assert.equal(await expireCallbackDeadLetters(db.pool, 90), 1);
    const { rows } = await db.pool.query<{ id: string }>(
      'SELECT id FROM callback_messages WHERE id = ANY($1)',
      [[old, recent]],
    );
    assert.deepEqual(
      rows.map((r) => r.id),
      [recent],
    );
    await db.pool.query('DELETE FROM callback_messages WHERE id = $1', [recent]);
  });
});

describe('another service', () => {
  test("cannot see, change, rotate or delete a service's subscription (404)", async () => {
    const path = `/v1/callback-subscriptions/${subscriptionId}`;
    const as = { key: rivalKey };
    assert.deepEqual(
      (await h.call('GET', '/v1/callback-subscriptions', undefined, as)).body.subscriptions,
      [],
    );
    for (const [method, p, body] of [
      ['GET', path, undefined],
      ['PATCH', path, { url: 'http://127.0.0.1:9/x', enabled: false }],
      ['DELETE', path, undefined],
      ['POST', `${path}/rotate-secret`, undefined],
    ] as const) {
      const res = await h.call(method, p, body, as);
      assert.equal(res.status, 404, `${method} ${p}`);
      assert.equal(res.body.code, 'not_found');
    }
    const mine = await h.call('GET', path);
    assert.equal(mine.status, 200);
    assert.equal(mine.body.url, sub.url);
    assert.equal(mine.body.enabled, true);
    assert.equal(mine.body.secret, undefined, 'the secret is shown only when created or rotated');
  });

  test('a key without admin cannot manage subscriptions', async () => {
    const sender = await createApiKey(db.pool, await ensureService(db.pool, 'shop'), ['send']);
    const res = await h.call('GET', '/v1/callback-subscriptions', undefined, { key: sender });
    assert.equal(res.status, 403);
  });
});

describe('rotation', () => {
  test('after a rotation both secrets verify during the overlap', async () => {
    const rotated = await h.call('POST', `/v1/callback-subscriptions/${subscriptionId}/rotate-secret`);
    assert.equal(rotated.status, 200);
    const fresh = rotated.body.secret as string;
    assert.notEqual(fresh, secret);
    const id = await send('ann', ['in_app']);
    const r = await arrived(id, 'notification.accepted');
    assert.ok(verifies(fresh, r) && verifies(secret, r));
    secret = fresh;
  });
});

describe('receivers that misbehave', () => {
  test('a receiver that never answers or floods its answer does not stall the sender', async () => {
    const hanging: ServerResponse[] = [];
    const slow = bodyServer((_req, res) => {
      hanging.push(res);
    });
    const flood = bodyServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(65_536, 120);
      let sent = 0;
      const pump = () => {
        while (sent < 2_000 && res.write(chunk)) sent++;
        if (sent < 2_000 && !res.destroyed) res.once('drain', pump);
        else res.end();
      };
      pump();
    });
    const slowUrl = await listenOnLoopback(slow);
    const floodUrl = await listenOnLoopback(flood);
    try {
      const s1 = await h.call('POST', '/v1/callback-subscriptions', {
        url: slowUrl,
        event_types: ['notification.accepted'],
      });
      const s2 = await h.call('POST', '/v1/callback-subscriptions', {
        url: floodUrl,
        event_types: ['notification.accepted'],
      });
      assert.equal(s1.status, 201);
      assert.equal(s2.status, 201);
      const id = await send('ann', ['in_app']);
      await arrived(id, 'notification.accepted');
      await arrived(id, 'delivery.delivered');
      await waitFor('the flood answer taken as delivered', async () => {
        const { rows } = await db.pool.query('SELECT 1 FROM callback_messages WHERE subscription_id = $1', [
          s2.body.id,
        ]);
        return rows.length === 0;
      });
      const retried = await waitFor('the hanging POST timed out and scheduled again', async () => {
        const { rows } = await db.pool.query<{ last_error: string | null }>(
          'SELECT last_error FROM callback_messages WHERE subscription_id = $1',
          [s1.body.id],
        );
        return rows[0]?.last_error === 'timeout' ? rows[0] : undefined;
      });
      assert.equal(retried.last_error, 'timeout');
      for (const s of [s1, s2])
        assert.equal((await h.call('DELETE', `/v1/callback-subscriptions/${String(s.body.id)}`)).status, 204);
    } finally {
      for (const res of hanging) res.destroy();
      await closeServer(slow);
      await closeServer(flood);
    }
  });
});
