// npm run bench:ingest [-- --duration 10 --connections 32]
// Notifications accepted per second (202 = committed) for 1-recipient and 100-recipient
// requests, next to two baselines measured in the same run: a bare Fastify route validating
// the same body (HTTP ceiling) and multi-row INSERTs of the same rows straight through pg
// (database ceiling). Loopback only; every process it starts, it stops.
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import pg from 'pg';
import {
  benchDatabase,
  fmt,
  httpLoad,
  machine,
  runBenchmark,
  startChild,
  stopChild,
  stopEmbedded,
  table,
  type Child,
  type HttpRun,
} from './bench-lib.js';

const { values } = parseArgs({
  options: { duration: { type: 'string', default: '10' }, connections: { type: 'string', default: '32' } },
});
const duration = Number(values.duration);
const connections = Number(values.connections);

function body(recipients: number): string {
  return JSON.stringify({
    recipients: Array.from({ length: recipients }, (_, i) => `user-${String(i)}`),
    channels: ['in_app'],
    lane: 'bulk',
    content: { default: { title: 'Your order shipped', body: 'Order 1234 is on its way.' } },
  });
}

function load(url: string, payload: string, apiKey: string): Promise<HttpRun> {
  return httpLoad({
    url: `${url}/v1/notifications`,
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
    body: payload,
    connections,
    duration,
  });
}

/** The database ceiling: the same notification + recipient rows, 1 request's worth per INSERT pair. */
async function insertLoop(url: string, recipients: number): Promise<number> {
  const pool = new pg.Pool({ connectionString: url, max: connections });
  const users = Array.from({ length: recipients }, (_, i) => `user-${String(i)}`);
  const deadline = Date.now() + duration * 1000;
  let notifications = 0;
  await Promise.all(
    Array.from({ length: Math.min(connections, 16) }, async () => {
      while (Date.now() < deadline) {
        const client = await pool.connect();
        try {
          const id = `baseline#${randomUUID()}`;
          const now = new Date();
          await client.query('BEGIN');
          await client.query(
            `INSERT INTO notifications (id, created_at, service_id, lane, category, channels, content, updated_at)
             VALUES ($1, $2, (SELECT id FROM services LIMIT 1), 'bulk', 'general', '{in_app}', '{"default":{"title":"t"}}', $2)`,
            [id, now],
          );
          await client.query(
            `INSERT INTO recipients (notification_id, notification_created_at, user_id, lane, state, send_at)
             SELECT $1, $2, u, 'bulk', 'pending', $2 FROM unnest($3::text[]) AS u`,
            [id, now, users],
          );
          await client.query('COMMIT');
          notifications += 1;
        } finally {
          client.release();
        }
      }
    }),
  );
  await pool.end();
  return notifications / duration;
}

async function main(): Promise<void> {
  const db = await benchDatabase('herald_bench_ingest');
  const rows: string[][] = [];
  const children: Child[] = [];
  try {
    const bare = await startChild(['bench/bare-fastify.ts', '0'], {});
    children.push(bare);
    const herald = await startChild(['src/main.ts', 'api'], {
      DATABASE_URL: db.url,
      API_PORT: '0',
      DATABASE_POOL_SIZE: '20',
    });
    children.push(herald);
    for (const recipients of [1, 100]) {
      const payload = body(recipients);
      const ceiling = await load(bare.url ?? '', payload, db.apiKey);
      const measured = await load(herald.url ?? '', payload, db.apiKey);
      const dbCeiling = await insertLoop(db.url, recipients);
      const latency = (r: HttpRun) => `${String(r.p50)} / ${String(r.p99)}`;
      rows.push(
        [
          `${String(recipients)} recipient(s)`,
          'Herald api (202 = committed)',
          fmt(measured.requestsPerSecond),
          fmt(measured.requestsPerSecond * recipients),
          latency(measured),
          String(measured.non2xx),
          '1.00',
        ],
        [
          '',
          'baseline: bare Fastify, same validation, no DB',
          fmt(ceiling.requestsPerSecond),
          fmt(ceiling.requestsPerSecond * recipients),
          latency(ceiling),
          String(ceiling.non2xx),
          (measured.requestsPerSecond / ceiling.requestsPerSecond).toFixed(2),
        ],
        [
          '',
          'baseline: pg INSERT loop, same rows, no HTTP',
          fmt(dbCeiling),
          fmt(dbCeiling * recipients),
          '—',
          '—',
          (measured.requestsPerSecond / dbCeiling).toFixed(2),
        ],
      );
    }
  } finally {
    for (const child of children) await stopChild(child);
    await db.close();
    await stopEmbedded();
  }
  process.stdout.write(
    table(
      `ingest benchmark: ${String(duration)} s per run, ${String(connections)} connections, loopback; ${machine()}; database ${db.embedded ? 'embedded' : 'DATABASE_URL'}`,
      ['request', 'system', 'requests/s', 'notifications/s', 'p50 / p99 ms', 'non-2xx', 'Herald ÷ this'],
      rows,
    ),
  );
}

runBenchmark(main);
