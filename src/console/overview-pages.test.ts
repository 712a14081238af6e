// The console's overview: its figures equal counts of the rows themselves for the same window
// (notifications accepted, delivery events per lane, channel and state); the counts move only
// with committed rows, also under concurrent writers; folding minutes into hours keeps every
// sum; provider health comes from the workers' recent reports; overdue notifications are
// counted per lane; every role may read it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../../test/helpers/test-herald.js';
import { ConsoleClient, signedInAs } from '../../test/helpers/console-browser.js';
import { waitFor } from '../../test/helpers/wait-for.js';
import { WebhookReceiver } from '../../test/stand-ins/webhook-receiver.js';
import { compactOverview, writeProviderReports } from '../db/stores/overview-store.js';
import type { Overview } from './overview-pages.js';

let db: TestDatabase;
let h: TestHerald;
let receiver: WebhookReceiver;
let secret: string | undefined;
let viewer: ConsoleClient;

async function overview(query: string): Promise<Overview> {
  const answer = await viewer.get(`/overview.json?${query}`);
  assert.equal(answer.status, 200, answer.text);
  return JSON.parse(answer.text) as Overview;
}

/** The same figures counted from the rows themselves. */
async function rawCounts(from: string, to: string): Promise<string[]> {
  const result = await db.pool.query<{ line: string }>(
    `SELECT concat_ws(' ', lane, channel, state, n) AS line FROM (
       SELECT coalesce(lane, '') AS lane, channel, state, count(*) AS n FROM delivery_events
        WHERE created_at >= $1 AND created_at < $2 GROUP BY 1, 2, 3
       UNION ALL
       SELECT lane, '', 'accepted', count(*) FROM notifications
        WHERE created_at >= $1 AND created_at < $2 GROUP BY 1) t`,
    [from, to],
  );
  return result.rows.map((r) => r.line).sort();
}

function breakdownLines(o: Overview): string[] {
  return o.breakdown.map((b) => [b.lane, b.channel, b.state, b.count].join(' ')).sort();
}

before(async () => {
  db = await createTestDatabase();
  receiver = new WebhookReceiver(() => secret);
  await receiver.start();
  h = await startTestHerald(db, { roles: ['api', 'worker', 'console'] });
  const hook = await h.call('PUT', '/v1/service/webhook', { url: receiver.url });
  secret = hook.body.webhook_secret;
  const sends = [
    { recipients: ['ann', 'bob', 'cid'], channels: ['in_app'], lane: 'transactional' },
    { recipients: ['ann', 'bob'], channels: ['in_app', 'webhook'], lane: 'bulk' },
    { recipients: ['dee'], channels: ['webhook'], lane: 'transactional' },
  ];
  for (const s of sends) {
    const r = await h.call('POST', '/v1/notifications', {
      ...s,
      content: { default: { title: 'Parcel', body: 'On its way' } },
    });
    assert.equal(r.status, 202, JSON.stringify(r.body));
  }
  await waitFor('every delivery done', async () => {
    const r = await db.pool.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM deliveries WHERE state IN ('delivered', 'sent')",
    );
    return r.rows[0]?.n === 8;
  });
  viewer = await signedInAs(db.pool, h.herald.consoleUrl ?? '', 'viewer', 'overview passphrase');
});
after(async () => {
  await h.stop();
  await receiver.stop();
  await db.drop();
});

test('the figures equal counts of the rows for the same window, in total, per series and per lane', async () => {
  const all = await overview('range=1h');
  assert.deepEqual(breakdownLines(all), await rawCounts(all.from, all.to));
  assert.equal(all.totals.accepted, 3);
  assert.equal(all.totals.delivered, 5, 'five in-app deliveries');
  assert.equal(all.totals.sent, 3, 'three webhook calls');
  for (const [name, points] of Object.entries(all.series))
    assert.equal(
      points.reduce((a, b) => a + b, 0),
      all.totals[name as keyof Overview['totals']],
      `${name}: the chart's points add up to the total`,
    );
  assert.equal(all.times.length, 60);

  const bulk = await overview('range=1h&lane=bulk');
  assert.ok(bulk.breakdown.every((b) => b.lane === 'bulk'));
  assert.equal(bulk.totals.accepted, 1);
  assert.equal(bulk.totals.delivered, 2);
  assert.equal(bulk.totals.sent, 2);
  const webhook = await overview('range=24h&channel=webhook');
  assert.equal(webhook.totals.sent, 3);
  assert.equal(webhook.totals.delivered, 0);
  assert.equal(webhook.times.length, 24);
  assert.deepEqual(
    breakdownLines(await overview('range=24h')),
    breakdownLines(all),
    'the hourly steps hold the same counts',
  );
  assert.equal(all.deadLetters, 0);
  assert.deepEqual(
    all.waiting.map((w) => [w.lane, w.recipients, w.due, w.overdue]),
    [
      ['transactional', 0, 0, 0],
      ['bulk', 0, 0, 0],
    ],
  );

  const page = await viewer.get('/overview?range=1h');
  assert.equal(page.status, 200);
  assert.match(page.text, /<span class="figure" data-total="delivered">5<\/span>/);
  assert.match(page.text, /<script src="\/assets\/uplot.js"><\/script>/);
  // The engagement table: the same deliveries per channel, from the engagement figures.
  assert.deepEqual(
    all.engagement.map((e) => [e.channel, e.sent, e.delivered, e.opened, e.clicked, e.read]),
    [
      ['in_app', 0, 5, 0, 0, 0],
      ['webhook', 3, 0, 0, 0, 0],
    ],
  );
  assert.match(page.text, /<tr data-channel="in_app"><td>in_app<\/td><td>0<\/td><td>5<\/td>/);
});

test('counts move only with committed rows, exactly, under concurrent writers', async () => {
  const before = await overview('range=1h');
  const event = (channel: string) =>
    db.pool.query(
      `INSERT INTO delivery_events (delivery_id, notification_id, channel, lane, state, attempt)
       SELECT $1, 'n', $2, 'bulk', 'failed', 1 FROM generate_series(1, 3)`,
      [randomUUID(), channel],
    );
  const client = await db.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(
      `INSERT INTO delivery_events (delivery_id, notification_id, channel, lane, state, attempt)
       VALUES ($1, 'n', 'sms', 'bulk', 'failed', 1)`,
      [randomUUID()],
    );
    await client.query('ROLLBACK');
  } finally {
    client.release();
  }
  // 40 statements of 3 events each, on as many connections as the pool gives.
  await Promise.all(Array.from({ length: 40 }, (_, i) => event(i % 2 === 0 ? 'sms' : 'email')));
  const after = await overview('range=1h');
  assert.equal(after.totals.failed - before.totals.failed, 120);
  assert.deepEqual(breakdownLines(after), await rawCounts(after.from, after.to));
});

test('folding minutes into hours keeps every sum, and counts past the kept days go', async () => {
  const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3 * 3_600_000;
  const rows: [number, number, number][] = [
    [hour + 60_000, 1, 5],
    [hour + 120_000, 3, 7],
    [hour, 0, 11],
    [hour + 59 * 60_000, 6, 13],
  ];
  for (const [at, shard, count] of rows)
    await db.pool.query(`INSERT INTO overview_counts VALUES ($1, 'bulk', 'sms', 'delivered', $2, $3)`, [
      new Date(at),
      shard,
      count,
    ]);
  await db.pool.query(`INSERT INTO overview_counts VALUES ($1, 'bulk', 'sms', 'delivered', 0, 99)`, [
    new Date(hour - 40 * 86_400_000),
  ]);
  const recent = await db.pool.query<{ n: string }>(
    "SELECT sum(count) AS n FROM overview_counts WHERE bucket >= now() - interval '1 hour'",
  );
  await compactOverview(db.pool, new Date(hour - 30 * 86_400_000), new Date(Date.now() - 3_600_000));
  const folded = await db.pool.query<{ bucket: Date; shard: number; count: string }>(
    `SELECT bucket, shard, count FROM overview_counts
      WHERE lane = 'bulk' AND channel = 'sms' AND state = 'delivered' AND bucket < now() - interval '2 hours'`,
  );
  assert.deepEqual(
    folded.rows.map((r) => [r.bucket.getTime(), r.shard, Number(r.count)]),
    [[hour, 0, 36]],
  );
  const recentAfter = await db.pool.query<{ n: string }>(
    "SELECT sum(count) AS n FROM overview_counts WHERE bucket >= now() - interval '1 hour'",
  );
  assert.equal(recentAfter.rows[0]?.n, recent.rows[0]?.n, 'the last hour keeps its minutes');
  const expired = await db.pool.query(
    "SELECT 1 FROM overview_counts WHERE bucket < now() - interval '30 days'",
  );
  assert.equal(expired.rowCount, 0, 'counts older than the kept days are dropped');
});

test("provider health: the worst breaker among the workers' recent reports, their error rate and latency", async () => {
  const [one, two, gone] = [randomUUID(), randomUUID(), randomUUID()];
  const report = { latencyMsMax: 0, periodMs: 15_000 };
  await writeProviderReports(db.pool, one, [
    {
      ...report,
      key: 'twilio',
      breakerState: 'closed',
      calls: 30,
      failures: 3,
      latencyMsSum: 1200,
      latencyMsMax: 90,
    },
  ]);
  await writeProviderReports(db.pool, two, [
    {
      ...report,
      key: 'twilio',
      breakerState: 'open',
      calls: 10,
      failures: 9,
      latencyMsSum: 800,
      latencyMsMax: 400,
    },
  ]);
  await writeProviderReports(db.pool, gone, [
    { ...report, key: 'ses', breakerState: 'open', calls: 1, failures: 1, latencyMsSum: 5 },
  ]);
  await db.pool.query(
    "UPDATE provider_health SET reported_at = now() - interval '5 minutes' WHERE worker_id = $1",
    [gone],
  );
  const o = await overview('range=1h');
  const twilio = o.providers.find((p) => p.key === 'twilio');
  assert.ok(twilio !== undefined);
  assert.equal(twilio.breakerState, 'open');
  assert.equal(twilio.workers, 2);
  assert.equal(twilio.calls, 40);
  assert.equal(twilio.errorRate, 12 / 40);
  assert.equal(twilio.latencyMsMean, 50);
  assert.equal(twilio.latencyMsMax, 400);
  assert.equal(
    o.providers.find((p) => p.key === 'ses'),
    undefined,
    'a worker silent for minutes is not shown',
  );
  const page = await viewer.get('/overview');
  assert.match(page.text, /<td>twilio<\/td><td class="breaker-open">open<\/td>/);
  assert.match(page.text, /30\.0 %/);
});

test('the overview needs a session; a range or lane it does not know is refused', async () => {
  const anonymous = new ConsoleClient(h.herald.consoleUrl ?? '');
  const page = await anonymous.get('/overview.json');
  assert.equal(page.status, 303);
  assert.match(page.headers.get('location') ?? '', /^\/login/);
  for (const query of ['range=2y', 'lane=urgent', 'channel=fax', 'range=1h&extra=1']) {
    const answer = await viewer.get(`/overview.json?${query}`);
    assert.equal(answer.status, 400, query);
  }
});

test('a notification whose lease expired over an hour ago, never rescued, shows as overdue in its lane', async () => {
  // No scheduler runs here, so nothing takes the lease back.
  const id = `shop#${randomUUID()}`;
  await db.pool.query(
    `INSERT INTO notifications (id, created_at, service_id, lane, category, channels, content, updated_at)
     SELECT $1, now() - interval '2 hours', id, 'bulk', 'general', '{webhook}', '{"default":{"title":"t"}}', now()
       FROM services LIMIT 1`,
    [id],
  );
  await db.pool.query(
    `INSERT INTO deliveries (id, notification_id, notification_created_at, service_id, user_id, channel, target, lane,
                             state, max_attempts, run_at, lease_owner, lease_expires_at)
     SELECT $1, id, created_at, service_id, 'eve', 'webhook', 'https://stuck.example/hook', lane, 'sending', 5,
            created_at, gen_random_uuid(), now() - interval '90 minutes'
       FROM notifications WHERE id = $2`,
    [randomUUID(), id],
  );
  try {
    const o = await overview('range=1h');
    assert.deepEqual(
      o.waiting.map((w) => [w.lane, w.overdue]),
      [
        ['transactional', 0],
        ['bulk', 1],
      ],
    );
    const page = await viewer.get('/overview?lane=bulk');
    assert.match(page.text, /<tr data-lane="bulk">(<td>[^<]*<\/td>){6}<td>1<\/td><\/tr>/);
  } finally {
    await db.pool.query('DELETE FROM deliveries WHERE notification_id = $1', [id]);
    await db.pool.query('DELETE FROM notifications WHERE id = $1', [id]);
  }
});
