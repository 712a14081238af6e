// npm run bench:overview [-- --statements 400 --rounds 2]
// What the overview's counting triggers cost (decisions/0008): PostgreSQL CPU per inserted row of
// delivery_events and of notifications, and per statement, with the trigger disabled (the
// baseline) and enabled, alternating in the same run on the same database and connection. Rows
// go in as the pipeline writes them: events in statements of 100 and of 1 (a claim or outcome
// batch; a single cancel), notifications in statements of 50 and of 1 (the api's group commit
// under load; one request alone). CPU is the connection's backend process, read from /proc
// (PostgreSQL must run on this machine), in clock ticks of 10 ms: the figures are averages
// over thousands of rows.
import { parseArgs } from 'node:util';
import pg from 'pg';
import { cpuSeconds } from './cpu.js';
import { triggerShapes } from './trigger-shapes.js';
import { benchDatabase, fmt, machine, runBenchmark, stopEmbedded, table } from './bench-lib.js';

const { values } = parseArgs({
  options: {
    statements: { type: 'string', default: '400' },
    rounds: { type: 'string', default: '2' },
  },
});
const statements = Number(values.statements);
const rounds = Number(values.rounds);
const shapes = triggerShapes('overview');

async function main(): Promise<void> {
  const db = await benchDatabase('herald_bench_overview');
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid ?? 0;
  const cpu = new Map<string, { seconds: number; rows: number; statements: number }>();
  try {
    for (let round = 0; round < rounds; round += 1)
      for (const shape of shapes)
        for (const on of [false, true]) {
          await client.query(
            `ALTER TABLE ${shape.table} ${on ? 'ENABLE' : 'DISABLE'} TRIGGER ${shape.trigger}`,
          );
          const params = shape.table === 'notifications' ? [db.serviceId] : [];
          const count = Math.max(1, Math.round((statements * 100) / Math.max(shape.rowsPerStatement, 10)));
          const before = cpuSeconds(pid);
          for (let i = 0; i < count; i += 1) await client.query(shape.sql, params);
          const key = `${shape.table} ${String(shape.rowsPerStatement)} ${on ? 'on' : 'off'}`;
          const entry = cpu.get(key) ?? { seconds: 0, rows: 0, statements: 0 };
          entry.seconds += cpuSeconds(pid) - before;
          entry.rows += count * shape.rowsPerStatement;
          entry.statements += count;
          cpu.set(key, entry);
        }
  } finally {
    await client.end();
    await db.close();
    await stopEmbedded();
  }
  const rows = shapes.map((shape) => {
    const off = cpu.get(`${shape.table} ${String(shape.rowsPerStatement)} off`);
    const on = cpu.get(`${shape.table} ${String(shape.rowsPerStatement)} on`);
    if (off === undefined || on === undefined) throw new Error('a run is missing');
    const perRow = (e: typeof off) => (e.seconds * 1e6) / e.rows;
    const perStatement = (e: typeof off) => (e.seconds * 1e6) / e.statements;
    return [
      shape.table,
      String(shape.rowsPerStatement),
      fmt(on.rows),
      perRow(off).toFixed(1),
      perRow(on).toFixed(1),
      fmt(perStatement(off)),
      fmt(perStatement(on)),
      `${(((perRow(on) - perRow(off)) / perRow(off)) * 100).toFixed(0)} %`,
    ];
  });
  console.log(
    table(
      `overview counting triggers: PostgreSQL backend CPU, trigger off (baseline) vs on; ${String(rounds)} alternating rounds; ${machine()}; database ${process.env['DATABASE_URL'] === undefined ? 'embedded' : 'DATABASE_URL'}`,
      [
        'table',
        'rows/statement',
        'rows (each way)',
        'µs/row off',
        'µs/row on',
        'µs/statement off',
        'µs/statement on',
        'added',
      ],
      rows,
    ),
  );
}

runBenchmark(main);
