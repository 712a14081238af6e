// npm run bench:inbox [-- --rows 10000000 --users 1000000 --duration 10 --connections 4 --keep --reuse]
// The inbox's two reads an app makes on every open, the first page (GET …/inbox?limit=20) and
// the unread count (GET …/inbox/count), for one user with 1,000 notifications: first while the
// tables hold only that user's items (the baseline), then among `rows` notifications of `users`
// users spread over the last 80 days. GET /healthz on the same query process is the HTTP floor.
// Loopback only; every process it starts, it stops, and it drops its database unless --keep.
// --reuse measures the database a --keep run left, as it is (no baseline, no load): before and
// after a change on the same data. Each call also reports the CPU time per request of the query
// process and of its database sessions (/proc), the figure that holds on shared cores.
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { archiveDatabaseUrl } from '../src/archive/archive-store.js';
import { ensurePartitions } from '../src/db/partitions.js';
import { cpuSeconds } from './cpu.js';
import { inboxDays } from '../src/db/stores/inbox-store.js';
import {
  benchDatabase,
  dropDatabase,
  fmt,
  httpLoad,
  machine,
  runBenchmark,
  startChild,
  stopChild,
  stopEmbedded,
  table,
  userToken,
  type BenchDatabase,
  type Child,
  type HttpRun,
} from './bench-lib.js';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '10000000' },
    users: { type: 'string', default: '1000000' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '4' },
    keep: { type: 'boolean', default: false },
    reuse: { type: 'boolean', default: false },
  },
});
const totalRows = Number(values.rows);
const users = Number(values.users);
const duration = Number(values.duration);
const connections = Number(values.connections);
const warmUpSeconds = 3;
/** The 1-minute load average as each measurement starts: the two cores may be shared. */
const loadAverages: number[] = [];

const benchUser = 'bench-user';
const benchUserItems = 1000;
const chunkRows = 1_000_000;
const spreadDays = 80;
const dayMs = 86_400_000;

if (!Number.isInteger(totalRows) || totalRows < benchUserItems)
  throw new Error(`--rows must be an integer of at least ${fmt(benchUserItems)}`);

interface LoadStats {
  rows: number;
  seconds: number;
  vacuumSeconds: number;
}

/**
 * Replaces the inbox with `rows` notifications, each with one in_app inbox item, arriving evenly
 * over the last 80 days. Every (rows / 1,000)th one is the benchmarked user's, so that user's
 * 1,000 items lie scattered through the tables as a real user's would; the others are spread
 * over `otherUsers` users. 30 % of the items are unread (half of those unseen too), in five
 * categories. Set-based, in transactions of a million rows, then VACUUM ANALYZE: the
 * visibility map and statistics of a table that autovacuum keeps up with.
 */
async function loadInbox(db: BenchDatabase, rows: number, otherUsers: number): Promise<LoadStats> {
  const started = Date.now();
  const now = new Date();
  await db.pool.query('TRUNCATE notifications, inbox_items');
  await db.pool.query(
    `INSERT INTO users (id) SELECT $1 UNION ALL SELECT 'user-' || u FROM generate_series(0, $2 - 1) AS u
     ON CONFLICT (id) DO NOTHING`,
    [benchUser, otherUsers],
  );
  const stride = Math.floor(rows / benchUserItems);
  for (let first = 1; first <= rows; first += chunkRows) {
    const last = Math.min(rows, first + chunkRows - 1);
    await db.pool.query(
      `WITH r AS MATERIALIZED (
         SELECT g,
                'bench#' || md5('inbox-bench-' || g)::uuid AS id,
                $4::timestamptz - make_interval(secs => $5 * ($3 - g)::float8 / $3) AS at,
                CASE WHEN g % $6 = 0 AND g / $6 <= $7 THEN $8 ELSE 'user-' || (g * 7919) % $9 END AS user_id,
                (ARRAY['comment', 'mention', 'order', 'security', 'digest'])[1 + h % 5] AS category,
                h % 10 < 3 AS unread,
                h % 20 < 3 AS unseen
           FROM generate_series($1::bigint, $2::bigint) AS g,
                LATERAL (SELECT abs(hashint8(g)::bigint) AS h) AS hashed
       ), n AS (
         INSERT INTO notifications (id, created_at, service_id, lane, category, channels, content, updated_at)
         SELECT id, at, $10, 'bulk', category, '{in_app}',
                jsonb_build_object('in_app', jsonb_build_object(
                  'title', 'Notification ' || g, 'body', 'Something happened that you may want to look at.')),
                at
           FROM r
       )
       INSERT INTO inbox_items (notification_id, notification_created_at, user_id, category, read_at, seen_at, created_at)
       SELECT id, at, user_id, category,
              CASE WHEN unread THEN NULL ELSE at + interval '1 hour' END,
              CASE WHEN unseen THEN NULL ELSE at + interval '10 minutes' END,
              at
         FROM r`,
      [
        first,
        last,
        rows,
        now,
        (spreadDays * dayMs) / 1000,
        stride,
        benchUserItems,
        benchUser,
        Math.max(1, otherUsers),
        db.serviceId,
      ],
    );
    if (rows > chunkRows)
      process.stderr.write(`loaded ${fmt(last)} of ${fmt(rows)} rows (${secondsSince(started)} s)\n`);
  }
  const loaded = Date.now();
  await db.pool.query('VACUUM ANALYZE notifications, inbox_items, users');
  return { rows, seconds: (loaded - started) / 1000, vacuumSeconds: (Date.now() - loaded) / 1000 };
}

function secondsSince(started: number): string {
  return ((Date.now() - started) / 1000).toFixed(0);
}

function load(url: string, token: string, seconds: number): Promise<HttpRun> {
  return httpLoad({ url, headers: { authorization: `Bearer ${token}` }, connections, duration: seconds });
}

/** autocannon keeps latencies in whole milliseconds: 0 is under one. */
const ms = (value: number): string => (value === 0 ? '< 1' : String(value));

async function getJson(url: string, token: string): Promise<unknown> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  if (res.status !== 200) throw new Error(`GET ${url} answered ${String(res.status)}: ${await res.text()}`);
  return res.json();
}

/** CPU seconds so far of each session of the database (the query process's pools among them). */
async function sessionCpu(db: BenchDatabase): Promise<Map<number, number>> {
  const result = await db.pool.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'`,
  );
  const cpu = new Map<number, number>();
  for (const { pid } of result.rows) {
    try {
      cpu.set(pid, cpuSeconds(pid));
    } catch {
      // ended meanwhile, or PostgreSQL runs elsewhere (no /proc entry): not counted
    }
  }
  return cpu;
}

/** CPU µs per request of the query process and of the database's sessions over one run. */
async function measured(db: BenchDatabase, query: Child, run: () => Promise<HttpRun>) {
  const pid = query.process.pid ?? 0;
  const [nodeBefore, dbBefore] = [cpuSeconds(pid), await sessionCpu(db)];
  const result = await run();
  const [nodeAfter, dbAfter] = [cpuSeconds(pid), await sessionCpu(db)];
  let dbSeconds = 0;
  for (const [session, seconds] of dbAfter) dbSeconds += seconds - (dbBefore.get(session) ?? 0);
  const requests = result.requestsPerSecond * duration;
  const perRequest = (seconds: number) => fmt((seconds * 1e6) / Math.max(1, requests));
  return { result, nodeUs: perRequest(nodeAfter - nodeBefore), dbUs: perRequest(dbSeconds) };
}

/** The three calls, each warmed up and then measured for `duration` seconds; one table row each. */
async function measure(db: BenchDatabase, query: Child, label: string): Promise<string[][]> {
  const queryUrl = query.url ?? '';
  loadAverages.push(loadavg()[0] ?? Number.NaN);
  const token = await userToken(queryUrl, db.apiKey, benchUser);
  const inbox = `${queryUrl}/v1/users/${benchUser}/inbox`;
  // Answers checked once first, so the figures are of real pages and counts, not of errors.
  const page = (await getJson(`${inbox}?limit=20`, token)) as { items?: unknown[] };
  if (page.items?.length !== 20) throw new Error(`first page has ${String(page.items?.length)} items`);
  const counts = (await getJson(`${inbox}/count`, token)) as { unread?: number };
  const calls = [
    { name: 'GET /healthz (HTTP floor)', url: `${queryUrl}/healthz` },
    { name: 'GET …/inbox?limit=20', url: `${inbox}?limit=20` },
    { name: `GET …/inbox/count (unread ${String(counts.unread)})`, url: `${inbox}/count` },
  ];
  const rows: string[][] = [];
  for (const call of calls) {
    await load(call.url, token, warmUpSeconds);
    const { result: run, nodeUs, dbUs } = await measured(db, query, () => load(call.url, token, duration));
    rows.push([
      rows.length === 0 ? label : '',
      call.name,
      fmt(run.requestsPerSecond),
      ms(run.p50),
      ms(run.p99),
      String(run.non2xx),
      nodeUs,
      dbUs,
    ]);
  }
  return rows;
}

async function main(): Promise<void> {
  const reuse = values.reuse;
  const db = await benchDatabase('herald_bench_inbox', reuse);
  const now = new Date();
  const rows: string[][] = [];
  let query: Child | undefined;
  let big: LoadStats | undefined;
  try {
    await ensurePartitions(db.pool, now, 2, new Date(now.getTime() - inboxDays * dayMs));
    query = await startChild(['src/main.ts', 'query'], { DATABASE_URL: db.url, QUERY_PORT: '0' });
    if (reuse) {
      const kept = await db.pool.query<{ n: number }>('SELECT count(*) AS n FROM inbox_items');
      rows.push(...(await measure(db, query, `${fmt(kept.rows[0]?.n ?? 0)} rows (kept)`)));
    } else {
      const small = await loadInbox(db, benchUserItems, 0);
      rows.push(...(await measure(db, query, `baseline: ${fmt(small.rows)} rows (the user's only)`)));
      big = await loadInbox(db, totalRows, users);
      rows.push(...(await measure(db, query, `${fmt(big.rows)} rows, ${fmt(users)} users`)));
    }
  } finally {
    if (query !== undefined) await stopChild(query);
    await db.close();
    try {
      if (!values.keep && !reuse) {
        await dropDatabase(db.url);
        // The query role creates the archive database beside its own (archive-store.ts).
        await dropDatabase(archiveDatabaseUrl(db.url, undefined));
      }
    } finally {
      await stopEmbedded();
    }
  }
  process.stdout.write(
    table(
      `inbox benchmark: one user's 1,000 items, ${String(duration)} s per call after ${String(warmUpSeconds)} s of warm-up, ${String(connections)} connections, one query process, loopback; ${machine()}, load average ${loadAverages.map((l) => l.toFixed(1)).join(' and ')} at the start of each part; database ${db.embedded ? 'embedded' : 'DATABASE_URL'}`,
      [
        'notifications in the tables',
        'call',
        'requests/s',
        'p50 ms',
        'p99 ms',
        'non-2xx',
        'query process CPU µs/request',
        'database CPU µs/request',
      ],
      rows,
    ),
  );
  if (big !== undefined)
    process.stdout.write(
      `load: ${fmt(big.rows)} notifications and inbox items in ${big.seconds.toFixed(0)} s (${fmt(big.rows / big.seconds)} rows/s), VACUUM ANALYZE ${big.vacuumSeconds.toFixed(0)} s\n`,
    );
}

runBenchmark(main);
