// Dead letters in the console: filtered across services, inspected with their attempts, replayed
// (selected or all matching) by an operator and audited; a viewer sees no replay controls and
// the console refuses its replay; targets are masked.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../../test/helpers/test-herald.js';
import { ConsoleClient, signedInAs } from '../../test/helpers/console-browser.js';
import { ensureService } from '../db/stores/api-key-store.js';
import type { ConsoleRole } from '../domain/console-roles.js';

let db: TestDatabase;
let h: TestHerald;
const password = 'dead letters passphrase';
const letters: Record<string, string> = {};

function signedIn(role: ConsoleRole): Promise<ConsoleClient> {
  return signedInAs(db.pool, h.herald.consoleUrl ?? '', role, password);
}

async function deadLetter(name: string, serviceId: number, channel: string, target: string, error: string) {
  const id = randomUUID();
  const notificationId = `svc#${randomUUID()}`;
  await db.pool.query(
    `INSERT INTO deliveries (id, notification_id, notification_created_at, service_id, user_id, channel, target,
                             lane, state, attempts, max_attempts, run_at, last_error, provider, dead_at)
     VALUES ($1, $2, now(), $3, 'u-1', $4, $5, 'transactional', 'dead', 5, 5, now(), $6, $4, now())`,
    [id, notificationId, serviceId, channel, target, error],
  );
  await db.pool.query(
    `INSERT INTO delivery_events (delivery_id, notification_id, channel, state, attempt, detail)
     VALUES ($1, $2, $3, 'dead', 5, $4)`,
    [id, notificationId, channel, error],
  );
  letters[name] = id;
}

async function stateOf(name: string): Promise<string | undefined> {
  const r = await db.pool.query<{ state: string }>('SELECT state FROM deliveries WHERE id = $1', [
    letters[name],
  ]);
  return r.rows[0]?.state;
}

before(async () => {
  db = await createTestDatabase();
  h = await startTestHerald(db, { roles: ['console'] });
  const shop = await ensureService(db.pool, 'shop');
  const bank = await ensureService(db.pool, 'bank');
  await deadLetter(
    'shopHook',
    shop,
    'webhook',
    'https://hooks.shop.example/secret-path?token=abc',
    'http 500',
  );
  await deadLetter('shopHook2', shop, 'webhook', 'https://hooks.shop.example/other', 'http 500');
  await deadLetter('shopMail', shop, 'email', 'alice@example.com', 'smtp 550 mailbox unavailable');
  await deadLetter('bankHook', bank, 'webhook', 'https://bank.example/hook', 'http 503');
});
after(async () => {
  await h.stop();
  await db.drop();
});

test('an operator filters across services, inspects a letter, replays the selected one and then all matching', async () => {
  const operator = await signedIn('operator');
  const all = await operator.get('/dead-letters');
  assert.equal(all.status, 200);
  for (const id of Object.values(letters)) assert.ok(all.text.includes(id), id);
  assert.ok(
    !all.text.includes('secret-path') && !all.text.includes('alice@example.com'),
    'targets are masked',
  );

  const filtered = await operator.get('/dead-letters?service=shop&channel=webhook&reason=HTTP%205');
  assert.ok(
    filtered.text.includes(letters['shopHook'] ?? '-') && filtered.text.includes(letters['shopHook2'] ?? '-'),
  );
  assert.ok(
    !filtered.text.includes(letters['shopMail'] ?? '-') &&
      !filtered.text.includes(letters['bankHook'] ?? '-'),
  );

  const inspected = await operator.get(`/dead-letters/${letters['shopMail'] ?? ''}`);
  assert.match(inspected.text, /smtp 550 mailbox unavailable/);

  const csrf = ConsoleClient.csrfOf(filtered.text);
  const one = await operator.request('POST', '/dead-letters/replay', {
    _csrf: csrf,
    scope: 'selected',
    ids: letters['shopHook'] ?? '',
  });
  assert.equal(one.status, 303);
  assert.match(one.headers.get('location') ?? '', /replayed=1/);
  assert.equal(await stateOf('shopHook'), 'pending');
  assert.equal(await stateOf('shopHook2'), 'dead');

  const matching = await operator.request('POST', '/dead-letters/replay', {
    _csrf: csrf,
    scope: 'matching',
    service: 'shop',
    channel: 'webhook',
  });
  assert.match(matching.headers.get('location') ?? '', /replayed=1/);
  assert.equal(await stateOf('shopHook2'), 'pending');
  assert.equal(await stateOf('shopMail'), 'dead', 'outside the filter');
  assert.equal(await stateOf('bankHook'), 'dead', 'another service, outside the filter');

  const audit = await db.pool.query<{ actor_name: string; target: string }>(
    "SELECT actor_name, target FROM audit_log WHERE action = 'dead_letters.replay' ORDER BY id",
  );
  assert.deepEqual(
    audit.rows.map((r) => [r.actor_name, r.target]),
    [
      ['operator@example.com', '1 selected'],
      ['operator@example.com', 'all matching'],
    ],
  );
});

test('a viewer sees dead letters without replay controls, and its replay is refused', async () => {
  const viewer = await signedIn('viewer');
  const page = await viewer.get('/dead-letters');
  assert.equal(page.status, 200);
  assert.doesNotMatch(page.text, /Replay/);
  const refused = await viewer.request('POST', '/dead-letters/replay', {
    _csrf: ConsoleClient.csrfOf(page.text),
    scope: 'matching',
  });
  assert.equal(refused.status, 403);
  assert.equal(await stateOf('bankHook'), 'dead');
});

test('a filter naming an unknown service shows nothing and replays nothing', async () => {
  const admin = await signedIn('admin');
  const page = await admin.get('/dead-letters?service=nosuch');
  assert.ok(!page.text.includes(letters['bankHook'] ?? '-'));
  const answer = await admin.request('POST', '/dead-letters/replay', {
    _csrf: ConsoleClient.csrfOf(page.text),
    scope: 'matching',
    service: 'nosuch',
  });
  assert.match(answer.headers.get('location') ?? '', /replayed=0/);
  assert.equal(await stateOf('bankHook'), 'dead');
});
