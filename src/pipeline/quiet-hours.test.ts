// Quiet hours with a fixed clock, through the database: the deferred delivery's run_at and event
// detail as written, and its counter (which lanes and channels defer is decided in the domain,
// src/domain/fan-out-decision.test.ts). And the per-service ingest quota (whose bucket never
// refills under a fixed clock, so the test is exact).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../../test/helpers/test-herald.js';
import { waitFor } from '../../test/helpers/wait-for.js';
import { createApiKey, ensureService } from '../db/stores/api-key-store.js';
import { senderPermissions } from '../domain/permissions.js';

// A minute ago (so the database's own clock lets the fan-out claim what is sent "now"), inside
// quiet hours from an hour before to two hours after it in Seoul (UTC+9, no DST). Their end is
// in the future, so the dispatcher leaves the deferred delivery (and its run_at) alone.
const fixed = new Date(Date.now() - 60_000);
const seoulTime = (d: Date) => new Date(d.getTime() + 9 * 3_600_000).toISOString().slice(11, 16);
const quietEndAt = new Date(Math.floor((fixed.getTime() + 2 * 3_600_000) / 60_000) * 60_000);
const quietHours = { start: seoulTime(new Date(fixed.getTime() - 3_600_000)), end: seoulTime(quietEndAt) };
const quietEnd = quietEndAt.toISOString();

let db: TestDatabase;
let h: TestHerald;

before(async () => {
  db = await createTestDatabase();
  h = await startTestHerald(db, { now: () => fixed, env: { INGEST_QUOTA_PER_MINUTE: '3' } });
});
after(async () => {
  await h.stop();
  await db.drop();
});

test('quiet hours defer a bulk delivery to their end: run_at, event detail and counter', async () => {
  assert.equal((await h.call('PUT', '/v1/users/mina', { time_zone: 'Asia/Seoul' })).status, 200);
  const prefs = await h.call('PUT', '/v1/users/mina/preferences', {
    preferences: [],
    quiet_hours: quietHours,
  });
  assert.equal(prefs.status, 200);
  assert.deepEqual(prefs.body.quiet_hours, quietHours);
  assert.equal(prefs.body.time_zone, 'Asia/Seoul');
  const send = async (lane: string) => {
    const res = await h.call('POST', '/v1/notifications', {
      recipients: ['mina'],
      channels: ['webhook'],
      lane,
      content: { default: { title: 'Hi' } },
    });
    assert.equal(res.status, 202);
    return res.body.id as string;
  };
  // The service's webhook URL goes nowhere: only the fan-out's decision matters here.
  await h.call('PUT', '/v1/service/webhook', { url: 'http://127.0.0.1:9/hook' });
  const bulk = await send('bulk');
  const created = (id: string) =>
    waitFor(`the delivery of ${id}`, async () => {
      const { rows } = await db.pool.query<{ run_at: Date; detail: string | null }>(
        `SELECT d.run_at,
                (SELECT e.detail FROM delivery_events e WHERE e.delivery_id = d.id AND e.attempt = 0) AS detail
           FROM deliveries d WHERE d.notification_id = $1`,
        [id],
      );
      return rows[0];
    });
  const deferred = await created(bulk);
  assert.equal(deferred.run_at.toISOString(), quietEnd);
  assert.equal(deferred.detail, `deferred: quiet hours until ${quietEnd}`);
  const metrics = await (await fetch(`${h.herald.apiUrl ?? ''}/metrics`)).text();
  assert.match(metrics, /herald_deliveries_deferred_total\{channel="webhook",reason="quiet_hours"\} 1/);
});

test('over its quota a service gets 429 with Retry-After and nothing is stored', async () => {
  const serviceId = await ensureService(db.pool, 'crm');
  const key = await createApiKey(db.pool, serviceId, senderPermissions);
  const request = { recipients: ['zed'], channels: ['in_app'], content: { default: { title: 'Hi' } } };
  for (let i = 0; i < 3; i += 1)
    assert.equal((await h.call('POST', '/v1/notifications', request, { key })).status, 202);
  const stored = async () =>
    (await db.pool.query('SELECT 1 FROM notifications WHERE service_id = $1', [serviceId])).rowCount;
  assert.equal(await stored(), 3);
  const over = await h.call('POST', '/v1/notifications', request, { key });
  assert.equal(over.status, 429);
  assert.equal(over.body.code, 'rate_limited');
  assert.equal(over.headers.get('retry-after'), '20'); // one request refills in 60 s / 3
  assert.equal(await stored(), 3);
  // Another service has its own quota.
  assert.equal((await h.call('POST', '/v1/notifications', request)).status, 202);
});
