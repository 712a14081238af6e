// Preferences, critical categories, no-marketing, frequency caps and one-click unsubscribe,
// applied by the fan-out stage on a real database, through the public API: the round trips
// and the cap's lock under concurrency. The decisions themselves, case by case, are unit
// tests of the domain (src/domain/fan-out-decision.test.ts).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { freePort } from '../../test/helpers/free-port.js';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../../test/helpers/test-herald.js';
import { waitFor } from '../../test/helpers/wait-for.js';
import type { ChannelProvider, RenderedMessage } from '../channels/channel-provider.js';
import { composeEmail } from '../channels/email/compose-email.js';
import type { Channel } from '../domain/notification.js';

class RecordingProvider implements ChannelProvider {
  readonly sent: RenderedMessage[] = [];
  readonly serves;
  constructor(
    readonly name: string,
    readonly channel: Channel,
    platform?: 'ios',
  ) {
    this.serves = platform === undefined ? undefined : { platform };
  }
  send(message: RenderedMessage) {
    this.sent.push(message);
    return Promise.resolve({
      kind: 'sent' as const,
      providerMessageId: `${this.name}-${message.deliveryId}`,
    });
  }
  close() {
    return Promise.resolve();
  }
}

interface Row {
  channel: string;
  target: string;
  state: string;
  last_error: string | null;
  detail: string | null;
}

let db: TestDatabase;
let h: TestHerald;
const email = new RecordingProvider('mail', 'email');
const sms = new RecordingProvider('sms', 'sms');
const push = new RecordingProvider('apns', 'push', 'ios');

before(async () => {
  db = await createTestDatabase();
  const port = await freePort();
  h = await startTestHerald(db, {
    providers: [email, sms, push],
    env: { API_PORT: String(port), PUBLIC_URL: `http://127.0.0.1:${String(port)}` },
  });
});
after(async () => {
  await h.stop();
  await db.drop();
});

const user = async (id: string, extra: object = {}) => {
  const res = await h.call('PUT', `/v1/users/${id}`, {
    email: `${id}@example.com`,
    phone: '+821012345678',
    ...extra,
  });
  assert.equal(res.status, 200, JSON.stringify(res.body));
};
const send = async (userId: string, channels: Channel[], category: string, lane = 'transactional') => {
  const res = await h.call('POST', '/v1/notifications', {
    recipients: [userId],
    channels,
    category,
    lane,
    content: { default: { title: 'Hello', body: 'Body' } },
  });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return res.body.id as string;
};
/** The deliveries of a notification once all are final, with their creation event's detail. */
const settled = (id: string, count: number) =>
  waitFor(`${String(count)} settled deliveries of ${id}`, async () => {
    const { rows } = await db.pool.query<Row>(
      `SELECT d.channel, d.target, d.state, d.last_error,
              (SELECT e.detail FROM delivery_events e WHERE e.delivery_id = d.id AND e.attempt = 0 LIMIT 1) AS detail
         FROM deliveries d WHERE d.notification_id = $1 ORDER BY d.channel, d.target`,
      [id],
    );
    const final = rows.filter((r) => ['sent', 'delivered', 'suppressed'].includes(r.state));
    return final.length === count && rows.length === count ? rows : undefined;
  });
const putPreferences = async (userId: string, body: object) => {
  const res = await h.call('PUT', `/v1/users/${userId}/preferences`, body);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body;
};

describe('preferences in the pipeline', () => {
  test('opting out of a channel for a category suppresses exactly those deliveries', async () => {
    await user('ana');
    const prefs = await putPreferences('ana', {
      preferences: [{ channel: 'email', category: 'news', enabled: false }],
    });
    assert.deepEqual(prefs.preferences, [{ channel: 'email', category: 'news', enabled: false }]);
    const news = await send('ana', ['email', 'sms', 'in_app'], 'news');
    const rows = await settled(news, 3);
    assert.deepEqual(
      rows.map((r) => [r.channel, r.state, r.last_error]),
      [
        ['email', 'suppressed', 'preference: opted out of email/news'],
        ['in_app', 'delivered', null],
        ['sms', 'sent', null],
      ],
    );
    assert.equal(rows[0]?.detail, 'preference: opted out of email/news');
    const orders = await send('ana', ['email'], 'orders');
    assert.deepEqual(
      (await settled(orders, 1)).map((r) => r.state),
      ['sent'],
    );
    assert.ok(!email.sent.some((m) => m.notificationId === news), 'the suppressed email was not sent');
    const inbox = await db.pool.query('SELECT 1 FROM inbox_items WHERE notification_id = $1', [news]);
    assert.equal(inbox.rowCount, 1);
  });

  test('an opt-out of in_app writes no inbox item; a category default applies without a preference', async () => {
    await user('bo');
    assert.equal((await h.call('PUT', '/v1/categories/tips', { defaults: { sms: false } })).status, 200);
    await putPreferences('bo', { preferences: [{ channel: 'in_app', category: '*', enabled: false }] });
    const id = await send('bo', ['in_app', 'sms', 'email'], 'tips');
    assert.deepEqual(
      (await settled(id, 3)).map((r) => [r.channel, r.state, r.last_error]),
      [
        ['email', 'sent', null],
        ['in_app', 'suppressed', 'preference: opted out of in_app/*'],
        ['sms', 'suppressed', 'preference: sms is off by default for tips'],
      ],
    );
    const inbox = await db.pool.query('SELECT 1 FROM inbox_items WHERE notification_id = $1', [id]);
    assert.equal(inbox.rowCount, 0);
  });

  // Which categories bypass or meet which switches is decided in the domain
  // (src/domain/fan-out-decision.test.ts); this proves settings set through the API reach it.
  test('category settings set through the API reach the fan-out: critical and marketing', async () => {
    await user('cy');
    const res = await h.call('PUT', '/v1/categories/security', { critical: true });
    assert.equal(res.status, 200);
    assert.equal(res.body.critical, true);
    await putPreferences('cy', {
      preferences: [{ channel: '*', category: '*', enabled: false }],
      no_marketing: true,
      quiet_hours: { start: '00:00', end: '23:59' },
    });
    const critical = await send('cy', ['email', 'sms'], 'security', 'bulk');
    assert.deepEqual(
      (await settled(critical, 2)).map((r) => r.state),
      ['sent', 'sent'],
    );
    await user('di');
    assert.equal((await h.call('PUT', '/v1/categories/promo', { marketing: true })).status, 200);
    await putPreferences('di', { preferences: [], no_marketing: true });
    const toDi = await send('di', ['email'], 'promo', 'bulk');
    assert.deepEqual(
      (await settled(toDi, 1)).map((r) => [r.state, r.last_error]),
      [['suppressed', 'preference: no marketing']],
    );
  });
});

describe('frequency caps and suppression counters in the pipeline', () => {
  test('a frequency cap holds under concurrent fan-out: the (N+1)th notification is suppressed on every device', async () => {
    await user('fay');
    for (const token of ['1'.repeat(64), '2'.repeat(64)]) {
      const res = await h.call('POST', '/v1/users/fay/devices', {
        platform: 'ios',
        app_id: 'com.example',
        token,
      });
      assert.equal(res.status, 201);
    }
    const cap = await h.call('PUT', '/v1/categories/digest', {
      caps: { push: { bulk: { limit: 2, per: 'day', over: 'suppress' } } },
    });
    assert.equal(cap.status, 200, JSON.stringify(cap.body));
    // Sent at once: fan-out batches and workers must not both see room for the last slot.
    const ids = await Promise.all([1, 2, 3].map(() => send('fay', ['push'], 'digest', 'bulk')));
    const all = await Promise.all(ids.map((id) => settled(id, 2)));
    const states = all.map((rows) => rows.map((r) => r.state).join(','));
    assert.deepEqual([...states].sort(), ['sent,sent', 'sent,sent', 'suppressed,suppressed']);
    const suppressed = all.flat().filter((r) => r.state === 'suppressed');
    assert.deepEqual(new Set(suppressed.map((r) => r.last_error)), new Set(['cap: 2 bulk push per day']));
  });

  test('suppressions are counted in /metrics by channel and reason', async () => {
    const res = await fetch(`${h.herald.apiUrl ?? ''}/metrics`);
    const text = await res.text();
    assert.match(text, /herald_deliveries_suppressed_total\{channel="email",reason="preference"\} [1-9]/);
    assert.match(text, /herald_deliveries_suppressed_total\{channel="email",reason="marketing"\} 1/);
    assert.match(text, /herald_deliveries_suppressed_total\{channel="push",reason="cap"\} 2/);
  });
});

describe('unsubscribe links and bad input', () => {
  test('the unsubscribe link in an email works once; a forged or altered one fails', async () => {
    await user('gus');
    const id = await send('gus', ['email'], 'weekly', 'bulk');
    await settled(id, 1);
    const message = email.sent.find((m) => m.notificationId === id);
    assert.ok(message?.unsubscribeUrl !== undefined, 'the email carries an unsubscribe link');
    const url = message.unsubscribeUrl;
    assert.ok(url.startsWith(`${h.herald.apiUrl ?? ''}/v1/unsubscribe/`));
    const composed = await composeEmail(message, { from: 'Shop <noreply@shop.example>' });
    assert.ok(composed.raw.toString().includes(`List-Unsubscribe: <${url}>`));

    const token = url.slice(url.lastIndexOf('/') + 1);
    const [v, payload, mac] = token.split('.');
    const altered = `${v ?? ''}.${Buffer.from(JSON.stringify([message.deliveryId, 'ana', 'email', 'weekly'])).toString('base64url')}.${mac ?? ''}`;
    const forged = `${v ?? ''}.${payload ?? ''}.${'A'.repeat(43)}`;
    const oneClick = { 'content-type': 'application/x-www-form-urlencoded' };
    for (const bad of [altered, forged, 'garbage']) {
      const res = await h.call('POST', `/v1/unsubscribe/${bad}`, 'List-Unsubscribe=One-Click', {
        key: null,
        headers: oneClick,
      });
      assert.equal(res.status, 400);
      assert.equal(res.body.code, 'unsubscribe_link_invalid');
    }
    assert.deepEqual((await h.call('GET', '/v1/users/ana/preferences')).body.preferences, [
      { channel: 'email', category: 'news', enabled: false },
    ]);
    const page = await h.call('GET', `/v1/unsubscribe/${token}`, undefined, { key: null });
    assert.equal(page.status, 200);
    assert.match(String(page.body), /<form method="post">/);
    assert.deepEqual(
      (await h.call('GET', '/v1/users/gus/preferences')).body.preferences,
      [],
      'GET changes nothing',
    );

    const first = await h.call('POST', `/v1/unsubscribe/${token}`, 'List-Unsubscribe=One-Click', {
      key: null,
      headers: oneClick,
    });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.deepEqual((await h.call('GET', '/v1/users/gus/preferences')).body.preferences, [
      { channel: 'email', category: 'weekly', enabled: false },
    ]);
    const again = await h.call('POST', `/v1/unsubscribe/${token}`, 'List-Unsubscribe=One-Click', {
      key: null,
      headers: oneClick,
    });
    assert.equal(again.status, 410);
    assert.equal(again.body.code, 'unsubscribe_link_used');

    const next = await send('gus', ['email'], 'weekly', 'bulk');
    assert.deepEqual(
      (await settled(next, 1)).map((r) => r.last_error),
      ['preference: opted out of email/weekly'],
    );
  });

  test('bad preference and category input is a problem naming the field, and changes nothing', async () => {
    await user('hal');
    const bad = await h.call('PUT', '/v1/users/hal/preferences', {
      preferences: [{ channel: 'fax', category: 'news', enabled: false }],
    });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.code, 'validation_failed');
    const twice = await h.call('PUT', '/v1/users/hal/preferences', {
      preferences: [
        { channel: 'email', category: 'news', enabled: false },
        { channel: 'email', category: 'news', enabled: true },
      ],
    });
    assert.equal(twice.status, 400);
    assert.equal(twice.body.errors[0].field, 'body/preferences/1');
    const quiet = await h.call('PUT', '/v1/users/hal/preferences', {
      preferences: [],
      quiet_hours: { start: '22:00', end: '22:00' },
    });
    assert.equal(quiet.status, 400);
    assert.equal(quiet.body.errors[0].field, 'body/quiet_hours');
    const both = await h.call('PUT', '/v1/categories/odd', { critical: true, marketing: true });
    assert.equal(both.status, 400);
    const inAppCap = await h.call('PUT', '/v1/categories/odd', {
      caps: { in_app: { bulk: { limit: 1, per: 'day', over: 'defer' } } },
    });
    assert.equal(inAppCap.status, 400);
    assert.equal((await h.call('GET', '/v1/categories/odd')).body.updated_at, null);
    assert.equal((await h.call('PUT', '/v1/users/nobody/preferences', { preferences: [] })).status, 404);
    assert.deepEqual((await h.call('GET', '/v1/users/hal/preferences')).body, {
      preferences: [],
      no_marketing: false,
      quiet_hours: null,
      time_zone: 'UTC',
    });
  });
});
