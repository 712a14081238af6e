// Every admin call of the api role that changes something is in the audit log: the key (its id
// and prefix), the action, the target, the state before and after, and the client address. A
// refused call (400, 403) writes nothing, nor does a call that changes nothing, nor a send. The
// console's Audit log page finds the entries by action and by key.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../../test/helpers/test-herald.js';
import { upload } from '../../test/helpers/template-sheet-client.js';
import { signedInAs } from '../../test/helpers/console-browser.js';
import { createApiKey, findCallerByKey } from '../db/stores/api-key-store.js';

let db: TestDatabase;
let h: TestHerald;
let keyId: string;
let keyPrefix: string;
/** A key of the same service without the admin and templates permissions. */
let senderKey: string;

interface Entry {
  actor_kind: string;
  actor_id: string;
  actor_name: string;
  action: string;
  target: string;
  before: unknown;
  after: any;
  client_address: string | null;
}

async function entriesSince(id: number): Promise<Entry[]> {
  const r = await db.pool.query<Entry>(
    `SELECT actor_kind, actor_id, actor_name, action, target, before, after, client_address
       FROM audit_log WHERE id > $1 ORDER BY id`,
    [id],
  );
  return r.rows;
}

async function lastId(): Promise<number> {
  const r = await db.pool.query<{ id: string | null }>('SELECT max(id)::text AS id FROM audit_log');
  return Number(r.rows[0]?.id ?? 0);
}

/** The one entry `call` makes, checked for the key and the address. */
async function oneEntry(
  call: () => Promise<{ status: number; body: unknown }>,
  status = 200,
): Promise<Entry> {
  const from = await lastId();
  const answer = await call();
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  const entries = await entriesSince(from);
  assert.equal(entries.length, 1, JSON.stringify(entries));
  const [entry] = entries;
  assert.ok(entry !== undefined);
  assert.equal(entry.actor_kind, 'api_key');
  assert.equal(entry.actor_id, keyId);
  assert.equal(entry.actor_name, keyPrefix);
  assert.equal(entry.client_address, '127.0.0.1');
  return entry;
}

/** `call` is answered `status` and writes no audit entry. */
async function noEntry(
  call: () => Promise<{ status: number; body: unknown }>,
  status: number,
): Promise<void> {
  const from = await lastId();
  const answer = await call();
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  assert.deepEqual(await entriesSince(from), []);
}

async function deadLetter(serviceId: number): Promise<string> {
  const id = randomUUID();
  await db.pool.query(
    `INSERT INTO deliveries (id, notification_id, notification_created_at, service_id, user_id, channel, target,
                             lane, state, attempts, max_attempts, run_at, last_error, provider, dead_at)
     VALUES ($1, $2, now(), $3, 'u-1', 'webhook', 'https://hooks.example/x', 'transactional', 'dead', 5, 5,
             now(), 'http 500', 'webhook', now())`,
    [id, `shop#${randomUUID()}`, serviceId],
  );
  return id;
}

before(async () => {
  db = await createTestDatabase();
  h = await startTestHerald(db, { roles: ['api', 'console'] });
  const caller = await findCallerByKey(db.pool, h.apiKey);
  assert.ok(caller !== undefined);
  keyId = String(caller.keyId);
  keyPrefix = h.apiKey.slice(0, 10);
  senderKey = await createApiKey(db.pool, caller.serviceId, ['send', 'notifications:read']);
});
after(async () => {
  await h.stop();
  await db.drop();
});

describe('categories', () => {
  test('PUT records the settings before and after; a refused PUT records nothing', async () => {
    const created = await oneEntry(() => h.call('PUT', '/v1/categories/alerts', { critical: true }));
    assert.equal(created.action, 'category.update');
    assert.equal(created.target, 'category:shop/alerts');
    assert.equal(created.before, null);
    assert.deepEqual(created.after, { critical: true, marketing: false, defaults: {}, caps: {} });

    const changed = await oneEntry(() =>
      h.call('PUT', '/v1/categories/alerts', { marketing: true, defaults: { email: false } }),
    );
    assert.deepEqual(changed.before, { critical: true, marketing: false, defaults: {}, caps: {} });
    assert.deepEqual(changed.after, {
      critical: false,
      marketing: true,
      defaults: { email: false },
      caps: {},
    });

    await noEntry(() => h.call('PUT', '/v1/categories/alerts', { critical: true, marketing: true }), 400);
    await noEntry(() => h.call('PUT', '/v1/categories/alerts', { defaults: { pigeon: true } }), 400);
    await noEntry(() => h.call('PUT', '/v1/categories/alerts', {}, { key: senderKey }), 403);
  });
});

describe('the service', () => {
  test('setting the webhook and chat URLs records their origins only', async () => {
    const webhook = await oneEntry(() =>
      h.call('PUT', '/v1/service/webhook', { url: 'https://hooks.shop.example/secret-path?token=abc' }),
    );
    assert.equal(webhook.action, 'service.set_webhook');
    assert.equal(webhook.target, 'service:shop');
    assert.deepEqual(webhook.before, { webhook_url: null });
    assert.deepEqual(webhook.after, { webhook_url: 'https://hooks.shop.example/***' });

    const chat = await oneEntry(() =>
      h.call('PUT', '/v1/service/chat', { url: 'https://hooks.slack.com/services/T0/B0/secret' }),
    );
    assert.equal(chat.action, 'service.set_chat_webhook');
    assert.deepEqual(chat.after, { chat_webhook_url: 'https://hooks.slack.com/***' });
    assert.ok(!JSON.stringify([webhook, chat]).includes('secret'), 'no URL path or token');

    // The same URL again changes nothing.
    await noEntry(
      () => h.call('PUT', '/v1/service/chat', { url: 'https://hooks.slack.com/services/T0/B0/secret' }),
      200,
    );
    await noEntry(() => h.call('PUT', '/v1/service/webhook', { url: 'ftp://nope.example/' }), 400);
    await noEntry(() => h.call('PUT', '/v1/service/webhook', { url: null }, { key: senderKey }), 403);
  });

  test('rotating the webhook secret is recorded without the secret', async () => {
    let secret = '';
    const entry = await oneEntry(async () => {
      const answer = await h.call('POST', '/v1/service/webhook/rotate-secret');
      secret = String(answer.body.webhook_secret);
      return answer;
    });
    assert.equal(entry.action, 'service.rotate_webhook_secret');
    assert.equal(entry.target, 'service:shop');
    assert.ok(secret.startsWith('whsec_'));
    assert.ok(!JSON.stringify(entry).includes(secret), 'the secret is not in the audit log');
    await noEntry(
      () => h.call('POST', '/v1/service/webhook/rotate-secret', undefined, { key: senderKey }),
      403,
    );
  });
});

describe('dead letters', () => {
  test('a replay records what was asked and what moved; one that moves nothing records nothing', async () => {
    const serviceId = (await findCallerByKey(db.pool, h.apiKey))?.serviceId ?? 0;
    const id = await deadLetter(serviceId);
    const entry = await oneEntry(() => h.call('POST', '/v1/dead-letters/replay', { ids: [id] }));
    assert.equal(entry.action, 'dead_letters.replay');
    assert.equal(entry.target, 'service:shop');
    assert.deepEqual(entry.after, { ids_asked: 1, replayed: 1, ids: [id] });

    await noEntry(() => h.call('POST', '/v1/dead-letters/replay', { ids: [id] }), 200);
    await noEntry(() => h.call('POST', '/v1/dead-letters/replay', {}), 400);
    await noEntry(() => h.call('POST', '/v1/dead-letters/replay', { all: true }, { key: senderKey }), 403);
  });
});

describe('templates', () => {
  const sms = (text: string) => ({
    category: 'news',
    fallback_locale: 'en',
    variants: { sms: { en: { text } } },
  });

  test('PUT records the version, category and lane before and after; an equal save records nothing', async () => {
    const created = await oneEntry(() => h.call('PUT', '/v1/templates/greet', sms('Hello')));
    assert.equal(created.action, 'template.update');
    assert.equal(created.target, 'template:shop/greet');
    assert.equal(created.before, null);
    assert.deepEqual(created.after, { version: 1, category: 'news', lane: 'transactional' });

    const edited = await oneEntry(() => h.call('PUT', '/v1/templates/greet', sms('Hello again')));
    assert.deepEqual(edited.before, { version: 1, category: 'news', lane: 'transactional' });
    assert.deepEqual(edited.after, { version: 2, category: 'news', lane: 'transactional' });

    await noEntry(() => h.call('PUT', '/v1/templates/greet', sms('Hello again')), 200);
    await noEntry(() => h.call('PUT', '/v1/templates/greet', sms('Hello {{ unclosed')), 400);
    await noEntry(() => h.call('PUT', '/v1/templates/greet', sms('Hi'), { key: senderKey }), 403);
  });

  test('an import and its undo are recorded with the key and the address; a refused import is not', async () => {
    const csv = Buffer.from(
      [
        'key,category,lane,params,fallback_locale,channel,locale,text',
        'welcome,news,bulk,,en,sms,en,Welcome',
      ].join('\n'),
    );
    let importId = 0;
    const imported = await oneEntry(async () => {
      const answer = await upload(h, '/v1/templates/import', csv, 'text/csv');
      importId = Number(answer.body.import_id);
      return answer;
    });
    assert.equal(imported.action, 'template.import');
    assert.equal(imported.target, 'service:shop');
    assert.deepEqual(imported.after.templates, [{ key: 'welcome', version: 1 }]);

    const undone = await oneEntry(() => h.call('POST', `/v1/templates/imports/${String(importId)}/undo`));
    assert.equal(undone.action, 'template.import_undo');
    assert.equal(undone.after.undoes, importId);

    await noEntry(() => upload(h, '/v1/templates/import', csv, 'text/csv', senderKey), 403);
    await noEntry(() => upload(h, '/v1/templates/import', Buffer.from('not,a,sheet'), 'text/csv'), 400);
    await noEntry(() => upload(h, '/v1/templates/import?dry_run=true', csv, 'text/csv'), 200);
  });
});

test('sending a notification is not an admin call: no entry', async () => {
  await noEntry(
    () =>
      h.call('POST', '/v1/notifications', {
        recipients: ['u-1'],
        channels: ['in_app'],
        content: { default: { title: 'Hi', body: 'Your order shipped' } },
      }),
    202,
  );
});

test("the console's Audit log page finds the api entries by action and by key", async () => {
  const admin = await signedInAs(db.pool, h.herald.consoleUrl ?? '', 'admin', 'audit passphrase');
  const byAction = await admin.get('/audit?q=category.update');
  assert.equal(byAction.status, 200);
  assert.match(byAction.text, /category:shop\/alerts/);
  assert.doesNotMatch(byAction.text, /service\.rotate_webhook_secret/);
  const byKey = await admin.get(`/audit?q=${encodeURIComponent(keyPrefix)}`);
  assert.ok(
    byKey.text.includes(`<td>API key ${keyPrefix}… (${keyId})</td>`),
    'the key is named by its prefix and id',
  );
  assert.match(byKey.text, /service\.rotate_webhook_secret/);
  assert.match(byKey.text, /template\.import_undo/);
  const byKeyId = await admin.get(`/audit?q=${encodeURIComponent(`api_key:${keyId}`)}`);
  assert.match(byKeyId.text, /dead_letters\.replay/);
});
