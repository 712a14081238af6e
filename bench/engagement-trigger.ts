// npm run bench:engagement-trigger [-- --months 12 --per-month 50000 --statements 300 --rounds 2]
// What the engagement figures' trigger on delivery_events costs PostgreSQL per counted event
// when deliveries and notifications span a retention's worth of month partitions: `months`
// months (the current one and those before it) of `per-month` deliveries each, ten to a
// notification. Counted events (`sent`) of the current month's deliveries then go in 100 to a
// statement (an outcome batch), three ways alternating on one connection: the trigger disabled
// (the baseline); enabled, each event carrying its notification's creation time, as every writer
// does (the trigger reads one partition of deliveries and of notifications); enabled, events
// without it (rows of an earlier version: found by id alone, an index probe in every month's
// partition). CPU is the connection's backend process, read from /proc (PostgreSQL must run on
// this machine), in clock ticks of 10 ms: the figures are averages over tens of thousands of rows.
import { parseArgs } from 'node:util';
import pg from 'pg';
import { cpuSeconds } from './cpu.js';
import { benchDatabase, fmt, machine, runBenchmark, stopEmbedded, table } from './bench-lib.js';
import { addMonths, ensurePartitions, monthOf, monthStartDate, partitionName } from '../src/db/partitions.js';

const { values } = parseArgs({
  options: {
    months: { type: 'string', default: '12' },
    'per-month': { type: 'string', default: '50000' },
    statements: { type: 'string', default: '300' },
    rounds: { type: 'string', default: '2' },
  },
});
const months = Number(values.months);
const perMonth = Number(values['per-month']);
const statements = Number(values.statements);
const rounds = Number(values.rounds);
const rowsPerStatement = 100;

const ways = [
  { name: 'trigger off (baseline)', trigger: 'DISABLE', carriesTime: true },
  { name: "on, events carry the notification's time", trigger: 'ENABLE', carriesTime: true },
  { name: 'on, events without it (found by id alone)', trigger: 'ENABLE', carriesTime: false },
] as const;

async function main(): Promise<void> {
  const db = await benchDatabase('herald_bench_engagement_trigger');
  const now = new Date();
  const current = monthOf(now);
  const first = addMonths(current, 1 - months);
  await ensurePartitions(db.pool, now, 1, monthStartDate(first));
  const fillStarted = Date.now();
  for (let m = 0; m < months; m += 1) {
    const month = addMonths(first, m);
    const start = monthStartDate(month);
    // The month's notifications spread over the whole month (the current one's partly ahead of now).
    const step = (monthStartDate(addMonths(month, 1)).getTime() - start.getTime()) / (perMonth / 10);
    await db.pool.query(
      `WITH n AS (
         INSERT INTO notifications (id, created_at, service_id, lane, category, channels, content, template, updated_at)
         SELECT 'bench#' || $1 || '-' || i, $2::timestamptz + i * $5::bigint * interval '1 millisecond', $3, 'bulk',
                (ARRAY['news', 'orders', 'security'])[1 + i % 3], '{webhook}', '{}',
                (ARRAY['welcome', 'digest', NULL])[1 + i % 3], now()
           FROM generate_series(0, $4::int / 10 - 1) AS i
         RETURNING id, created_at, service_id, category
       )
       INSERT INTO deliveries (id, notification_id, notification_created_at, service_id, user_id, channel, target,
                               lane, state, max_attempts, run_at, category)
       SELECT gen_random_uuid(), n.id, n.created_at, n.service_id, 'u' || g, 'webhook', 'https://hooks.example/x',
              'bulk', 'sent', 5, n.created_at, n.category
         FROM n, generate_series(1, 10) AS g`,
      [m, start, db.serviceId, perMonth, Math.floor(step)],
    );
  }
  // The current month's deliveries (perMonth of them) by number, so picking a statement's 100
  // costs every way alike.
  await db.pool.query(
    `CREATE TABLE bench_picks AS
       SELECT row_number() OVER () - 1 AS i, id, notification_id, notification_created_at, channel, lane
         FROM ${partitionName('deliveries', current)}`,
  );
  await db.pool.query('CREATE INDEX ON bench_picks (i)');
  await db.pool.query('ANALYZE');
  const fillSeconds = (Date.now() - fillStarted) / 1000;

  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid ?? 0;
  const cpu = new Map<string, { seconds: number; rows: number }>();
  let next = 0;
  try {
    for (let round = 0; round < rounds; round += 1)
      for (const way of ways) {
        await client.query(`ALTER TABLE delivery_events ${way.trigger} TRIGGER delivery_events_engagement`);
        const before = cpuSeconds(pid);
        for (let s = 0; s < statements; s += 1) {
          await client.query(
            `INSERT INTO delivery_events (delivery_id, notification_id, notification_created_at, channel, lane, state, attempt)
             SELECT id, notification_id, CASE WHEN $3 THEN notification_created_at END, channel, lane, 'sent', 1
               FROM bench_picks WHERE i >= $1 AND i < $1 + $2`,
            [next, rowsPerStatement, way.carriesTime],
          );
          next = (next + rowsPerStatement) % (perMonth - rowsPerStatement);
        }
        const entry = cpu.get(way.name) ?? { seconds: 0, rows: 0 };
        entry.seconds += cpuSeconds(pid) - before;
        entry.rows += statements * rowsPerStatement;
        cpu.set(way.name, entry);
      }
  } finally {
    await client.end();
    await db.close();
    await stopEmbedded();
  }
  const baseline = cpu.get(ways[0].name);
  if (baseline === undefined) throw new Error('the baseline did not run');
  const perRow = (e: { seconds: number; rows: number }) => (e.seconds * 1e6) / e.rows;
  const rows = ways.map((way) => {
    const e = cpu.get(way.name);
    if (e === undefined) throw new Error(`${way.name} did not run`);
    return [
      way.name,
      fmt(e.rows),
      perRow(e).toFixed(1),
      way.trigger === 'DISABLE' ? '—' : (perRow(e) - perRow(baseline)).toFixed(1),
    ];
  });
  console.log(
    table(
      `engagement trigger: PostgreSQL backend CPU per counted event, ${String(rowsPerStatement)} events a statement; ${fmt(months * perMonth)} deliveries over ${String(months)} month partitions (filled in ${fillSeconds.toFixed(0)} s); ${String(rounds)} alternating rounds; ${machine()}; database ${process.env['DATABASE_URL'] === undefined ? 'embedded' : 'DATABASE_URL'}`,
      ['events', 'rows (each way)', 'µs/event', 'µs/event for counting'],
      rows,
    ),
  );
}

runBenchmark(main);
