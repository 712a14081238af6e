// Canary secrets never leak. Herald runs every role with a logger at level trace writing into
// memory, a database password, an API key and webhook signing secrets it must keep to itself, and
// webhooks that fail (so retries and dead letters happen). After valid and invalid traffic, none
// of the canaries may appear in the log, in any problem+json body, or in /metrics. Values the test
// itself puts into request fields are canaries too: errors may name a field, never echo its value.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import pg from 'pg';
import pino from 'pino';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { ConfigError, loadConfig } from '../../src/config/load-config.js';
import { startHerald, type Herald } from '../../src/composition/create-herald.js';
import { createApiKey, ensureService } from '../../src/db/stores/api-key-store.js';
import { createLogger } from '../../src/observability/logger.js';
import { permissions } from '../../src/domain/permissions.js';
import { loopbackNetworks } from '../helpers/loopback-allowed.js';

let db: TestDatabase;
let herald: Herald | undefined;
let log = '';
/** name → value; every value must stay out of logs, problem bodies and metrics. */
const canaries = new Map<string, string>();
/** Every answer Herald gave, and which canaries it may legitimately contain (by design). */
const answers: { what: string; status: number; contentType: string; text: string; mayShow: string[] }[] = [];

const canary = (name: string) => {
  const value = `canary-${name}-${randomBytes(9).toString('base64url')}`;
  canaries.set(name, value);
  return value;
};

const capture = new Writable({
  write(chunk: Buffer, _encoding, done) {
    log += chunk.toString();
    done();
  },
});

/**
 * The test database URL with a password Herald must not reveal. The embedded test server checks
 * passwords (scram-sha-256), so its own password is the canary; a server with trust
 * authentication ignores passwords, so one is added.
 */
async function urlWithPassword(url: string): Promise<string> {
  const u = new URL(url);
  if (u.password === '') u.password = canary('db-password');
  else canaries.set('db-password', decodeURIComponent(u.password));
  const client = new pg.Client({ connectionString: u.toString() });
  await client.connect();
  await client.end();
  return u.toString();
}

async function call(
  method: string,
  path: string,
  options: {
    key?: string | null;
    authorization?: string;
    body?: unknown;
    base?: string;
    mayShow?: string[];
  } = {},
) {
  const headers: Record<string, string> = {};
  const key = options.key === undefined ? canaries.get('api-key') : options.key;
  if (options.authorization !== undefined) headers['authorization'] = options.authorization;
  else if (key !== null && key !== undefined) headers['authorization'] = `Bearer ${key}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${options.base ?? herald?.apiUrl ?? ''}${path}`, {
    method,
    headers,
    ...(options.body === undefined
      ? {}
      : { body: typeof options.body === 'string' ? options.body : JSON.stringify(options.body) }),
  });
  const text = await response.text();
  const contentType = response.headers.get('content-type') ?? '';
  answers.push({
    what: `${method} ${path}`,
    status: response.status,
    contentType,
    text,
    mayShow: options.mayShow ?? [],
  });
  return { status: response.status, text, json: () => JSON.parse(text) as Record<string, unknown> };
}

function leaks(text: string, allowed: string[] = []): string[] {
  return [...canaries]
    .filter(([name, value]) => !allowed.includes(name) && text.includes(value))
    .map(([name]) => name);
}

before(async () => {
  db = await createTestDatabase();
});
after(async () => {
  await herald?.stop();
  await db.drop();
});

describe('secrets stay out of logs, errors and metrics', () => {
  test('a full run with failing webhooks and bad requests', async () => {
    const databaseUrl = await urlWithPassword(db.url);
    herald = await startHerald({
      config: loadConfig({
        DATABASE_URL: databaseUrl,
        API_PORT: '0',
        QUERY_PORT: '0',
        CONSOLE_PORT: '0',
        LOG_LEVEL: 'trace',
        POLL_INTERVAL_MS: '100',
        MAINTENANCE_INTERVAL_MS: '200',
        RETRY_BASE_MS: '10',
        RETRY_MAX_MS: '50',
        MAX_ATTEMPTS: '3',
        OUTBOUND_ALLOWED_NETWORKS: loopbackNetworks,
      }),
      roles: ['api', 'query', 'worker', 'scheduler'],
      logger: createLogger('trace', capture),
    });
    const running = herald;
    canaries.set('api-key', await createApiKey(db.pool, await ensureService(db.pool, 'shop'), permissions));

    // Signing secrets are shown to the admin who sets or rotates them, and nowhere else.
    const set = await call('PUT', '/v1/service/webhook', {
      body: { url: 'http://127.0.0.1:9/service-hook' },
      mayShow: ['webhook-secret'],
    });
    assert.equal(set.status, 200);
    canaries.set('webhook-secret', String(set.json()['webhook_secret']));
    const rotated = await call('POST', '/v1/service/webhook/rotate-secret', {
      mayShow: ['webhook-secret-2'],
    });
    canaries.set('webhook-secret-2', String(rotated.json()['webhook_secret']));
    assert.notEqual(canaries.get('webhook-secret-2'), canaries.get('webhook-secret'));
    assert.equal(
      (await call('PUT', '/v1/users/bob', { body: { webhook_url: 'http://127.0.0.1:9/bob' } })).status,
      200,
    );

    // Valid traffic: in-app, and three webhooks to a closed port (bob's own URL; the service URL
    // for alice and carol, who have none) that retry, then die.
    const dead = new Set<string>();
    const allDead = new Promise<void>((resolve) => {
      running.events.on('delivery.finished', (e) => {
        if (e.channel === 'webhook' && e.state === 'dead') dead.add(e.id);
        if (dead.size === 3) resolve();
      });
    });
    const sent = await call('POST', '/v1/notifications', {
      body: {
        recipients: ['alice', 'bob', 'carol'],
        channels: ['in_app', 'webhook'],
        content: { default: { title: 'Order shipped', body: 'Parcel 123' } },
        data: { order: 123 },
      },
    });
    assert.equal(sent.status, 202);
    await Promise.race([
      allDead,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('webhooks did not die in time')), 15_000).unref(),
      ),
    ]);
    const id = encodeURIComponent(String(sent.json()['id']));
    assert.equal((await call('GET', `/v1/notifications/${id}`)).status, 200);
    const letters = await call('GET', '/v1/dead-letters');
    assert.equal((letters.json()['dead_letters'] as unknown[]).length, 3);
    assert.equal((await call('GET', '/v1/users/alice/inbox', { base: running.queryUrl ?? '' })).status, 200);

    // Invalid traffic. Secret-looking values in fields must not be echoed back or logged.
    const fieldSecret = canary('field');
    const unknownKey = `hk_${randomBytes(32).toString('base64url')}`;
    canaries.set('unknown-key', unknownKey);
    const bad: [string, string, Parameters<typeof call>[2]][] = [
      ['GET', '/v1/service', { key: unknownKey }],
      [
        'GET',
        '/v1/service',
        { authorization: `Basic ${Buffer.from(`shop:${fieldSecret}`).toString('base64')}` },
      ],
      ['GET', '/v1/service', { authorization: `Bearer ${fieldSecret}!` }],
      ['GET', '/v1/service', { authorization: `Token ${canaries.get('api-key') ?? ''}` }],
      ['POST', '/v1/notifications', { body: '{"recipients": [', key: undefined }],
      ['POST', '/v1/notifications', { body: { recipients: [fieldSecret], channels: ['pigeon'] } }],
      [
        'POST',
        '/v1/notifications',
        { body: { recipients: ['a'], channels: ['in_app'], api_key: fieldSecret } },
      ],
      [
        'POST',
        '/v1/notifications',
        { body: { recipients: ['a'], channels: ['in_app'], category: fieldSecret } },
      ],
      ['POST', '/v1/notifications', { body: { id: fieldSecret, recipients: ['a'], channels: ['in_app'] } }],
      ['PUT', '/v1/users/eve', { body: { webhook_url: `ftp://eve:${fieldSecret}@example.com/` } }],
      ['PUT', '/v1/users/eve', { body: { email: `${fieldSecret}@` } }],
      ['PUT', '/v1/users/eve', { body: { phone: fieldSecret.slice(0, 16) } }],
      ['POST', '/v1/users/bob/devices', { body: { platform: 'symbian', app_id: 'a', token: fieldSecret } }],
      ['PUT', '/v1/service/webhook', { body: { url: `gopher://${fieldSecret}` } }],
      ['GET', `/v1/dead-letters?cursor=${fieldSecret}`, {}],
      ['PATCH', `/v1/notifications/${id}`, { body: { version: 1, data: { secret: fieldSecret } } }],
      ['GET', `/v1/notifications/${encodeURIComponent(`billing#${fieldSecret}`)}`, {}],
    ];
    for (const [method, path, options] of bad) {
      const res = await call(method, path, options);
      assert.ok(res.status >= 400, `${method} ${path} → ${String(res.status)}`);
    }
    // Make Herald fail inside (a table it needs is gone for one request), so an error is logged.
    await call('PUT', '/v1/users/ghost', { body: {} });
    await db.pool.query('ALTER TABLE devices RENAME TO devices_away');
    const broken = await call('GET', '/v1/users/ghost/devices', {});
    await db.pool.query('ALTER TABLE devices_away RENAME TO devices');
    assert.equal(broken.status, 500);

    for (const base of [running.apiUrl ?? '', running.queryUrl ?? '']) {
      const metrics = await call('GET', '/metrics', { key: null, base });
      assert.equal(metrics.status, 200);
      assert.match(metrics.text, /herald_recipients_accepted_total/);
    }
    await running.stop();
    herald = undefined;

    // The checks can fail: the log is full, and the answers include problems and metrics.
    assert.match(log, /"msg":"herald started"/);
    assert.match(log, /"level":50/, 'an internal error was logged');
    assert.ok(
      answers.filter((a) => a.contentType.startsWith('application/problem+json')).length >= bad.length,
    );
    assert.ok(
      answers.some((a) => a.text.includes(canaries.get('webhook-secret') ?? '-')),
      'the secret was shown once',
    );

    assert.deepEqual(leaks(log), [], 'secrets in the log');
    for (const answer of answers) {
      const isProblem = answer.contentType.startsWith('application/problem+json');
      const isMetrics = answer.what.startsWith('GET /metrics');
      if (isProblem || isMetrics)
        assert.deepEqual(leaks(answer.text), [], `secrets in ${answer.what} → ${String(answer.status)}`);
      // Successful answers show what the caller owns, but never credentials it did not ask for.
      else assert.deepEqual(leaks(answer.text, answer.mayShow), [], `secrets in ${answer.what}`);
    }
  });

  test('a configuration error names the bad settings but not the database passwords', () => {
    const password = canary('config-password');
    const readPassword = canary('config-read-password');
    let error: unknown;
    assert.throws(() => {
      try {
        loadConfig({
          DATABASE_URL: `postgres://herald:${password}@127.0.0.1:5432/herald`,
          DATABASE_READ_URL: `postgres://reader:${readPassword}@127.0.0.1:5433/herald`,
          DATABASE_POOL_SIZE: 'lots',
          API_PORT: '-1',
          LOG_LEVEL: 'loud',
        });
      } catch (e) {
        error = e;
        throw e;
      }
    }, ConfigError);
    assert.ok(error instanceof ConfigError);
    for (const name of ['DATABASE_POOL_SIZE', 'API_PORT', 'LOG_LEVEL'])
      assert.match(error.message, new RegExp(name));
    const printed = `${error.message}\n${JSON.stringify(error.problems)}\n${JSON.stringify(pino.stdSerializers.err(error))}`;
    assert.ok(!printed.includes(password) && !printed.includes(readPassword), printed);
  });

  test('a malformed DATABASE_URL fails start-up without printing its password', async () => {
    const password = canary('bad-url-password');
    let startupLog = '';
    const logger = createLogger(
      'trace',
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          startupLog += chunk.toString();
          done();
        },
      }),
    );
    const config = loadConfig({
      DATABASE_URL: `postgres://herald:${password}@127.0.0.1:99999/herald`,
      API_PORT: '0',
      QUERY_PORT: '0',
      CONSOLE_PORT: '0',
    });
    let error: unknown;
    await assert.rejects(async () => {
      try {
        await startHerald({ config, roles: ['api'], logger });
      } catch (e) {
        error = e;
        throw e;
      }
    });
    // What main prints (message and cause) and what a logger would record (every own property).
    const printed = [
      error instanceof Error ? error.message : String(error),
      error instanceof Error && error.cause instanceof Error ? error.cause.message : '',
      JSON.stringify(pino.stdSerializers.err(error as Error)),
      startupLog,
    ].join('\n');
    assert.ok(!printed.includes(password), printed);
  });
});
