// Users as the user directory writes them: null clears every nullable field (JSON bodies are not
// type-coerced, so null never becomes ""), and every change of a contact target or device is
// recorded with the key that made it, masked.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../../../test/helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../../../test/helpers/test-herald.js';
import { createApiKey, ensureService } from '../../db/stores/api-key-store.js';

let db: TestDatabase;
let h: TestHerald;
let directoryKey: string;

before(async () => {
  db = await createTestDatabase();
  h = await startTestHerald(db, { roles: ['api'] });
  directoryKey = await createApiKey(db.pool, await ensureService(db.pool, 'directory'), [
    'users:read',
    'users:write',
  ]);
});

after(async () => {
  await h.stop();
  await db.drop();
});

const stored = async (id: string) =>
  (
    await db.pool.query<Record<string, string | null>>(
      'SELECT email, phone, webhook_url, chat_webhook_url FROM users WHERE id = $1',
      [id],
    )
  ).rows[0];

describe('null clears what the schema says is nullable', () => {
  test("a user's email, phone, webhook and chat URLs", async () => {
    const set = await h.call('PUT', '/v1/users/nia', {
      email: 'nia@example.com',
      phone: '+821012345678',
      webhook_url: 'https://hooks.example.com/nia',
      chat_webhook_url: 'https://hooks.slack.com/services/T1/B1/x',
    });
    assert.equal(set.status, 200);
    const cleared = await h.call('PUT', '/v1/users/nia', {
      email: null,
      phone: null,
      webhook_url: null,
      chat_webhook_url: null,
    });
    assert.equal(cleared.status, 200, JSON.stringify(cleared.body));
    const expected = { email: null, phone: null, webhook_url: null, chat_webhook_url: null };
    assert.deepEqual(await stored('nia'), expected);
    const read = await h.call('GET', '/v1/users/nia');
    assert.deepEqual(
      {
        email: read.body.email,
        phone: read.body.phone,
        webhook_url: read.body.webhook_url,
        chat_webhook_url: read.body.chat_webhook_url,
      },
      expected,
    );
    // In bulk too.
    await h.call('PUT', '/v1/users/nia', { email: 'nia@example.com' });
    const bulk = await h.call('POST', '/v1/users/bulk', { users: [{ id: 'nia', email: null }] });
    assert.equal(bulk.status, 200, JSON.stringify(bulk.body));
    assert.equal((await stored('nia'))?.['email'], null);
  });

  test("the service's webhook and chat URLs, and quiet hours", async () => {
    await h.call('PUT', '/v1/service/webhook', { url: 'https://hooks.example.com/shop' });
    const hook = await h.call('PUT', '/v1/service/webhook', { url: null });
    assert.equal(hook.status, 200, JSON.stringify(hook.body));
    assert.equal(hook.body.webhook_url, null);
    await h.call('PUT', '/v1/service/chat', { url: 'https://hooks.slack.com/services/T1/B1/y' });
    assert.equal((await h.call('PUT', '/v1/service/chat', { url: null })).body.chat_webhook_url, null);
    const settings = await db.pool.query(
      'SELECT webhook_url, chat_webhook_url FROM services WHERE name = $1',
      ['shop'],
    );
    assert.deepEqual(settings.rows[0], { webhook_url: null, chat_webhook_url: null });

    await h.call('PUT', '/v1/users/quinn', {});
    const quiet = { preferences: [], quiet_hours: { start: '22:00', end: '07:00' } };
    assert.equal((await h.call('PUT', '/v1/users/quinn/preferences', quiet)).body.quiet_hours.start, '22:00');
    const off = await h.call('PUT', '/v1/users/quinn/preferences', { preferences: [], quiet_hours: null });
    assert.equal(off.status, 200, JSON.stringify(off.body));
    assert.equal(off.body.quiet_hours, null);
  });

  test('no other coercion either: a number where a string is expected is refused, not converted', async () => {
    const res = await h.call('PUT', '/v1/users/nia', { locale: 42 });
    assert.equal(res.status, 400);
    assert.equal(res.body.code, 'validation_failed');
  });
});

describe('contact history', () => {
  test('records each changed target and device with its key, masked; unchanged values are not recorded', async () => {
    const as = { key: directoryKey };
    const keyId = (
      await db.pool.query<{ id: number }>(
        "SELECT id FROM api_keys WHERE permissions @> '{users:write}' ORDER BY id DESC LIMIT 1",
      )
    ).rows[0]?.id;
    await h.call('PUT', '/v1/users/ora', { email: 'ora@example.com', phone: '+821012345678' }, as);
    await h.call('PUT', '/v1/users/ora', { email: 'ora@example.com', phone: null }, as);
    const device = await h.call(
      'POST',
      '/v1/users/ora/devices',
      { platform: 'ios', app_id: 'com.shop', token: 'abcdef123456' },
      as,
    );
    assert.equal(device.status, 201);
    assert.equal(device.body.token, 'abcdef123456', 'users:read sees a device token in full');
    // The same token registered for another user moves: recorded for both.
    await h.call('PUT', '/v1/users/pia', {}, as);
    await h.call(
      'POST',
      '/v1/users/pia/devices',
      { platform: 'ios', app_id: 'com.shop', token: 'abcdef123456' },
      as,
    );
    await h.call('DELETE', '/v1/users/pia', undefined, as);

    const history = async (id: string) =>
      (await h.call('GET', `/v1/users/${id}/contact-history`, undefined, as)).body.changes.map(
        (c: { target: string; action: string; value: string | null; key_id: number; service: string }) => [
          c.target,
          c.action,
          c.value,
          c.key_id === keyId && c.service === 'directory',
        ],
      );
    assert.deepEqual(await history('ora'), [
      ['device', 'cleared', 'ios com.shop abcdef***', true],
      ['device', 'set', 'ios com.shop abcdef***', true],
      ['phone', 'cleared', null, true],
      ['phone', 'set', '+82********78', true],
      ['email', 'set', 'o***@example.com', true],
    ]);
    assert.deepEqual(await history('pia'), [
      ['user', 'deleted', null, true],
      ['device', 'set', 'ios com.shop abcdef***', true],
    ]);
    // A writer without users:read sees device tokens masked.
    const writer = await createApiKey(db.pool, await ensureService(db.pool, 'directory'), ['users:write']);
    const devices = await h.call('GET', '/v1/users/ora/devices', undefined, { key: writer });
    assert.deepEqual(devices.body.devices, []);
    const again = await h.call(
      'POST',
      '/v1/users/ora/devices',
      { platform: 'ios', app_id: 'com.shop', token: 'abcdef123456' },
      { key: writer },
    );
    assert.equal(again.body.token, 'abcdef***');
  });
});
