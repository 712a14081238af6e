// npm run bench:scale [-- --deliveries 20000]
// Pipeline throughput (webhook, receiver answering in 0 ms) with 1, 2 and 4 worker processes.
import { parseArgs } from 'node:util';
import { benchDatabase, fmt, machine, runBenchmark, stopEmbedded, table } from './bench-lib.js';
import { runPipeline, type PipelineRun } from './pipeline.js';

const { values } = parseArgs({ options: { deliveries: { type: 'string', default: '20000' } } });
const deliveries = Number(values.deliveries);

async function main(): Promise<void> {
  const db = await benchDatabase('herald_bench_scale');
  const runs: PipelineRun[] = [];
  try {
    for (const workers of [1, 2, 4]) {
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
    await stopEmbedded();
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

runBenchmark(main);
