// The user's own preferences (userPreferenceRoutes) behind the inbox guard, as the query role
// serves them: a user token reads and changes only its own user's preferences, sees the
// categories it can set, and cannot opt out of a critical one. The api role's copy (API key)
// answers as before.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { buildServer } from '../../src/http/build-server.js';
import { createApiKeyAuth } from '../../src/http/api-key-auth.js';
import { createApiKey, ensureService, findCallerByKey } from '../../src/db/stores/api-key-store.js';
import { userPreferenceRoutes } from '../../src/preferences/user-preference-routes.js';
import { directoryPreferenceRoutes } from '../../src/api/users/directory-preference-routes.js';
import { createLogger } from '../../src/observability/logger.js';
import { requireInboxAccess, UserTokens } from '../../src/query/user-auth.js';
import { senderPermissions } from '../../src/domain/permissions.js';
import { CredentialRevocations } from '../../src/query/credential-revocations.js';

let db: TestDatabase;
let query: FastifyInstance;
let api: FastifyInstance;
let tokens: UserTokens;
let senderKey: string;
/** A live key: the tokens below name it as their issuer. */
let issuerKeyId: number;
let supportKey: string;
let directoryKey: string;

const serverOptions = {
  logger: createLogger('silent'),
  bodyLimit: 1_048_576,
  description: 'test',
  timeouts: { requestMs: 10_000, headersMs: 5_000, keepAliveMs: 5_000, idleMs: 60_000 },
  exposeDocs: true,
};

before(async () => {
  db = await createTestDatabase();
  const shop = await ensureService(db.pool, 'shop');
  const billing = await ensureService(db.pool, 'billing');
  senderKey = await createApiKey(db.pool, shop, senderPermissions);
  issuerKeyId = (await db.pool.query<{ id: number }>('SELECT max(id) AS id FROM api_keys')).rows[0]?.id ?? 0;
  supportKey = await createApiKey(db.pool, shop, ['support']);
  directoryKey = await createApiKey(db.pool, billing, ['users:write']);
  await db.pool.query(`INSERT INTO users (id) VALUES ('u1'), ('u2')`);
  await db.pool.query(
    `INSERT INTO categories (service_id, category, critical, marketing, defaults) VALUES
       ($1, 'security', true, false, '{}'), ($1, 'promo', false, true, '{"sms": false}'),
       ($2, 'news', false, false, '{"email": false}')`,
    [shop, billing],
  );
  const authenticate = createApiKeyAuth({ lookup: (key) => findCallerByKey(db.pool, key) });
  tokens = new UserTokens({ secret: randomBytes(32), defaultTtlSeconds: 600 });
  const access = { tokens, authenticate, revocations: new CredentialRevocations({ pool: db.pool }) };
  query = await buildServer({ ...serverOptions, title: 'query', role: 'query' }, [
    userPreferenceRoutes({
      pool: db.pool,
      guards: {
        read: requireInboxAccess(access, ['users:read', 'users:write']),
        write: requireInboxAccess(access, ['users:write']),
      },
    }),
  ]);
  api = await buildServer({ ...serverOptions, title: 'api', role: 'api' }, [
    directoryPreferenceRoutes({ pool: db.pool, authenticate }),
  ]);
});

after(async () => {
  await query.close();
  await api.close();
  await db.drop();
});

async function call(
  server: FastifyInstance,
  method: 'GET' | 'PUT',
  userId: string,
  credential: string | undefined,
  body?: unknown,
) {
  const res = await server.inject({
    method,
    url: `/v1/users/${userId}/preferences`,
    headers: credential === undefined ? {} : { authorization: `Bearer ${credential}` },
    ...(body === undefined ? {} : { payload: body as object }),
  });
  return { status: res.statusCode, body: res.json() };
}

async function stored(userId: string) {
  const { rows } = await db.pool.query(
    `SELECT p.channel, p.category, p.enabled, u.no_marketing, u.quiet_start
       FROM users u LEFT JOIN preferences p ON p.user_id = u.id WHERE u.id = $1 ORDER BY 1, 2`,
    [userId],
  );
  return rows;
}

const categories = [
  { category: 'news', service: 'billing', critical: false, marketing: false, defaults: { email: false } },
  { category: 'promo', service: 'shop', critical: false, marketing: true, defaults: { sms: false } },
  { category: 'security', service: 'shop', critical: true, marketing: false, defaults: {} },
];

describe('with a user token', () => {
  test('a user reads their preferences and the categories they can set', async () => {
    const res = await call(query, 'GET', 'u1', (await tokens.issue('u1', issuerKeyId)).token);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body, {
      preferences: [],
      no_marketing: false,
      quiet_hours: null,
      time_zone: 'UTC',
      categories,
    });
  });

  test('a user changes their own preferences', async () => {
    const token = (await tokens.issue('u1', issuerKeyId)).token;
    const body = {
      preferences: [
        { channel: 'email', category: 'news', enabled: false },
        { channel: '*', category: 'security', enabled: true },
      ],
      no_marketing: true,
      quiet_hours: { start: '22:00', end: '07:00' },
    };
    const res = await call(query, 'PUT', 'u1', token, body);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.preferences, [
      { channel: '*', category: 'security', enabled: true },
      { channel: 'email', category: 'news', enabled: false },
    ]);
    assert.equal(res.body.no_marketing, true);
    assert.deepEqual(res.body.quiet_hours, { start: '22:00', end: '07:00' });
    assert.deepEqual(res.body.categories, categories);
    assert.deepEqual((await call(query, 'GET', 'u1', token)).body, res.body);
  });

  test("a token for u2 gets 404 on u1's preferences and changes nothing", async () => {
    const before = await stored('u1');
    const other = (await tokens.issue('u2', issuerKeyId)).token;
    const read = await call(query, 'GET', 'u1', other);
    assert.equal(read.status, 404);
    assert.equal(read.body.code, 'not_found');
    const write = await call(query, 'PUT', 'u1', other, {
      preferences: [{ channel: '*', category: '*', enabled: false }],
      no_marketing: false,
    });
    assert.equal(write.status, 404);
    assert.equal(write.body.code, 'not_found');
    assert.deepEqual(await stored('u1'), before);
  });

  test('no credential is 401; an expired or foreign-signed token is 401', async () => {
    const before = await stored('u1');
    for (const credential of [
      undefined,
      (await new UserTokens({ secret: randomBytes(32), defaultTtlSeconds: 600 }).issue('u1', issuerKeyId))
        .token,
      (await tokens.issue('u1', issuerKeyId, -60)).token,
    ]) {
      for (const method of ['GET', 'PUT'] as const) {
        const res = await call(
          query,
          method,
          'u1',
          credential,
          method === 'PUT' ? { preferences: [] } : undefined,
        );
        assert.equal(res.status, 401, `${method} ${String(credential)}`);
        assert.equal(res.body.code, 'unauthenticated');
      }
    }
    assert.deepEqual(await stored('u1'), before);
  });

  test('opting out of a critical category is 400 naming the preference, and changes nothing', async () => {
    const token = (await tokens.issue('u2', issuerKeyId)).token;
    const before = await stored('u2');
    const res = await call(query, 'PUT', 'u2', token, {
      preferences: [
        { channel: 'email', category: 'news', enabled: false },
        { channel: 'sms', category: 'security', enabled: false },
      ],
    });
    assert.equal(res.status, 400);
    assert.equal(res.body.code, 'validation_failed');
    assert.deepEqual(
      res.body.errors.map((e: { field: string }) => e.field),
      ['body/preferences/1'],
    );
    assert.deepEqual(await stored('u2'), before);
    // Opting out of everything is allowed: critical categories are still delivered.
    const all = await call(query, 'PUT', 'u2', token, {
      preferences: [{ channel: '*', category: '*', enabled: false }],
    });
    assert.equal(all.status, 200, JSON.stringify(all.body));
  });
});

describe('with an API key', () => {
  test('a user-directory key (users:write) reads and changes any user on the query role; others are 403', async () => {
    const res = await call(query, 'PUT', 'u2', directoryKey, { preferences: [] });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.categories, categories);
    const before = await stored('u2');
    for (const [label, key] of [
      ['support', supportKey],
      ['sender', senderKey],
    ] as const) {
      for (const method of ['GET', 'PUT'] as const) {
        const refused = await call(
          query,
          method,
          'u2',
          key,
          method === 'PUT' ? { preferences: [] } : undefined,
        );
        assert.equal(refused.status, 403, `${label} ${method}`);
        assert.equal(refused.body.code, 'forbidden');
      }
    }
    assert.deepEqual(await stored('u2'), before);
  });

  test("the api role's routes answer as before: no categories, critical opt-outs stored", async () => {
    const res = await call(api, 'PUT', 'u2', directoryKey, {
      preferences: [{ channel: 'sms', category: 'security', enabled: false }],
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body, {
      preferences: [{ channel: 'sms', category: 'security', enabled: false }],
      no_marketing: false,
      quiet_hours: null,
      time_zone: 'UTC',
    });
    assert.deepEqual((await call(api, 'GET', 'u2', directoryKey)).body, res.body);
    assert.equal((await call(api, 'PUT', 'u2', senderKey, { preferences: [] })).status, 403);
    const token = (await tokens.issue('u2', issuerKeyId)).token;
    assert.equal((await call(api, 'GET', 'u2', token)).status, 401, 'the api role takes API keys only');
  });
});
