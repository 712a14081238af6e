// npm run bench:ingest [-- --duration 10 --connections 32]
// Notifications accepted per second (202 = committed) for 1-recipient and 100-recipient
// requests, next to two baselines measured in the same run: a bare Fastify route validating
// the same body (HTTP ceiling) and multi-row INSERTs of the same rows straight through pg
// (database ceiling). Loopback only; every process it starts, it stops.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import pg from 'pg';
import { createLogger } from '../src/observability/logger.js';
import { startEmbeddedPostgres } from '../src/db/embedded-postgres.js';
import { createPool } from '../src/db/pools.js';
import { migrate } from '../src/db/migrate.js';
import { ensurePartitions } from '../src/db/partitions.js';
import { createApiKey, ensureService } from '../src/db/stores/api-key-store.js';
import { packageRoot } from '../src/db/package-root.js';

const { values } = parseArgs({
  options: { duration: { type: 'string', default: '10' }, connections: { type: 'string', default: '32' } },
});
const duration = Number(values.duration);
const connections = Number(values.connections);
const logger = createLogger('warn');

function body(recipients: number): string {
  return JSON.stringify({
    recipients: Array.from({ length: recipients }, (_, i) => `user-${String(i)}`),
    channels: ['in_app'],
    lane: 'bulk',
    content: { default: { title: 'Your order shipped', body: 'Order 1234 is on its way.' } },
  });
}

function startChild(
  args: string[],
  env: Record<string, string>,
): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    cwd: packageRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const match = /(?:listening|API:)\s+(http:\/\/[\d.:]+)/.exec(out);
      if (match?.[1] !== undefined) resolve({ child, url: match[1] });
    });
    child.on('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${String(code)}`)));
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

interface Run {
  requestsPerSecond: number;
  p50: number;
  p99: number;
  non2xx: number;
}

async function load(url: string, payload: string, apiKey: string): Promise<Run> {
  const result = await autocannon({
    url: `${url}/v1/notifications`,
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
    body: payload,
    connections,
    duration,
  });
  return {
    requestsPerSecond: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
  };
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
  let databaseUrl = process.env['DATABASE_URL'];
  const embedded =
    databaseUrl === undefined
      ? await startEmbeddedPostgres({ dataDir: join(packageRoot, '.bench-data'), port: 54339, logger })
      : undefined;
  databaseUrl ??= embedded?.url ?? '';
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  await admin.query('DROP DATABASE IF EXISTS herald_bench WITH (FORCE)');
  await admin.query('CREATE DATABASE herald_bench');
  await admin.end();
  const u = new URL(databaseUrl);
  u.pathname = '/herald_bench';
  const benchUrl = u.toString();
  const pool = createPool(benchUrl, 2, logger, 'bench');
  await migrate(pool);
  await ensurePartitions(pool, new Date(), 2);
  const apiKey = await createApiKey(pool, await ensureService(pool, 'bench'), ['sender']);

  const rows: string[][] = [];
  const children: ChildProcess[] = [];
  try {
    const bare = await startChild(['bench/bare-fastify.ts', '0'], {});
    children.push(bare.child);
    const herald = await startChild(['src/main.ts', 'api'], {
      DATABASE_URL: benchUrl,
      API_PORT: '0',
      LOG_LEVEL: 'warn',
      DATABASE_POOL_SIZE: '20',
    });
    children.push(herald.child);
    for (const recipients of [1, 100]) {
      const payload = body(recipients);
      const ceiling = await load(bare.url, payload, apiKey);
      const measured = await load(herald.url, payload, apiKey);
      const dbCeiling = await insertLoop(benchUrl, recipients);
      const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
      rows.push(
        [
          `${String(recipients)} recipient(s)`,
          'Herald api (202 = committed)',
          fmt(measured.requestsPerSecond),
          fmt(measured.requestsPerSecond * recipients),
          `${String(measured.p50)} / ${String(measured.p99)}`,
          String(measured.non2xx),
          '1.00',
        ],
        [
          '',
          'baseline: bare Fastify, same validation, no DB',
          fmt(ceiling.requestsPerSecond),
          fmt(ceiling.requestsPerSecond * recipients),
          `${String(ceiling.p50)} / ${String(ceiling.p99)}`,
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
    await pool.end();
    await embedded?.stop();
  }
  const header = [
    'request',
    'system',
    'requests/s',
    'notifications/s',
    'p50 / p99 ms',
    'non-2xx',
    'Herald ÷ this',
  ];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  process.stdout.write(
    [
      `ingest benchmark: ${String(duration)} s per run, ${String(connections)} connections, loopback; ${String(cpus().length)} cores, ${String(Math.round(totalmem() / 2 ** 30))} GiB; database ${embedded === undefined ? 'DATABASE_URL' : 'embedded'}`,
      line(header),
      line(widths.map((w) => '-'.repeat(w))),
      ...rows.map(line),
      '',
    ].join('\n'),
  );
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(
      `benchmark failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
