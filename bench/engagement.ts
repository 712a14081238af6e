// npm run bench:engagement [-- --events 1000000 --days 30 --reads 300]
// The engagement figures API (GET /v1/engagement) against a large event history: fills
// delivery_events and engagement_events set-based (INSERT … SELECT generate_series, in chunks,
// through the counting triggers of migration 0019), then measures the API's read latency
// (p50/p99, per group_by) from the rollups, and beside it in the same run a raw count of the same
// figures from the event tables (the baseline the rollups replace). Per delivery: a sent and a
// delivered event; 40 % opened (a tenth of them also flagged as prefetch), 10 % clicked;
// 5 % failed instead; spread over `days` days and three services.
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config/load-config.js';
import { startHerald } from '../src/composition/create-herald.js';
import { ensurePartitions } from '../src/db/partitions.js';
import { ensureService } from '../src/db/stores/api-key-store.js';
import {
  benchDatabase,
  benchLogger,
  fmt,
  machine,
  percentile,
  runBenchmark,
  stopEmbedded,
  table,
} from './bench-lib.js';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '1000000' },
    days: { type: 'string', default: '30' },
    reads: { type: 'string', default: '300' },
    'raw-reads': { type: 'string', default: '5' },
  },
});
const targetEvents = Number(values.events);
const days = Number(values.days);
const reads = Number(values.reads);
const rawReads = Number(values['raw-reads']);
/** Events per delivery on average: sent + delivered (or failed) + 0.4 opened + 0.04 prefetch + 0.1 clicked. */
const eventsPerDelivery = 2.54;
const chunk = 50_000;

async function fill(pool: import('../src/db/pools.js').Pool, services: number[]): Promise<number> {
  const deliveries = Math.ceil(targetEvents / eventsPerDelivery);
  const spanSeconds = days * 86_400;
  for (let start = 0; start < deliveries; start += chunk) {
    const end = Math.min(deliveries, start + chunk) - 1;
    // One notification per 10 deliveries; its time spread over the span, newest last.
    await pool.query(
      `INSERT INTO notifications (id, created_at, service_id, lane, category, channels, content, template, updated_at)
       SELECT 'n' || (i / 10) || '#' || md5(i::text)::uuid,
              now() - make_interval(secs => ($3::bigint - (i::bigint * $3 / $4))),
              ($5::bigint[])[1 + (i / 10) % 3], 'bulk', (ARRAY['news', 'orders', 'security'])[1 + (i / 10) % 3],
              '{email}', '{}', (ARRAY['welcome', 'digest', NULL])[1 + (i / 10) % 3], now()
         FROM generate_series($1::bigint, $2::bigint) AS i WHERE i % 10 = 0`,
      [start - (start % 10), end, spanSeconds, deliveries, services],
    );
    await pool.query(
      `INSERT INTO deliveries (id, notification_id, notification_created_at, service_id, user_id, channel, target,
                               lane, state, max_attempts, run_at, category)
       SELECT md5('d' || i)::uuid, n.id, n.created_at, n.service_id, 'u' || (i % 100000),
              (ARRAY['email', 'push', 'in_app', 'sms'])[1 + i % 4], 't' || i, 'bulk', 'delivered', 5, n.created_at, n.category
         FROM generate_series($1::bigint, $2::bigint) AS i
         JOIN notifications n ON n.id = 'n' || (i / 10) || '#' || md5((i - i % 10)::text)::uuid`,
      [start, end],
    );
    await pool.query(
      `INSERT INTO delivery_events (delivery_id, notification_id, notification_created_at, channel, lane, state, attempt,
                                    detail, created_at)
       SELECT d.id, d.notification_id, d.notification_created_at, d.channel, 'bulk', s.state, 1, NULL,
              d.notification_created_at + s.after
         FROM generate_series($1::bigint, $2::bigint) AS i
         JOIN deliveries d ON d.id = md5('d' || i)::uuid
         CROSS JOIN LATERAL (VALUES ('sent', interval '1 second'),
                                    (CASE WHEN i % 20 = 0 THEN 'failed' ELSE 'delivered' END, interval '2 seconds')) s(state, after)`,
      [start, end],
    );
    await pool.query(
      `INSERT INTO engagement_events (delivery_id, notification_id, notification_created_at, user_id, service_id,
                                      channel, kind, link_index, template, category, prefetch, occurred_at, received_at)
       SELECT d.id, d.notification_id, d.notification_created_at, d.user_id, d.service_id, d.channel, k.kind, k.link,
              n.template, d.category, k.prefetch, d.notification_created_at + interval '1 minute',
              d.notification_created_at + interval '1 minute'
         FROM generate_series($1::bigint, $2::bigint) AS i
         JOIN deliveries d ON d.id = md5('d' || i)::uuid
         JOIN notifications n ON n.id = d.notification_id AND n.created_at = d.notification_created_at
         CROSS JOIN LATERAL (VALUES ('opened', -1, false, i % 5 < 2), ('opened', -1, true, i % 25 = 0),
                                    ('clicked', 0, false, i % 10 = 0)) k(kind, link, prefetch, wanted)
        WHERE k.wanted`,
      [start, end],
    );
    process.stderr.write(`\rfilled ${fmt(end + 1)} of ${fmt(deliveries)} deliveries`);
  }
  process.stderr.write('\n');
  return deliveries;
}

async function main(): Promise<void> {
  const db = await benchDatabase('herald_bench_engagement');
  const now = new Date();
  await ensurePartitions(db.pool, now, 2, new Date(now.getTime() - (days + 1) * 86_400_000));
  const services = [
    db.serviceId,
    await ensureService(db.pool, 'bench2'),
    await ensureService(db.pool, 'bench3'),
  ];
  const fillStart = Date.now();
  const deliveries = await fill(db.pool, services);
  const fillSeconds = (Date.now() - fillStart) / 1000;
  const counted = await db.pool.query<{ e: string; g: string; r: string }>(
    `SELECT (SELECT count(*) FROM delivery_events) AS e, (SELECT count(*) FROM engagement_events) AS g,
            (SELECT count(*) FROM engagement_counts) AS r`,
  );
  const eventRows = Number(counted.rows[0]?.e) + Number(counted.rows[0]?.g);
  await db.pool.query('ANALYZE');

  const config = loadConfig({ DATABASE_URL: db.url, API_PORT: '0', LOG_LEVEL: 'warn' });
  const herald = await startHerald({ config, roles: ['api'], logger: benchLogger });
  const from = new Date(now.getTime() - days * 86_400_000).toISOString().slice(0, 10);
  const to = now.toISOString().slice(0, 10);
  const rows: string[][] = [];
  try {
    for (const groupBy of ['day', 'template', 'channel', 'category']) {
      const url = `${herald.apiUrl ?? ''}/v1/engagement?from=${from}&to=${to}&group_by=${groupBy}`;
      const times: number[] = [];
      for (let i = 0; i < reads; i++) {
        const t = performance.now();
        const res = await fetch(url, { headers: { authorization: `Bearer ${db.apiKey}` } });
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`the figures API answered ${String(res.status)}`);
        times.push(performance.now() - t);
      }
      times.sort((a, b) => a - b);
      rows.push([
        `API group_by=${groupBy}`,
        String(reads),
        percentile(times, 50).toFixed(1),
        percentile(times, 99).toFixed(1),
      ]);
    }
    // The baseline: the same figures (one service, the whole range, per channel) counted from the rows.
    const raw: number[] = [];
    for (let i = 0; i < rawReads; i++) {
      const t = performance.now();
      await db.pool.query(
        `SELECT channel, metric, count(*) FROM (
           SELECT e.channel, engagement_delivery_metric(e.state) AS metric
             FROM delivery_events e JOIN deliveries d ON d.id = e.delivery_id AND d.notification_id = e.notification_id
            WHERE d.service_id = $1 AND engagement_delivery_metric(e.state) IS NOT NULL
              AND e.created_at >= $2::date AND e.created_at < $3::date + 1
           UNION ALL
           SELECT channel, engagement_metric(kind, prefetch) FROM engagement_events
            WHERE service_id = $1 AND received_at >= $2::date AND received_at < $3::date + 1) t
         GROUP BY 1, 2`,
        [db.serviceId, from, to],
      );
      raw.push(performance.now() - t);
    }
    raw.sort((a, b) => a - b);
    rows.push([
      'raw count (SQL, group by channel)',
      String(rawReads),
      percentile(raw, 50).toFixed(1),
      percentile(raw, 99).toFixed(1),
    ]);
  } finally {
    await herald.stop();
    await db.close();
    await stopEmbedded();
  }
  console.log(
    table(
      `engagement figures: ${fmt(eventRows)} events (${fmt(deliveries)} deliveries over ${String(days)} days, 3 services), ${fmt(Number(counted.rows[0]?.r))} rollup rows; filled in ${fillSeconds.toFixed(0)} s through the triggers (${fmt(eventRows / fillSeconds)} events/s); ${machine()}; database ${process.env['DATABASE_URL'] === undefined ? 'embedded' : 'DATABASE_URL'}`,
      ['read', 'requests', 'p50 ms', 'p99 ms'],
      rows,
    ),
  );
}

runBenchmark(main);
