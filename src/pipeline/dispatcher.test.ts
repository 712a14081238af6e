import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { idPath, startTestHerald, type TestHerald } from '../../test/helpers/test-herald.js';
import { waitFor } from '../../test/helpers/wait-for.js';
import { WebhookReceiver } from '../../test/stand-ins/webhook-receiver.js';

let db: TestDatabase;
let h: TestHerald;
let receiver: WebhookReceiver;
let secret: string | undefined;

before(async () => {
  db = await createTestDatabase();
  receiver = new WebhookReceiver(() => secret);
  await receiver.start();
  h = await startTestHerald(db, { env: { MAX_ATTEMPTS: '3', RETRY_BASE_MS: '50', RETRY_MAX_MS: '400' } });
  const hook = await h.call('PUT', '/v1/service/webhook', { url: receiver.url });
  secret = hook.body.webhook_secret;
});
after(async () => {
  await h.stop();
  await receiver.stop();
  await db.drop();
});
beforeEach(() => {
  receiver.ledger.length = 0;
  receiver.answer(() => ({ status: 200 }));
});

const send = (user: string, extra: Record<string, unknown> = {}) =>
  h.call('POST', '/v1/notifications', {
    recipients: [user],
    channels: ['webhook', 'in_app'],
    content: { default: { title: 'Build', body: 'Deploy finished', status: 'done' } },
    ...extra,
  });

async function deliveryOf(notificationId: string, channel: string) {
  const view = await h.call('GET', `/v1/notifications/${idPath(notificationId)}`);
  return view.body.deliveries.find((d: { channel: string }) => d.channel === channel);
}

async function events(deliveryId: string): Promise<string[]> {
  const r = await db.pool.query<{ state: string }>(
    'SELECT state FROM delivery_events WHERE delivery_id = $1 ORDER BY created_at',
    [deliveryId],
  );
  return r.rows.map((e) => e.state);
}

describe('webhook delivery', () => {
  test('a 2xx answer marks the delivery sent; the request is signed and carries the content', async () => {
    const res = await send('w1');
    const delivery = await waitFor('webhook sent', async () => {
      const d = await deliveryOf(res.body.id, 'webhook');
      return d?.state === 'sent' ? d : undefined;
    });
    assert.equal(receiver.ledger.length, 1);
    const received = receiver.ledger[0];
    assert.ok(received !== undefined);
    assert.equal(received.signatureValid, true);
    assert.equal(received.deliveryId, delivery.id);
    assert.equal(received.body['notification_id'], res.body.id);
    assert.equal(received.body['title'], 'Build');
    assert.equal(received.body['status'], 'done');
    assert.deepEqual(await events(delivery.id), ['pending', 'sending', 'sent']);
    const inApp = await deliveryOf(res.body.id, 'in_app');
    assert.equal(inApp.state, 'delivered');
  });

  test('a failing receiver is retried with growing backoff, then the delivery is dead, then replay delivers it', async () => {
    receiver.answer(() => ({ status: 503 }));
    const res = await send('w2');
    const dead = await waitFor('delivery dead', async () => {
      const d = await deliveryOf(res.body.id, 'webhook');
      return d?.state === 'dead' ? d : undefined;
    });
    assert.equal(dead.attempts, 3);
    assert.match(dead.last_error, /HTTP 503/);
    assert.equal(receiver.ledger.length, 3);
    assert.deepEqual(await events(dead.id), [
      'pending',
      'sending',
      'retrying',
      'sending',
      'retrying',
      'sending',
      'dead',
    ]);
    // The retries were spaced out, not immediate (backoff with a 100 ms floor, base 50 ms).
    const gaps = receiver.ledger.slice(1).map((r, i) => r.at - (receiver.ledger[i]?.at ?? 0));
    for (const gap of gaps) assert.ok(gap >= 90, `retry came after ${String(gap)} ms`);

    const listed = await h.call('GET', '/v1/dead-letters');
    assert.ok(listed.body.dead_letters.some((d: { id: string }) => d.id === dead.id));

    receiver.answer(() => ({ status: 200 }));
    const replay = await h.call('POST', '/v1/dead-letters/replay', { ids: [dead.id] });
    assert.equal(replay.body.replayed, 1);
    await waitFor(
      'replayed delivery sent',
      async () => (await deliveryOf(res.body.id, 'webhook'))?.state === 'sent',
    );
    assert.equal(receiver.accepted().get(dead.id), 1);

    // Replaying again finds nothing dead: nothing is sent twice.
    const again = await h.call('POST', '/v1/dead-letters/replay', { ids: [dead.id] });
    assert.equal(again.body.replayed, 0);
  });

  test('429 with Retry-After waits at least that long before the next attempt', async () => {
    receiver.answer((_r, i) =>
      i === 0 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 200 },
    );
    const res = await send('w3');
    await waitFor('sent after 429', async () => (await deliveryOf(res.body.id, 'webhook'))?.state === 'sent');
    const [first, second] = receiver.ledger;
    assert.ok(first !== undefined && second !== undefined);
    assert.ok(second.at - first.at >= 950, `second attempt after ${String(second.at - first.at)} ms`);
  });

  test('another 4xx is a permanent failure after one attempt', async () => {
    receiver.answer(() => ({ status: 400 }));
    const res = await send('w4');
    const failed = await waitFor('failed', async () => {
      const d = await deliveryOf(res.body.id, 'webhook');
      return d?.state === 'failed' ? d : undefined;
    });
    assert.equal(failed.attempts, 1);
    assert.equal(receiver.ledger.length, 1);
  });

  test("a user's own webhook URL wins over the service's", async () => {
    const own = new WebhookReceiver(() => secret);
    await own.start();
    try {
      await h.call('PUT', '/v1/users/w5', { webhook_url: own.url });
      const res = await send('w5');
      await waitFor('sent', async () => (await deliveryOf(res.body.id, 'webhook'))?.state === 'sent');
      assert.equal(own.ledger.length, 1);
      assert.equal(receiver.ledger.length, 0);
    } finally {
      await own.stop();
    }
  });
});

describe('updates and cancellation', () => {
  test('PATCH changes what the in-app copy shows; an older version never wins, even under concurrency', async () => {
    const res = await send('p1', {
      channels: ['in_app'],
      content: { in_app: { title: 'Install', status: 'installing' } },
    });
    await waitFor(
      'in-app delivered',
      async () => (await deliveryOf(res.body.id, 'in_app'))?.state === 'delivered',
    );
    const path = `/v1/notifications/${idPath(res.body.id)}`;
    const done = await h.call('PATCH', path, {
      version: 3,
      content: { in_app: { title: 'Install', status: 'done' } },
    });
    assert.equal(done.status, 200);
    assert.equal(done.body.applied, true);
    // A late "installing" (version 2) and retries of both arrive afterwards, 50 at once.
    const late = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        i % 2 === 0
          ? h.call('PATCH', path, {
              version: 2,
              content: { in_app: { title: 'Install', status: 'installing' } },
            })
          : h.call('PATCH', path, { version: 3, content: { in_app: { title: 'Install', status: 'done' } } }),
      ),
    );
    for (const [i, r] of late.entries()) {
      if (i % 2 === 0) assert.equal(r.body.code, 'version_conflict');
      else assert.equal(r.body.applied, false);
    }
    const inbox = await h.call('GET', '/v1/users/p1/inbox', undefined, { base: h.herald.queryUrl ?? '' });
    const item = inbox.body.items.find((i: { id: string }) => i.id === res.body.id);
    assert.equal(item.status, 'done');
    assert.equal(item.version, 3);
  });

  test('a scheduled notification is not sent early and can be cancelled', async () => {
    const sendAt = new Date(Date.now() + 60 * 60_000).toISOString();
    const res = await send('s1', { send_at: sendAt });
    assert.equal(res.body.status, 'scheduled');
    // Let the fan-out stage run a full batch: the recipient is not due and stays pending.
    await h.herald.fanOut?.fanOutBatch();
    const view = await h.call('GET', `/v1/notifications/${idPath(res.body.id)}`);
    assert.equal(view.body.status, 'scheduled');
    assert.equal(view.body.deliveries.length, 0);
    const cancel = await h.call('POST', `/v1/notifications/${idPath(res.body.id)}/cancel`);
    assert.equal(cancel.status, 200);
    assert.equal(cancel.body.canceled_recipients, 1);
    const after = await h.call('GET', `/v1/notifications/${idPath(res.body.id)}`);
    assert.equal(after.body.status, 'canceled');
    assert.equal(after.body.recipients[0].state, 'canceled');
    const twice = await h.call('POST', `/v1/notifications/${idPath(res.body.id)}/cancel`);
    assert.equal(twice.body.code, 'not_cancelable');
  });

  test('a scheduled notification goes out once it is due', async () => {
    const res = await send('s2', { send_at: new Date(Date.now() + 1500).toISOString() });
    assert.equal(res.body.status, 'scheduled');
    await h.herald.fanOut?.fanOutBatch();
    assert.equal((await h.call('GET', `/v1/notifications/${idPath(res.body.id)}`)).body.deliveries.length, 0);
    const sent = await waitFor('scheduled webhook sent', async () => {
      const d = await deliveryOf(res.body.id, 'webhook');
      return d?.state === 'sent' ? d : undefined;
    });
    const at = receiver.ledger.find((r) => r.deliveryId === sent.id)?.at ?? 0;
    assert.ok(at >= Date.parse(res.body.send_at), 'not sent before send_at');
  });
});

describe('operability', () => {
  test('/healthz, /readyz and /metrics report the pipeline', async () => {
    const res = await send('m1');
    await waitFor('sent', async () => (await deliveryOf(res.body.id, 'webhook'))?.state === 'sent');
    assert.equal((await h.call('GET', '/healthz', undefined, { key: null })).status, 200);
    const ready = await h.call('GET', '/readyz', undefined, { key: null });
    assert.equal(ready.status, 200);
    assert.equal(ready.body.status, 'ready');
    const metrics = await fetch(`${h.herald.apiUrl ?? ''}/metrics`).then((r) => r.text());
    assert.match(metrics, /herald_recipients_accepted_total\{lane="transactional"\} [1-9]/);
    assert.match(metrics, /herald_delivery_outcomes_total\{channel="webhook",outcome="sent"\} [1-9]/);
    assert.match(metrics, /herald_delivery_outcomes_total\{channel="in_app",outcome="delivered"\} [1-9]/);
    assert.match(metrics, /herald_pending_deliveries\{lane="bulk"\} \d/);
    assert.match(metrics, /herald_oldest_pending_delivery_age_seconds\{lane="transactional"\} [\d.]+/);
    assert.match(metrics, /herald_claim_batch_size_bucket\{le="1",stage="delivery"\} [1-9]/);
    const docs = await fetch(`${h.herald.apiUrl ?? ''}/openapi.json`).then(
      (r) => r.json() as Promise<{ paths: Record<string, unknown> }>,
    );
    assert.ok('/v1/notifications' in docs.paths);
    assert.equal((await fetch(`${h.herald.apiUrl ?? ''}/docs/`)).status, 200);
  });
});

describe('shutdown', () => {
  test('sends still running at the shutdown timeout are aborted and released, their attempt not counted', async () => {
    // A database of its own: no other worker may claim these deliveries.
    const ownDb = await createTestDatabase();
    const hanging = new WebhookReceiver(() => undefined);
    await hanging.start();
    hanging.answer(() => ({ hang: true }));
    const other = await startTestHerald(ownDb, { env: { SHUTDOWN_TIMEOUT_MS: '300' } });
    try {
      const hook = await other.call('PUT', '/v1/service/webhook', { url: hanging.url });
      assert.equal(hook.status, 200);
      // Three sends hanging at once (a claimed batch shares one abort signal): each is released.
      const ids: string[] = [];
      for (const user of ['s1', 's2', 's3']) {
        const res = await other.call('POST', '/v1/notifications', {
          recipients: [user],
          channels: ['webhook'],
          content: { default: { title: 'Bye' } },
        });
        assert.equal(res.status, 202);
        ids.push(res.body.id as string);
      }
      await waitFor('all three sends running', () => hanging.ledger.length === 3);
      const started = Date.now();
      await other.stop();
      assert.ok(Date.now() - started < 5000, 'the stop did not wait for the hanging receiver');
      for (const id of ids) {
        const rows = await ownDb.pool.query<{ line: string }>(
          `SELECT e.state || ' ' || e.attempt || coalesce(' ' || e.detail, '') AS line
             FROM delivery_events e JOIN deliveries d ON d.id = e.delivery_id
            WHERE d.notification_id = $1 AND e.state <> 'pending' ORDER BY e.created_at`,
          [id],
        );
        assert.deepEqual(
          rows.rows.map((r) => r.line),
          ['sending 1', 'retrying 1 released at shutdown'],
        );
        const delivery = await ownDb.pool.query<{ state: string; attempts: number }>(
          'SELECT state, attempts FROM deliveries WHERE notification_id = $1',
          [id],
        );
        assert.deepEqual(delivery.rows, [{ state: 'retrying', attempts: 0 }]);
      }
    } finally {
      await hanging.stop();
      await ownDb.drop();
    }
  });
});
