// The archive store: a second PostgreSQL database holding the months that left the service
// store, for customer support (docs/retention.md). Same notification, recipient, delivery,
// in-app and event columns, partitioned by month, without the service store's keys and indexes.
import { join } from 'node:path';
import pg from 'pg';
import { ConfigError } from '../config/load-config.js';
import { migrate, readMigrations, type Migration } from '../db/migrate.js';
import { packageRoot } from '../db/package-root.js';
import { pgErrors, sqlState } from '../db/pg-errors.js';
import { createPool, type Pool } from '../db/pools.js';
import type { Logger } from '../observability/logger.js';

/** The archived tables, with the column each is partitioned by (the service store's key). */
export const archivedTables = [
  { table: 'notifications', partitionKey: 'created_at' },
  { table: 'recipients', partitionKey: 'notification_created_at' },
  { table: 'deliveries', partitionKey: 'notification_created_at' },
  { table: 'inbox_items', partitionKey: 'notification_created_at' },
  { table: 'delivery_events', partitionKey: 'created_at' },
] as const;

export type ArchivedTable = (typeof archivedTables)[number]['table'];

export const archiveMigrationsDir = join(packageRoot, 'migrations', 'archive');

export function readArchiveMigrations(): Promise<Migration[]> {
  return readMigrations(archiveMigrationsDir);
}

/**
 * ARCHIVE_DATABASE_URL, or by default the service database's server with the database
 * `<service database>_archive` (the embedded server's `herald` gives `herald_archive`).
 */
export function archiveDatabaseUrl(serviceUrl: string, configured: string | undefined): string {
  if (configured !== undefined) return configured;
  const url = new URL(serviceUrl);
  const database = decodeURIComponent(url.pathname.replace(/^\//, '')) || 'postgres';
  url.pathname = `/${encodeURIComponent(`${database}_archive`)}`;
  return url.toString();
}

export interface OpenArchiveOptions {
  /** The archive's connection string (archiveDatabaseUrl). */
  url: string;
  /** The service store's connection string: used to create the archive database on its server. */
  serviceUrl: string;
  poolSize: number;
  logger: Logger;
}

/**
 * Opens the archive: creates its database when missing, applies migrations/archive/, and
 * returns a pool (name 'archive'). Failures name ARCHIVE_DATABASE_URL (never its value).
 */
export async function openArchive(options: OpenArchiveOptions): Promise<Pool> {
  const { url, logger } = options;
  await ensureArchiveDatabase(url, options.serviceUrl, logger);
  const pool = createPool(url, options.poolSize, logger, 'archive');
  try {
    const applied = await migrate(pool, await readArchiveMigrations());
    if (applied.length > 0) logger.info({ applied }, 'applied archive migrations');
    return pool;
  } catch (error) {
    await pool.end();
    throw error;
  }
}

async function ensureArchiveDatabase(url: string, serviceUrl: string, logger: Logger): Promise<void> {
  const database = decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
  const probe = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await probe.connect();
    return;
  } catch (error) {
    if (sqlState(error) !== invalidCatalogName) throw archiveProblem(database, 'cannot be reached', error);
  } finally {
    await probe.end().catch(() => undefined);
  }
  // Missing: create it through a connection to its server, the service database's when the
  // archive lives on the same server (the default), else that server's `postgres` database.
  const admin = new pg.Client({
    connectionString: sameServer(url, serviceUrl) ? serviceUrl : withDatabase(url, 'postgres'),
    connectionTimeoutMillis: 5000,
  });
  try {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(database)}`);
    logger.info({ database }, 'created the archive database');
  } catch (error) {
    const code = sqlState(error);
    // Another process created it at the same moment.
    if (code === duplicateDatabase || code === pgErrors.uniqueViolation) return;
    throw archiveProblem(database, 'does not exist and could not be created', error);
  } finally {
    await admin.end().catch(() => undefined);
  }
}

const invalidCatalogName = '3D000';
const duplicateDatabase = '42P04';

function archiveProblem(database: string, what: string, cause: unknown): ConfigError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  const error = new ConfigError([
    `ARCHIVE_DATABASE_URL: the archive database ${JSON.stringify(database)} ${what} (${reason}); set ARCHIVE_DATABASE_URL to a database Herald can use, or allow CREATE DATABASE`,
  ]);
  error.cause = cause;
  return error;
}

function sameServer(a: string, b: string): boolean {
  const x = new URL(a);
  const y = new URL(b);
  return x.host === y.host && x.username === y.username;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}
