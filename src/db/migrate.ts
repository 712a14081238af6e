// Applies migrations/NNNN_name.sql in order, each in its own transaction, under an advisory
// lock so roles booting together do not race. Applied files are checksummed: editing one
// after it ran is an error (migrations are forward-only).
import type { Readiness } from '../domain/readiness.js';
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Pool } from './pools.js';
import { packageRoot } from './package-root.js';

const migrationsLockKey = 7_261_001; // arbitrary, constant: "herald migrations"
const fileNamePattern = /^\d{4}_[a-z0-9_]+\.sql$/;

export interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

export class MigrationError extends Error {
  override readonly name = 'MigrationError';
}

export async function readMigrations(dir = join(packageRoot, 'migrations')): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  return Promise.all(
    files.map(async (name) => {
      if (!fileNamePattern.test(name))
        throw new MigrationError(`migration file name ${name} is not NNNN_snake_title.sql`);
      const sql = await readFile(join(dir, name), 'utf8');
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    }),
  );
}

const createTableSql = `
  CREATE TABLE IF NOT EXISTS schema_migrations (
    name       text NOT NULL CONSTRAINT schema_migrations_pkey PRIMARY KEY,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`;

/** Applies every pending migration; returns the names applied. */
export async function migrate(pool: Pool, migrations?: Migration[]): Promise<string[]> {
  const all = migrations ?? (await readMigrations());
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [migrationsLockKey]);
    try {
      await client.query(createTableSql);
      const applied = await appliedChecksums(client);
      verifyApplied(all, applied);
      const done: string[] = [];
      for (const migration of all) {
        if (applied.has(migration.name)) continue;
        await client.query('BEGIN');
        try {
          await client.query(migration.sql);
          await client.query('INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)', [
            migration.name,
            migration.checksum,
          ]);
          await client.query('COMMIT');
        } catch (cause) {
          await client.query('ROLLBACK');
          throw new MigrationError(`migration ${migration.name} failed`, { cause });
        }
        done.push(migration.name);
      }
      return done;
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [migrationsLockKey]);
    }
  } finally {
    client.release();
  }
}

/** Names of migrations not yet applied (for /readyz); throws if an applied one was edited. */
export async function pendingMigrations(pool: Pool, migrations: Migration[]): Promise<string[]> {
  const exists = await pool.query<{ ok: boolean }>(
    "SELECT to_regclass('schema_migrations') IS NOT NULL AS ok",
  );
  if (exists.rows[0]?.ok !== true) return migrations.map((m) => m.name);
  const applied = await appliedChecksums(pool);
  verifyApplied(migrations, applied);
  return migrations.filter((m) => !applied.has(m.name)).map((m) => m.name);
}

async function appliedChecksums(db: Pick<Pool, 'query'>): Promise<Map<string, string>> {
  const result = await db.query<{ name: string; checksum: string }>(
    'SELECT name, checksum FROM schema_migrations',
  );
  return new Map(result.rows.map((r) => [r.name, r.checksum]));
}

function verifyApplied(all: Migration[], applied: Map<string, string>): void {
  const known = new Map(all.map((m) => [m.name, m.checksum]));
  for (const [name, checksum] of applied) {
    const current = known.get(name);
    if (current === undefined)
      throw new MigrationError(`applied migration ${name} is missing from migrations/`);
    if (current !== checksum) throw new MigrationError(`applied migration ${name} was edited after it ran`);
  }
}

/** What /readyz answers: the database reachable and every migration applied, unchanged. */
export async function migrationReadiness(pool: Pool, migrations: Migration[]): Promise<Readiness> {
  try {
    const pending = await pendingMigrations(pool, migrations);
    return pending.length > 0 ? { status: 'migrations pending', pending } : { status: 'ready' };
  } catch (error) {
    if (error instanceof MigrationError) return { status: 'migrations invalid', detail: error.message };
    return { status: 'database unreachable' };
  }
}
