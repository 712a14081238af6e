// npm run bench:lanes [-- --bulk 1000000 --rate 20 --seconds 15 --backlog deliveries|recipients]
// Transactional accept → receiver latency on an idle system, then with a million bulk
// deliveries pending (and draining) through the same worker: the lane reservation at work.
// --backlog recipients writes the bulk campaign as recipients still to fan out instead, so the
// fan-out stage is busy with bulk batches while the transactional stream goes through it.
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import {
  benchDatabase,
  fmt,
  machine,
  percentile,
  runBenchmark,
  startSystem,
  stopEmbedded,
  table,
  until,
  type BenchDatabase,
} from './bench-lib.js';
import type { BenchReceiver } from './bench-receiver.js';

const { values } = parseArgs({
  options: {
    bulk: { type: 'string', default: '1000000' },
    rate: { type: 'string', default: '20' },
    seconds: { type: 'string', default: '15' },
    backlog: { type: 'string', default: 'deliveries' },
  },
});
const bulk = Number(values.bulk);
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const backlog = values.backlog === 'recipients' ? 'recipients' : 'deliveries';

interface StreamResult {
  latencies: number[];
  sent: number;
}

/** Sends transactional webhook notifications at `rate` per second; latency = POST start → receiver. */
async function stream(
  db: BenchDatabase,
  apiUrl: string,
  receiver: BenchReceiver,
  forSeconds = seconds,
): Promise<StreamResult> {
  const started = new Map<string, number>();
  const total = rate * forSeconds;
  const posts: Promise<void>[] = [];
  const t0 = Date.now();
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const id = `bench#${randomUUID()}`;
    started.set(id, Date.now());
    posts.push(
      fetch(`${apiUrl}/v1/notifications`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${db.apiKey}` },
        body: JSON.stringify({
          id,
          recipients: [`tx-${String(i)}`],
          channels: ['webhook'],
          lane: 'transactional',
          content: { default: { title: 'Your code is 123456' } },
        }),
      }).then(async (res) => {
        await res.arrayBuffer();
        if (res.status !== 202) throw new Error(`ingest answered ${String(res.status)}`);
      }),
    );
  }
  await Promise.all(posts);
  await until(
    'transactional notifications to arrive',
    () => [...started.keys()].every((id) => receiver.arrivals.has(id)),
    120_000,
  );
  const latencies = [...started]
    .map(([id, at]) => (receiver.arrivals.get(id) ?? Number.NaN) - at)
    .sort((a, b) => a - b);
  return { latencies, sent: total };
}

/** Bulk work not yet sent: deliveries waiting or in flight, and recipients not fanned out. */
async function pendingBulk(db: BenchDatabase): Promise<number> {
  const r = await db.pool.query<{ n: number }>(
    `SELECT (SELECT count(*) FROM deliveries WHERE lane = 'bulk' AND state IN ('pending', 'retrying', 'sending'))::int
          + (SELECT count(*) FROM recipients WHERE lane = 'bulk' AND state = 'pending')::int AS n`,
  );
  return r.rows[0]?.n ?? 0;
}

/** A bulk campaign of `bulk` users, due now, as deliveries in the outbox or recipients to fan out. */
async function writeCampaign(db: BenchDatabase, receiverUrl: string): Promise<void> {
  const campaign = `bench#${randomUUID()}`;
  const now = new Date();
  await db.pool.query(
    `INSERT INTO notifications (id, created_at, service_id, lane, category, channels, content, updated_at)
     VALUES ($1, $2, $3, 'bulk', 'campaign', '{webhook}', '{"default":{"title":"Sale!"}}', $2)`,
    [campaign, now, db.serviceId],
  );
  if (backlog === 'recipients') {
    await db.pool.query(
      `INSERT INTO recipients (notification_id, notification_created_at, user_id, lane, state, send_at)
       SELECT $1, $2, 'bulk-' || g, 'bulk', 'pending', now() FROM generate_series(1, $3) AS g`,
      [campaign, now, bulk],
    );
    await db.pool.query('ANALYZE recipients');
    return;
  }
  await db.pool.query(
    `INSERT INTO deliveries (id, notification_id, notification_created_at, service_id, user_id, channel, target, lane, state, max_attempts, run_at)
     SELECT gen_random_uuid(), $1, $2, $3, 'bulk-' || g, 'webhook', $4, 'bulk', 'pending', 8, now()
       FROM generate_series(1, $5) AS g`,
    [campaign, now, db.serviceId, receiverUrl, bulk],
  );
  await db.pool.query('ANALYZE deliveries');
}

async function main(): Promise<void> {
  const db = await benchDatabase('herald_bench_lanes');
  const system = await startSystem(db, 0, 1, { POLL_INTERVAL_MS: '1000' });
  const { receiver } = system;
  const rows: string[][] = [];
  try {
    const { apiUrl } = system;
    const row = (label: string, r: StreamResult, before: number, after: number) => [
      label,
      String(r.latencies.length),
      String(percentile(r.latencies, 50)),
      String(percentile(r.latencies, 99)),
      String(r.latencies.at(-1) ?? Number.NaN),
      `${fmt(before)} → ${fmt(after)}`,
    ];

    // Warm up (JIT, connections) so the idle figures are not start-up figures.
    await stream(db, apiUrl, receiver, 2);
    const idle = await stream(db, apiUrl, receiver);
    rows.push(row('idle system', idle, 0, 0));

    // A million bulk deliveries (or recipients) of one campaign, due now, written straight to the database.
    await writeCampaign(db, receiver.url);
    // The benchmark's own write of the campaign (one statement, a million rows) is flushed
    // before measuring, so its checkpoint is not in the figures; then the same 2 s warm-up as
    // the idle stream, so the stream meets the drain under way.
    await db.pool.query('CHECKPOINT');
    await stream(db, apiUrl, receiver, 2);
    const before = await pendingBulk(db);
    const busy = await stream(db, apiUrl, receiver);
    const after = await pendingBulk(db);
    rows.push(row(`${fmt(bulk)} bulk ${backlog} pending`, busy, before, after));
  } finally {
    await system.stop();
    await db.close();
    await stopEmbedded();
  }
  process.stdout.write(
    table(
      `lanes benchmark: transactional webhook notifications at ${String(rate)}/s for ${String(seconds)} s, 1 worker process × WORKER_CONCURRENCY 200 (bulk capped at 150); ${machine()}; database ${db.embedded ? 'embedded' : 'DATABASE_URL'}`,
      ['transactional stream during', 'samples', 'p50 ms', 'p99 ms', 'max ms', 'bulk pending (start → end)'],
      rows,
    ),
  );
}

runBenchmark(main);
