// `npm test`: provisions PostgreSQL for the test run, then runs every *.test.ts (src/, test/,
// packages/) with node:test.
// With DATABASE_URL (CI: the machine's server) it uses that server; without, it boots the
// embedded PostgreSQL in ./.test-data. It builds one migrated template database; each test
// file clones its own database from it (test/helpers/test-database.ts).
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import pg from 'pg';
import { createLogger } from '../src/observability/logger.js';
import { startEmbeddedPostgres } from '../src/db/embedded-postgres.js';
import { createPool } from '../src/db/pools.js';
import { migrate } from '../src/db/migrate.js';
import { ensurePartitions } from '../src/db/partitions.js';
import { packageRoot } from '../src/db/package-root.js';

const logger = createLogger('warn');

function findTests(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (name === 'node_modules') continue;
    if (statSync(path).isDirectory()) findTests(path, out);
    else if (name.endsWith('.test.ts')) out.push(relative(packageRoot, path));
  }
  return out.sort();
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function main(): Promise<number> {
  const filters = process.argv.slice(2);
  const all = [
    ...findTests(join(packageRoot, 'src')),
    ...findTests(join(packageRoot, 'test')),
    // The workspace packages (the SDK, the inbox component) are tested against a real Herald too.
    ...findTests(join(packageRoot, 'packages')),
  ];
  const files = filters.length === 0 ? all : all.filter((f) => filters.some((p) => f.includes(p)));
  if (files.length === 0) {
    process.stderr.write(`no test files match ${filters.join(' ')}\n`);
    return 1;
  }

  let adminUrl = process.env['DATABASE_URL'];
  const embedded =
    adminUrl === undefined
      ? await startEmbeddedPostgres({
          dataDir: join(packageRoot, '.test-data'),
          port: Number(process.env['TEST_PG_PORT'] ?? 54329),
          logger,
        })
      : undefined;
  adminUrl ??= embedded?.url ?? '';
  const template = `herald_test_template_${String(process.pid)}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  try {
    await admin.connect();
  } catch (error) {
    process.stderr.write(
      `cannot reach PostgreSQL at DATABASE_URL: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    return 1;
  }
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${template}`);
    await admin.query(`CREATE DATABASE ${template}`);
    const pool = createPool(withDatabase(adminUrl, template), 2, logger, 'template');
    await migrate(pool);
    // Partitions from a year back, so tests may write with an earlier clock.
    await ensurePartitions(pool, new Date(), 3, new Date(Date.now() - 366 * 86_400_000));
    await pool.end();

    const code = await new Promise<number>((resolve) => {
      const child = spawn(
        process.execPath,
        // A test that hangs fails after 5 minutes, by name, instead of holding the run until CI's limit.
        ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=300000', ...files],
        {
          stdio: 'inherit',
          cwd: packageRoot,
          env: { ...process.env, HERALD_TEST_ADMIN_URL: adminUrl, HERALD_TEST_TEMPLATE: template },
        },
      );
      const forward = (signal: NodeJS.Signals) => child.kill(signal);
      process.on('SIGINT', forward);
      process.on('SIGTERM', forward);
      child.on('exit', (exitCode, signal) => resolve(exitCode ?? (signal === null ? 1 : 128)));
    });
    return code;
  } finally {
    // Clean up databases this run created (a crashed file may leave its own behind).
    const leftovers = await admin.query<{ datname: string }>(
      'SELECT datname FROM pg_database WHERE datname = $1 OR datname LIKE $2',
      [template, `herald_t_${String(process.pid)}_%`],
    );
    for (const { datname } of leftovers.rows)
      await admin.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`);
    await admin.end();
    await embedded?.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(
      `test setup failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
