// Baselines for the pipeline benchmark: the same number of no-op jobs through pg-boss (on the
// same PostgreSQL) and through BullMQ (on the machine's Redis), timed from the first enqueue
// to the last completion — what other notification services are built on.
import PgBoss from 'pg-boss';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { PipelineRun } from './pipeline.js';
import { until } from './bench-lib.js';

export async function runPgBoss(url: string, jobs: number): Promise<PipelineRun> {
  const boss = new PgBoss({ connectionString: url, schema: 'pgboss_bench', max: 10 });
  boss.on('error', () => undefined);
  await boss.start();
  const queue = `bench-${String(Date.now())}`;
  await boss.createQueue(queue);
  let done = 0;
  const started = Date.now();
  for (let i = 0; i < jobs; i += 1000) {
    await boss.insert(
      Array.from({ length: Math.min(1000, jobs - i) }, (_, j) => ({ name: queue, data: { n: i + j } })),
    );
  }
  // Four pollers fetching 100 jobs at a time, the most pg-boss fetches per poll by default.
  for (let w = 0; w < 4; w++) {
    await boss.work(queue, { batchSize: 100, pollingIntervalSeconds: 0.5 }, async (batch) => {
      done += batch.length;
    });
  }
  await until('pg-boss jobs', () => done >= jobs, 600_000);
  const seconds = (Date.now() - started) / 1000;
  await boss.stop({ graceful: false, wait: true });
  return {
    label: 'baseline: pg-boss 10, no-op jobs',
    deliveries: jobs,
    seconds,
    duplicates: Math.max(0, done - jobs),
  };
}

export async function runBullmq(jobs: number): Promise<PipelineRun> {
  // BullMQ wants ready-made clients under ESM; workers need maxRetriesPerRequest: null.
  const queueClient = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null });
  const connection = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null });
  const name = `bench-${String(Date.now())}`;
  const queue = new Queue(name, { connection: queueClient });
  let done = 0;
  const worker = new Worker(name, async () => undefined, { connection, concurrency: 200, autorun: false });
  worker.on('completed', () => {
    done += 1;
  });
  const started = Date.now();
  for (let i = 0; i < jobs; i += 1000) {
    await queue.addBulk(
      Array.from({ length: Math.min(1000, jobs - i) }, (_, j) => ({
        name: 'job',
        data: { n: i + j },
        opts: { removeOnComplete: true },
      })),
    );
  }
  void worker.run();
  await until('BullMQ jobs', () => done >= jobs, 600_000);
  const seconds = (Date.now() - started) / 1000;
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  queueClient.disconnect();
  connection.disconnect();
  return {
    label: 'baseline: BullMQ 6, no-op jobs',
    deliveries: jobs,
    seconds,
    duplicates: Math.max(0, done - jobs),
  };
}
