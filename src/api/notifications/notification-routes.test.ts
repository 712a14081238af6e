import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '../../../test/helpers/test-database.js';
import { idPath, startTestHerald, type TestHerald } from '../../../test/helpers/test-herald.js';
import { createApiKey, ensureService, revokeApiKey } from '../../db/stores/api-key-store.js';
import { permissions, senderPermissions } from '../../domain/permissions.js';

let db: TestDatabase;
let h: TestHerald;

const inApp = (recipients: string[], extra: Record<string, unknown> = {}) => ({
  recipients,
  channels: ['in_app'],
  content: { default: { title: 'Hi', body: 'Your order shipped' } },
  ...extra,
});

async function count(table: string): Promise<number> {
  const r = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
  return r.rows[0]?.n ?? -1;
}

before(async () => {
  db = await createTestDatabase();
  // The api role alone: nothing fans out, so row counts show exactly what ingest wrote.
  h = await startTestHerald(db, { roles: ['api'] });
});
after(async () => {
  await h.stop();
  await db.drop();
});

describe('POST /v1/notifications', () => {
  test('accepts after commit: one notification row and one recipient row per user', async () => {
    const res = await h.call('POST', '/v1/notifications', inApp(['u1', 'u2', 'u3']));
    assert.equal(res.status, 202);
    assert.match(res.body.id, /^shop#[0-9a-f-]{36}$/);
    assert.equal(res.body.recipients, 3);
    const rows = await db.pool.query(
      'SELECT user_id FROM recipients WHERE notification_id = $1 ORDER BY user_id',
      [res.body.id],
    );
    assert.deepEqual(
      rows.rows.map((r) => r.user_id),
      ['u1', 'u2', 'u3'],
    );
  });

  test('a repeated Idempotency-Key returns the same id and creates nothing', async () => {
    const headers = { 'idempotency-key': `order-${randomUUID()}` };
    const first = await h.call('POST', '/v1/notifications', inApp(['a', 'b']), { headers });
    const before = [await count('notifications'), await count('recipients')];
    const second = await h.call('POST', '/v1/notifications', inApp(['a', 'b']), { headers });
    assert.equal(second.status, 202);
    assert.equal(second.body.id, first.body.id);
    assert.equal(second.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual([await count('notifications'), await count('recipients')], before);
  });

  test('20 concurrent identical requests create exactly one notification', async () => {
    const id = `shop#${randomUUID()}`;
    const results = await Promise.all(
      Array.from({ length: 20 }, () => h.call('POST', '/v1/notifications', inApp(['c1', 'c2'], { id }))),
    );
    assert.deepEqual(new Set(results.map((r) => r.status)), new Set([202]));
    assert.deepEqual(new Set(results.map((r) => r.body.id)), new Set([id]));
    const n = await db.pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM notifications WHERE id = $1',
      [id],
    );
    assert.equal(n.rows[0]?.n, 1);
    const r = await db.pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM recipients WHERE notification_id = $1',
      [id],
    );
    assert.equal(r.rows[0]?.n, 2);
  });

  test('one key, two different bodies, 10 concurrent requests: one notification; the other body gets 422', async () => {
    const headers = { 'idempotency-key': randomUUID() };
    const before = await count('notifications');
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        h.call('POST', '/v1/notifications', inApp([i % 2 === 0 ? 'even' : 'odd']), { headers }),
      ),
    );
    const accepted = results.filter((r) => r.status === 202);
    const rejected = results.filter((r) => r.status === 422);
    assert.equal(accepted.length, 5);
    assert.equal(rejected.length, 5);
    assert.equal(new Set(accepted.map((r) => r.body.id)).size, 1);
    for (const r of rejected) assert.equal(r.body.code, 'idempotency_key_reused');
    assert.equal(await count('notifications'), before + 1);
    const keys = await db.pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM idempotency_keys WHERE key = $1',
      [`header:${headers['idempotency-key']}`],
    );
    assert.equal(keys.rows[0]?.n, 1);
  });

  test('20 concurrent requests with distinct keys create 20 notifications', async () => {
    const before = await count('notifications');
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        h.call('POST', '/v1/notifications', inApp(['d']), { headers: { 'idempotency-key': randomUUID() } }),
      ),
    );
    assert.equal(new Set(results.map((r) => r.body.id)).size, 20);
    assert.equal(await count('notifications'), before + 20);
  });

  test('the same key with a different request is 422 and changes nothing', async () => {
    const headers = { 'idempotency-key': randomUUID() };
    await h.call('POST', '/v1/notifications', inApp(['e']), { headers });
    const before = await count('notifications');
    const res = await h.call('POST', '/v1/notifications', inApp(['someone-else']), { headers });
    assert.equal(res.status, 422);
    assert.equal(res.body.code, 'idempotency_key_reused');
    assert.equal(await count('notifications'), before);
  });

  test('a caller-supplied service#uuid id is used as given', async () => {
    const id = `shop#${randomUUID()}`;
    const res = await h.call('POST', '/v1/notifications', inApp(['f'], { id }));
    assert.equal(res.status, 202);
    assert.equal(res.body.id, id);
  });

  for (const [label, id, code] of [
    ['no service part', randomUUID(), 'invalid_notification_id'],
    ['not a uuid', 'shop#1234', 'invalid_notification_id'],
    ['two hashes', `shop#${randomUUID()}#x`, 'invalid_notification_id'],
    ['upper-case service', `Shop#${randomUUID()}`, 'invalid_notification_id'],
    ["another service's name", `billing#${randomUUID()}`, 'foreign_notification_id'],
  ] as const) {
    test(`an id with ${label} is 400 ${code} and writes nothing`, async () => {
      const before = [await count('notifications'), await count('idempotency_keys')];
      const res = await h.call('POST', '/v1/notifications', inApp(['g'], { id }));
      assert.equal(res.status, 400);
      assert.equal(res.headers.get('content-type'), 'application/problem+json; charset=utf-8');
      assert.equal(res.body.code, code);
      assert.deepEqual([await count('notifications'), await count('idempotency_keys')], before);
    });
  }

  test('a channel without content is 400 content_missing', async () => {
    const res = await h.call('POST', '/v1/notifications', {
      recipients: ['x'],
      channels: ['in_app'],
      content: { webhook: { title: 't' } },
    });
    assert.equal(res.status, 400);
    assert.equal(res.body.code, 'content_missing');
  });

  test('a channel with no configured provider is 400 channel_unavailable', async () => {
    const res = await h.call('POST', '/v1/notifications', { ...inApp(['x']), channels: ['sms'] });
    assert.equal(res.status, 400);
    assert.equal(res.body.code, 'channel_unavailable');
  });
});

describe('authentication', () => {
  test('no key, a malformed header, an unknown key and a revoked key all get 401 problem+json', async () => {
    const serviceId = await ensureService(db.pool, 'shop');
    const revoked = await createApiKey(db.pool, serviceId, senderPermissions);
    await revokeApiKey(db.pool, revoked);
    const attempts = [
      await h.call('POST', '/v1/notifications', inApp(['x']), { key: null }),
      await h.call('POST', '/v1/notifications', inApp(['x']), {
        key: null,
        headers: { authorization: 'Basic abc' },
      }),
      await h.call('POST', '/v1/notifications', inApp(['x']), { key: 'hk_notarealkey000000000' }),
      await h.call('POST', '/v1/notifications', inApp(['x']), { key: revoked }),
      await h.call('GET', '/v1/dead-letters', undefined, { key: null }),
      await h.call('GET', '/v1/users/x', undefined, { key: null }),
      // The key is checked before the body is read: no 415, 413 or 400 for anonymous callers.
      await h.call('POST', '/v1/notifications', 'hello', {
        key: null,
        headers: { 'content-type': 'text/plain' },
      }),
      await h.call('POST', '/v1/notifications', '{"broken', { key: null }),
    ];
    for (const res of attempts) {
      assert.equal(res.status, 401);
      assert.equal(res.body.code, 'unauthenticated');
      assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.equal(res.headers.get('www-authenticate'), 'Bearer');
    }
  });

  test("another service's notification is 403 to read, patch and cancel", async () => {
    const created = await h.call('POST', '/v1/notifications', inApp(['y']));
    const otherKey = await createApiKey(db.pool, await ensureService(db.pool, 'billing'), permissions);
    for (const [method, path, body] of [
      ['GET', `/v1/notifications/${idPath(created.body.id)}`, undefined],
      [
        'PATCH',
        `/v1/notifications/${idPath(created.body.id)}`,
        { version: 2, content: { default: { title: 'x' } } },
      ],
      ['POST', `/v1/notifications/${idPath(created.body.id)}/cancel`, undefined],
    ] as const) {
      const res = await h.call(method, path, body, { key: otherKey });
      assert.equal(res.status, 403, `${method} ${path}`);
      assert.equal(res.body.code, 'forbidden');
    }
  });
});

describe('bad input is a problem+json 4xx with a stable code and writes nothing', () => {
  const cases: [string, () => Promise<{ status: number; body: any; headers: Headers }>, number, string][] = [
    ['invalid JSON', () => h.call('POST', '/v1/notifications', '{"recipients": [', {}), 400, 'invalid_json'],
    [
      'missing recipients',
      () => h.call('POST', '/v1/notifications', { channels: ['in_app'] }),
      400,
      'validation_failed',
    ],
    [
      'unknown channel',
      () => h.call('POST', '/v1/notifications', { ...inApp(['x']), channels: ['pigeon'] }),
      400,
      'validation_failed',
    ],
    [
      'unknown field',
      () => h.call('POST', '/v1/notifications', { ...inApp(['x']), colour: 'red' }),
      400,
      'validation_failed',
    ],
    [
      'bad lane',
      () => h.call('POST', '/v1/notifications', inApp(['x'], { lane: 'express' })),
      400,
      'validation_failed',
    ],
    [
      'bad send_at',
      () => h.call('POST', '/v1/notifications', inApp(['x'], { send_at: 'tomorrow' })),
      400,
      'validation_failed',
    ],
    [
      'text body',
      () => h.call('POST', '/v1/notifications', 'hello', { headers: { 'content-type': 'text/plain' } }),
      415,
      'unsupported_media_type',
    ],
    [
      'oversized body',
      () => h.call('POST', '/v1/notifications', inApp(['x'], { data: { blob: 'x'.repeat(300_000) } })),
      413,
      'payload_too_large',
    ],
    ['unknown route', () => h.call('GET', '/v1/nothing-here'), 404, 'route_not_found'],
    [
      'unknown notification',
      () => h.call('GET', `/v1/notifications/${idPath(`shop#${randomUUID()}`)}`),
      404,
      'not_found',
    ],
    [
      'malformed id in path',
      () => h.call('GET', '/v1/notifications/not-an-id'),
      400,
      'invalid_notification_id',
    ],
    [
      'bad idempotency key',
      () =>
        h.call('POST', '/v1/notifications', inApp(['x']), { headers: { 'idempotency-key': 'has space' } }),
      400,
      'validation_failed',
    ],
    [
      'invalid email',
      () => h.call('PUT', '/v1/users/u-bad', { email: 'not-an-email' }),
      400,
      'invalid_email',
    ],
    ['invalid phone', () => h.call('PUT', '/v1/users/u-bad', { phone: '+1234' }), 400, 'invalid_phone'],
    [
      'invalid time zone',
      () => h.call('PUT', '/v1/users/u-bad', { time_zone: 'Mars/Olympus' }),
      400,
      'validation_failed',
    ],
    [
      'invalid webhook url',
      () => h.call('PUT', '/v1/users/u-bad', { webhook_url: 'ftp://x' }),
      400,
      'invalid_url',
    ],
    [
      'device for unknown user',
      () => h.call('POST', '/v1/users/nobody/devices', { platform: 'ios', app_id: 'a', token: 't' }),
      404,
      'not_found',
    ],
    [
      'stale patch version',
      () => h.call('PATCH', `/v1/notifications/${idPath(`shop#${randomUUID()}`)}`, { version: 1 }),
      400,
      'validation_failed',
    ],
  ];
  for (const [label, run, status, code] of cases) {
    test(label, async () => {
      const before = [
        await count('notifications'),
        await count('recipients'),
        await count('users'),
        await count('devices'),
      ];
      const res = await run();
      assert.equal(res.status, status);
      assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.equal(res.body.code, code);
      assert.equal(typeof res.body.request_id, 'string');
      assert.deepEqual(
        [
          await count('notifications'),
          await count('recipients'),
          await count('users'),
          await count('devices'),
        ],
        before,
      );
    });
  }
});

describe('users and devices', () => {
  test('a user is created, updated field by field, and lists their devices', async () => {
    const created = await h.call('PUT', '/v1/users/kim', {
      email: 'Kim@Example.com',
      phone: '+821012345678',
      locale: 'ko-KR',
      time_zone: 'Asia/Seoul',
    });
    assert.equal(created.status, 200);
    assert.equal(created.body.email, 'kim@example.com');
    const updated = await h.call('PUT', '/v1/users/kim', { locale: 'en' });
    assert.equal(updated.body.phone, '+821012345678');
    assert.equal(updated.body.locale, 'en');
    const a = await h.call('POST', '/v1/users/kim/devices', {
      platform: 'ios',
      app_id: 'com.shop',
      token: 'tok-1',
    });
    await h.call('POST', '/v1/users/kim/devices', {
      platform: 'android',
      app_id: 'com.shop',
      token: 'tok-2',
    });
    assert.equal(a.status, 201);
    const user = await h.call('GET', '/v1/users/kim');
    assert.equal(user.body.devices.length, 2);
    const replaced = await h.call('PUT', '/v1/users/kim/devices', {
      devices: [{ platform: 'ios', app_id: 'com.shop', token: 'tok-1' }],
    });
    assert.deepEqual(
      replaced.body.devices.map((d: { id: string }) => d.id),
      [a.body.id],
    );
    assert.equal((await h.call('DELETE', `/v1/users/kim/devices/${String(a.body.id)}`)).status, 204);
    assert.equal((await h.call('GET', '/v1/users/kim/devices')).body.devices.length, 0);
  });

  test('bulk upsert applies all users or, with one bad row, none', async () => {
    const before = await count('users');
    const bad = await h.call('POST', '/v1/users/bulk', {
      users: [
        { id: 'b1', email: 'b1@example.com' },
        { id: 'b2', email: 'nope' },
      ],
    });
    assert.equal(bad.status, 400, JSON.stringify(bad.body));
    assert.equal(bad.body.errors[0].field, 'body/users/1/email');
    assert.equal(await count('users'), before);
    const good = await h.call('POST', '/v1/users/bulk', {
      users: [{ id: 'b1', email: 'b1@example.com' }, { id: 'b2' }],
    });
    assert.equal(good.body.upserted, 2);
    assert.equal(await count('users'), before + 2);
  });
});
