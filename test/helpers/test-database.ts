// One database per test file, cloned from the migrated template the runner built.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createPool, type Pool } from '../../src/db/pools.js';
import { createLogger } from '../../src/observability/logger.js';

export interface TestDatabase {
  url: string;
  pool: Pool;
  drop(): Promise<void>;
}

function env(name: string): string {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set: run tests with npm test`);
  return value;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = env('HERALD_TEST_ADMIN_URL');
  const template = env('HERALD_TEST_TEMPLATE');
  const runnerPid = template.replace('herald_test_template_', '');
  const name = `herald_t_${runnerPid}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ${template}`);
  } finally {
    await admin.end();
  }
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  const url = u.toString();
  const pool = createPool(url, 5, createLogger('silent'), 'test');
  return {
    url,
    pool,
    async drop() {
      await pool.end();
      const a = new pg.Client({ connectionString: adminUrl });
      await a.connect();
      try {
        await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        // The archive store Herald creates beside it by default (src/archive/archive-store.ts).
        await a.query(`DROP DATABASE IF EXISTS ${name}_archive WITH (FORCE)`);
      } finally {
        await a.end();
      }
    },
  };
}
