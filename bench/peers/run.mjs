// The pipeline benchmark's peers, each in its best configuration for no-op jobs, run on the
// Node 22 this package installs (pg-boss 12 and graphile-worker 0.18 need it; Herald runs on 20).
//   node run.mjs <raw|pg-boss|graphile-worker|bullmq> <jobs> <database url>
// Sets up, prints "@@ready", waits for "go" on stdin, enqueues and works all jobs, prints
// "@@result <json>" (seconds, its own CPU and Redis's from /proc), waits for "stop", tears down.
// The parent measures PostgreSQL around it (bench/peers.ts).
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { argv, exit, pid, stdin, stdout, version } from 'node:process';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

const [peer = '', jobsArg = '0', url = ''] = argv.slice(2);
const jobs = Number(jobsArg);
const lines = createInterface({ input: stdin })[Symbol.asyncIterator]();

/** utime + stime of a process in seconds (/proc reports clock ticks of 1/100 s). */
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function waitFor(word) {
  for (;;) {
    const { value, done } = await lines.next();
    if (done === true || value.trim() === word) return;
  }
}

async function until(check) {
  while (!check()) await sleep(5);
}

const chunks = (size) =>
  Array.from({ length: Math.ceil(jobs / size) }, (_, i) => Math.min(size, jobs - i * size));

/** The floor: a plain table, batches claimed with SKIP LOCKED (500) and deleted, 4 connections. */
async function raw() {
  const pool = new pg.Pool({ connectionString: url, max: 5, application_name: 'bench-raw' });
  await pool.query(`DROP SCHEMA IF EXISTS raw_bench CASCADE; CREATE SCHEMA raw_bench;
    CREATE TABLE raw_bench.jobs (id bigserial PRIMARY KEY, payload jsonb NOT NULL, locked_at timestamptz)`);
  let done = 0;
  const run = async () => {
    let next = 0;
    for (const n of chunks(1000)) {
      await pool.query(
        'INSERT INTO raw_bench.jobs (payload) SELECT jsonb_build_object($1::text, g) FROM generate_series($2::int, $3::int) g',
        ['n', next, next + n - 1],
      );
      next += n;
    }
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (done < jobs) {
          const claimed = await pool.query(
            `UPDATE raw_bench.jobs SET locked_at = now() WHERE id IN
               (SELECT id FROM raw_bench.jobs WHERE locked_at IS NULL ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 500)
             RETURNING id, payload`,
          );
          if (claimed.rows.length === 0) {
            await sleep(10);
            continue;
          }
          await pool.query('DELETE FROM raw_bench.jobs WHERE id = ANY($1::bigint[])', [
            claimed.rows.map((r) => r.id),
          ]);
          done += claimed.rows.length;
        }
      }),
    );
  };
  return { run, done: () => done, close: () => pool.end() };
}

/** pg-boss 12: batch insert 1,000 at a time, 4 local pollers each fetching 500 per poll. */
async function pgBoss() {
  const { PgBoss } = await import('pg-boss');
  const boss = new PgBoss({ connectionString: url, schema: 'pgboss_bench', max: 10 });
  boss.on('error', () => undefined);
  await boss.start();
  const queue = 'bench';
  await boss.createQueue(queue);
  let done = 0;
  const run = async () => {
    let next = 0;
    for (const n of chunks(1000)) {
      await boss.insert(
        queue,
        Array.from({ length: n }, (_, j) => ({ data: { n: next + j } })),
      );
      next += n;
    }
    await boss.work(
      queue,
      { batchSize: 500, localConcurrency: 4, pollingIntervalSeconds: 0.5 },
      async (batch) => {
        done += batch.length;
      },
    );
    await until(() => done >= jobs);
  };
  return { run, done: () => done, close: () => boss.stop({ graceful: false, wait: true }) };
}

/** graphile-worker 0.18: jobs added 1,000 per add_jobs call, a local queue of 500, 50 concurrent jobs, batched completions. */
async function graphileWorker() {
  const { run: runWorker, makeWorkerUtils, Logger } = await import('graphile-worker');
  const logger = new Logger(() => () => undefined);
  const utils = await makeWorkerUtils({ connectionString: url, schema: 'graphile_bench', logger });
  await utils.migrate();
  let done = 0;
  let runner;
  const run = async () => {
    let next = 0;
    for (const n of chunks(1000)) {
      await utils.addJobs(
        Array.from({ length: n }, (_, j) => ({ identifier: 'noop', payload: { n: next + j } })),
      );
      next += n;
    }
    runner = await runWorker({
      connectionString: url,
      schema: 'graphile_bench',
      logger,
      concurrency: 50,
      noHandleSignals: true,
      taskList: { noop: async () => void (done += 1) },
      // Completions batched per tick: one complete_jobs call for the jobs that finished together.
      preset: { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0 } },
    });
    await until(() => done >= jobs);
  };
  const close = async () => {
    await runner?.stop();
    await utils.release();
  };
  return { run, done: () => done, close };
}

/** BullMQ: addBulk 1,000 at a time, one worker with concurrency 50, completed jobs removed. */
async function bullmq() {
  const { Queue, Worker } = await import('bullmq');
  const { Redis } = await import('ioredis');
  const options = { host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null };
  const queueClient = new Redis(options);
  const connection = new Redis(options);
  const name = `bench-${String(Date.now())}`;
  const queue = new Queue(name, { connection: queueClient });
  let done = 0;
  const worker = new Worker(name, async () => undefined, { connection, concurrency: 50, autorun: false });
  worker.on('completed', () => void (done += 1));
  const run = async () => {
    let next = 0;
    for (const n of chunks(1000)) {
      await queue.addBulk(
        Array.from({ length: n }, (_, j) => ({
          name: 'job',
          data: { n: next + j },
          opts: { removeOnComplete: true },
        })),
      );
      next += n;
    }
    void worker.run();
    await until(() => done >= jobs);
  };
  const info = await queueClient.info('server');
  const redisPid = Number(/process_id:(\d+)/.exec(info)?.[1]);
  const close = async () => {
    await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
    queueClient.disconnect();
    connection.disconnect();
  };
  return { run, done: () => done, close, redisPid };
}

const peers = { raw, 'pg-boss': pgBoss, 'graphile-worker': graphileWorker, bullmq };
const setup = peers[peer];
if (setup === undefined) throw new Error(`unknown peer ${peer}`);
const system = await setup();
stdout.write('@@ready\n');
await waitFor('go');
const redis0 = system.redisPid === undefined ? 0 : cpuSeconds(system.redisPid);
const cpu0 = cpuSeconds(pid);
const started = performance.now();
await system.run();
const seconds = (performance.now() - started) / 1000;
const result = {
  jobs: system.done(),
  seconds,
  cpuSeconds: cpuSeconds(pid) - cpu0,
  redisCpuSeconds: system.redisPid === undefined ? undefined : cpuSeconds(system.redisPid) - redis0,
  node: version,
};
stdout.write(`@@result ${JSON.stringify(result)}\n`);
await waitFor('stop');
await system.close();
exit(0);
