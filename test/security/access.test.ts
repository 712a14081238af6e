// Who may call what. Every keyed route (from both roles' /openapi.json, so new routes are
// included) refuses missing, malformed, unknown and revoked keys with 401; a service cannot read,
// change or replay another service's notifications, dead letters or settings
// (docs/decisions/0005-trust-boundaries.md); and every route answers 403 to a key that holds every
// permission but the ones it needs, and lets each of those through. No refused request writes anything.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { idPath, startTestHerald, type TestHerald } from '../helpers/test-herald.js';
import { publicRoutes, type PublicRoute } from '../helpers/public-routes.js';
import { changedTables, tableSnapshot } from '../helpers/table-snapshot.js';
import { assertProblem, readResponse, type RawResponse } from '../helpers/problem-response.js';
import { createApiKey, ensureService, revokeApiKey } from '../../src/db/stores/api-key-store.js';
import type { ProblemCode } from '../../src/domain/problems.js';
import type { Permission } from '../../src/domain/permissions.js';
import { permissions, senderPermissions } from '../../src/domain/permissions.js';

let db: TestDatabase;
let h: TestHerald;
let routes: PublicRoute[];
let shopServiceId: number;
let billingKey: string;
/** shop's in_app + webhook notification, and its dead webhook delivery. */
let shopNotification: { id: string; createdAt: Date };
let shopDeadDelivery: string;
let shopWebhook: { url: string; secret: string };

/** Routes anyone may call; everything else needs an API key. */
// Callbacks carry no API key: each provider's signature is checked instead (test/system/channels.test.ts).
// Unsubscribe links carry no API key: the link is signed (src/pipeline/preferences.test.ts).
// Tracked email links neither: the link is signed (src/query/engagement.test.ts).
const openPaths = [
  /^\/healthz$/,
  /^\/readyz$/,
  /^\/metrics$/,
  /^\/openapi\.json$/,
  /^\/docs/,
  /^\/v1\/callbacks\//,
  /^\/v1\/unsubscribe\//,
  /^\/v1\/track\//,
  // The inbox page is static; it calls the API with the user's token.
  /^\/inbox(\/|$)/,
];

/**
 * Valid bodies, so that the key is the only thing wrong: Fastify validates the body before the
 * preHandler that authenticates. A new route with a required body needs an entry here.
 */
const validBodies: Record<string, unknown> = {
  'POST /v1/notifications': {
    recipients: ['alice'],
    channels: ['in_app'],
    content: { default: { title: 'Hi' } },
  },
  'PATCH /v1/notifications/{id}': { version: 2, content: { default: { title: 'Changed' } } },
  'PUT /v1/users/{userId}': { email: 'alice@example.com' },
  'POST /v1/users/bulk': { users: [{ id: 'mallory' }] },
  'POST /v1/users/{userId}/devices': { platform: 'ios', app_id: 'com.shop', token: 'stolen' },
  'PUT /v1/users/{userId}/devices': { devices: [] },
  'PUT /v1/service/webhook': { url: 'http://127.0.0.1:9/attacker' },
  'POST /v1/dead-letters/replay': { all: true },
  'POST /v1/callback-subscriptions': { url: 'http://127.0.0.1:9/attacker', event_types: ['delivery.sent'] },
  'PATCH /v1/callback-subscriptions/{id}': { enabled: false },
  'POST /v1/callback-dead-letters/replay': { all: true },
  'PUT /v1/users/{userId}/preferences': { preferences: [{ channel: '*', category: '*', enabled: false }] },
  'PUT /v1/categories/{category}': { critical: true },
  'PUT /v1/rate-budgets/{name}': { per_second: 5 },
  'PUT /v1/tracking/{scope}/{name}': { tracked: false },
  'POST /v1/topics': { key: 'stolen' },
  'POST /v1/topics/{key}/subscribers': { user_ids: ['alice'] },
  'POST /v1/topics/{key}/subscribers/remove': { user_ids: ['alice'] },
  'POST /v1/schedules': {
    cron: '0 9 * * *',
    notification: { recipients: ['alice'], channels: ['in_app'], content: { default: { title: 'Hi' } } },
  },
};

/**
 * The permissions that let a key call each keyed route (any one of them), as docs/security.md
 * lists them. A new keyed route fails the matrix test until it is added here.
 */
const requiredPermissions: Record<string, readonly Permission[]> = {
  'POST /v1/notifications': ['send'],
  'GET /v1/notifications/{id}': ['notifications:read'],
  'PATCH /v1/notifications/{id}': ['send'],
  'POST /v1/notifications/{id}/cancel': ['send'],
  'GET /v1/users/{userId}': ['users:read', 'users:write'],
  'PUT /v1/users/{userId}': ['users:write'],
  'DELETE /v1/users/{userId}': ['users:write'],
  'POST /v1/users/bulk': ['users:write'],
  'GET /v1/users/{userId}/contact-history': ['users:read', 'users:write'],
  'GET /v1/users/{userId}/devices': ['users:read', 'users:write'],
  'POST /v1/users/{userId}/devices': ['users:write'],
  'PUT /v1/users/{userId}/devices': ['users:write'],
  'DELETE /v1/users/{userId}/devices/{deviceId}': ['users:write'],
  'GET /v1/service': permissions,
  'PUT /v1/service/webhook': ['admin'],
  'PUT /v1/service/chat': ['admin'],
  'POST /v1/service/webhook/rotate-secret': ['admin'],
  'GET /v1/dead-letters': ['notifications:read'],
  'POST /v1/dead-letters/replay': ['admin'],
  'POST /v1/callback-subscriptions': ['admin'],
  'GET /v1/callback-subscriptions': ['admin'],
  'GET /v1/callback-subscriptions/{id}': ['admin'],
  'PATCH /v1/callback-subscriptions/{id}': ['admin'],
  'DELETE /v1/callback-subscriptions/{id}': ['admin'],
  'POST /v1/callback-subscriptions/{id}/rotate-secret': ['admin'],
  'GET /v1/callback-dead-letters': ['admin', 'notifications:read'],
  'POST /v1/callback-dead-letters/replay': ['admin'],
  'GET /v1/categories/{category}': ['send', 'templates', 'admin'],
  'PUT /v1/categories/{category}': ['admin'],
  'GET /v1/rate-budgets': ['budgets', 'send', 'admin'],
  'GET /v1/rate-budgets/{name}': ['budgets', 'send', 'admin'],
  'PUT /v1/rate-budgets/{name}': ['budgets', 'admin'],
  'DELETE /v1/rate-budgets/{name}': ['budgets', 'admin'],
  'GET /v1/engagement': ['notifications:read', 'admin'],
  'GET /v1/tracking/{scope}/{name}': ['send', 'templates', 'admin'],
  'PUT /v1/tracking/{scope}/{name}': ['admin'],
  'Herald API GET /v1/users/{userId}/preferences': ['users:read', 'users:write'],
  'Herald API PUT /v1/users/{userId}/preferences': ['users:write'],
  'GET /v1/templates': ['send', 'templates'],
  'GET /v1/templates/export': ['send', 'templates'],
  'POST /v1/templates/import': ['templates'],
  'GET /v1/templates/imports': ['templates'],
  'POST /v1/templates/imports/{importId}/undo': ['templates'],
  'GET /v1/templates/{key}': ['send', 'templates'],
  'PUT /v1/templates/{key}': ['templates'],
  'POST /v1/templates/{key}/preview': ['send', 'templates'],
  'POST /v1/users/{userId}/token': ['user_tokens'],
  'POST /v1/users/{userId}/tokens/revoke': ['user_tokens'],
  'GET /v1/users/{userId}/inbox': ['inbox'],
  'GET /v1/users/{userId}/inbox/count': ['inbox'],
  'GET /v1/users/{userId}/inbox/stream': ['inbox'],
  'GET /v1/users/{userId}/inbox/{notificationId}': ['inbox'],
  'POST /v1/users/{userId}/inbox/{notificationId}/{action}': ['inbox'],
  'DELETE /v1/users/{userId}/inbox/{notificationId}': ['inbox'],
  'POST /v1/users/{userId}/inbox/read-all': ['inbox'],
  'POST /v1/users/{userId}/inbox/seen-all': ['inbox'],
  'POST /v1/users/{userId}/inbox/{notificationId}/clicked': ['inbox'],
  'POST /v1/users/{userId}/deliveries/{deliveryId}/opened': ['inbox'],
  'POST /v1/users/{userId}/deliveries/{deliveryId}/clicked': ['inbox'],
  'Herald query API GET /v1/users/{userId}/preferences': ['users:read', 'users:write'],
  'Herald query API PUT /v1/users/{userId}/preferences': ['users:write'],
  'GET /v1/support/users/{userId}/notifications': ['support'],
  'POST /v1/topics': ['users:write'],
  'GET /v1/topics': ['users:read', 'users:write', 'send'],
  'GET /v1/topics/{key}': ['users:read', 'users:write', 'send'],
  'DELETE /v1/topics/{key}': ['users:write'],
  'POST /v1/topics/{key}/subscribers': ['users:write'],
  'POST /v1/topics/{key}/subscribers/remove': ['users:write'],
  'GET /v1/topics/{key}/subscribers': ['users:read', 'users:write', 'send'],
  'Herald API GET /v1/users/{userId}/topic-opt-outs': ['users:read', 'users:write'],
  'Herald query API GET /v1/users/{userId}/topic-opt-outs': ['users:read', 'users:write'],
  'PUT /v1/users/{userId}/topic-opt-outs/{service}/{key}': ['users:write'],
  'DELETE /v1/users/{userId}/topic-opt-outs/{service}/{key}': ['users:write'],
  'PUT /v1/users/{userId}/topic-opt-outs/{key}': ['users:write'],
  'DELETE /v1/users/{userId}/topic-opt-outs/{key}': ['users:write'],
  'POST /v1/schedules': ['send'],
  'GET /v1/schedules': ['send', 'notifications:read'],
  'GET /v1/schedules/{id}': ['send', 'notifications:read'],
  'POST /v1/schedules/{id}/pause': ['send'],
  'POST /v1/schedules/{id}/resume': ['send'],
  'DELETE /v1/schedules/{id}': ['send'],
};

/** The matrix entry of a route: by server, method and path where a path is on both roles. */
function permissionsOf(route: PublicRoute): readonly Permission[] | undefined {
  return (
    requiredPermissions[`${route.server} ${route.method} ${route.path}`] ??
    requiredPermissions[`${route.method} ${route.path}`]
  );
}

interface CallOptions {
  authorization?: string;
  body?: unknown;
  base?: string;
}

async function send(method: string, path: string, options: CallOptions = {}): Promise<RawResponse> {
  const headers: Record<string, string> = {};
  if (options.authorization !== undefined) headers['authorization'] = options.authorization;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  return readResponse(
    await fetch(`${options.base ?? h.herald.apiUrl ?? ''}${path}`, {
      method,
      headers,
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    }),
  );
}

/** Sends, expects the problem, and checks that no table changed. */
async function expectRefused(
  method: string,
  path: string,
  options: CallOptions,
  expected: { status: number; code: ProblemCode },
  context = `${method} ${path}`,
): Promise<RawResponse> {
  const before = await tableSnapshot(db.pool);
  const response = await send(method, path, options);
  assertProblem(response, context, expected);
  assert.deepEqual(changedTables(before, await tableSnapshot(db.pool)), [], `${context} wrote rows`);
  return response;
}

const bearer = (key: string) => `Bearer ${key}`;

before(async () => {
  db = await createTestDatabase();
  // No worker: nothing is delivered, so the dead delivery below stays as written.
  h = await startTestHerald(db, { roles: ['api', 'query'], env: { TRACKING_URL: 'http://127.0.0.1:9' } });
  shopServiceId = await ensureService(db.pool, 'shop');
  billingKey = await createApiKey(db.pool, await ensureService(db.pool, 'billing'), permissions);

  const webhook = await h.call('PUT', '/v1/service/webhook', { url: 'http://127.0.0.1:9/hook' });
  assert.equal(webhook.status, 200);
  assert.match(webhook.body.webhook_secret, /^whsec_/);
  shopWebhook = { url: webhook.body.webhook_url, secret: webhook.body.webhook_secret };

  const sent = await h.call('POST', '/v1/notifications', {
    recipients: ['alice'],
    channels: ['in_app', 'webhook'],
    content: { default: { title: 'Your order shipped', body: 'Parcel 123' } },
  });
  assert.equal(sent.status, 202);
  shopNotification = { id: sent.body.id, createdAt: new Date(sent.body.created_at) };

  shopDeadDelivery = randomUUID();
  await db.pool.query(
    `INSERT INTO deliveries (id, notification_id, notification_created_at, service_id, user_id, channel,
                             target, lane, state, attempts, max_attempts, run_at, last_error, dead_at)
     VALUES ($1, $2, $3, $4, 'alice', 'webhook', $5, 'transactional', 'dead', 8, 8, now(), 'HTTP 500 (after 8 attempts)', now())`,
    [shopDeadDelivery, shopNotification.id, shopNotification.createdAt, shopServiceId, shopWebhook.url],
  );

  routes = (await publicRoutes([h.herald.apiUrl ?? '', h.herald.queryUrl ?? ''])).filter(
    (r) => !openPaths.some((p) => p.test(r.path)),
  );
});
after(async () => {
  await h.stop();
  await db.drop();
});

/** A concrete path for a route: shop's notification, an existing user, an unknown device. */
function concretePath(route: PublicRoute): string {
  const values: Record<string, string> = {
    id: idPath(shopNotification.id),
    userId: 'alice',
    deviceId: randomUUID(),
    deliveryId: randomUUID(),
    scope: 'categories',
  };
  return route.path.replace(/\{(\w+)\}/g, (_, name: string) => values[name] ?? 'x');
}

describe('authentication on every keyed route', () => {
  test('the route list covers both roles, and every route outside the open list asks for a key', () => {
    const names = routes.map((r) => `${r.method} ${r.path}`);
    assert.ok(names.includes('POST /v1/notifications'), names.join(', '));
    assert.ok(names.includes('GET /v1/users/{userId}/inbox'), names.join(', '));
    for (const route of routes)
      assert.equal(route.isOpen, false, `${route.method} ${route.path} declares no security`);
  });

  test('missing, malformed, unknown and revoked keys get 401 unauthenticated and write nothing', async () => {
    const revoked = await createApiKey(db.pool, shopServiceId, permissions);
    assert.equal(await revokeApiKey(db.pool, revoked), true);
    const credentials: [string, string | undefined][] = [
      ['no Authorization header', undefined],
      ['Basic credentials', `Basic ${Buffer.from('shop:secret').toString('base64')}`],
      ['the scheme alone', 'Bearer'],
      ['an empty token', 'Bearer '],
      ['a short token', 'Bearer abc'],
      ['a token with forbidden characters', 'Bearer hk_!!!!$$$$%%%%'],
      ['an over-long token', `Bearer hk_${'a'.repeat(300)}`],
      ['two tokens', `Bearer ${h.apiKey} Bearer ${h.apiKey}`],
      ['the key as the scheme', h.apiKey],
      ['a truncated valid key', bearer(h.apiKey.slice(0, -1))],
      ['an unknown well-formed key', bearer(`hk_${randomBytes(32).toString('base64url')}`)],
      ['a revoked key', bearer(revoked)],
    ];
    let checked = 0;
    for (const route of routes) {
      for (const [label, authorization] of credentials) {
        const body =
          validBodies[`${route.method} ${route.path}`] ?? (route.body === undefined ? undefined : {});
        await expectRefused(
          route.method,
          concretePath(route),
          { ...(authorization === undefined ? {} : { authorization }), body, base: route.base },
          { status: 401, code: 'unauthenticated' },
          `${route.method} ${route.path} with ${label}`,
        );
        checked += 1;
      }
    }
    assert.equal(checked, routes.length * credentials.length);
    assert.ok(routes.length >= 15, `${String(routes.length)} keyed routes`);
  });

  test('a 401 never echoes the key it was sent', async () => {
    const unknown = `hk_${randomBytes(32).toString('base64url')}`;
    const response = await send('GET', '/v1/service', { authorization: bearer(unknown) });
    assertProblem(response, 'GET /v1/service with an unknown key', { status: 401, code: 'unauthenticated' });
    assert.ok(!response.text.includes(unknown));
    assert.ok(!response.text.includes(unknown.slice(0, 10)), 'not even its prefix');
  });
});

describe('tenant isolation: billing against shop', () => {
  test("shop's notification is 403 to billing for read, patch and cancel, and stays unchanged", async () => {
    const path = `/v1/notifications/${idPath(shopNotification.id)}`;
    const as = { authorization: bearer(billingKey) };
    const forbidden = { status: 403, code: 'forbidden' } as const;
    await expectRefused('GET', path, as, forbidden);
    await expectRefused('PATCH', path, { ...as, body: { version: 2, data: { evil: true } } }, forbidden);
    await expectRefused('POST', `${path}/cancel`, as, forbidden);
    // The same uuid under billing's own name is a different (unknown) notification.
    const uuid = shopNotification.id.split('#')[1] ?? '';
    await expectRefused('GET', `/v1/notifications/${idPath(`billing#${uuid}`)}`, as, {
      status: 404,
      code: 'not_found',
    });
    await expectRefused('GET', `/v1/notifications/${idPath(`shop#${uuid.toUpperCase()}`)}`, as, forbidden);
    const own = await h.call('GET', path);
    assert.equal(own.status, 200);
    assert.equal(own.body.version, 1);
    assert.equal(own.body.canceled_at, null);
  });

  test("billing cannot take shop's ids or idempotency keys", async () => {
    await expectRefused(
      'POST',
      '/v1/notifications',
      {
        authorization: bearer(billingKey),
        body: { ...(validBodies['POST /v1/notifications'] as object), id: shopNotification.id },
      },
      { status: 400, code: 'foreign_notification_id' },
    );
    const headers = { 'idempotency-key': `order-${randomUUID()}` };
    const body = validBodies['POST /v1/notifications'];
    const shops = await h.call('POST', '/v1/notifications', body, { headers });
    const billings = await h.call('POST', '/v1/notifications', body, { headers, key: billingKey });
    assert.equal(shops.status, 202);
    assert.equal(billings.status, 202);
    assert.match(billings.body.id, /^billing#/);
    assert.equal(billings.headers.get('idempotent-replayed'), null);
  });

  test("billing's dead letters do not list shop's, while shop's do", async () => {
    const own = await h.call('GET', '/v1/dead-letters');
    assert.deepEqual(
      own.body.dead_letters.map((d: { id: string }) => d.id),
      [shopDeadDelivery],
    );
    const billings = await h.call('GET', '/v1/dead-letters', undefined, { key: billingKey });
    assert.equal(billings.status, 200);
    assert.deepEqual(billings.body.dead_letters, []);
    assert.equal(billings.body.next_cursor, null);
  });

  test("billing's replay moves none of shop's dead deliveries", async () => {
    const state = async () =>
      (
        await db.pool.query<{ state: string }>('SELECT state FROM deliveries WHERE id = $1', [
          shopDeadDelivery,
        ])
      ).rows[0]?.state;
    for (const body of [{ all: true }, { ids: [shopDeadDelivery] }]) {
      const before = await tableSnapshot(db.pool);
      const res = await h.call('POST', '/v1/dead-letters/replay', body, { key: billingKey });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.replayed, 0);
      assert.deepEqual(res.body.ids, []);
      assert.deepEqual(changedTables(before, await tableSnapshot(db.pool)), []);
    }
    await expectRefused(
      'POST',
      '/v1/dead-letters/replay',
      { authorization: bearer(billingKey), body: { notification_id: shopNotification.id } },
      { status: 403, code: 'forbidden' },
    );
    assert.equal(await state(), 'dead');
    // The owner can: the refusals above were about the caller, not the row; and the snapshot
    // sees a replay, so its silence above means something.
    const before = await tableSnapshot(db.pool);
    const mine = await h.call('POST', '/v1/dead-letters/replay', { ids: [shopDeadDelivery] });
    assert.deepEqual(mine.body.ids, [shopDeadDelivery]);
    assert.equal(await state(), 'pending');
    assert.deepEqual(changedTables(before, await tableSnapshot(db.pool)), [
      'deliveries 1 → 1 (rows changed)',
      'delivery_events 0 → 1',
    ]);
  });

  test("billing can neither undo nor list shop's template imports", async () => {
    const imported = await fetch(`${h.herald.apiUrl ?? ''}/v1/templates/import`, {
      method: 'POST',
      headers: { authorization: bearer(h.apiKey), 'content-type': 'text/csv' },
      body: 'key,category,lane,params,fallback_locale,channel,locale,text\nshop.only,news,bulk,,en,sms,en,Hi\n',
    });
    assert.equal(imported.status, 200);
    const id = ((await imported.json()) as { import_id: number }).import_id;
    const as = { authorization: bearer(billingKey) };
    await expectRefused('POST', `/v1/templates/imports/${String(id)}/undo`, as, {
      status: 404,
      code: 'not_found',
    });
    const list = await send('GET', '/v1/templates/imports', as);
    assert.equal(list.status, 200);
    assert.deepEqual(JSON.parse(list.text), { items: [], next_cursor: null });
    const own = await h.call('GET', '/v1/templates/imports');
    assert.equal(own.body.items[0].id, id);
  });

  test("GET /v1/service shows billing its own settings and nothing of shop's", async () => {
    const res = await send('GET', '/v1/service', { authorization: bearer(billingKey) });
    assert.equal(res.status, 200);
    const body = JSON.parse(res.text) as Record<string, unknown>;
    assert.equal(body['name'], 'billing');
    assert.equal(body['webhook_url'], null);
    assert.equal('webhook_secret' in body, false);
    assert.ok(!res.text.includes(shopWebhook.secret));
    assert.ok(!res.text.includes(shopWebhook.url));
    assert.ok(!res.text.includes('shop'));
    const own = await h.call('GET', '/v1/service');
    assert.equal(own.body.name, 'shop');
    assert.equal('webhook_secret' in own.body, false, 'the secret is shown only when set or rotated');
  });
});

describe('permissions: every keyed route against every permission', () => {
  test('the matrix names every keyed route, and only those', () => {
    const keyed = routes.map((r) => `${r.server} ${r.method} ${r.path}`);
    const missing = routes.filter((r) => permissionsOf(r) === undefined).map((r) => `${r.method} ${r.path}`);
    assert.deepEqual(missing, [], 'keyed routes without an entry in requiredPermissions');
    const used = new Set(
      routes.map((r) =>
        requiredPermissions[`${r.server} ${r.method} ${r.path}`] === undefined
          ? `${r.method} ${r.path}`
          : `${r.server} ${r.method} ${r.path}`,
      ),
    );
    const stale = Object.keys(requiredPermissions).filter((k) => !used.has(k));
    assert.deepEqual(stale, [], `entries for routes that do not exist (routes: ${keyed.length})`);
  });

  test('a key holding every other permission is 403 and changes nothing', async () => {
    for (const route of routes) {
      const needed = permissionsOf(route) ?? [];
      const key = await createApiKey(
        db.pool,
        shopServiceId,
        permissions.filter((p) => !needed.includes(p)),
      );
      const body =
        validBodies[`${route.method} ${route.path}`] ?? (route.body === undefined ? undefined : {});
      await expectRefused(
        route.method,
        concretePath(route),
        { authorization: bearer(key), body, base: route.base },
        { status: 403, code: 'forbidden' },
        `${route.server} ${route.method} ${route.path} without ${needed.join('/')}`,
      );
    }
  });

  test('a key holding only one of the needed permissions is let through (of another service, on unknown ids)', async () => {
    // Another service and ids nobody has: what the key may do happens to nothing shop owns.
    const matrixService = await ensureService(db.pool, 'matrix');
    for (const route of routes) {
      for (const permission of permissionsOf(route) ?? []) {
        const key = await createApiKey(db.pool, matrixService, [permission]);
        const path = route.path.replace(/\{(\w+)\}/g, (_, name: string) =>
          name === 'id' ? idPath(`matrix#${randomUUID()}`) : `nobody-${name}-${randomUUID().slice(0, 8)}`,
        );
        const body =
          validBodies[`${route.method} ${route.path}`] ?? (route.body === undefined ? undefined : {});
        const response = route.path.endsWith('/stream')
          ? await fetch(`${route.base}${path}`, { headers: { authorization: bearer(key) } }).then(
              async (r) => {
                await r.body?.cancel();
                return { status: r.status };
              },
            )
          : await send(route.method, path, { authorization: bearer(key), body, base: route.base });
        assert.ok(
          response.status !== 403 && response.status !== 401,
          `${route.server} ${route.method} ${route.path} with ${permission}: ${String(response.status)}`,
        );
      }
    }
  });
});

describe('roles: a sender-only key cannot use admin routes', () => {
  test('replay, setting the webhook and rotating the secret are 403 forbidden and change nothing', async () => {
    const senderKey = await createApiKey(db.pool, shopServiceId, senderPermissions);
    const as = { authorization: bearer(senderKey) };
    const forbidden = { status: 403, code: 'forbidden' } as const;
    await expectRefused('POST', '/v1/dead-letters/replay', { ...as, body: { all: true } }, forbidden);
    await expectRefused(
      'POST',
      '/v1/dead-letters/replay',
      { ...as, body: { ids: [shopDeadDelivery] } },
      forbidden,
    );
    await expectRefused(
      'PUT',
      '/v1/service/webhook',
      { ...as, body: { url: 'http://127.0.0.1:9/x' } },
      forbidden,
    );
    await expectRefused('PUT', '/v1/service/webhook', { ...as, body: { url: null } }, forbidden);
    await expectRefused('POST', '/v1/service/webhook/rotate-secret', as, forbidden);
    const settings = await db.pool.query<{ webhook_url: string; webhook_secret: string }>(
      'SELECT webhook_url, webhook_secret FROM services WHERE id = $1',
      [shopServiceId],
    );
    assert.deepEqual(settings.rows[0], { webhook_url: shopWebhook.url, webhook_secret: shopWebhook.secret });
    // The same key may still send: the 403s are about the role, not a broken key.
    const sent = await send('POST', '/v1/notifications', {
      ...as,
      body: validBodies['POST /v1/notifications'],
    });
    assert.equal(sent.status, 202);
  });

  test('a support-only key cannot send, change users or act in inboxes', async () => {
    const supportKey = await createApiKey(db.pool, shopServiceId, ['support']);
    const as = { authorization: bearer(supportKey) };
    const forbidden = { status: 403, code: 'forbidden' } as const;
    await expectRefused(
      'POST',
      '/v1/notifications',
      { ...as, body: validBodies['POST /v1/notifications'] },
      forbidden,
    );
    await expectRefused(
      'PUT',
      '/v1/users/alice',
      { ...as, body: { email: 'mallory@example.com' } },
      forbidden,
    );
    await expectRefused('DELETE', '/v1/users/alice', as, forbidden);
    // Support reads a user's history through the support lookup, not as the user.
    const inbox = await send('GET', '/v1/users/alice/inbox', { ...as, base: h.herald.queryUrl ?? '' });
    assert.equal(inbox.status, 403);
    const token = await send('POST', '/v1/users/alice/token', {
      ...as,
      base: h.herald.queryUrl ?? '',
      body: {},
    });
    assert.equal(token.status, 403);
    const to = new Date();
    const from = new Date(to.getTime() - 30 * 86_400_000);
    const history = await send(
      'GET',
      `/v1/support/users/alice/notifications?from=${from.toISOString()}&to=${to.toISOString()}`,
      { ...as, base: h.herald.queryUrl ?? '' },
    );
    assert.equal(history.status, 200);
  });
});
