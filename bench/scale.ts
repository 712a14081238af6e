// npm run bench:scale [-- --deliveries 20000 --duration 10 --connections 32 --only workers|api]
// Scale-out on one PostgreSQL: pipeline throughput (webhook, receiver answering in 0 ms) with
// 1, 2 and 4 worker processes; then ingest with 1, 2 and 4 api processes (bench/scale-api.ts).
import { parseArgs } from 'node:util';
import { benchDatabase, fmt, machine, runBenchmark, stopEmbedded, table } from './bench-lib.js';
import { runPipeline, type PipelineRun } from './pipeline.js';
import { apiScaleHeader, apiScaleRow, runApiScale, type ApiScaleRun } from './scale-api.js';

const { values } = parseArgs({
  options: {
    deliveries: { type: 'string', default: '20000' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    only: { type: 'string' },
  },
});
const deliveries = Number(values.deliveries);
const duration = Number(values.duration);
const connections = Number(values.connections);
if (values.only !== undefined && values.only !== 'workers' && values.only !== 'api')
  throw new Error('--only is workers or api');
const processCounts = [1, 2, 4];
/** Each api process's pool: the same 24 PostgreSQL connections in total, however many processes. */
const totalApiPool = 24;

async function apiScale(): Promise<void> {
  const db = await benchDatabase('herald_bench_scale_api');
  const runs: ApiScaleRun[] = [];
  try {
    for (const processes of processCounts)
      runs.push(
        await runApiScale({
          db,
          processes,
          seconds: duration,
          warmUpSeconds: 2,
          connections,
          poolSize: Math.max(2, Math.floor(totalApiPool / processes)),
        }),
      );
  } finally {
    await db.close();
  }
  process.stdout.write(
    table(
      `api scale benchmark: 1-recipient in_app requests, ${String(duration)} s per run after a 2 s warm-up, ${String(connections)} connections spread over the processes, ${String(totalApiPool)} pool connections in total; ${machine()}; database ${db.embedded ? 'embedded' : 'DATABASE_URL'}`,
      apiScaleHeader,
      runs.map((r) => apiScaleRow(r, runs[0])),
    ),
  );
}

async function workerScale(): Promise<void> {
  const db = await benchDatabase('herald_bench_scale');
  const runs: PipelineRun[] = [];
  try {
    for (const workers of processCounts) {
      runs.push(
        await runPipeline({
          db,
          channel: 'webhook',
          receiverDelayMs: 0,
          deliveries,
          workers,
          label: `${String(workers)} worker process(es)`,
        }),
      );
    }
  } finally {
    await db.close();
  }
  const base = runs[0];
  const rate = (r: PipelineRun) => r.deliveries / r.seconds;
  process.stdout.write(
    table(
      `scale benchmark: ${fmt(deliveries)} webhook deliveries (receiver 0 ms) per run; ${machine()}; database ${db.embedded ? 'embedded' : 'DATABASE_URL'}`,
      ['workers', 'seconds', 'deliveries/s', 'duplicates', '÷ 1 worker'],
      runs.map((r) => [
        r.label,
        r.seconds.toFixed(1),
        fmt(rate(r)),
        String(r.duplicates),
        base === undefined ? '—' : (rate(r) / rate(base)).toFixed(2),
      ]),
    ),
  );
}

async function main(): Promise<void> {
  try {
    if (values.only !== 'api') await workerScale();
    if (values.only !== 'workers') await apiScale();
  } finally {
    await stopEmbedded();
  }
}

runBenchmark(main);
