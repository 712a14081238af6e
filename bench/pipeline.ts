// npm run bench:pipeline [-- --deliveries 20000 --workers 1]
// Deliveries per second from accept to the receiver's ledger, for in_app and for webhook
// against a local receiver answering in 0 ms and in 50 ms; next to pg-boss and BullMQ (on
// the machine's Redis) processing the same number of no-op jobs in the same run.
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
import { runBullmq, runPgBoss } from './baselines.js';

export interface PipelineRun {
  label: string;
  deliveries: number;
  seconds: number;
  duplicates: number;
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
    const started = Date.now();
    await postAll(system.apiUrl, db.apiKey, bodies, 8);
    if (options.channel === 'webhook') {
      await until('webhook deliveries to arrive', () => receiver.deliveries.size >= total, 600_000);
    } else {
      await until(
        'in-app deliveries',
        async () => {
          const r = await db.pool.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM deliveries WHERE state = 'delivered'",
          );
          return (r.rows[0]?.n ?? 0) >= total;
        },
        600_000,
        100,
      );
    }
    return {
      label: options.label,
      deliveries: total,
      seconds: (Date.now() - started) / 1000,
      duplicates: receiver.duplicates(),
    };
  } finally {
    await system.stop();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { deliveries: { type: 'string', default: '20000' }, workers: { type: 'string', default: '1' } },
  });
  const deliveries = Number(values.deliveries);
  const workers = Number(values.workers);
  const db = await benchDatabase('herald_bench_pipeline');
  const runs: PipelineRun[] = [];
  try {
    runs.push(
      await runPipeline({
        db,
        channel: 'in_app',
        receiverDelayMs: 0,
        deliveries,
        workers,
        label: 'Herald in_app (accept → inbox)',
      }),
    );
    runs.push(
      await runPipeline({
        db,
        channel: 'webhook',
        receiverDelayMs: 0,
        deliveries,
        workers,
        label: 'Herald webhook, receiver 0 ms',
      }),
    );
    runs.push(
      await runPipeline({
        db,
        channel: 'webhook',
        receiverDelayMs: 50,
        deliveries,
        workers,
        label: 'Herald webhook, receiver 50 ms',
      }),
    );
    runs.push(await runPgBoss(db.url, deliveries));
    runs.push(await runBullmq(deliveries));
  } finally {
    await db.close();
    await stopEmbedded();
  }
  const pgBoss = runs.find((r) => r.label.startsWith('baseline: pg-boss'));
  const rate = (r: PipelineRun) => r.deliveries / r.seconds;
  process.stdout.write(
    table(
      `pipeline benchmark: ${fmt(deliveries)} deliveries per run in 100-recipient bulk requests, ${String(workers)} worker process(es) × WORKER_CONCURRENCY 200; ${machine()}; database ${db.embedded ? 'embedded' : 'DATABASE_URL'}`,
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
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) runBenchmark(main);
