// npm run bench:callbacks [-- --statements 100 --rounds 1]
// What the status callbacks' triggers (migration 0018, docs/callbacks.md) cost: PostgreSQL CPU
// per inserted row of delivery_events and of notifications, and per statement, three ways in
// the same run on the same database and connection: the callback trigger disabled (the
// baseline), enabled with no subscription anywhere (the cost every deployment pays), and enabled
// with a subscription of the writing service to every event type (each row then queues an
// outbox message and the statement a NOTIFY). The overview's trigger stays on throughout. CPU is
// the connection's backend process, read from /proc (PostgreSQL must run on this machine), in
// clock ticks of 10 ms: the figures are averages over thousands of rows.
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { callbackEventTypes } from '../src/domain/callbacks.js';
import { cpuSeconds } from './cpu.js';
import { triggerShapes, type Shape } from './trigger-shapes.js';
import { benchDatabase, fmt, machine, runBenchmark, stopEmbedded, table } from './bench-lib.js';

const { values } = parseArgs({
  options: {
    statements: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '1' },
  },
});
const statements = Number(values.statements);
const rounds = Number(values.rounds);
const shapes = triggerShapes('callbacks');

const modes = ['off', 'no subscriber', 'subscribed'] as const;
type Mode = (typeof modes)[number];

async function setMode(client: pg.Client, shape: Shape, mode: Mode, serviceId: number): Promise<void> {
  await client.query(
    `ALTER TABLE ${shape.table} ${mode === 'off' ? 'DISABLE' : 'ENABLE'} TRIGGER ${shape.trigger}`,
  );
  await client.query('DELETE FROM callback_subscriptions');
  if (mode === 'subscribed')
    await client.query(
      `INSERT INTO callback_subscriptions (id, service_id, service_name, url, event_types, secret)
       VALUES ($1, $2, 'bench', 'https://hooks.example/bench', $3, 'whsec_AAAA')`,
      [randomUUID(), serviceId, [...callbackEventTypes]],
    );
}

async function main(): Promise<void> {
  const db = await benchDatabase('herald_bench_callbacks');
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid ?? 0;
  const cpu = new Map<string, { seconds: number; rows: number; statements: number }>();
  try {
    for (let round = 0; round < rounds; round += 1)
      for (const shape of shapes)
        for (const mode of modes) {
          await setMode(client, shape, mode, db.serviceId);
          const params = shape.table === 'notifications' ? [db.serviceId] : [];
          const count = Math.max(1, Math.round((statements * 100) / Math.max(shape.rowsPerStatement, 10)));
          const before = cpuSeconds(pid);
          for (let i = 0; i < count; i += 1) await client.query(shape.sql, params);
          const key = `${shape.table} ${String(shape.rowsPerStatement)} ${mode}`;
          const entry = cpu.get(key) ?? { seconds: 0, rows: 0, statements: 0 };
          entry.seconds += cpuSeconds(pid) - before;
          entry.rows += count * shape.rowsPerStatement;
          entry.statements += count;
          cpu.set(key, entry);
        }
    const queued = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM callback_messages');
    console.log(`outbox messages queued while subscribed: ${fmt(queued.rows[0]?.n ?? 0)}`);
  } finally {
    await client.end();
    await db.close();
    await stopEmbedded();
  }
  const rows = shapes.map((shape) => {
    const of = (mode: Mode) => {
      const e = cpu.get(`${shape.table} ${String(shape.rowsPerStatement)} ${mode}`);
      if (e === undefined) throw new Error('a run is missing');
      return {
        perRow: (e.seconds * 1e6) / e.rows,
        perStatement: (e.seconds * 1e6) / e.statements,
        rows: e.rows,
      };
    };
    const [off, idle, subscribed] = modes.map(of) as [
      ReturnType<typeof of>,
      ReturnType<typeof of>,
      ReturnType<typeof of>,
    ];
    return [
      shape.table,
      String(shape.rowsPerStatement),
      fmt(off.rows),
      off.perRow.toFixed(1),
      idle.perRow.toFixed(1),
      subscribed.perRow.toFixed(1),
      fmt(off.perStatement),
      fmt(idle.perStatement),
      fmt(subscribed.perStatement),
    ];
  });
  console.log(
    table(
      `status callback triggers: PostgreSQL backend CPU, trigger off (baseline) vs on without and with a subscriber; ${String(rounds)} round(s); ${machine()}; database ${process.env['DATABASE_URL'] === undefined ? 'embedded' : 'DATABASE_URL'}`,
      [
        'table',
        'rows/statement',
        'rows (each way)',
        'µs/row off',
        'µs/row no subscriber',
        'µs/row subscribed',
        'µs/statement off',
        'µs/statement no subscriber',
        'µs/statement subscribed',
      ],
      rows,
    ),
  );
}

runBenchmark(main);
