// The support lookup on the query role: notifications sent through the API and delivered by
// the worker (in-app, and webhook to a loopback receiver that fails once) come back with every
// delivery and delivery event, for support keys only, one user at a time, page by page.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../../test/helpers/test-herald.js';
import { waitFor } from '../../test/helpers/wait-for.js';
import { WebhookReceiver } from '../../test/stand-ins/webhook-receiver.js';
import { createApiKey, ensureService } from '../db/stores/api-key-store.js';
import { maskTarget } from '../domain/contact.js';
import { permissions, senderPermissions } from '../domain/permissions.js';

let db: TestDatabase;
let h: TestHerald;
let receiver: WebhookReceiver;
let supportKey: string;
let senderKey: string;
let billingKey: string;

/** ana's notifications, oldest first, and bob's. */
const sentTo: Record<'ana' | 'bob', string[]> = { ana: [], bob: [] };
let first: string;
let shared: string;
let fromBilling: string;

const hour = 3_600_000;
const day = 24 * hour;

function lookup(
  userId: string,
  query: Record<string, string>,
  key: string | null = supportKey,
): ReturnType<TestHerald['call']> {
  const search = new URLSearchParams(query).toString();
  return h.call('GET', `/v1/support/users/${userId}/notifications?${search}`, undefined, {
    base: h.herald.queryUrl ?? '',
    key,
  });
}

const around = (from = Date.now() - hour, to = Date.now() + hour) => ({
  from: new Date(from).toISOString(),
  to: new Date(to).toISOString(),
});

async function send(
  key: string,
  recipients: string[],
  channels: string[],
  category: string,
): Promise<string> {
  const res = await h.call(
    'POST',
    '/v1/notifications',
    { recipients, channels, category, content: { default: { title: `About ${category}` } } },
    { key },
  );
  assert.equal(res.status, 202, JSON.stringify(res.body));
  const id = res.body.id as string;
  for (const r of recipients) if (r === 'ana' || r === 'bob') sentTo[r].push(id);
  return id;
}

before(async () => {
  db = await createTestDatabase();
  receiver = new WebhookReceiver(() => undefined);
  // The first webhook call fails, so its delivery has a retry in its history.
  receiver.answer((_r, i) => (i === 0 ? { status: 503 } : { status: 200 }));
  await receiver.start();
  h = await startTestHerald(db);
  const shop = await ensureService(db.pool, 'shop');
  supportKey = await createApiKey(db.pool, shop, ['support']);
  senderKey = await createApiKey(db.pool, shop, senderPermissions);
  billingKey = await createApiKey(db.pool, await ensureService(db.pool, 'billing'), senderPermissions);
  for (const user of ['ana', 'bob'])
    assert.equal((await h.call('PUT', `/v1/users/${user}`, { webhook_url: receiver.url })).status, 200);

  first = await send(senderKey, ['ana'], ['in_app', 'webhook'], 'orders');
  // Its webhook is the receiver's first call, the one that fails.
  await waitFor('the first webhook sent on its second attempt', async () => {
    const { rows } = await db.pool.query<{ state: string }>(
      `SELECT state FROM deliveries WHERE notification_id = $1 AND channel = 'webhook'`,
      [first],
    );
    return rows[0]?.state === 'sent';
  });
  fromBilling = await send(billingKey, ['ana'], ['in_app'], 'invoices');
  shared = await send(senderKey, ['ana', 'bob'], ['in_app', 'webhook'], 'news');
  await send(senderKey, ['bob'], ['in_app'], 'news');
  for (let i = 0; i < 5; i += 1) await send(senderKey, ['ana'], ['in_app'], 'tips');

  // ana: 2 + 1 + 2 + 5 deliveries, bob: 2 + 1, every one finished.
  await waitFor('every delivery finished', async () => {
    const { rows } = await db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM deliveries WHERE state IN ('sent', 'delivered')`,
    );
    return rows[0]?.n === 13;
  });
});

after(async () => {
  await h.stop();
  await receiver.stop();
  await db.drop();
});

describe('what the lookup shows', () => {
  test("every service's notifications to the user, newest first, with every delivery and event", async () => {
    const res = await lookup('ana', around());
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const items: any[] = res.body.notifications;
    assert.deepEqual(new Set(items.map((n) => n.id)), new Set(sentTo.ana));
    assert.equal(items.length, sentTo.ana.length);
    const order = items.map((n) => [n.created_at, n.id].join(' '));
    assert.deepEqual(order, [...order].sort().reverse(), 'newest first');
    assert.equal(res.body.next_cursor, null);
    assert.equal(res.body.user_id, 'ana');

    const byId = new Map(items.map((n) => [n.id, n]));
    assert.equal(byId.get(fromBilling).service, 'billing');
    const n = byId.get(first);
    assert.equal(n.service, 'shop');
    assert.equal(n.category, 'orders');
    assert.equal(n.lane, 'transactional');
    assert.deepEqual(n.channels, ['in_app', 'webhook']);
    assert.equal(n.template, null);
    assert.equal(n.version, 1);
    assert.equal(n.canceled_at, null);
    assert.equal(n.recipient.state, 'fanned_out');
    assert.deepEqual(n.recipient.skipped, []);
    assert.equal(n.inbox.read_at, null);
    assert.equal(n.inbox.deleted_at, null);
    assert.equal(typeof n.inbox.created_at, 'string');

    assert.deepEqual(n.deliveries.map((d: any) => d.channel).sort(), ['in_app', 'webhook']);
    const inApp = n.deliveries.find((d: any) => d.channel === 'in_app');
    assert.equal(inApp.state, 'delivered');
    assert.equal(inApp.target, 'inbox');
    assert.ok(inApp.events.length >= 1);
    const webhook = n.deliveries.find((d: any) => d.channel === 'webhook');
    assert.equal(webhook.state, 'sent');
    assert.equal(webhook.attempts, 2);
    assert.equal(webhook.provider, 'webhook');
    assert.equal(webhook.target, `${new URL(receiver.url).origin}/***`, 'the URL path is not shown');
    assert.match(webhook.last_error, /503/, 'the last error, kept after the retry succeeded');
    const states = webhook.events.map((e: any) => `${e.state}/${String(e.attempt)}`);
    assert.deepEqual(
      states.filter((s: string) => !s.startsWith('sending')),
      ['pending/0', 'retrying/1', 'sent/2'],
    );
    assert.equal(states.filter((s: string) => s.startsWith('sending')).length, 2, states.join(', '));
    const times = webhook.events.map((e: any) => e.created_at);
    assert.deepEqual(times, [...times].sort(), 'events in the order they happened');
    assert.match(webhook.events.find((e: any) => e.state === 'retrying').detail, /503/);
  });

  test("only the user's own deliveries of a notification sent to several users", async () => {
    const ana = (await lookup('ana', around())).body.notifications.find((n: any) => n.id === shared);
    const bob = (await lookup('bob', around())).body.notifications.find((n: any) => n.id === shared);
    assert.equal(ana.deliveries.length, 2);
    assert.equal(bob.deliveries.length, 2);
    const anaIds = new Set(ana.deliveries.map((d: any) => d.id));
    assert.ok(bob.deliveries.every((d: any) => !anaIds.has(d.id)));
  });

  test("another user's notifications never appear", async () => {
    const bob = await lookup('bob', around());
    assert.deepEqual(new Set(bob.body.notifications.map((n: any) => n.id)), new Set(sentTo.bob));
    const anaOnly = new Set(sentTo.ana.filter((id) => !sentTo.bob.includes(id)));
    assert.ok(bob.body.notifications.every((n: any) => !anaOnly.has(n.id)));
    const nobody = await lookup('nobody', around());
    assert.equal(nobody.status, 200);
    assert.deepEqual(nobody.body.notifications, []);
  });

  test('the range is [from, to): a range before the notifications is empty', async () => {
    const res = await lookup('ana', around(Date.now() - 30 * day, Date.now() - 29 * day));
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.notifications, []);
    const items = (await lookup('ana', around())).body.notifications;
    const newest = items[0];
    const exclusive = await lookup('ana', { from: items.at(-1).created_at, to: newest.created_at });
    assert.ok(!exclusive.body.notifications.some((n: any) => n.id === newest.id), 'to is exclusive');
    assert.ok(
      exclusive.body.notifications.some((n: any) => n.id === items.at(-1).id),
      'from is inclusive',
    );
  });
});

describe('pagination', () => {
  test('pages follow next_cursor without duplicates or gaps', async () => {
    const all = (await lookup('ana', around())).body.notifications.map((n: any) => n.id);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const res = await lookup('ana', {
        ...around(),
        limit: '3',
        ...(cursor === undefined ? {} : { cursor }),
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.ok(res.body.notifications.length <= 3);
      seen.push(...res.body.notifications.map((n: any) => n.id));
      cursor = res.body.next_cursor ?? undefined;
      pages += 1;
    } while (cursor !== undefined && pages < 10);
    assert.deepEqual(seen, all);
    assert.equal(pages, Math.ceil(all.length / 3));
  });

  test('a malformed cursor is 400 cursor_invalid', async () => {
    for (const cursor of [
      'garbage',
      Buffer.from('123|not-an-id').toString('base64url'),
      Buffer.from('x|shop#0190a2b4-7c1d-7e2f-8a3b-4c5d6e7f8091').toString('base64url'),
    ]) {
      const res = await lookup('ana', { ...around(), cursor });
      assert.equal(res.status, 400, cursor);
      assert.equal(res.body.code, 'cursor_invalid');
      assert.equal(res.body.errors[0].field, 'querystring/cursor');
    }
  });

  test('limit is 1 to 200', async () => {
    for (const limit of ['0', '201']) {
      const res = await lookup('ana', { ...around(), limit });
      assert.equal(res.status, 400);
      assert.equal(res.body.code, 'validation_failed');
    }
    assert.equal((await lookup('ana', { ...around(), limit: '200' })).status, 200);
  });
});

describe('who may look', () => {
  test('a key without the support permission is 403; no key is 401', async () => {
    const allButSupport = await createApiKey(
      db.pool,
      await ensureService(db.pool, 'shop'),
      permissions.filter((p) => p !== 'support'),
    );
    for (const key of [senderKey, allButSupport]) {
      const res = await lookup('ana', around(), key);
      assert.equal(res.status, 403);
      assert.equal(res.body.code, 'forbidden');
      assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
    }
    const none = await lookup('ana', around(), null);
    assert.equal(none.status, 401);
    assert.equal(none.body.code, 'unauthenticated');
  });
});

describe('range rules', () => {
  const expectField = async (query: Record<string, string>, field: string) => {
    const res = await lookup('ana', query);
    assert.equal(res.status, 400, JSON.stringify(query));
    assert.equal(res.body.code, 'validation_failed');
    assert.ok(
      res.body.errors.some(
        (e: any) =>
          e.field === field || (e.field === 'querystring' && e.message.includes(field.split('/')[1])),
      ),
      `${JSON.stringify(query)}: ${JSON.stringify(res.body.errors)}`,
    );
  };

  test('from and to are required date-times', async () => {
    await expectField({ to: new Date().toISOString() }, 'querystring/from');
    await expectField({ from: new Date(Date.now() - hour).toISOString() }, 'querystring/to');
    await expectField({ ...around(), from: 'yesterday' }, 'querystring/from');
  });

  test('to must be later than from', async () => {
    const at = new Date(Date.now() - hour).toISOString();
    await expectField({ from: at, to: at }, 'querystring/to');
    await expectField(around(Date.now(), Date.now() - hour), 'querystring/to');
  });

  test('a range is at most 366 days, starting no earlier than 366 days ago', async () => {
    await expectField(around(Date.now() - 300 * day, Date.now() + 67 * day), 'querystring/to');
    await expectField(around(Date.now() - 367 * day, Date.now() - 300 * day), 'querystring/from');
    const widest = await lookup('ana', around(Date.now() - 365 * day, Date.now() + day));
    assert.equal(widest.status, 200, JSON.stringify(widest.body));
    assert.equal(widest.body.notifications.length, sentTo.ana.length);
  });
});

test('contact targets are masked', () => {
  assert.equal(maskTarget('email', 'kim.lee@example.com'), 'k***@example.com');
  assert.equal(maskTarget('sms', '+821012345678'), '+82********78');
  assert.equal(
    maskTarget('chat', 'https://hooks.slack.com/services/T0/B0/secret'),
    'https://hooks.slack.com/***',
  );
  assert.equal(maskTarget('webhook', 'not a url'), '***');
  assert.equal(
    maskTarget('push', '0190a2b4-7c1d-7e2f-8a3b-4c5d6e7f8091'),
    '0190a2b4-7c1d-7e2f-8a3b-4c5d6e7f8091',
  );
});
