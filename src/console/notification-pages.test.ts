// Notifications in the console: searched by id, service, user, template and delivery state over a
// bounded day range; a notification's timeline (accepted, fan-out, each delivery's events, the
// inbox copy); webhook targets masked; malformed ids and too-long ranges refused; unknown → 404.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../../test/helpers/test-herald.js';
import { ConsoleClient } from '../../test/helpers/console-browser.js';
import { waitFor } from '../../test/helpers/wait-for.js';
import { WebhookReceiver } from '../../test/stand-ins/webhook-receiver.js';
import { createConsoleUser } from '../db/stores/console-user-store.js';
import { searchNotifications } from '../db/stores/notification-search-store.js';
import { hashPassword } from './passwords.js';

let db: TestDatabase;
let h: TestHerald;
let receiver: WebhookReceiver;
let secret: string | undefined;
let viewer: ConsoleClient;
const sent: Record<string, string> = {};
const password = 'notifications passphrase';

async function delivered(id: string, channel: string, state: string): Promise<void> {
  await waitFor(`${id} ${channel} ${state}`, async () => {
    const r = await db.pool.query<{ state: string }>(
      'SELECT state FROM deliveries WHERE notification_id = $1 AND channel = $2',
      [id, channel],
    );
    return r.rows[0]?.state === state;
  });
}

before(async () => {
  db = await createTestDatabase();
  receiver = new WebhookReceiver(() => secret);
  await receiver.start();
  h = await startTestHerald(db, { roles: ['api', 'worker', 'console'] });
  const hook = await h.call('PUT', '/v1/service/webhook', { url: `${receiver.url}?token=hook-credential` });
  secret = hook.body.webhook_secret;
  const template = await h.call('PUT', '/v1/templates/greet', {
    category: 'orders',
    lane: 'transactional',
    params: { name: 'string' },
    fallback_locale: 'en',
    variants: { in_app: { en: { title: 'Hi {{ name }}' } } },
  });
  assert.equal(template.status, 200, JSON.stringify(template.body));
  const inApp = await h.call('POST', '/v1/notifications', {
    recipients: ['alice'],
    channels: ['in_app'],
    content: { default: { title: 'Parcel shipped', body: 'On its way' } },
  });
  const templated = await h.call(
    'POST',
    '/v1/notifications',
    { recipients: ['bob'], channels: ['in_app'], template: 'greet', params: { name: 'Bob' } },
    { headers: { 'idempotency-key': 'order-7731-greeting' } },
  );
  const hooked = await h.call('POST', '/v1/notifications', {
    recipients: ['carol'],
    channels: ['webhook'],
    content: { default: { title: 'Build', body: 'Deploy finished' } },
  });
  for (const r of [inApp, templated, hooked]) assert.equal(r.status, 202, JSON.stringify(r.body));
  sent['inApp'] = inApp.body.id;
  sent['templated'] = templated.body.id;
  sent['hooked'] = hooked.body.id;
  await delivered(inApp.body.id, 'in_app', 'delivered');
  await delivered(templated.body.id, 'in_app', 'delivered');
  await delivered(hooked.body.id, 'webhook', 'sent');
  await createConsoleUser(db.pool, {
    email: 'viewer@example.com',
    name: '',
    role: 'viewer',
    passwordHash: await hashPassword(password),
  });
  viewer = new ConsoleClient(h.herald.consoleUrl ?? '');
  assert.equal((await viewer.signIn('viewer@example.com', password)).status, 303);
});
after(async () => {
  await h.stop();
  await receiver.stop();
  await db.drop();
});

function shows(text: string, ...names: string[]): boolean[] {
  return names.map((n) => text.includes(sent[n] ?? '-'));
}

test('a viewer sees the recent notifications, newest first, and each filter narrows them', async () => {
  const all = await viewer.get('/notifications');
  assert.equal(all.status, 200);
  assert.deepEqual(shows(all.text, 'inApp', 'templated', 'hooked'), [true, true, true]);
  assert.ok(all.text.indexOf(sent['hooked'] ?? '-') < all.text.indexOf(sent['inApp'] ?? '-'), 'newest first');
  assert.match(all.text, /at most 92 days/);

  const byUser = await viewer.get('/notifications?user=alice');
  assert.deepEqual(shows(byUser.text, 'inApp', 'templated', 'hooked'), [true, false, false]);
  const byTemplate = await viewer.get('/notifications?template=greet');
  assert.deepEqual(shows(byTemplate.text, 'inApp', 'templated', 'hooked'), [false, true, false]);
  const byId = await viewer.get(`/notifications?id=${encodeURIComponent(sent['hooked'] ?? '')}`);
  assert.deepEqual(shows(byId.text, 'inApp', 'templated', 'hooked'), [false, false, true]);
  const byState = await viewer.get('/notifications?state=sent');
  assert.deepEqual(shows(byState.text, 'inApp', 'templated', 'hooked'), [false, false, true]);
  const byService = await viewer.get('/notifications?service=shop');
  assert.deepEqual(shows(byService.text, 'inApp', 'templated', 'hooked'), [true, true, true]);
  const otherService = await viewer.get('/notifications?service=nosuch');
  assert.deepEqual(shows(otherService.text, 'inApp', 'templated', 'hooked'), [false, false, false]);
  const excluded = await viewer.get('/notifications?user=alice&template=greet');
  assert.deepEqual(shows(excluded.text, 'inApp', 'templated', 'hooked'), [false, false, false]);
  const byKey = await viewer.get('/notifications?service=shop&key=order-7731-greeting');
  assert.deepEqual(shows(byKey.text, 'inApp', 'templated', 'hooked'), [false, true, false]);
  const otherKey = await viewer.get('/notifications?service=shop&key=order-7731');
  assert.deepEqual(shows(otherKey.text, 'inApp', 'templated', 'hooked'), [false, false, false]);
  const keyWithoutService = await viewer.get('/notifications?key=order-7731-greeting');
  assert.equal(keyWithoutService.status, 400, 'a key is looked up within one service');
  const longAgo = await viewer.get('/notifications?since=2020-01-01&until=2020-01-31');
  assert.deepEqual(shows(longAgo.text, 'inApp', 'templated', 'hooked'), [false, false, false]);
});

test('the search pages newest first by (created_at, id): the older page starts after the last shown', async () => {
  const range = { from: new Date(Date.now() - 86_400_000), to: new Date(Date.now() + 86_400_000) };
  const [first] = await searchNotifications(db.pool, { ...range, limit: 1 });
  assert.equal(first?.id, sent['hooked']);
  const older = await searchNotifications(db.pool, {
    ...range,
    before: { createdUs: first?.createdUs ?? 0, id: first?.id ?? '' },
    limit: 5,
  });
  assert.deepEqual(
    older.map((n) => n.id),
    [sent['templated'], sent['inApp']],
  );
});

test('a notification timeline shows acceptance, fan-out, each delivery event and the inbox copy', async () => {
  const page = await viewer.get(`/notifications/${encodeURIComponent(sent['inApp'] ?? '')}`);
  assert.equal(page.status, 200);
  assert.match(page.text, /Parcel shipped/);
  assert.match(page.text, /<dt>Status<\/dt><dd>completed<\/dd>/);
  assert.match(page.text, /accepted/);
  assert.match(page.text, /fan-out for alice: fanned_out/);
  assert.match(page.text, /<td>delivered<\/td>/);
  assert.match(page.text, /In inbox since/);

  const templated = await viewer.get(`/notifications/${encodeURIComponent(sent['templated'] ?? '')}`);
  assert.match(templated.text, /greet v1/);
});

test('a webhook delivery shows the target masked to its origin', async () => {
  const page = await viewer.get(`/notifications/${encodeURIComponent(sent['hooked'] ?? '')}`);
  assert.equal(page.status, 200);
  assert.match(page.text, /<td>sent<\/td>/);
  // Its history, found through the delivery: pending, sending and sent, each an event row.
  for (const state of ['pending', 'sending', 'sent'])
    assert.match(page.text, new RegExp(`<td>${state}</td><td>\\d</td>`), state);
  assert.ok(!page.text.includes('hook-credential') && !page.text.includes('/hook'), 'no raw target');
  assert.ok(page.text.includes(`${new URL(receiver.url).origin}/***`));
});

test('malformed ids and over-long ranges are refused as problems; an unknown id is not found', async () => {
  for (const path of [
    '/notifications/not-an-id',
    '/notifications?id=nope',
    '/notifications?since=2025-01-01&until=2025-06-01',
    '/notifications?since=2025-02-01&until=2025-01-01',
  ]) {
    const answer = await viewer.get(path);
    assert.equal(answer.status, 400, path);
    assert.match(answer.headers.get('content-type') ?? '', /application\/problem\+json/, path);
  }
  const unknown = await viewer.get(
    `/notifications/${encodeURIComponent('shop#0190a000-0000-7000-8000-000000000000')}`,
  );
  assert.equal(unknown.status, 404);
  assert.match(unknown.headers.get('content-type') ?? '', /application\/problem\+json/);
});

test('without a session the pages redirect to sign-in', async () => {
  const stranger = new ConsoleClient(h.herald.consoleUrl ?? '');
  const answer = await stranger.get('/notifications');
  assert.equal(answer.status, 303);
});
