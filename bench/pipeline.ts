// npm run bench:pipeline [-- --deliveries 20000 --workers 1]
// Deliveries per second from accept to the receiver's ledger, for in_app and for webhook
// against a local receiver answering in 0 ms and in 50 ms; next to a raw SKIP LOCKED queue,
// pg-boss 12, graphile-worker 0.18 (same PostgreSQL) and BullMQ (the machine's Redis)
// processing the same number of no-op jobs in the same run (bench/peers.ts). And what each
// delivery cost: CPU per process, PostgreSQL's backends, transactions, statements, rows and
// index entries written (bench/cost.ts).
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import {
  benchDatabase,
  fmt,
  machine,
  postAll,
  runBenchmark,
  startSystem,
  stopEmbedded,
  table,
  until,
  type BenchDatabase,
} from './bench-lib.js';
import { costCells, costHeader, countersBefore, finishCost, startMeter, type Cost } from './cost.js';
import { ensurePeers, runPeer, type Peer } from './peers.js';

export interface PipelineRun {
  label: string;
  deliveries: number;
  seconds: number;
  duplicates: number;
  cost?: Cost;
}

/** Deliveries done: in_app delivered (the inbox row is written), webhook sent (its outcome committed). */
async function delivered(db: BenchDatabase): Promise<number> {
  const r = await db.pool.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM deliveries WHERE state IN ('delivered', 'sent')",
  );
  return r.rows[0]?.n ?? 0;
}

/** One end-to-end run: `workers` worker processes, `deliveries` recipients in 100-recipient requests. */
export async function runPipeline(options: {
  db: BenchDatabase;
  channel: 'in_app' | 'webhook';
  receiverDelayMs: number;
  deliveries: number;
  workers: number;
  label: string;
}): Promise<PipelineRun> {
  const { db } = options;
  await db.pool.query(
    'TRUNCATE notifications, recipients, deliveries, inbox_items, delivery_events, idempotency_keys',
  );
  const system = await startSystem(db, options.receiverDelayMs, options.workers, {
    DATABASE_POOL_SIZE: '10',
  });
  const { receiver } = system;
  let measured: Awaited<ReturnType<Awaited<ReturnType<typeof startMeter>>['stop']>> | undefined;
  let run: PipelineRun;
  const before = await countersBefore(db);
  try {
    const perRequest = 100;
    const bodies = Array.from({ length: Math.ceil(options.deliveries / perRequest) }, (_, r) =>
      JSON.stringify({
        recipients: Array.from({ length: perRequest }, (_, i) => `user-${String(r * perRequest + i)}`),
        channels: [options.channel],
        lane: 'bulk',
        content: { default: { title: 'Your order shipped', body: 'Order 1234 is on its way.' } },
      }),
    );
    const total = bodies.length * perRequest;
    const meter = await startMeter(db, system.processes);
    const started = Date.now();
    await postAll(system.apiUrl, db.apiKey, bodies, 8);
    if (options.channel === 'webhook')
      await until('webhook deliveries to arrive', () => receiver.deliveries.size >= total, 600_000);
    else await until('in-app deliveries', async () => (await delivered(db)) >= total, 600_000, 100);
    const seconds = (Date.now() - started) / 1000;
    // The cost runs until the last outcome is committed (a webhook's arrives before it).
    await until('outcomes committed', async () => (await delivered(db)) >= total, 600_000, 100);
    measured = await meter.stop();
    run = { label: options.label, deliveries: total, seconds, duplicates: receiver.duplicates() };
  } finally {
    await system.stop();
  }
  return { ...run, cost: await finishCost(db, before, measured) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      deliveries: { type: 'string', default: '20000' },
      workers: { type: 'string', default: '1' },
      peers: { type: 'string', default: 'raw,pg-boss,graphile-worker,bullmq' },
    },
  });
  const deliveries = Number(values.deliveries);
  const workers = Number(values.workers);
  const peers = values.peers.split(',').filter((p) => p !== '') as Peer[];
  if (peers.length > 0) ensurePeers();
  const db = await benchDatabase('herald_bench_pipeline');
  const runs: PipelineRun[] = [];
  const herald = [
    { channel: 'in_app', receiverDelayMs: 0, label: 'Herald in_app (accept → inbox)' },
    { channel: 'webhook', receiverDelayMs: 0, label: 'Herald webhook, receiver 0 ms' },
    { channel: 'webhook', receiverDelayMs: 50, label: 'Herald webhook, receiver 50 ms' },
  ] as const;
  try {
    for (const h of herald) runs.push(await runPipeline({ db, deliveries, workers, ...h }));
    for (const peer of peers) runs.push(await runPeer(db, peer, deliveries));
  } finally {
    await db.close();
    await stopEmbedded();
  }
  const pgBoss = runs.find((r) => r.label.startsWith('pg-boss'));
  const rate = (r: PipelineRun) => r.deliveries / r.seconds;
  const title = `${fmt(deliveries)} deliveries (no-op jobs for the peers) per run, Herald's in 100-recipient bulk requests, ${String(workers)} worker process(es) × WORKER_CONCURRENCY 200; ${machine()}; database ${db.embedded ? 'embedded' : 'DATABASE_URL'}`;
  process.stdout.write(
    table(
      `pipeline benchmark: ${title}`,
      ['system', 'deliveries', 'seconds', 'deliveries/s', 'duplicates', '÷ pg-boss'],
      runs.map((r) => [
        r.label,
        fmt(r.deliveries),
        r.seconds.toFixed(1),
        fmt(rate(r)),
        String(r.duplicates),
        pgBoss === undefined ? '—' : (rate(r) / rate(pgBoss)).toFixed(2),
      ]),
    ),
  );
  process.stdout.write(
    `\n${table(
      'cost per delivery (per job for the peers): CPU from /proc; PG backends = the bench database\'s backends; xacts = pg_stat_database; statements = herald_db_statements_total; rows and index entries written = pg_stat_user_tables (docs/benchmarks.md, "Cost per delivery: method")',
      ['system', ...costHeader],
      runs.map((r) => [r.label.split(':')[0] ?? r.label, ...costCells(r.cost, r.deliveries)]),
    )}`,
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) runBenchmark(main);
