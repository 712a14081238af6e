// npm run bench:intake [-- --messages 20000 --duration 10]
// Broker intake next to HTTP ingest, in one run on one database: notifications accepted per
// second (1 recipient each, in_app, bulk lane) and the CPU each costs, read from /proc, in the
// accepting process and in PostgreSQL. HTTP: `herald api` under autocannon (32 connections).
// Each broker: `messages` requests published (and confirmed) to the bench service's intake
// queue first, then `herald intake` started; its rate is taken from its first commit to its
// last. No worker runs: this is the cost of accepting, as bench:ingest measures it. The
// brokers are the machine's own (RabbitMQ on 5672, NATS on 4222); run nothing else meanwhile.
import { parseArgs } from 'node:util';
import {
  benchDatabase,
  fmt,
  httpLoad,
  machine,
  runBenchmark,
  startChild,
  stopChild,
  stopEmbedded,
  table,
  until,
  type BenchDatabase,
} from './bench-lib.js';
import { cpuSeconds, postgresCpuSeconds } from './cpu.js';
import { benchBrokers, type BenchBroker } from './intake-brokers.js';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '20000' },
    duration: { type: 'string', default: '10' },
    brokers: { type: 'string' },
  },
});
const messages = Number(values.messages);
const duration = Number(values.duration);

const request = JSON.stringify({
  recipients: ['user-1'],
  channels: ['in_app'],
  lane: 'bulk',
  content: { default: { title: 'Your order shipped', body: 'Order 1234 is on its way.' } },
});

interface Row {
  path: string;
  perSecond: number;
  accepted: number;
  /** CPU µs per accepted request: the accepting process, PostgreSQL. */
  processUs: number;
  postgresUs: number | undefined;
  note: string;
}

async function notifications(db: BenchDatabase): Promise<number> {
  const { rows } = await db.pool.query<{ n: string }>('SELECT count(*) AS n FROM notifications');
  return Number(rows[0]?.n);
}

async function http(db: BenchDatabase): Promise<Row> {
  const api = await startChild(['src/main.ts', 'api'], {
    DATABASE_URL: db.url,
    API_PORT: '0',
    DATABASE_POOL_SIZE: '20',
  });
  try {
    const pid = api.process.pid ?? 0;
    const before = await notifications(db);
    const cpu0 = cpuSeconds(pid);
    const pg0 = await postgresCpuSeconds(db.pool);
    const run = await httpLoad({
      url: `${api.url ?? ''}/v1/notifications`,
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${db.apiKey}` },
      body: request,
      connections: 32,
      duration,
    });
    const accepted = (await notifications(db)) - before;
    const pg1 = await postgresCpuSeconds(db.pool);
    return {
      path: 'HTTP: POST /v1/notifications (herald api)',
      perSecond: run.requestsPerSecond,
      accepted,
      processUs: ((cpuSeconds(pid) - cpu0) / accepted) * 1e6,
      postgresUs: pg0 === undefined || pg1 === undefined ? undefined : ((pg1 - pg0) / accepted) * 1e6,
      note: `p99 ${String(run.p99)} ms, ${String(run.non2xx)} non-2xx`,
    };
  } finally {
    await stopChild(api);
  }
}

async function intake(db: BenchDatabase, broker: BenchBroker): Promise<Row> {
  await broker.prepare('bench');
  const published = Date.now();
  // Keys are visible ASCII (as an Idempotency-Key over HTTP): no spaces from the broker's name.
  await broker.publish(
    'bench',
    request,
    messages,
    `${broker.name.replace(/\W+/g, '-')}-${String(published)}`,
  );
  const publishSeconds = (Date.now() - published) / 1000;
  const base = await notifications(db);
  const child = await startChild(['src/main.ts', 'intake'], {
    DATABASE_URL: db.url,
    INTAKE_SERVICES: 'bench',
    DATABASE_POOL_SIZE: '20',
    ...broker.env,
  });
  try {
    const pid = child.process.pid ?? 0;
    // From the first commit to the last: start-up is not intake's rate.
    let first = 0;
    await until(
      'the first intake commit',
      async () => (first = (await notifications(db)) - base) > 0,
      60_000,
      5,
    );
    const t0 = performance.now();
    const cpu0 = cpuSeconds(pid);
    const pg0 = await postgresCpuSeconds(db.pool);
    await until(
      'every message accepted',
      async () => (await notifications(db)) - base >= messages,
      600_000,
      20,
    );
    const seconds = (performance.now() - t0) / 1000;
    const counted = messages - first;
    const pg1 = await postgresCpuSeconds(db.pool);
    return {
      path: `${broker.name}: herald intake`,
      perSecond: counted / seconds,
      accepted: (await notifications(db)) - base,
      processUs: ((cpuSeconds(pid) - cpu0) / counted) * 1e6,
      postgresUs: pg0 === undefined || pg1 === undefined ? undefined : ((pg1 - pg0) / counted) * 1e6,
      note: `${fmt(messages)} published in ${publishSeconds.toFixed(1)} s beforehand; ${broker.configuration}`,
    };
  } finally {
    await stopChild(child);
    await broker.cleanup('bench');
  }
}

async function main(): Promise<void> {
  const db = await benchDatabase('herald_bench_intake');
  const rows: Row[] = [];
  const chosen = values.brokers?.split(',');
  try {
    rows.push(await http(db));
    for (const broker of benchBrokers()) {
      if (chosen !== undefined && !chosen.includes(broker.name)) continue;
      try {
        rows.push(await intake(db, broker));
      } finally {
        await broker.close();
      }
    }
  } finally {
    await db.close();
    await stopEmbedded();
  }
  const us = (n: number | undefined) => (n === undefined ? '—' : fmt(n));
  process.stdout.write(
    table(
      `intake benchmark: 1-recipient requests accepted (committed), per path; ${machine()}; database ${db.embedded ? 'embedded' : 'DATABASE_URL'}`,
      ['path', 'accepted/s', 'accepted', 'CPU µs/request: process', 'PostgreSQL', 'notes'],
      rows.map((r) => [r.path, fmt(r.perSecond), fmt(r.accepted), us(r.processUs), us(r.postgresUs), r.note]),
    ),
  );
}

runBenchmark(main);
