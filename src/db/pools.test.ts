// Calendar days (date columns, e.g. archive_progress.month) survive a process whose time zone
// is not UTC: sent and read as UTC midnight. Each pool counts the statements it sends.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { createLogger } from '../observability/logger.js';
import { registerStatementCounter } from '../observability/statement-metrics.js';
import { createPool, statementsSent, withTransaction } from './pools.js';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(() => db.drop());

test('a month start goes to a date column and comes back as the same UTC midnight in any time zone', async () => {
  const zone = process.env['TZ'];
  try {
    for (const tz of ['Pacific/Kiritimati', 'America/Los_Angeles', 'UTC']) {
      process.env['TZ'] = tz;
      const june = new Date(Date.UTC(2026, 5, 1));
      const { rows } = await db.pool.query<{ sent: string; back: Date }>(
        "SELECT $1::date::text AS sent, '2026-06-01'::date AS back",
        [june],
      );
      const [row] = rows;
      assert.ok(row !== undefined);
      assert.equal(row.sent, '2026-06-01', tz);
      assert.equal(row.back.toISOString(), june.toISOString(), tz);
    }
  } finally {
    if (zone === undefined) delete process.env['TZ'];
    else process.env['TZ'] = zone;
  }
});

test('a pool counts every statement it sends, transactions included, and the metric reads the counts', async () => {
  const pool = createPool(db.url, 2, createLogger('silent'), 'counted');
  try {
    const start = statementsSent().get('counted') ?? 0;
    await pool.query('SELECT 1');
    await withTransaction(pool, async (client) => {
      await client.query('SELECT 2');
      await client.query('SELECT 3');
    });
    // SELECT 1; BEGIN, SELECT 2, SELECT 3, COMMIT
    assert.equal((statementsSent().get('counted') ?? 0) - start, 5);
    const registry = new Registry();
    registerStatementCounter(registry, statementsSent);
    assert.match(
      await registry.metrics(),
      new RegExp(`^herald_db_statements_total\\{pool="counted"\\} ${String(start + 5)}$`, 'm'),
    );
  } finally {
    await pool.end();
  }
});

test('a named statement planned on an empty table is planned again once the table has grown', async () => {
  const pool = createPool(db.url, 1, createLogger('silent'), 'replanned');
  const client = await pool.connect();
  try {
    // Autovacuum off: an analyze of its own would replan the statement and hide the difference.
    await client.query(
      'CREATE TABLE replan_probe (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = off); ANALYZE replan_probe',
    );
    const lookup = {
      name: 'replan_probe_lookup',
      text: 'SELECT t.v FROM unnest($1::int[]) AS k(id) JOIN replan_probe t ON t.id = k.id',
      values: [[1, 2, 3]],
    };
    const plan = async () =>
      (await client.query<{ 'QUERY PLAN': string }>("EXPLAIN EXECUTE replan_probe_lookup('{1,2,3}')")).rows
        .map((r) => r['QUERY PLAN'])
        .join('\n');
    for (let i = 0; i < 8; i++) await client.query(lookup);
    assert.match(await plan(), /Seq Scan on replan_probe/, 'the empty table is scanned');
    await client.query("INSERT INTO replan_probe SELECT i, 'x' FROM generate_series(1, 100000) AS i");
    for (let i = 0; i < 8; i++) await client.query(lookup);
    const grown = await plan();
    assert.match(grown, /Index Scan using replan_probe_pkey/, grown);
    assert.doesNotMatch(grown, /Seq Scan on replan_probe/, grown);
  } finally {
    client.release();
    await pool.end();
  }
});
