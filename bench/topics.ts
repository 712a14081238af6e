// npm run bench:topics [-- --subscribers 1000000 --sends 5 --chunk 5000 --timeout 900 --skip-fan-out]
// A send to a topic of N subscribers: the 202's latency (no subscriber row is read: the
// notification is stored with its topic), then the worker's fan-out of one such send to the
// end, in_app so no provider is involved: its subscribers fanned out a page per transaction
// (TOPIC_FAN_OUT_CHUNK), each into a recipient row, a delivery and an inbox item.
// Users and subscriptions are made with set-based inserts first. CPU per subscriber is read from
// /proc for the worker and for PostgreSQL (run nothing else on the server meanwhile).
import { parseArgs } from 'node:util';
import {
  benchDatabase,
  fmt,
  machine,
  percentile,
  runBenchmark,
  startChild,
  stopChild,
  stopEmbedded,
  table,
  until,
  type BenchDatabase,
} from './bench-lib.js';
import { cpuSeconds, postgresCpuSeconds } from './cpu.js';

const { values } = parseArgs({
  options: {
    subscribers: { type: 'string', default: '1000000' },
    sends: { type: 'string', default: '5' },
    chunk: { type: 'string', default: '5000' },
    timeout: { type: 'string', default: '900' },
    // Measure the 202s only (the fan-out of 1M in_app deliveries takes minutes on 2 cores).
    'skip-fan-out': { type: 'boolean', default: false },
  },
});
const subscribers = Number(values.subscribers);
const sends = Number(values.sends);
const chunk = Number(values.chunk);
const timeoutMs = Number(values.timeout) * 1000;

/**
 * Shared buffers hit or read by this database's statements so far: work done, counted the same
 * however busy the machine is (PostgreSQL CPU is read for the whole server).
 */
async function bufferAccesses(db: BenchDatabase): Promise<number> {
  await db.pool.query('SELECT pg_stat_clear_snapshot()');
  const r = await db.pool.query<{ n: number }>(
    'SELECT (blks_hit + blks_read)::float8 AS n FROM pg_stat_database WHERE datname = current_database()',
  );
  return r.rows[0]?.n ?? 0;
}

async function makeTopic(db: BenchDatabase): Promise<number> {
  const started = performance.now();
  await db.pool.query(
    `INSERT INTO users (id, time_zone) SELECT 'u' || lpad(g::text, 8, '0'), 'UTC' FROM generate_series(1, $1) g`,
    [subscribers],
  );
  const topic = await db.pool.query<{ id: string }>(
    `INSERT INTO topics (service_id, key, subscribers) VALUES ($1, 'everyone', $2) RETURNING id`,
    [db.serviceId, subscribers],
  );
  await db.pool.query(
    `INSERT INTO topic_subscribers (topic_id, user_id) SELECT $1, 'u' || lpad(g::text, 8, '0') FROM generate_series(1, $2) g`,
    [topic.rows[0]?.id, subscribers],
  );
  await db.pool.query('VACUUM ANALYZE users');
  await db.pool.query('VACUUM ANALYZE topic_subscribers');
  return performance.now() - started;
}

async function post(
  url: string,
  apiKey: string,
  path: string,
  body: unknown,
): Promise<{ ms: number; json: { id?: string } }> {
  const started = performance.now();
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as { id?: string };
  const ms = performance.now() - started;
  if (res.status >= 300) throw new Error(`${path} answered ${String(res.status)}: ${JSON.stringify(json)}`);
  return { ms, json };
}

async function main(): Promise<void> {
  const db = await benchDatabase('herald_bench_topics');
  const lines: string[] = [];
  try {
    const setupMs = await makeTopic(db);
    const api = await startChild(['src/main.ts', 'api'], { DATABASE_URL: db.url, API_PORT: '0' });
    const url = api.url ?? '';
    const latencies: number[] = [];
    const ids: string[] = [];
    try {
      const request = {
        topic: 'everyone',
        channels: ['in_app'],
        lane: 'bulk',
        content: { default: { title: 'Weekly digest', body: 'What happened this week.' } },
      };
      // One warm-up send (connections, caches), canceled; then the measured ones.
      const warm = await post(url, db.apiKey, '/v1/notifications', request);
      await post(url, db.apiKey, `/v1/notifications/${encodeURIComponent(warm.json.id ?? '')}/cancel`, {});
      for (let i = 0; i < sends; i++) {
        const { ms, json } = await post(url, db.apiKey, '/v1/notifications', request);
        latencies.push(ms);
        ids.push(json.id ?? '');
      }
      // All but the first are canceled: the worker fans out one send.
      for (const id of ids.slice(1))
        await post(url, db.apiKey, `/v1/notifications/${encodeURIComponent(id)}/cancel`, {});
    } finally {
      await stopChild(api);
    }
    const sorted = [...latencies].sort((a, b) => a - b);
    const acceptRows = [
      ['setup: users + subscriptions (set-based insert)', `${fmt(setupMs)} ms`],
      [
        `202 of POST /v1/notifications {topic}: p50 of ${String(sends)}`,
        `${percentile(sorted, 50).toFixed(1)} ms`,
      ],
      [
        `202 of POST /v1/notifications {topic}: max of ${String(sends)}`,
        `${(sorted.at(-1) ?? 0).toFixed(1)} ms`,
      ],
    ];
    const title = `topics benchmark: ${fmt(subscribers)} subscribers, in_app, TOPIC_FAN_OUT_CHUNK ${fmt(chunk)}, CLAIM_BATCH_SIZE 1000, one worker; ${machine()}; database ${db.embedded ? 'embedded' : 'DATABASE_URL'}`;
    if (values['skip-fan-out']) {
      process.stdout.write(`${table(title, ['measure', 'value'], acceptRows)}\n`);
      return;
    }

    const id = ids[0] ?? '';
    const pg0 = await postgresCpuSeconds(db.pool);
    const buffers0 = await bufferAccesses(db);
    const started = performance.now();
    const worker = await startChild(['src/main.ts', 'worker'], {
      DATABASE_URL: db.url,
      TOPIC_FAN_OUT_CHUNK: String(chunk),
      CLAIM_BATCH_SIZE: '1000',
    });
    let expandedMs = 0;
    let workerCpu = 0;
    try {
      await until(
        'the expansion',
        async () =>
          (await db.pool.query('SELECT 1 FROM topic_sends WHERE notification_id = $1', [id])).rowCount === 0,
        timeoutMs,
        250,
      );
      expandedMs = performance.now() - started;
      await until(
        'the fan-out',
        async () => {
          const r = await db.pool.query(
            `SELECT 1 FROM recipients WHERE notification_id = $1 AND state = 'pending' LIMIT 1`,
            [id],
          );
          return r.rowCount === 0;
        },
        timeoutMs,
        1000,
      );
      workerCpu = cpuSeconds(worker.process.pid ?? 0);
    } finally {
      await stopChild(worker);
    }
    const doneMs = performance.now() - started;
    const pg1 = await postgresCpuSeconds(db.pool);
    const buffers = (await bufferAccesses(db)) - buffers0;
    const dead = await db.pool.query<{ n: number }>(
      "SELECT coalesce(sum(n_dead_tup), 0)::float8 AS n FROM pg_stat_user_tables WHERE relname LIKE 'recipients%'",
    );
    const delivered = await db.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM deliveries WHERE notification_id = $1 AND state = 'delivered'`,
      [id],
    );
    const count = Number(delivered.rows[0]?.n);
    if (count !== subscribers)
      throw new Error(`${String(count)} deliveries for ${String(subscribers)} subscribers`);
    const pgUs = pg0 === undefined || pg1 === undefined ? undefined : ((pg1 - pg0) * 1e6) / subscribers;
    lines.push(
      table(
        `topics benchmark: ${fmt(subscribers)} subscribers, in_app, TOPIC_FAN_OUT_CHUNK ${fmt(chunk)}, CLAIM_BATCH_SIZE 1000, one worker; ${machine()}; database ${db.embedded ? 'embedded' : 'DATABASE_URL'}`,
        ['measure', 'value'],
        [
          ['setup: users + subscriptions (set-based insert)', `${fmt(setupMs)} ms`],
          [
            `202 of POST /v1/notifications {topic}: p50 of ${String(sends)}`,
            `${percentile(sorted, 50).toFixed(1)} ms`,
          ],
          [
            `202 of POST /v1/notifications {topic}: max of ${String(sends)}`,
            `${(sorted.at(-1) ?? 0).toFixed(1)} ms`,
          ],
          [
            'topic send row gone (last page fanned out) after',
            `${fmt(expandedMs)} ms (${fmt((subscribers / expandedMs) * 1000)}/s)`,
          ],
          [
            'fan-out complete (every subscriber one in_app delivery)',
            `${fmt(doneMs)} ms (${fmt((subscribers / doneMs) * 1000)}/s)`,
          ],
          ['worker CPU per subscriber', `${((workerCpu * 1e6) / subscribers).toFixed(1)} µs`],
          ['PostgreSQL CPU per subscriber', pgUs === undefined ? 'n/a' : `${pgUs.toFixed(1)} µs`],
          ['PostgreSQL buffer accesses per subscriber (this database)', (buffers / subscribers).toFixed(1)],
          ['dead recipients row versions at the end', fmt(dead.rows[0]?.n ?? 0)],
        ],
      ),
    );
  } finally {
    await db.close();
    await stopEmbedded();
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

runBenchmark(main);
