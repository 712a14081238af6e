// npm run bench:limits [-- --deliveries 5000 --limit 200]
// A deployment-wide provider rate limit (docs/decisions/0009-shared-provider-limits.md): 1, 2
// and 4 worker processes drain a backlog of webhooks to one receiver with
// WEBHOOK_RATE_PER_SECOND = limit. Prints the receiver's count in each 1-second window (from
// the first request; the last, partial window left out), the highest window and the mean rate.
import { parseArgs } from 'node:util';
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
} from './bench-lib.js';

const { values } = parseArgs({
  options: { deliveries: { type: 'string', default: '5000' }, limit: { type: 'string', default: '200' } },
});
const deliveries = Number(values.deliveries);
const limit = Number(values.limit);

interface LimitsRun {
  workers: number;
  windows: number[];
  rate: number;
}

async function run(db: Awaited<ReturnType<typeof benchDatabase>>, workers: number): Promise<LimitsRun> {
  await db.pool.query(
    'TRUNCATE notifications, recipients, deliveries, inbox_items, delivery_events, idempotency_keys',
  );
  const system = await startSystem(db, 0, workers, {
    DATABASE_POOL_SIZE: '10',
    WEBHOOK_RATE_PER_SECOND: String(limit),
  });
  try {
    const perRequest = 100;
    const bodies = Array.from({ length: Math.ceil(deliveries / perRequest) }, (_, r) =>
      JSON.stringify({
        recipients: Array.from({ length: perRequest }, (_, i) => `user-${String(r * perRequest + i)}`),
        channels: ['webhook'],
        lane: 'bulk',
        content: { default: { title: 'Your order shipped', body: 'Order 1234 is on its way.' } },
      }),
    );
    const total = bodies.length * perRequest;
    await postAll(system.apiUrl, db.apiKey, bodies, 8);
    await until('webhook deliveries to arrive', () => system.receiver.deliveries.size >= total, 600_000);
    const times = system.receiver.times;
    const first = times[0] ?? 0;
    const last = times.at(-1) ?? first;
    const windows: number[] = [];
    for (const at of times) {
      const i = Math.floor((at - first) / 1000);
      windows[i] = (windows[i] ?? 0) + 1;
    }
    return {
      workers,
      windows: Array.from({ length: windows.length }, (_, i) => windows[i] ?? 0).slice(0, -1),
      rate: ((times.length - 1) * 1000) / Math.max(1, last - first),
    };
  } finally {
    await system.stop();
  }
}

async function main(): Promise<void> {
  const db = await benchDatabase('herald_bench_limits');
  const runs: LimitsRun[] = [];
  try {
    for (const workers of [1, 2, 4]) runs.push(await run(db, workers));
  } finally {
    await db.close();
    await stopEmbedded();
  }
  process.stdout.write(
    table(
      `limits benchmark: ${fmt(deliveries)} webhook deliveries to one receiver, WEBHOOK_RATE_PER_SECOND ${String(limit)} (deployment-wide); ${machine()}; database ${db.embedded ? 'embedded' : 'DATABASE_URL'}`,
      ['workers', 'highest 1-s window', 'mean/s', 'sent per 1-s window'],
      runs.map((r) => [String(r.workers), String(Math.max(...r.windows)), fmt(r.rate), r.windows.join(' ')]),
    ),
  );
}

runBenchmark(main);
