// The attack of issue #12 replayed against a running Herald with two services, A (shop) and B
// (billing), each holding a `sender,admin` key, and the organisation's user directory holding
// users:write: B cannot change, read in full or delete A's users' targets; A's messages reach only
// the targets the directory set; B's key never reads, changes or deletes A's in-app items, while a
// user token shows the user every service's items; and revoking a key or a user's tokens reaches
// the streams and tokens derived from them (docs/security.md).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { idPath, startTestHerald, type TestHerald } from '../helpers/test-herald.js';
import { waitFor } from '../helpers/wait-for.js';
import { openSse, type SseClient } from '../helpers/sse-client.js';
import { changedTables, tableSnapshot } from '../helpers/table-snapshot.js';
import { WebhookReceiver } from '../stand-ins/webhook-receiver.js';
import { SlackWebhookStandIn } from '../stand-ins/slack-webhook.js';
import { createApiKey, ensureService, revokeApiKey } from '../../src/db/stores/api-key-store.js';
import { parsePermissions, type Permission } from '../../src/domain/permissions.js';

let db: TestDatabase;
let h: TestHerald;
let shopKey: string;
let billingKey: string;
let directoryKey: string;
let directoryKeyId: number;
let shopSecret = '';
const shopReceiver = new WebhookReceiver(() => shopSecret);
const attackerReceiver = new WebhookReceiver(() => undefined);
const slack = new SlackWebhookStandIn();
const userChat = '/services/T1/B1/usersecretpath';
const attackerChat = '/services/T9/B9/attackerpath';
let userWebhook = '';

const senderAdmin = parsePermissions('sender,admin') ?? [];

async function key(service: string, permissions: readonly Permission[]): Promise<string> {
  return createApiKey(db.pool, await ensureService(db.pool, service), permissions);
}

const query = () => ({ base: h.herald.queryUrl ?? '' });

before(async () => {
  db = await createTestDatabase();
  await Promise.all([shopReceiver.start(), attackerReceiver.start(), slack.start()]);
  h = await startTestHerald(db, { roles: ['api', 'query', 'worker'], service: 'shop' });
  shopKey = await key('shop', senderAdmin);
  billingKey = await key('billing', senderAdmin);
  directoryKey = await key('directory', ['users:read', 'users:write']);
  directoryKeyId = (
    await db.pool.query<{ id: number }>(
      "SELECT max(id) AS id FROM api_keys WHERE permissions @> '{users:write}'",
    )
  ).rows[0]?.id as number;
  const hook = await h.call(
    'PUT',
    '/v1/service/webhook',
    { url: `${shopReceiver.url}/service` },
    { key: shopKey },
  );
  assert.equal(hook.status, 200, JSON.stringify(hook.body));
  shopSecret = hook.body.webhook_secret as string;
  // The receiver's credentials ride in the URL, as many receivers take them.
  userWebhook =
    shopReceiver.url.replace('http://', 'http://hook-user:hook-pass@') + '/users/u-1?token=s3cret';
  const created = await h.call(
    'PUT',
    '/v1/users/u-1',
    {
      email: 'una@example.com',
      phone: '+821012345678',
      webhook_url: userWebhook,
      chat_webhook_url: slack.url(userChat),
    },
    { key: directoryKey },
  );
  assert.equal(created.status, 200, JSON.stringify(created.body));
});

after(async () => {
  await h.stop();
  await Promise.all([shopReceiver.stop(), attackerReceiver.stop(), slack.stop()]);
  await db.drop();
});

describe("service against service: A's users' contact targets", () => {
  test('B cannot change, read or delete them, through either role, and nothing is written', async () => {
    const as = { key: billingKey };
    const attackerTargets = {
      email: 'mallory@evil.example',
      phone: '+12025550123',
      webhook_url: `${attackerReceiver.url}/steal`,
      chat_webhook_url: slack.url(attackerChat),
    };
    const before = await tableSnapshot(db.pool);
    const attempts = [
      await h.call('PUT', '/v1/users/u-1', attackerTargets, as),
      await h.call('POST', '/v1/users/bulk', { users: [{ id: 'u-1', ...attackerTargets }] }, as),
      await h.call('DELETE', '/v1/users/u-1', undefined, as),
      await h.call('POST', '/v1/users/u-1/devices', { platform: 'ios', app_id: 'a', token: 'evil' }, as),
      await h.call('PUT', '/v1/users/u-1/devices', { devices: [] }, as),
      await h.call(
        'PUT',
        '/v1/users/u-1/preferences',
        { preferences: [{ channel: '*', category: '*', enabled: false }] },
        as,
      ),
      await h.call(
        'PUT',
        '/v1/users/u-1/preferences',
        { preferences: [{ channel: '*', category: '*', enabled: false }] },
        { ...as, ...query() },
      ),
      await h.call('GET', '/v1/users/u-1', undefined, as),
      await h.call('GET', '/v1/users/u-1/devices', undefined, as),
      await h.call('GET', '/v1/users/u-1/contact-history', undefined, as),
      await h.call('GET', '/v1/users/u-1/preferences', undefined, as),
    ];
    for (const res of attempts) {
      assert.equal(res.status, 403, JSON.stringify(res.body));
      assert.equal(res.body.code, 'forbidden');
      assert.ok(!JSON.stringify(res.body).includes('una@example.com'));
    }
    assert.deepEqual(changedTables(before, await tableSnapshot(db.pool)), []);
  });

  test('a key allowed to read users sees email and phone, but no URL beyond its origin', async () => {
    const reader = await key('billing', ['users:read']);
    const res = await h.call('GET', '/v1/users/u-1', undefined, { key: reader });
    assert.equal(res.status, 200);
    assert.equal(res.body.email, 'una@example.com');
    assert.equal(res.body.phone, '+821012345678');
    assert.equal(res.body.webhook_url, `${new URL(shopReceiver.url).origin}/***`);
    assert.equal(res.body.chat_webhook_url, `${slack.base}/***`);
    const text = JSON.stringify(res.body);
    for (const secret of ['hook-user', 'hook-pass', 's3cret', 'usersecretpath'])
      assert.ok(!text.includes(secret), `${secret} is shown`);
    // A writer that may not read sees them masked.
    const writer = await key('directory', ['users:write']);
    const masked = await h.call('GET', '/v1/users/u-1', undefined, { key: writer });
    assert.equal(masked.body.email, 'u***@example.com');
    assert.equal(masked.body.phone, '+82********78');
  });

  test("A's message reaches only the targets the directory set, the webhook signed with A's secret", async () => {
    const sent = await h.call(
      'POST',
      '/v1/notifications',
      {
        recipients: ['u-1'],
        channels: ['webhook', 'chat', 'in_app'],
        category: 'security',
        content: { default: { title: 'Password reset', body: 'Your code is 123456' } },
      },
      { key: shopKey },
    );
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    await waitFor(
      'the webhook and the chat message',
      () =>
        shopReceiver.ledger.some((r) => r.body['notification_id'] === sent.body.id) &&
        slack.accepted.some((m) => m.text.includes('Password reset')),
    );
    const webhook = shopReceiver.ledger.find((r) => r.body['notification_id'] === sent.body.id);
    assert.equal(webhook?.signatureValid, true);
    assert.deepEqual(
      slack.accepted.filter((m) => m.text.includes('Password reset')).map((m) => m.path),
      [userChat],
    );
    assert.equal(attackerReceiver.ledger.length, 0);
    // A reads its notification back: the targets it went to, masked (A may not read contact data).
    const view = await waitFor('every delivery sent', async () => {
      const res = await h.call('GET', `/v1/notifications/${idPath(sent.body.id)}`, undefined, {
        key: shopKey,
      });
      return res.body.status === 'completed' ? res.body : undefined;
    });
    const targets = Object.fromEntries(
      (view.deliveries as { channel: string; target: string }[]).map((d) => [d.channel, d.target]),
    );
    assert.deepEqual(targets, {
      webhook: `${new URL(shopReceiver.url).origin}/***`,
      chat: `${slack.base}/***`,
      in_app: 'inbox',
    });
  });

  test("the contact history names the directory's key for every target it set, values masked", async () => {
    const res = await h.call('GET', '/v1/users/u-1/contact-history', undefined, { key: directoryKey });
    assert.equal(res.status, 200);
    const byTarget = Object.fromEntries(
      (res.body.changes as { target: string; value: string | null }[]).map((c) => [c.target, c]),
    );
    for (const target of ['email', 'phone', 'webhook_url', 'chat_webhook_url'])
      assert.deepEqual(
        { ...byTarget[target], changed_at: undefined, value: undefined },
        {
          target,
          action: 'set',
          key_id: directoryKeyId,
          service: 'directory',
          changed_at: undefined,
          value: undefined,
        },
      );
    assert.equal(byTarget['email']?.value, 'u***@example.com');
    assert.equal(byTarget['webhook_url']?.value, `${new URL(shopReceiver.url).origin}/***`);
    assert.ok(!JSON.stringify(res.body).includes('hook-pass'));
  });
});

describe("service against service: the inbox is the user's, items stay their service's", () => {
  let shopItem = '';
  let billingItem = '';

  before(async () => {
    const send = async (as: string, title: string) => {
      const res = await h.call(
        'POST',
        '/v1/notifications',
        { recipients: ['u-2'], channels: ['in_app'], content: { default: { title } } },
        { key: as },
      );
      assert.equal(res.status, 202);
      return res.body.id as string;
    };
    shopItem = await send(shopKey, 'Shop: your reset code is 123456');
    billingItem = await send(billingKey, 'Billing: invoice ready');
  });

  const userToken = async () => {
    const issuer = await key('shop', ['user_tokens']);
    const res = await h.call('POST', '/v1/users/u-2/token', {}, { key: issuer, ...query() });
    assert.equal(res.status, 201);
    return res.body.token as string;
  };

  test("B's inbox key lists, counts and reaches only B's items; A's are 404 and stay unchanged", async () => {
    const inbox = await key('billing', ['inbox']);
    const as = { key: inbox, ...query() };
    const token = await userToken();
    const asUser = { key: token, ...query() };
    await waitFor('both items in the inbox', async () => {
      const res = await h.call('GET', '/v1/users/u-2/inbox', undefined, asUser);
      return res.body.items?.length === 2;
    });
    const list = await h.call('GET', '/v1/users/u-2/inbox', undefined, as);
    assert.deepEqual(
      (list.body.items as { id: string }[]).map((i) => i.id),
      [billingItem],
    );
    assert.deepEqual((await h.call('GET', '/v1/users/u-2/inbox/count', undefined, as)).body, {
      unread: 1,
      unseen: 1,
    });
    const before = await tableSnapshot(db.pool);
    for (const [method, path] of [
      ['GET', `/v1/users/u-2/inbox/${idPath(shopItem)}`],
      ['POST', `/v1/users/u-2/inbox/${idPath(shopItem)}/read`],
      ['POST', `/v1/users/u-2/inbox/${idPath(shopItem)}/archive`],
      ['DELETE', `/v1/users/u-2/inbox/${idPath(shopItem)}`],
    ] as const) {
      const res = await h.call(method, path, undefined, as);
      assert.equal(res.status, 404, `${method} ${path}`);
      assert.ok(!JSON.stringify(res.body).includes('123456'));
    }
    assert.deepEqual(changedTables(before, await tableSnapshot(db.pool)), []);
    // read-all marks B's items only.
    const all = await h.call('POST', '/v1/users/u-2/inbox/read-all', {}, as);
    assert.deepEqual(all.body, { changed: 1 });
    // The user sees both services' items: A's still unread, B's read. (Both may have arrived in
    // one fan-out commit, so their order is not asserted.)
    const mine = await h.call('GET', '/v1/users/u-2/inbox', undefined, asUser);
    assert.deepEqual(
      new Map((mine.body.items as { id: string; read: boolean }[]).map((i) => [i.id, i.read])),
      new Map([
        [billingItem, true],
        [shopItem, false],
      ]),
    );
  });

  test("B's stream carries B's items and never A's", async () => {
    const inbox = await key('billing', ['inbox']);
    const stream = await openSse(`${h.herald.queryUrl ?? ''}/v1/users/u-2/inbox/stream`, {
      authorization: `Bearer ${inbox}`,
    });
    try {
      await stream.waitForEvents(1, (e) => e.event === 'ready');
      const send = async (as: string, title: string) =>
        (
          await h.call(
            'POST',
            '/v1/notifications',
            { recipients: ['u-2'], channels: ['in_app'], content: { default: { title } } },
            { key: as },
          )
        ).body.id as string;
      const fromShop = await send(shopKey, 'Shop: second secret');
      const fromBilling = await send(billingKey, 'Billing: second invoice');
      // A user's events come in order: once B's later item arrived, A's earlier one was passed over.
      await stream.waitForEvents(1, (e) => e.event === 'created' && e.data.id === fromBilling);
      assert.deepEqual(
        stream.events.filter((e) => e.event === 'created').map((e) => e.data.id),
        [fromBilling],
      );
      assert.ok(!JSON.stringify(stream.events).includes('second secret'));
      assert.ok(!stream.events.some((e) => e.data.id === fromShop));
    } finally {
      stream.close();
    }
  });

  test('minting a user token needs user_tokens: a sender,admin key cannot; an inbox key cannot', async () => {
    for (const refused of [billingKey, await key('billing', ['inbox'])]) {
      const res = await h.call('POST', '/v1/users/u-2/token', {}, { key: refused, ...query() });
      assert.equal(res.status, 403);
      assert.equal(res.body.code, 'forbidden');
      assert.equal(res.body.token, undefined);
    }
    const noInbox = await h.call('GET', '/v1/users/u-2/inbox', undefined, { key: shopKey, ...query() });
    assert.equal(noInbox.status, 403, 'a sender,admin key does not act in inboxes');
  });
});

describe('revocation reaches everything derived from the key', () => {
  const streamOf = (userId: string, credential: string): Promise<SseClient> =>
    openSse(`${h.herald.queryUrl ?? ''}/v1/users/${userId}/inbox/stream`, {
      authorization: `Bearer ${credential}`,
    });

  test("after a key's revocation its streams close and its user tokens get 401 within 5 s", async () => {
    const issuer = await key('shop', ['inbox', 'user_tokens']);
    const token = (await h.call('POST', '/v1/users/u-3/token', {}, { key: issuer, ...query() })).body
      .token as string;
    const byToken = await streamOf('u-3', token);
    const byKey = await streamOf('u-3', issuer);
    await byToken.waitForEvents(1, (e) => e.event === 'ready');
    await byKey.waitForEvents(1, (e) => e.event === 'ready');
    // Another key's token for the same user is not touched.
    const other = await key('shop', ['user_tokens']);
    const otherToken = (await h.call('POST', '/v1/users/u-3/token', {}, { key: other, ...query() })).body
      .token as string;
    assert.equal(
      (await h.call('GET', '/v1/users/u-3/inbox', undefined, { key: token, ...query() })).status,
      200,
    );

    const revokedAt = Date.now();
    assert.equal(await revokeApiKey(db.pool, issuer), true);
    await waitFor('both streams closed', () => byToken.ended() && byKey.ended(), 5000);
    await waitFor(
      'the token and the key refused',
      async () =>
        (await h.call('GET', '/v1/users/u-3/inbox', undefined, { key: token, ...query() })).status === 401 &&
        (await h.call('GET', '/v1/users/u-3/inbox', undefined, { key: issuer, ...query() })).status === 401,
      Math.max(1, 5000 - (Date.now() - revokedAt)),
    );
    assert.ok(byToken.events.some((e) => e.event === 'revoked'));
    const refused = await h.call('GET', '/v1/users/u-3/inbox/count', undefined, { key: token, ...query() });
    assert.equal(refused.body.code, 'unauthenticated');
    assert.match(refused.body.detail, /revoked/);
    assert.equal(
      (await h.call('GET', '/v1/users/u-3/inbox', undefined, { key: otherToken, ...query() })).status,
      200,
    );
  });

  test('a user signs out everywhere: their tokens issued before get 401 and their streams close; new ones work', async () => {
    const issuer = await key('shop', ['user_tokens']);
    const mint = async () =>
      (await h.call('POST', '/v1/users/u-4/token', {}, { key: issuer, ...query() })).body.token as string;
    const [first, second] = [await mint(), await mint()];
    const stream = await streamOf('u-4', first);
    await stream.waitForEvents(1, (e) => e.event === 'ready');
    // Another user's token cannot revoke u-4's.
    const stranger = (await h.call('POST', '/v1/users/u-5/token', {}, { key: issuer, ...query() })).body
      .token as string;
    assert.equal(
      (await h.call('POST', '/v1/users/u-4/tokens/revoke', {}, { key: stranger, ...query() })).status,
      404,
    );

    const revoked = await h.call('POST', '/v1/users/u-4/tokens/revoke', {}, { key: first, ...query() });
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    await waitFor('the stream closed', () => stream.ended(), 5000);
    for (const token of [first, second])
      assert.equal(
        (await h.call('GET', '/v1/users/u-4/inbox', undefined, { key: token, ...query() })).status,
        401,
      );
    const fresh = await mint();
    assert.equal(
      (await h.call('GET', '/v1/users/u-4/inbox', undefined, { key: fresh, ...query() })).status,
      200,
    );
    assert.equal(
      (await h.call('GET', '/v1/users/u-5/inbox', undefined, { key: stranger, ...query() })).status,
      200,
    );
  });
});

describe('limits per user and per key (caller against the process)', () => {
  test('streams per user and per key, and token issuance per key, answer 429 with Retry-After', async () => {
    const limited = await startTestHerald(db, {
      roles: ['query'],
      service: 'shop',
      env: { STREAM_MAX_PER_USER: '2', STREAM_MAX_PER_KEY: '2', USER_TOKEN_ISSUE_PER_MINUTE: '3' },
    });
    const base = limited.herald.queryUrl ?? '';
    const streams: SseClient[] = [];
    try {
      const issuer = await key('shop', ['user_tokens', 'inbox']);
      const tokens: string[] = [];
      for (let i = 0; i < 3; i += 1) {
        const res = await limited.call('POST', '/v1/users/u-6/token', {}, { key: issuer, base });
        assert.equal(res.status, 201);
        tokens.push(res.body.token as string);
      }
      const over = await limited.call('POST', '/v1/users/u-6/token', {}, { key: issuer, base });
      assert.equal(over.status, 429);
      assert.equal(over.body.code, 'rate_limited');
      assert.equal(over.headers.get('retry-after'), '20'); // one token refills in 60 s / 3
      assert.equal(over.body.token, undefined);
      // Another key has its own budget.
      const other = await key('shop', ['user_tokens']);
      assert.equal((await limited.call('POST', '/v1/users/u-6/token', {}, { key: other, base })).status, 201);

      // Per user: two streams, the third refused; per key: two streams across users.
      const open = async (userId: string, credential: string) => {
        const stream = await openSse(`${base}/v1/users/${userId}/inbox/stream`, {
          authorization: `Bearer ${credential}`,
        });
        streams.push(stream);
        return stream;
      };
      for (const token of tokens.slice(0, 2)) await (await open('u-6', token)).waitForEvents(1);
      const third = await open('u-6', tokens[2] ?? '');
      assert.equal(third.status, 429);
      const streamer = await key('shop', ['inbox']);
      for (const user of ['u-7', 'u-8']) await (await open(user, streamer)).waitForEvents(1);
      assert.equal((await open('u-9', streamer)).status, 429);
      // A closed stream frees its place.
      streams[0]?.close();
      await waitFor('a place for u-6 again', async () => {
        const again = await open('u-6', tokens[2] ?? '');
        return again.status === 200;
      });
    } finally {
      for (const stream of streams) stream.close();
      await limited.stop();
    }
  });
});
