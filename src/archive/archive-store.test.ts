import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { readMigrations } from '../db/migrate.js';
import { createLogger } from '../observability/logger.js';
import { ConfigError } from '../config/load-config.js';
import { archiveDatabaseUrl, archivedTables, openArchive, readArchiveMigrations } from './archive-store.js';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(() => db.drop());

const logger = createLogger('silent');

test('the default archive is <database>_archive on the same server', () => {
  assert.equal(
    archiveDatabaseUrl('postgres://u:p@127.0.0.1:5433/herald', undefined),
    'postgres://u:p@127.0.0.1:5433/herald_archive',
  );
  assert.equal(archiveDatabaseUrl('postgres://u@h/herald', 'postgres://x@y/z'), 'postgres://x@y/z');
});

test('service migrations do not include the archive folder', async () => {
  const service = await readMigrations();
  const archive = await readArchiveMigrations();
  assert.ok(archive.length > 0);
  for (const m of archive)
    assert.ok(!service.some((s) => s.sql === m.sql), `${m.name} is not a service migration`);
});

test('openArchive creates the database, migrates it, and is idempotent', async () => {
  const url = archiveDatabaseUrl(db.url, undefined);
  const [first, second] = await Promise.all([
    openArchive({ url, serviceUrl: db.url, poolSize: 2, logger }),
    openArchive({ url, serviceUrl: db.url, poolSize: 2, logger }),
  ]);
  try {
    const tables = await first.query<{ relname: string }>(
      `SELECT relname FROM pg_class WHERE relkind = 'p' ORDER BY relname`,
    );
    assert.deepEqual(
      tables.rows.map((r) => r.relname),
      archivedTables.map((t) => t.table).sort(),
    );
    const progress = await second.query(`SELECT count(*)::int AS n FROM archive_progress`);
    assert.equal(progress.rows[0]?.n, 0);
  } finally {
    await first.end();
    await second.end();
  }
});

test('an archive that cannot be created is a start-up error naming ARCHIVE_DATABASE_URL', async () => {
  // A role without CREATEDB cannot create the archive.
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  const role = `herald_nocreate_${String(process.pid)}`;
  try {
    await admin.query(`DROP ROLE IF EXISTS ${role}`);
    await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw' NOCREATEDB`);
    const u = new URL(db.url);
    u.username = role;
    u.password = 'pw';
    const serviceUrl = u.toString();
    u.pathname = `/${u.pathname.slice(1)}_nocreate_archive`;
    await assert.rejects(
      openArchive({ url: u.toString(), serviceUrl, poolSize: 2, logger }),
      (error: unknown) =>
        error instanceof ConfigError &&
        error.message.includes('ARCHIVE_DATABASE_URL') &&
        !error.message.includes('pw@'),
    );
  } finally {
    await admin.query(`DROP ROLE IF EXISTS ${role}`);
    await admin.end();
  }
});
