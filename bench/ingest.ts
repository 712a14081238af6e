// npm run bench:ingest [-- --duration 10 --connections 32]
// Notifications accepted per second (202 = committed) for 1-recipient and 100-recipient
// requests, next to two baselines measured in the same run: a bare Fastify route validating
// the same body (HTTP ceiling) and multi-row INSERTs of the same rows straight through pg
// (database ceiling). Each with its CPU per accepted request from /proc (the accepting process,
// the bench database's PostgreSQL backends, the load generator) and Herald's statements per
// request. Loopback only; every process it starts, it stops.
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
import { startMeter } from './cost.js';

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
async function insertLoop(url: string, recipients: number): Promise<{ perSecond: number; count: number }> {
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
  return { perSecond: notifications / duration, count: notifications };
}

type Measured = Awaited<ReturnType<Awaited<ReturnType<typeof startMeter>>['stop']>>;

/** CPU µs per accepted request: the accepting process (`part`), PostgreSQL, the load generator; statements. */
function costCells(m: Measured, part: string, accepted: number): string[] {
  const micros = (s: number | undefined) =>
    s === undefined || accepted === 0 ? '—' : fmt((s * 1e6) / accepted);
  return [
    micros(m.cpu.get(part)),
    micros(m.cpu.get('PostgreSQL')),
    part === 'bench' ? '—' : micros(m.cpu.get('bench')),
    m.statements === undefined ? '—' : (m.statements / accepted).toFixed(2),
  ];
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
    const heraldProcess = { part: 'api', pid: herald.process.pid ?? 0, metricsUrl: herald.url };
    const bareProcess = { part: 'bare', pid: bare.process.pid ?? 0 };
    for (const recipients of [1, 100]) {
      const payload = body(recipients);
      let meter = await startMeter(db, [bareProcess]);
      const ceiling = await load(bare.url ?? '', payload, db.apiKey);
      const ceilingCost = costCells(await meter.stop(), 'bare', ceiling.ok);
      meter = await startMeter(db, [heraldProcess]);
      const measured = await load(herald.url ?? '', payload, db.apiKey);
      const heraldCost = costCells(await meter.stop(), 'api', measured.ok);
      meter = await startMeter(db, []);
      const dbCeiling = await insertLoop(db.url, recipients);
      const dbCost = costCells(await meter.stop(), 'bench', dbCeiling.count);
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
          ...heraldCost,
        ],
        [
          '',
          'baseline: bare Fastify, same validation, no DB',
          fmt(ceiling.requestsPerSecond),
          fmt(ceiling.requestsPerSecond * recipients),
          latency(ceiling),
          String(ceiling.non2xx),
          (measured.requestsPerSecond / ceiling.requestsPerSecond).toFixed(2),
          ...ceilingCost,
        ],
        [
          '',
          'baseline: pg INSERT loop, same rows, no HTTP',
          fmt(dbCeiling.perSecond),
          fmt(dbCeiling.perSecond * recipients),
          '—',
          '—',
          (measured.requestsPerSecond / dbCeiling.perSecond).toFixed(2),
          ...dbCost,
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
      `ingest benchmark: ${String(duration)} s per run, ${String(connections)} connections, loopback; ${machine()}; database ${db.embedded ? 'embedded' : 'DATABASE_URL'}; CPU per accepted request from /proc (process: Herald api, bare Fastify, or the bench process as the INSERT loop's client), PG backends = the bench database's`,
      [
        'request',
        'system',
        'requests/s',
        'notifications/s',
        'p50 / p99 ms',
        'non-2xx',
        'Herald ÷ this',
        'process CPU µs/req',
        'PG backends µs/req',
        'load gen µs/req',
        'statements/req',
      ],
      rows,
    ),
  );
}

runBenchmark(main);
