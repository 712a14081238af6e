// npm run bench:retention [-- --deliveries 5000000 --recent 200000 --window 30 --connections 2 --batch-rows 5000 --keep]
// Removing one old month of deliveries two ways from the same data: DELETE … WHERE in the month,
// one statement per table (what a store without partitions does), then VACUUM; and the retention
// job's partition path (copy to the archive in batches, verify, DETACH … CONCURRENTLY, DROP).
// Inbox reads, one user's first page and unread count, run on a query process throughout
// (autocannon, plus a probe of one request at a time that places slow reads in a phase of the
// removal): their requests/s and latency during each removal stand next to a window without one,
// on the same database. The month is generated once, set-based in the database, and each path
// runs on its own clone of it (CREATE DATABASE … TEMPLATE). Every database and process it makes,
// it drops and stops, unless --keep (which keeps the generated database).
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import {
  archiveDatabaseUrl,
  archivedTables,
  openArchive,
  type ArchivedTable,
} from '../src/archive/archive-store.js';
import { runLifecycle } from '../src/archive/lifecycle.js';
import type { LifecycleReport } from '../src/archive/lifecycle-report.js';
import { addMonths, ensurePartitions, monthOf, monthStartDate, partitionName } from '../src/db/partitions.js';
import { createPool, type Pool } from '../src/db/pools.js';
import { createLogger } from '../src/observability/logger.js';
import {
  benchDatabase,
  benchLogger,
  dropDatabase,
  fmt,
  httpLoad,
  machine,
  onServer,
  percentile,
  runBenchmark,
  startChild,
  stopChild,
  stopEmbedded,
  table,
  userToken,
  type BenchDatabase,
  type HttpRun,
} from './bench-lib.js';

const { values } = parseArgs({
  options: {
    deliveries: { type: 'string', default: '5000000' },
    recent: { type: 'string', default: '200000' },
    window: { type: 'string', default: '30' },
    connections: { type: 'string', default: '2' },
    'batch-rows': { type: 'string', default: '5000' },
    keep: { type: 'boolean', default: false },
  },
});

/** Every notification goes to one user on each of these channels: one delivery each. */
const channels = ['in_app', 'push', 'email', 'sms', 'webhook'] as const;
const oldDeliveries = Number(values.deliveries);
const oldNotifications = oldDeliveries / channels.length;
const recentNotifications = Number(values.recent);
const windowSeconds = Number(values.window);
const connections = Number(values.connections);
const batchRows = Number(values['batch-rows']);
const warmUpSeconds = 3;

const benchUser = 'bench-user';
const benchUserItems = 1000;
const otherUsers = 100_000;
const chunkNotifications = 100_000;
const recentDays = 20;
const monthsBack = 5;
const dayMs = 86_400_000;
/** The job's setting: a month leaves once all of it is older than this. */
const serviceRetentionDays = 90;

if (!Number.isInteger(oldNotifications) || oldNotifications < 1)
  throw new Error(`--deliveries must be a positive multiple of ${String(channels.length)}`);
if (!Number.isInteger(recentNotifications) || recentNotifications < benchUserItems)
  throw new Error(`--recent must be an integer of at least ${fmt(benchUserItems)}`);

const now = new Date();
const oldMonth = addMonths(monthOf(now), -monthsBack);
const oldStart = monthStartDate(oldMonth);
const oldEnd = monthStartDate(addMonths(oldMonth, 1));

/**
 * Inserts notifications `first`…`last` of a run of `count` spread evenly over [`start`, `end`
 * minus a minute), all in final states: each to one user, with its recipient, one delivery per
 * channel (in_app delivered; the others sent with a provider message id, 3 % failed), one
 * delivery event per delivery two seconds later (same month), and the in-app copy in the inbox.
 * Every `stride`th notification of the run (up to 1,000) is the benchmarked user's; the others
 * go to 100,000 users. Ids derive from the global number g, so runs never collide.
 */
async function insertNotifications(
  pool: Pool,
  serviceId: number,
  run: { first: number; count: number; start: Date; end: Date; stride: number; unreadPercent: number },
  first: number,
  last: number,
): Promise<void> {
  await pool.query(
    `WITH r AS MATERIALIZED (
       SELECT g, 'bench#' || md5('retention-bench-' || g)::uuid AS id,
              $3::timestamptz + ($4::timestamptz - $3::timestamptz - interval '1 minute') * ((g - $5)::float8 / $6) AS at,
              CASE WHEN $7 > 0 AND (g - $5) % $7 = 0 AND (g - $5) / $7 < $8 THEN $9
                   ELSE 'user-' || (g * 7919) % $10 END AS user_id,
              (ARRAY['comment', 'mention', 'order', 'security', 'digest'])[1 + h % 5] AS category,
              h
         FROM generate_series($1::bigint, $2::bigint) AS g,
              LATERAL (SELECT abs(hashint8(g)::bigint) AS h) AS hashed
     ), d AS (
       SELECT r.*, c.channel, md5(r.id || '/' || c.channel)::uuid AS delivery_id,
              CASE WHEN c.channel = 'in_app' THEN 'delivered'
                   WHEN abs(hashint8(r.g * 8 + c.k)) % 100 < 3 THEN 'failed' ELSE 'sent' END AS state
         FROM r CROSS JOIN unnest($13::text[]) WITH ORDINALITY AS c(channel, k)
     ), n AS (
       INSERT INTO notifications (id, created_at, service_id, lane, category, channels, content, updated_at)
       SELECT id, at, $11, 'bulk', category, $13::text[],
              jsonb_build_object(
                'in_app', jsonb_build_object('title', 'Notification ' || g, 'body', 'Something happened that you may want to look at.'),
                'email', jsonb_build_object('subject', 'Notification ' || g, 'text', 'Something happened that you may want to look at.'),
                'push', jsonb_build_object('title', 'Notification ' || g),
                'sms', jsonb_build_object('text', 'Something happened: notification ' || g)),
              at
         FROM r
     ), rc AS (
       INSERT INTO recipients (notification_id, notification_created_at, user_id, lane, state, send_at, fanned_out_at)
       SELECT id, at, user_id, 'bulk', 'fanned_out', at, at + interval '1 second' FROM r
     ), dl AS (
       INSERT INTO deliveries (id, notification_id, notification_created_at, service_id, user_id, channel, target,
                               lane, state, attempts, max_attempts, run_at, last_error, provider, provider_message_id,
                               category, created_at, updated_at)
       SELECT delivery_id, id, at, $11, user_id, channel,
              CASE channel WHEN 'in_app' THEN user_id WHEN 'push' THEN 'device-' || md5(user_id)
                           WHEN 'email' THEN user_id || '@example.com' WHEN 'sms' THEN '+1555' || lpad((h % 10000000)::text, 7, '0')
                           ELSE 'https://hooks.example.com/' || user_id END,
              'bulk', state, 1, 8, at + interval '1 second',
              CASE state WHEN 'failed' THEN 'provider refused the message' END,
              CASE channel WHEN 'in_app' THEN 'in_app' WHEN 'push' THEN 'apns' WHEN 'email' THEN 'smtp'
                           WHEN 'sms' THEN 'sms' ELSE 'webhook' END,
              CASE state WHEN 'sent' THEN md5(delivery_id::text) END,
              category, at, at + interval '2 seconds'
         FROM d
     ), ev AS (
       INSERT INTO delivery_events (delivery_id, notification_id, notification_created_at, channel, state, attempt, detail, created_at)
       SELECT delivery_id, id, at, channel, state, 1, CASE state WHEN 'failed' THEN 'provider refused the message' END,
              at + interval '2 seconds'
         FROM d
     )
     INSERT INTO inbox_items (notification_id, notification_created_at, user_id, category, read_at, seen_at, created_at)
     SELECT id, at, user_id, category,
            CASE WHEN h % 100 < $12 THEN NULL ELSE at + interval '1 hour' END,
            CASE WHEN h % 200 < $12 THEN NULL ELSE at + interval '10 minutes' END,
            at
       FROM r`,
    [
      first,
      last,
      run.start,
      run.end,
      run.first,
      run.count,
      run.stride,
      benchUserItems,
      benchUser,
      otherUsers,
      serviceId,
      run.unreadPercent,
      channels,
    ],
  );
}

interface LoadStats {
  seconds: number;
  vacuumSeconds: number;
  bytes: number;
}

/**
 * The old month (`oldNotifications` × 5 deliveries, no item of the benchmarked user) and the
 * recent data the reads hit (`recentNotifications` over the last 20 days, 1,000 of them the
 * benchmarked user's, 30 % unread), in transactions of 100,000 notifications; then VACUUM
 * ANALYZE, as autovacuum would have left tables that old.
 */
async function loadData(db: BenchDatabase): Promise<LoadStats> {
  const started = performance.now();
  await db.pool.query('INSERT INTO users (id) VALUES ($1) ON CONFLICT (id) DO NOTHING', [benchUser]);
  const recentStart = new Date(now.getTime() - recentDays * dayMs);
  const runs = [
    { first: 1, count: oldNotifications, start: oldStart, end: oldEnd, stride: 0, unreadPercent: 2 },
    {
      first: oldNotifications + 1,
      count: recentNotifications,
      start: recentStart,
      end: now,
      stride: Math.floor(recentNotifications / benchUserItems),
      unreadPercent: 30,
    },
  ];
  const total = oldNotifications + recentNotifications;
  for (const run of runs) {
    for (let first = run.first; first < run.first + run.count; first += chunkNotifications) {
      const last = Math.min(run.first + run.count - 1, first + chunkNotifications - 1);
      await insertNotifications(db.pool, db.serviceId, run, first, last);
      process.stderr.write(
        `loaded ${fmt(last)} of ${fmt(total)} notifications (${secondsSince(started)} s)\n`,
      );
    }
  }
  const loaded = performance.now();
  await db.pool.query(`VACUUM ANALYZE users, ${archivedTables.map((t) => t.table).join(', ')}`);
  const size = await db.pool.query<{ bytes: string }>('SELECT pg_database_size(current_database()) AS bytes');
  return {
    seconds: (loaded - started) / 1000,
    vacuumSeconds: (performance.now() - loaded) / 1000,
    bytes: Number(size.rows[0]?.bytes),
  };
}

function secondsSince(started: number): string {
  return ((performance.now() - started) / 1000).toFixed(0);
}

/** Rows of the old month in each table. */
async function monthRows(pool: Pool): Promise<Record<ArchivedTable, number>> {
  const rows = {} as Record<ArchivedTable, number>;
  for (const { table: name, partitionKey: key } of archivedTables) {
    const result = await pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM ${name} WHERE ${key} >= $1 AND ${key} < $2`,
      [oldStart, oldEnd],
    );
    rows[name] = Number(result.rows[0]?.n);
  }
  return rows;
}

interface MonthBytes {
  /** Each table's partition: heap, indexes and TOAST; 0 once dropped. */
  tables: Record<ArchivedTable, number>;
  /** Of all of them, what their indexes take. */
  indexes: number;
}

/** On-disk size of the old month's partitions. */
async function monthBytes(pool: Pool): Promise<MonthBytes> {
  const result = await pool.query<{ name: string; bytes: string; indexes: string }>(
    `SELECT name, coalesce(pg_total_relation_size(to_regclass(name)), 0) AS bytes,
            coalesce(pg_indexes_size(to_regclass(name)), 0) AS indexes
       FROM unnest($1::text[]) AS name`,
    [archivedTables.map((t) => partitionName(t.table, oldMonth))],
  );
  const tables = {} as Record<ArchivedTable, number>;
  for (const { table: name } of archivedTables)
    tables[name] = Number(result.rows.find((r) => r.name === partitionName(name, oldMonth))?.bytes ?? 0);
  return { tables, indexes: result.rows.reduce((sum, r) => sum + Number(r.indexes), 0) };
}

async function walPosition(pool: Pool): Promise<string> {
  const result = await pool.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  return result.rows[0]?.lsn ?? '0/0';
}

async function walSince(pool: Pool, from: string): Promise<number> {
  const result = await pool.query<{ bytes: string }>(
    'SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn) AS bytes',
    [from],
  );
  return Number(result.rows[0]?.bytes);
}

interface Reads {
  page: HttpRun;
  count: HttpRun;
}

/** The stretch of a window that ended at `at` (ms since 1970) was `phase`, on `detail`. */
interface Mark {
  at: number;
  phase: string;
  detail: string;
}
type MarkFn = (phase: string, detail: string, at?: number) => void;

/** One probe request: when it ended (ms since 1970), how long it took (ms), and its status. */
interface Sample {
  end: number;
  ms: number;
  ok: boolean;
}

interface Window {
  path: string;
  label: string;
  started: number;
  seconds: number;
  reads: Reads;
  samples: Sample[];
  marks: Mark[];
  walBytes: number;
  /** The 1-minute load average at the start and at the end: the two cores may be shared. */
  load: [number, number];
}

/**
 * One first-page request at a time, timed, until stopped: next to autocannon's totals, it shows
 * in which phase (and on which table) a read was slow.
 */
async function probe(url: string, token: string, stop: AbortSignal): Promise<Sample[]> {
  const samples: Sample[] = [];
  while (!stop.aborted) {
    const started = performance.now();
    const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    await res.arrayBuffer();
    samples.push({ end: Date.now(), ms: performance.now() - started, ok: res.status === 200 });
  }
  return samples;
}

/** Reads the first page and the unread count without pause, and probes the page, while `work` runs. */
async function readsDuring(
  inbox: string,
  token: string,
  work: (mark: MarkFn) => Promise<void>,
): Promise<Omit<Window, 'path' | 'label' | 'walBytes'>> {
  const loadAtStart = loadavg()[0] ?? Number.NaN;
  const stop = new AbortController();
  const load = (url: string) =>
    httpLoad(
      { url, headers: { authorization: `Bearer ${token}` }, connections, duration: 24 * 3600 },
      stop.signal,
    );
  const page = load(`${inbox}?limit=20`);
  const count = load(`${inbox}/count`);
  const probing = probe(`${inbox}?limit=20`, token, stop.signal);
  const marks: Mark[] = [];
  const started = Date.now();
  try {
    await work((phase, detail, at = Date.now()) => marks.push({ at, phase, detail }));
  } finally {
    stop.abort();
  }
  const seconds = (Date.now() - started) / 1000;
  return {
    started,
    seconds,
    reads: { page: await page, count: await count },
    samples: await probing,
    marks,
    load: [loadAtStart, loadavg()[0] ?? Number.NaN],
  };
}

interface Phase {
  phase: string;
  seconds: number;
  ms: number[];
  failed: number;
  /** The detail (table) of the slowest probe. */
  slowest: string;
}

/** Splits a window by its marks: seconds and probe latencies per phase, in order of first mark. */
function phasesOf(w: Window): Phase[] {
  const phases = new Map<string, Phase>();
  const phase = (name: string): Phase => {
    const found = phases.get(name) ?? { phase: name, seconds: 0, ms: [], failed: 0, slowest: '' };
    phases.set(name, found);
    return found;
  };
  const tail = w.marks.length === 0 ? 'whole window' : 'the rest';
  let from = w.started;
  for (const m of [...w.marks, { at: w.started + w.seconds * 1000, phase: tail }]) {
    const to = Math.max(m.at, from);
    phase(m.phase).seconds += (to - from) / 1000;
    from = to;
  }
  const worst = new Map<string, number>();
  for (const s of w.samples) {
    const m = w.marks.find((x) => x.at >= s.end) ?? { phase: tail, detail: '' };
    const p = phase(m.phase);
    p.ms.push(s.ms);
    if (!s.ok) p.failed++;
    if (s.ms > (worst.get(m.phase) ?? -1)) {
      worst.set(m.phase, s.ms);
      p.slowest = m.detail;
    }
  }
  return [...phases.values()].filter((p) => p.seconds >= 0.05 || p.ms.length > 0);
}

/** Seconds per (phase, detail), in order: e.g. copy of each table. */
function stepsOf(w: Window): string {
  const steps = new Map<string, number>();
  let from = w.started;
  for (const m of w.marks) {
    const key = `${m.phase} ${m.detail}`;
    steps.set(key, (steps.get(key) ?? 0) + (m.at - from) / 1000);
    from = Math.max(from, m.at);
  }
  return [...steps].map(([key, seconds]) => `${key} ${seconds.toFixed(1)} s`).join(', ');
}

interface RemovalStep {
  label: string;
  run: (pool: Pool, url: string, mark: MarkFn) => Promise<void>;
}

interface PathRun {
  windows: Window[];
  /** The old month's partition sizes: before, then after each step. */
  bytes: { label: string; bytes: MonthBytes }[];
  notes: string[];
}

/**
 * On a clone of the generated database: a query process, a user token, a checked first page,
 * warm-up, a baseline window of `windowSeconds`, then each step with reads running.
 */
async function runPath(
  url: string,
  apiKey: string,
  path: string,
  steps: RemovalStep[],
  notes: string[],
): Promise<PathRun> {
  const query = await startChild(['src/main.ts', 'query'], { DATABASE_URL: url, QUERY_PORT: '0' });
  const pool = createPool(url, 4, benchLogger, 'bench');
  try {
    const queryUrl = query.url ?? '';
    const token = await userToken(queryUrl, apiKey, benchUser);
    const inbox = `${queryUrl}/v1/users/${benchUser}/inbox`;
    const res = await fetch(`${inbox}?limit=20`, { headers: { authorization: `Bearer ${token}` } });
    const page = (await res.json()) as { items?: unknown[] };
    if (res.status !== 200 || page.items?.length !== 20)
      throw new Error(`first page answered ${String(res.status)} with ${String(page.items?.length)} items`);
    await readsDuring(inbox, token, () => sleep(warmUpSeconds * 1000));
    const windows: Window[] = [];
    const bytes = [{ label: 'before', bytes: await monthBytes(pool) }];
    const measured = async (label: string, work: (mark: MarkFn) => Promise<void>) => {
      const wal = await walPosition(pool);
      const window = await readsDuring(inbox, token, work);
      windows.push({
        ...window,
        path: windows.length === 0 ? path : '',
        label,
        walBytes: await walSince(pool, wal),
      });
    };
    await measured('baseline: no removal', () => sleep(windowSeconds * 1000));
    for (const step of steps) {
      await measured(step.label, (mark) => step.run(pool, url, mark));
      bytes.push({ label: `after ${step.label}`, bytes: await monthBytes(pool) });
    }
    const left = await monthRows(pool);
    if (Object.values(left).some((n) => n !== 0))
      throw new Error(`rows left in the month: ${JSON.stringify(left)}`);
    for (const w of windows.slice(1)) notes.push(`${path}, ${w.label}: ${stepsOf(w)}`);
    return { windows, bytes, notes };
  } finally {
    await pool.end();
    await stopChild(query);
  }
}

/** Path A: one DELETE per table over the month's range, each its own transaction, then VACUUM. */
function deletePath(notes: string[]): RemovalStep[] {
  return [
    {
      label: 'DELETE, one statement per table',
      run: async (pool, _url, mark) => {
        for (const { table: name, partitionKey: key } of archivedTables) {
          const result = await pool.query(`DELETE FROM ${name} WHERE ${key} >= $1 AND ${key} < $2`, [
            oldStart,
            oldEnd,
          ]);
          mark('DELETE', `${name} (${fmt(result.rowCount ?? 0)} rows)`);
        }
      },
    },
    {
      label: 'VACUUM (ANALYZE) of the five tables',
      run: async (pool, _url, mark) => {
        await pool.query(`VACUUM (ANALYZE) ${archivedTables.map((t) => t.table).join(', ')}`);
        mark('VACUUM', 'the five tables');
        // Autovacuum starts on its own once a DELETE commits (every naptime, 1 min by default).
        const auto = await pool.query<{ relname: string; n: string }>(
          `SELECT relname, autovacuum_count AS n FROM pg_stat_user_tables
            WHERE relname = ANY($1::text[]) AND autovacuum_count > 0 ORDER BY relname`,
          [archivedTables.map((t) => partitionName(t.table, oldMonth))],
        );
        notes.push(
          `autovacuum runs on the month's partitions during path A: ${auto.rows.map((r) => `${r.relname} ${r.n}`).join(', ') || 'none'}`,
        );
      },
    },
  ];
}

/** The job's log lines that end a phase of its work, and that phase. */
const jobPhases: Record<string, string> = {
  'retention: copied to the archive': 'copy',
  'retention: verified': 'verify (counts)',
  'retention: dropped partition': 'detach + drop',
};

/**
 * Path B: one run of the retention job (the scheduler's, with SERVICE_RETENTION_DAYS 90 and
 * RETENTION_BATCH_ROWS `batchRows`) on the clone and its own archive database. Its log lines
 * mark the phases: the stretch up to a 'copied', 'verified' or 'dropped partition' line was
 * copying, verifying or detaching and dropping that table's partition.
 */
function partitionPath(notes: string[]): RemovalStep[] {
  return [
    {
      label: 'retention job: copy to the archive, verify, detach + drop',
      run: async (pool, url, mark) => {
        const logger = createLogger('info', {
          write: (line: string) => {
            const entry = JSON.parse(line) as { time: number; msg: string; table?: string };
            const phase = jobPhases[entry.msg];
            if (phase !== undefined) mark(phase, entry.table ?? '', entry.time);
          },
        });
        const archiveUrl = archiveDatabaseUrl(url, undefined);
        const archivePool = await openArchive({ url: archiveUrl, serviceUrl: url, poolSize: 4, logger });
        let report: LifecycleReport;
        try {
          report = await runLifecycle({
            pool,
            archivePool,
            now: () => now,
            logger,
            settings: {
              serviceRetentionDays,
              archiveRetentionMonths: 120,
              batchRows,
              idempotencyKeyRetentionDays: 30,
            },
          });
        } finally {
          await archivePool.end();
        }
        const skipped = report.actions.filter((a) => a.action === 'skip');
        if (!report.ran || report.interrupted || skipped.length > 0)
          throw new Error(`the retention job did not finish: ${JSON.stringify(skipped)}`);
        const verified = report.actions.flatMap((a) =>
          a.action === 'verify' ? [`${a.table} ${fmt(a.rows)}`] : [],
        );
        const size = await pool.query<{ bytes: string }>('SELECT pg_database_size($1) AS bytes', [
          new URL(archiveUrl).pathname.slice(1),
        ]);
        notes.push(
          `verified in the archive: ${verified.join(', ')}; archive database ${mb(Number(size.rows[0]?.bytes))} MB`,
        );
      },
    },
  ];
}

function mb(bytes: number): string {
  return fmt(bytes / 2 ** 20);
}

/** autocannon keeps latencies in whole milliseconds: 0 is under one. */
const ms = (value: number): string => (value === 0 ? '< 1' : String(value));

function readCells(run: HttpRun): string[] {
  return [fmt(run.requestsPerSecond), `${ms(run.p50)} / ${ms(run.p99)} / ${ms(run.max)}`];
}

async function main(): Promise<void> {
  const name = 'herald_bench_retention';
  const db = await benchDatabase(name);
  const runs: PathRun[] = [];
  let load: LoadStats | undefined;
  let rows: Record<ArchivedTable, number> | undefined;
  const clones: { path: string; seconds: number }[] = [];
  try {
    await ensurePartitions(db.pool, oldStart, 0, oldStart);
    await ensurePartitions(db.pool, now, 2, new Date(now.getTime() - (recentDays + 1) * dayMs));
    load = await loadData(db);
    rows = await monthRows(db.pool);
    await db.close();
    const paths = [
      { key: 'delete', label: 'A: DELETE', steps: deletePath },
      { key: 'partition', label: 'B: partition path', steps: partitionPath },
    ];
    for (const path of paths) {
      const cloneUrl = new URL(db.url);
      cloneUrl.pathname = `/${name}_${path.key}`;
      const clone = cloneUrl.toString();
      const started = performance.now();
      await dropDatabase(clone);
      await onServer(db.url, `CREATE DATABASE ${name}_${path.key} TEMPLATE ${name} STRATEGY FILE_COPY`);
      clones.push({ path: path.label, seconds: (performance.now() - started) / 1000 });
      try {
        const notes: string[] = [];
        runs.push(await runPath(clone, db.apiKey, path.label, path.steps(notes), notes));
      } finally {
        await dropDatabase(clone);
        await dropDatabase(archiveDatabaseUrl(clone, undefined));
      }
    }
  } finally {
    try {
      if (!values.keep) await dropDatabase(db.url);
    } finally {
      await stopEmbedded();
    }
  }
  const sizeRows: string[][] = runs.flatMap((run) =>
    run.bytes.map((b, i) => [
      i === 0 ? (run.windows[0]?.path ?? '') : '',
      b.label,
      ...archivedTables.map((t) => mb(b.bytes.tables[t.table])),
      mb(Object.values(b.bytes.tables).reduce((a, c) => a + c, 0)),
      mb(b.bytes.indexes),
    ]),
  );
  const windows = runs.flatMap((run) => run.windows);
  process.stdout.write(
    table(
      `retention benchmark: one month (${oldMonth.year}-${String(oldMonth.month).padStart(2, '0')}) of ${fmt(oldDeliveries)} deliveries (${fmt(oldNotifications)} notifications × ${String(channels.length)} channels, with recipients, inbox items and one delivery event per delivery) removed while one user's inbox is read by autocannon on ${String(connections)} connections per call, plus one probe request at a time (query process, loopback); ${machine()}; database ${db.embedded ? 'embedded' : 'DATABASE_URL'}`,
      [
        'path',
        'window',
        'seconds',
        'WAL MB',
        'load avg',
        'page req/s',
        'page p50 / p99 / max ms',
        'count req/s',
        'count p50 / p99 / max ms',
        'non-2xx',
      ],
      windows.map((w) => [
        w.path,
        w.label,
        w.seconds.toFixed(1),
        mb(w.walBytes),
        `${w.load[0].toFixed(1)} → ${w.load[1].toFixed(1)}`,
        ...readCells(w.reads.page),
        ...readCells(w.reads.count),
        String(w.reads.page.non2xx + w.reads.count.non2xx),
      ]),
    ),
  );
  process.stdout.write(
    table(
      'the probe (GET …/inbox?limit=20, one at a time) by phase',
      [
        'path',
        'window',
        'phase',
        'seconds',
        'probes',
        'p50 ms',
        'p99 ms',
        'max ms',
        'slowest during',
        'failed',
      ],
      windows.flatMap((w) =>
        phasesOf(w).map((p, i) => {
          const sorted = [...p.ms].sort((x, y) => x - y);
          return [
            i === 0 ? w.path : '',
            i === 0 ? w.label : '',
            p.phase,
            p.seconds.toFixed(1),
            fmt(p.ms.length),
            percentile(sorted, 50).toFixed(1),
            percentile(sorted, 99).toFixed(1),
            (sorted.at(-1) ?? Number.NaN).toFixed(0),
            p.slowest,
            String(p.failed),
          ];
        }),
      ),
    ),
  );
  process.stdout.write(
    table(
      `the month's partitions on disk (MB, heap + indexes + TOAST)`,
      ['path', 'when', ...archivedTables.map((t) => t.table), 'total', 'of which indexes'],
      sizeRows,
    ),
  );
  for (const run of runs) for (const note of run.notes) process.stdout.write(`${note}\n`);
  process.stdout.write(
    `load: ${fmt(load.seconds)} s for the month's ${Object.entries(rows)
      .map(([t, n]) => `${fmt(n)} ${t}`)
      .join(
        ', ',
      )} and ${fmt(recentNotifications)} recent notifications (${fmt(recentNotifications * channels.length)} deliveries); VACUUM ANALYZE ${fmt(load.vacuumSeconds)} s; database ${mb(load.bytes)} MB; clones (CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY): ${clones.map((c) => `${c.path} ${c.seconds.toFixed(0)} s`).join(', ')}\n`,
  );
}

runBenchmark(main);
