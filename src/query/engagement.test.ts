// Engagement through the real pipeline: an email's open pixel and click links (recorded once,
// redirected only to the message's own links, refused when altered or expired), the tracking
// opt-out, opens and clicks reported by a user's app and the inbox's read, the attacks (user
// against user, service against service), and the figures API equal to a raw recount and to a
// rebuild of the same rows; each open and click reaches a status callback subscriber once.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { freePort } from '../../test/helpers/free-port.js';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../../test/helpers/test-herald.js';
import { waitFor } from '../../test/helpers/wait-for.js';
import type { ChannelProvider, RenderedMessage } from '../channels/channel-provider.js';
import { composeEmail } from '../channels/email/compose-email.js';
import { createApiKey, ensureService } from '../db/stores/api-key-store.js';
import { engagementCommand } from '../composition/engagement-command.js';
import { permissions } from '../domain/permissions.js';
import { TrackingLinks } from '../templates/tracking-links.js';
import { Subscriber, verifies } from '../../test/helpers/status-subscriber.js';

class RecordingProvider implements ChannelProvider {
  readonly sent: RenderedMessage[] = [];
  readonly serves = { platform: 'ios' as const };
  constructor(
    readonly name: string,
    readonly channel: 'email' | 'push',
  ) {}
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

const html =
  '<html><body><p>Hi</p><a href="https://shop.example/a?x=1&amp;y=2">A</a> ' +
  "<a class='b' href='https://shop.example/b'>B</a> <a href=\"mailto:help@shop.example\">mail</a></body></html>";

let db: TestDatabase;
let h: TestHerald;
let query: string;
let otherKey: string;
const email = new RecordingProvider('mail', 'email');
const push = new RecordingProvider('apns', 'push');
const today = new Date().toISOString().slice(0, 10);
const subscriber = new Subscriber();
let callbackSecret = '';

before(async () => {
  db = await createTestDatabase();
  const port = await freePort();
  h = await startTestHerald(db, {
    providers: [email, push],
    env: {
      QUERY_PORT: String(port),
      TRACKING_URL: `http://127.0.0.1:${String(port)}`,
      // Opens right after the send are this test's own: only the proxy's User-Agent is a prefetch.
      TRACKING_PREFETCH_SECONDS: '0',
    },
  });
  query = h.herald.queryUrl ?? '';
  otherKey = await createApiKey(db.pool, await ensureService(db.pool, 'rival'), permissions);
  for (const user of ['ann', 'bob'])
    assert.equal((await h.call('PUT', `/v1/users/${user}`, { email: `${user}@example.com` })).status, 200);
  const template = await h.call('PUT', '/v1/templates/welcome', {
    category: 'account',
    fallback_locale: 'en',
    variants: { email: { en: { subject: 'Welcome', html } } },
  });
  assert.equal(template.status, 200, JSON.stringify(template.body));
  await subscriber.start();
  const subscribed = await h.call('POST', '/v1/callback-subscriptions', {
    url: subscriber.url,
    event_types: ['email.opened', 'email.clicked', 'inbox.clicked'],
  });
  assert.equal(subscribed.status, 201, JSON.stringify(subscribed.body));
  callbackSecret = subscribed.body.secret as string;
  const off = await h.call('PUT', '/v1/tracking/categories/private', { tracked: false });
  assert.deepEqual(off.body, { scope: 'categories', name: 'private', tracked: false });
});
after(async () => {
  await h.stop();
  await subscriber.stop();
  await db.drop();
});

async function send(body: Record<string, unknown>): Promise<string> {
  const res = await h.call('POST', '/v1/notifications', body);
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return res.body.id as string;
}

async function sentEmail(id: string): Promise<RenderedMessage> {
  return waitFor(`the email of ${id}`, () => email.sent.find((m) => m.notificationId === id));
}

function hrefs(body: string): string[] {
  return [...body.matchAll(/<a\b[^>]*?href=(?:"([^"]*)"|'([^']*)')/g)].map((m) =>
    (m[1] ?? m[2] ?? '').replaceAll('&amp;', '&'),
  );
}

async function events(deliveryId: string): Promise<string[]> {
  const rows = await db.pool.query<{ e: string }>(
    `SELECT concat_ws(' ', kind, link_index, prefetch::text) AS e FROM engagement_events WHERE delivery_id = $1 ORDER BY 1`,
    [deliveryId],
  );
  return rows.rows.map((r) => r.e);
}

async function tokenFor(user: string): Promise<string> {
  const res = await h.call('POST', `/v1/users/${user}/token`, {}, { base: query });
  assert.equal(res.status, 201);
  return res.body.token as string;
}

describe('email tracking', () => {
  test('the pixel and a click record once each; the click goes to the link as written', async () => {
    const id = await send({ recipients: ['ann'], channels: ['email'], template: 'welcome', params: {} });
    const message = await sentEmail(id);
    const body = message.html ?? '';
    const links = hrefs(body);
    assert.equal(links.length, 3);
    assert.ok(links[0]?.startsWith(`${query}/v1/track/click/`), links[0]);
    assert.ok(links[1]?.startsWith(`${query}/v1/track/click/`), links[1]);
    assert.equal(links[2], 'mailto:help@shop.example', 'only http(s) links are rewritten');
    const pixel = /<img src="([^"]+)"/.exec(body)?.[1]?.replaceAll('&amp;', '&') ?? '';
    assert.ok(pixel.startsWith(`${query}/v1/track/open/`), body);
    assert.ok(body.indexOf('<img') < body.indexOf('</body>'), 'the pixel is inside the body');

    for (let i = 0; i < 2; i++) {
      const open = await fetch(pixel, { headers: { 'user-agent': 'Thunderbird' } });
      assert.equal(open.status, 200);
      assert.equal(open.headers.get('content-type'), 'image/gif');
      assert.equal((await open.arrayBuffer()).byteLength > 0, true);
      const click = await fetch(links[0] ?? '', { redirect: 'manual' });
      assert.equal(click.status, 302);
      assert.equal(click.headers.get('location'), 'https://shop.example/a?x=1&y=2');
    }
    assert.deepEqual(await events(message.deliveryId), ['clicked 0 false', 'opened -1 false']);
    // Ten clicks of the second link at once: still one row.
    const clicks = await Promise.all(
      Array.from({ length: 10 }, () => fetch(links[1] ?? '', { redirect: 'manual' })),
    );
    assert.deepEqual(
      new Set(clicks.map((c) => c.headers.get('location'))),
      new Set(['https://shop.example/b']),
    );
    assert.deepEqual(await events(message.deliveryId), [
      'clicked 0 false',
      'clicked 1 false',
      'opened -1 false',
    ]);
    // A proxy's prefetch is kept apart from the person's open.
    await fetch(pixel, { headers: { 'user-agent': 'Mozilla/5.0' } });
    assert.deepEqual(await events(message.deliveryId), [
      'clicked 0 false',
      'clicked 1 false',
      'opened -1 false',
      'opened -1 true',
    ]);
  });

  test('an altered, foreign or expired click link is refused and redirects nowhere', async () => {
    const id = await send({ recipients: ['bob'], channels: ['email'], template: 'welcome', params: {} });
    const message = await sentEmail(id);
    const link = hrefs(message.html ?? '')[0] ?? '';
    const token = link.slice(link.lastIndexOf('/') + 1);
    const [v, payload, mac] = token.split('.');
    const fields = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()) as unknown[];
    // The same signature over another target: a link that was not in the message.
    fields[4] = 'https://evil.example/';
    const altered = `${v ?? ''}.${Buffer.from(JSON.stringify(fields)).toString('base64url')}.${mac ?? ''}`;
    for (const bad of [altered, `${token}x`, 'nonsense']) {
      const res = await fetch(`${query}/v1/track/click/${bad}`, { redirect: 'manual' });
      assert.equal(res.status, 400);
      assert.equal(res.headers.get('location'), null);
      assert.equal(((await res.json()) as { code: string }).code, 'tracking_link_invalid');
    }
    // Signed with Herald's own key, but expired.
    const key = await db.pool.query<{ secret: Buffer }>(
      "SELECT secret FROM signing_keys WHERE name = 'tracking'",
    );
    const past = new TrackingLinks({
      key: key.rows[0]?.secret ?? Buffer.alloc(0),
      baseUrl: query,
      ttlSeconds: 60,
      now: () => new Date(Date.now() - 3_600_000),
    });
    const expired = await fetch(past.clickUrl(message.deliveryId, 0, 'https://shop.example/a?x=1&y=2'), {
      redirect: 'manual',
    });
    assert.equal(expired.status, 410);
    assert.equal(expired.headers.get('location'), null);
    // An expired pixel still answers its image but records nothing.
    assert.equal((await fetch(past.pixelUrl(message.deliveryId))).status, 200);
    assert.deepEqual(await events(message.deliveryId), []);
    const metrics = await (await fetch(`${query}/metrics`)).text();
    assert.match(
      metrics,
      /herald_engagement_reports_total\{kind="clicked",source="link",result="refused"\} 4/,
    );
    assert.match(
      metrics,
      /herald_engagement_reports_total\{kind="opened",source="pixel",result="refused"\} 1/,
    );
  });

  test('a category with tracking off gets the html untouched: no pixel, links as written', async () => {
    const id = await send({
      recipients: ['ann'],
      channels: ['email'],
      template: 'welcome',
      params: {},
      category: 'private',
    });
    const message = await sentEmail(id);
    assert.equal(message.html, html);
    assert.equal(message.trackingPixelUrl, undefined);
    const tracked = await h.call('GET', '/v1/tracking/categories/private');
    assert.equal(tracked.body.tracked, false);
    // Another service's settings are its own: it sees the category tracked, and its change of
    // a category leaves this service's alone.
    const rival = await h.call('GET', '/v1/tracking/categories/private', undefined, { key: otherKey });
    assert.equal(rival.body.tracked, true);
    await h.call('PUT', '/v1/tracking/templates/welcome', { tracked: false }, { key: otherKey });
    assert.equal((await h.call('GET', '/v1/tracking/templates/welcome')).body.tracked, true);
  });
});

describe('reports from apps and the inbox', () => {
  test('a user reports opens and clicks of their own deliveries once; another user or service gets 404', async () => {
    const id = await send({
      recipients: ['ann'],
      channels: ['in_app'],
      content: { default: { title: 'Sale' } },
    });
    const delivery: string = await waitFor('the in-app delivery', async () => {
      const r = await db.pool.query<{ id: string }>('SELECT id FROM deliveries WHERE notification_id = $1', [
        id,
      ]);
      return r.rows[0]?.id;
    });
    const ann = await tokenFor('ann');
    const bob = await tokenFor('bob');
    const as = (token: string, path: string) =>
      fetch(`${query}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    const clicked = `/v1/users/ann/inbox/${encodeURIComponent(id)}/clicked`;
    const first = await as(ann, clicked);
    assert.equal(first.status, 200);
    assert.deepEqual(await first.json(), { recorded: true });
    assert.deepEqual(await (await as(ann, clicked)).json(), { recorded: false });
    const opened = `/v1/users/ann/deliveries/${delivery}/opened`;
    assert.deepEqual(await (await as(ann, opened)).json(), { recorded: true });
    // Reading the item counts as its read.
    assert.equal((await as(ann, `/v1/users/ann/inbox/${encodeURIComponent(id)}/read`)).status, 200);
    await as(ann, `/v1/users/ann/inbox/${encodeURIComponent(id)}/read`);
    assert.deepEqual(await events(delivery), ['clicked -1 false', 'opened -1 false', 'read -1 false']);

    // Bob's token on Ann's items: 404 on his own path and on hers; the rival service's key: 404.
    assert.equal((await as(bob, `/v1/users/bob/deliveries/${delivery}/clicked`)).status, 404);
    assert.equal((await as(bob, `/v1/users/bob/inbox/${encodeURIComponent(id)}/clicked`)).status, 404);
    assert.equal((await as(bob, `/v1/users/ann/deliveries/${delivery}/clicked`)).status, 404);
    assert.equal((await as(otherKey, `/v1/users/ann/deliveries/${delivery}/clicked`)).status, 404);
    assert.equal((await as(otherKey, clicked)).status, 404);
    assert.deepEqual(await events(delivery), ['clicked -1 false', 'opened -1 false', 'read -1 false']);
    // The service's own key may report for its user.
    const own = await h.call('POST', `/v1/users/ann/deliveries/${delivery}/clicked`, {}, { base: query });
    assert.deepEqual(own.body, { recorded: false });
    // A time in the future is refused.
    const future = await h.call(
      'POST',
      `/v1/users/ann/deliveries/${delivery}/opened`,
      { occurred_at: '2999-01-01T00:00:00Z' },
      { base: query },
    );
    assert.equal(future.status, 400);
    const leap = await h.call(
      'POST',
      `/v1/users/ann/deliveries/${delivery}/opened`,
      { occurred_at: '2016-12-31T23:59:60Z' },
      { base: query },
    );
    assert.equal(leap.body.code, 'validation_failed');
  });
});

describe('figures', () => {
  test('the API equals a raw recount and a rebuild; another service sees none of them', async () => {
    const p = await send({
      recipients: ['ann', 'bob'],
      channels: ['in_app', 'email'],
      content: { default: { title: 'x', body: 'b' } },
    });
    // Both emails' sends are recorded (the provider saw them before their outcome was written).
    await waitFor('both emails recorded as sent', async () => {
      const sent = await db.pool.query(
        "SELECT 1 FROM delivery_events WHERE notification_id = $1 AND channel = 'email' AND state = 'sent'",
        [p],
      );
      return sent.rowCount === 2;
    });
    // Each event (the fan-out's, the claim's, the outcome's) carries its notification's time, so
    // the trigger finds the delivery and notification in their month's partition alone.
    const untimed = await db.pool.query(
      `SELECT e.state FROM delivery_events e JOIN deliveries d ON d.id = e.delivery_id
        WHERE e.notification_id = $1 AND e.notification_created_at IS DISTINCT FROM d.notification_created_at`,
      [p],
    );
    assert.deepEqual(untimed.rows, []);
    // Plain content (no html part): the pixel goes at the end of the HTML the adapter generates.
    const plain = email.sent.find((m) => m.notificationId === p);
    assert.ok(plain?.trackingPixelUrl?.startsWith(`${query}/v1/track/open/`) === true);
    const composed = (await composeEmail(plain, { from: 'shop@example.com' })).raw.toString();
    assert.match(composed.replace(/=\r\n/g, ''), /<img src=3D"http:\/\/127\.0\.0\.1:\d+\/v1\/track\/open\//);
    const raw = await db.pool.query<{ line: string }>(
      `SELECT concat_ws(' ', channel, metric, n) AS line FROM (
         SELECT e.channel, CASE WHEN e.state IN ('failed', 'target_invalid', 'dead', 'bounced') THEN 'failed' ELSE e.state END AS metric, count(*) AS n
           FROM delivery_events e JOIN deliveries d ON d.id = e.delivery_id
          WHERE d.service_id = (SELECT id FROM services WHERE name = 'shop')
            AND e.state IN ('sent', 'delivered', 'suppressed', 'failed', 'target_invalid', 'dead', 'bounced')
          GROUP BY 1, 2
         UNION ALL
         SELECT channel, CASE WHEN kind = 'opened' AND prefetch THEN 'opened_prefetch' ELSE kind END, count(*)
           FROM engagement_events WHERE service_id = (SELECT id FROM services WHERE name = 'shop') GROUP BY 1, 2) t`,
    );
    const expected = raw.rows.map((r) => r.line).sort();
    assert.ok(
      expected.some((l) => l.startsWith('email opened ')),
      expected.join('\n'),
    );
    const apiLines = async () => {
      const res = await h.call('GET', `/v1/engagement?from=${today}&to=${today}&group_by=channel`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const lines: string[] = [];
      for (const g of res.body.groups as Record<string, unknown>[])
        for (const [metric, n] of Object.entries(g))
          if (typeof n === 'number' && n > 0) lines.push(`${String(g.key)} ${metric} ${String(n)}`);
      return lines.sort();
    };
    assert.deepEqual(await apiLines(), expected);
    // The rebuild recomputes from the raw rows: a lost figure comes back, the others stay.
    await db.pool.query("DELETE FROM engagement_counts WHERE metric = 'sent'");
    assert.notDeepEqual(await apiLines(), expected);
    assert.equal(await engagementCommand(['rebuild', '--from', today, '--to', today], db.pool), 0);
    assert.deepEqual(await apiLines(), expected);
    assert.equal(await engagementCommand(['rebuild'], db.pool), 0);
    assert.deepEqual(await apiLines(), expected);
    assert.equal(await engagementCommand(['rebuild', '--from', 'yesterday'], db.pool), 2);

    const rival = await h.call('GET', `/v1/engagement?from=${today}&to=${today}`, undefined, {
      key: otherKey,
    });
    assert.deepEqual(rival.body.groups, []);
    const reversed = await h.call('GET', `/v1/engagement?from=${today}&to=2000-01-01`);
    assert.equal(reversed.body.code, 'engagement_range_invalid');
    const long = await h.call('GET', '/v1/engagement?from=2000-01-01&to=2020-01-01');
    assert.equal(long.body.code, 'engagement_range_invalid');
  });
});

describe('status callbacks', () => {
  test('each stored open and click is one signed callback; reads and refused links are none', async () => {
    const stored = await db.pool.query<{ line: string }>(
      `SELECT concat_ws(' ', CASE WHEN channel = 'email' THEN 'email.' || kind ELSE 'inbox.clicked' END,
                        notification_id, delivery_id, CASE WHEN prefetch THEN 'prefetch' END) AS line
         FROM engagement_events
        WHERE service_id = (SELECT id FROM services WHERE name = 'shop')
          AND (channel = 'email' OR (channel = 'in_app' AND kind = 'clicked'))`,
    );
    const expected = stored.rows.map((r) => r.line).sort();
    assert.ok(
      expected.some((l) => l.startsWith('email.clicked ')) &&
        expected.some((l) => l.startsWith('inbox.clicked ')),
    );
    await waitFor('a callback per stored event', () => subscriber.log.length >= expected.length || undefined);
    const received = subscriber.log.map((r) => {
      const d = r.body.data;
      return [r.body.type, d['notification_id'], d['delivery_id'], d['reason']]
        .filter((v) => v !== undefined)
        .map(String)
        .join(' ');
    });
    assert.deepEqual(received.sort(), expected);
    assert.ok(subscriber.log.every((r) => verifies(callbackSecret, r)));
    assert.ok(
      subscriber.log.every((r) => !r.raw.includes('shop.example')),
      'no clicked address is sent',
    );
  });
});
