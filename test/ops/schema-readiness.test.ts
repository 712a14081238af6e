// The schema stays ready to be distributed by user (docs/scaling.md). Read from the catalog of a
// freshly migrated database: every table is placed in test/ops/table-placement.ts (a new table
// without a placement fails here); every distributed table has its distribution column and every
// unique or primary key on it includes that column, and it has a primary key, unless a listed
// exception says why; foreign keys stay within what Citus allows; and docs/scaling.md shows the
// same placements.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { packageRoot } from '../../src/db/package-root.js';
import {
  missingColumnExceptions,
  noPrimaryKeyExceptions,
  placementLabel,
  tablePlacement,
  uniqueKeyExceptions,
  type Placement,
} from './table-placement.js';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(() => db.drop());

/** Tables of the public schema, partitioned parents included and their partitions left out. */
async function schemaTables(): Promise<string[]> {
  const result = await db.pool.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
      ORDER BY 1`,
  );
  return result.rows.map((r) => r.name);
}

async function columnsOf(table: string): Promise<Set<string>> {
  const result = await db.pool.query<{ name: string }>(
    `SELECT column_name AS name FROM information_schema.columns
      WHERE table_schema = 'public' AND table_name = $1`,
    [table],
  );
  return new Set(result.rows.map((r) => r.name));
}

/** Every unique index of a table (primary keys and UNIQUE constraints too), with its columns. */
async function uniqueKeysOf(table: string): Promise<{ index: string; columns: string[] }[]> {
  const result = await db.pool.query<{ index: string; columns: string[] }>(
    `SELECT i.relname AS index,
            array(SELECT a.attname::text FROM unnest(x.indkey) AS k(attnum)
                    JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum) AS columns
       FROM pg_index x
       JOIN pg_class i ON i.oid = x.indexrelid
      WHERE x.indrelid = $1::regclass AND x.indisunique
      ORDER BY 1`,
    [table],
  );
  return result.rows;
}

const placementOf = (table: string): Placement | undefined => tablePlacement[table];
const distributed = Object.entries(tablePlacement).flatMap(([table, p]) =>
  p.kind === 'distributed' ? [{ table, ...p }] : [],
);

test('every table of the migrated schema has a placement, and every placed table exists', async () => {
  const tables = await schemaTables();
  const unplaced = tables.filter((t) => placementOf(t) === undefined);
  assert.deepEqual(
    unplaced,
    [],
    `tables without a placement: ${unplaced.join(', ')}. Say where each would live when Herald is ` +
      'distributed by user: add it to test/ops/table-placement.ts and to the placement table in docs/scaling.md.',
  );
  const gone = Object.keys(tablePlacement).filter((t) => !tables.includes(t));
  assert.deepEqual(gone, [], `placed tables missing from the schema: ${gone.join(', ')}`);
});

test('every distributed table has its distribution column, or a listed reason it does not yet', async () => {
  for (const { table, column } of distributed) {
    const has = (await columnsOf(table)).has(column);
    const excused = missingColumnExceptions.some((e) => e.table === table);
    if (excused) assert.ok(!has, `${table} has ${column} now: remove it from missingColumnExceptions`);
    else assert.ok(has, `${table} is distributed by ${column} but has no such column`);
  }
});

test('every unique or primary key of a distributed table includes its distribution column', async () => {
  const offending: string[] = [];
  for (const { table, column } of distributed) {
    for (const key of await uniqueKeysOf(table)) {
      const excused = uniqueKeyExceptions.some((e) => e.table === table && e.index === key.index);
      const includes = key.columns.includes(column);
      if (excused) assert.ok(!includes, `${key.index} includes ${column} now: remove its exception`);
      else if (!includes) offending.push(`${table}.${key.index} (${key.columns.join(', ')}) lacks ${column}`);
    }
  }
  const known = await Promise.all(
    uniqueKeyExceptions.map(async (e) => (await uniqueKeysOf(e.table)).some((k) => k.index === e.index)),
  );
  assert.ok(known.every(Boolean), 'an exception names a unique key that does not exist');
  assert.deepEqual(
    offending,
    [],
    `unique keys that could not be enforced once distributed: ${offending.join('; ')}. ` +
      'Add the distribution column to the key, or list it with its reason in uniqueKeyExceptions.',
  );
});

test('every distributed table has a primary key (the replica identity shard moves need)', async () => {
  for (const { table } of distributed) {
    const result = await db.pool.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'p'",
      [table],
    );
    const has = (result.rows[0]?.n ?? 0) > 0;
    const excused = noPrimaryKeyExceptions.some((e) => e.table === table);
    if (excused) assert.ok(!has, `${table} has a primary key now: remove it from noPrimaryKeyExceptions`);
    else assert.ok(has, `${table} is distributed but has no primary key: shard moves would block its writes`);
  }
});

test('foreign keys stay within what a distributed PostgreSQL allows', async () => {
  const result = await db.pool.query<{
    name: string;
    from: string;
    to: string;
    cols: string[];
    refs: string[];
  }>(
    `SELECT c.conname AS name, f.relname AS "from", t.relname AS "to",
            array(SELECT a.attname::text FROM unnest(c.conkey) AS k(n)
                    JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n) AS cols,
            array(SELECT a.attname::text FROM unnest(c.confkey) AS k(n)
                    JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n) AS refs
       FROM pg_constraint c
       JOIN pg_class f ON f.oid = c.conrelid
       JOIN pg_class t ON t.oid = c.confrelid
       JOIN pg_namespace n ON n.oid = f.relnamespace
      WHERE c.contype = 'f' AND n.nspname = 'public' AND NOT f.relispartition`,
  );
  assert.ok(result.rows.length > 0, 'the catalog query found no foreign keys at all');
  for (const fk of result.rows) {
    const from = placementOf(fk.from);
    const to = placementOf(fk.to);
    if (from === undefined || to === undefined) continue; // reported by the placement test
    const where = `${fk.name} (${fk.from} → ${fk.to})`;
    if (to.kind === 'reference') continue; // anything may point at a copy every node holds
    if (from.kind === 'reference')
      assert.fail(`${where}: a reference table may point only at reference tables`);
    if (from.kind === 'local') {
      assert.equal(to.kind, 'local', `${where}: a coordinator table may not point at a distributed one`);
      continue;
    }
    assert.ok(
      to.kind === 'distributed',
      `${where}: a distributed table may not point at a coordinator table`,
    );
    assert.equal(to.group, from.group, `${where}: both sides must be in one colocation group`);
    const i = fk.cols.indexOf(from.column);
    assert.ok(i >= 0 && fk.refs[i] === to.column, `${where}: must join on the distribution columns`);
  }
});

test('docs/scaling.md shows the same placement for every table', () => {
  const text = readFileSync(join(packageRoot, 'docs', 'scaling.md'), 'utf8');
  const start = text.indexOf('<!-- placement:start -->');
  const end = text.indexOf('<!-- placement:end -->');
  assert.ok(start >= 0 && end > start, 'docs/scaling.md has no placement table between its markers');
  const shown = new Map<string, string>();
  for (const line of text.slice(start, end).split('\n')) {
    const cells = /^\| `([a-z_]+)` +\| ([^|]+?) +\|/.exec(line);
    if (cells?.[1] !== undefined && cells[2] !== undefined) shown.set(cells[1], cells[2]);
  }
  const expected = new Map(Object.entries(tablePlacement).map(([t, p]) => [t, placementLabel(p)]));
  assert.deepEqual(
    [...shown].sort(),
    [...expected].sort(),
    'the placement table of docs/scaling.md differs from test/ops/table-placement.ts',
  );
});
