// npm run bench:soak [-- --minutes 25 --webhook 530 --in-app 50 --per-request 10 --report-every 5]
// A steady, paced load held for a long time: webhook and in_app deliveries per second in requests
// of `per-request` recipients, against one `api scheduler` process and one worker. Every few
// minutes and at the end, what the load leaves behind in PostgreSQL per hot table: rows
// inserted and updated, the share of HOT updates, dead tuples (per delivery), and table + index
// bytes grown per delivery; the database's size growth; and whether autovacuum is on (the
// benchmark only reports it and changes no server setting).
import { parseArgs } from 'node:util';
import {
  benchDatabase,
  fmt,
  machine,
  runBenchmark,
  startSystem,
  stopEmbedded,
  table,
  type BenchDatabase,
} from './bench-lib.js';
import { sleep, tableCounters, tableDelta, type TableCounters } from './cost.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '25' },
    webhook: { type: 'string', default: '530' },
    'in-app': { type: 'string', default: '50' },
    'per-request': { type: 'string', default: '10' },
    'report-every': { type: 'string', default: '5' },
  },
});
const minutes = Number(values.minutes);
const webhookRate = Number(values.webhook);
const inAppRate = Number(values['in-app']);
const perRequest = Number(values['per-request']);
const reportEveryMs = Number(values['report-every']) * 60_000;

/** The tables a delivery writes to (partitions summed into their parent). */
const hotTables = [
  'deliveries',
  'delivery_queue',
  'recipient_queue',
  'recipients',
  'delivery_events',
  'idempotency_keys',
  'notifications',
  'inbox_items',
];

let sequence = 0;
function requestBody(channel: 'webhook' | 'in_app'): string {
  const n = sequence++;
  return JSON.stringify({
    recipients: Array.from(
      { length: perRequest },
      (_, i) => `user-${String((n * perRequest + i) % 100_000)}`,
    ),
    channels: [channel],
    content: { default: { title: 'Your order shipped', body: 'Order 1234 is on its way.' } },
  });
}

interface Reading {
  at: number;
  tables: Map<string, TableCounters>;
  databaseBytes: number;
  delivered: number;
}

async function databaseBytes(db: BenchDatabase): Promise<number> {
  const r = await db.pool.query<{ n: string }>('SELECT pg_database_size(current_database())::text AS n');
  return Number(r.rows[0]?.n ?? 0);
}

async function inAppDelivered(db: BenchDatabase): Promise<number> {
  const r = await db.pool.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM deliveries WHERE channel = 'in_app' AND state = 'delivered'",
  );
  return r.rows[0]?.n ?? 0;
}

function report(title: string, start: Reading, now: Reading): string {
  const delta = tableDelta(start.tables, now.tables);
  const delivered = Math.max(1, now.delivered - start.delivered);
  const rows = hotTables.map((name) => {
    const t = delta.get(name) ?? now.tables.get(name);
    if (t === undefined) return [name, '—', '—', '—', '—', '—', '—', '—'];
    const changed = delta.has(name);
    return [
      name,
      fmt(changed ? t.inserts : 0),
      fmt(changed ? t.updates : 0),
      changed && t.updates > 0 ? `${((t.hotUpdates / t.updates) * 100).toFixed(0)} %` : '—',
      fmt(t.deadTuples),
      (t.deadTuples / delivered).toFixed(2),
      `${((changed ? t.bytes : 0) / 2 ** 20).toFixed(1)} MiB`,
      fmt((changed ? t.bytes : 0) / delivered),
    ];
  });
  const grown = now.databaseBytes - start.databaseBytes;
  return [
    table(
      title,
      [
        'table',
        'inserts',
        'updates',
        'HOT updates',
        'dead tuples',
        'dead / delivery',
        'bytes grown',
        'bytes / delivery',
      ],
      rows,
    ),
    `database: ${(grown / 2 ** 20).toFixed(1)} MiB grown (${fmt(grown / delivered)} bytes per delivery), ${fmt(delivered)} deliveries delivered`,
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const db = await benchDatabase('herald_bench_soak');
  const autovacuum = (await db.pool.query<{ autovacuum: string }>('SHOW autovacuum')).rows[0]?.autovacuum;
  const header = `soak benchmark: ${String(minutes)} min of ${fmt(webhookRate)} webhook + ${fmt(inAppRate)} in_app deliveries/s in ${String(perRequest)}-recipient requests, one api scheduler process and one worker; ${machine()}; database ${db.embedded ? 'embedded' : 'DATABASE_URL'}; autovacuum ${autovacuum ?? '?'}${autovacuum === 'off' ? ' (OFF on this server: dead tuples are never reclaimed by it; a per-table setting cannot override a global off)' : ''}`;
  process.stdout.write(`${header}\n\n`);
  const system = await startSystem(db, 0, 1, { DATABASE_POOL_SIZE: '10' });
  const read = async (): Promise<Reading> => ({
    at: Date.now(),
    tables: await tableCounters(db),
    databaseBytes: await databaseBytes(db),
    delivered: system.receiver.deliveries.size + (await inAppDelivered(db)),
  });
  let start: Reading | undefined;
  try {
    start = await read();
    await paceLoad(db, system.apiUrl, start, read);
  } finally {
    // Stopped backends flush their statistics as they exit: the final reading has them all.
    await system.stop();
  }
  try {
    await sleep(1000);
    const title = `soak result after ${String(minutes)} min (per delivery delivered), duplicates ${String(system.receiver.duplicates())}`;
    process.stdout.write(report(title, start, await read()));
  } finally {
    await db.close();
    await stopEmbedded();
  }
}

/** Sends the queued requests on `connections` connections until told to stop; counts the accepted. */
function senders(apiUrl: string, apiKey: string, queue: { channel: 'webhook' | 'in_app'; body: string }[]) {
  const accepted = { webhook: 0, in_app: 0 };
  let stopping = false;
  let keys = 0;
  const done = Promise.all(
    Array.from({ length: 16 }, async () => {
      while (!stopping) {
        const next = queue.shift();
        if (next === undefined) {
          await sleep(5);
          continue;
        }
        // Every request carries an idempotency key, as a careful sender's would (a row in idempotency_keys).
        const res = await fetch(`${apiUrl}/v1/notifications`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            authorization: `Bearer ${apiKey}`,
            'idempotency-key': `soak-${String(keys++)}`,
          },
          body: next.body,
        });
        await res.arrayBuffer();
        if (res.status !== 202) throw new Error(`ingest answered ${String(res.status)}`);
        accepted[next.channel] += perRequest;
      }
    }),
  );
  return { accepted, stop: () => ((stopping = true), done) };
}

/**
 * Queues what the rates say is due every 100 ms until the time is up, reporting every few
 * minutes; what is still queued then (the machine could not keep up) is not sent.
 */
async function paceLoad(db: BenchDatabase, apiUrl: string, start: Reading, read: () => Promise<Reading>) {
  const startedAt = start.at;
  const end = startedAt + minutes * 60_000;
  let nextReport = startedAt + reportEveryMs;
  const due = { webhook: 0, in_app: 0 };
  const queue: { channel: 'webhook' | 'in_app'; body: string }[] = [];
  const sending = senders(apiUrl, db.apiKey, queue);
  while (Date.now() < end) {
    const elapsed = (Date.now() - startedAt) / 1000;
    for (const [channel, rate] of [
      ['webhook', webhookRate],
      ['in_app', inAppRate],
    ] as const) {
      const n = Math.floor((elapsed * rate) / perRequest) - due[channel];
      due[channel] += Math.max(0, n);
      for (let i = 0; i < n; i++) queue.push({ channel, body: requestBody(channel) });
    }
    if (Date.now() >= nextReport) {
      nextReport += reportEveryMs;
      const minute = ((Date.now() - startedAt) / 60_000).toFixed(0);
      process.stdout.write(
        report(`after ${minute} min, ${fmt(queue.length)} requests queued`, start, await read()),
      );
    }
    await sleep(100);
  }
  const unsent = queue.length;
  queue.length = 0;
  await sending.stop();
  const { accepted } = sending;
  const total = accepted.webhook + accepted.in_app;
  // What was accepted drains for at most a minute.
  const settle = Date.now() + 60_000;
  let last = await read();
  while (last.delivered - start.delivered < total && Date.now() < settle) {
    await sleep(1000);
    last = await read();
  }
  process.stdout.write(
    `accepted ${fmt(total)} deliveries (${fmt(accepted.webhook)} webhook, ${fmt(accepted.in_app)} in_app) in ${String(minutes)} min, ${fmt(unsent)} requests due but not sent (the machine did not keep up); delivered ${fmt(last.delivered - start.delivered)} by ${((Date.now() - startedAt) / 60_000).toFixed(1)} min\n\n`,
  );
}

runBenchmark(main);
