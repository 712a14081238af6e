// PostgreSQL pools: the write pool every role uses and an optional read pool for the query role.
import pg from 'pg';
import type { Logger } from 'pino';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

// timestamptz → Date is the default; bigint (int8) counts come back as numbers, which is
// safe for Herald's counts and versions (far below 2^53).
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));
// date columns (archive_progress.month) are calendar days: read as UTC midnight, and Date
// parameters are sent in UTC, so a month stays the same month in a process whose TZ is not UTC
// (node-pg's defaults use local time for both).
pg.types.setTypeParser(pg.types.builtins.DATE, (value) => new Date(`${value}T00:00:00Z`));
pg.defaults.parseInputDatesAsUTC = true;

/** Statements sent to PostgreSQL by this process, per pool name (BEGIN and COMMIT included). */
const statements = new Map<string, number>();

/** The statement counts so far, for the herald_db_statements_total metric. */
export function statementsSent(): ReadonlyMap<string, number> {
  return statements;
}

export function createPool(connectionString: string, max: number, logger: Logger, name: string): Pool {
  const pool = new pg.Pool({
    connectionString,
    max,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000,
    application_name: `herald-${name}`,
  });
  // An idle client whose server went away emits 'error' on the pool; without a listener the
  // process would crash. The next checkout reconnects.
  pool.on('error', (error) => {
    logger.warn({ err: error, pool: name }, 'idle database connection lost');
  });
  // A client that is checked out when the server goes away emits 'error' too; unheard, it
  // would crash the process. The query in progress fails on its own and the caller retries.
  pool.on('connect', (client) => {
    client.on('error', (error) => {
      logger.warn({ err: error, pool: name }, 'database connection lost');
    });
    countStatements(client, name);
  });
  return pool;
}

/** A client's cached plans are dropped when its named executions reach this, then 4×, 16×, … it. */
const firstReplanAt = 16;

/**
 * Counts each query the client sends (pool.query goes through its client's query too), and
 * lets the client's named statements be planned again as the tables grow.
 *
 * A named statement's generic plan is made once and kept until the statistics of a table it
 * reads change. One made while the tables were small (a new database, a new month's partition)
 * may scan a whole table where an index probe is right, and keeps doing so as the table grows
 * until autovacuum analyzes it (on a server with autovacuum off, never: a worker's claims and
 * outcome writes were seen reading every delivery of the month, each time). So after 16, 64,
 * 256, … named executions the client sends `DISCARD PLANS` first: the next executions are
 * planned against the tables' current size. A plan made once a table is large stays right, so
 * replanning grows rare as the client ages.
 */
function countStatements(client: pg.PoolClient, name: string): void {
  statements.set(name, statements.get(name) ?? 0);
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  const send = (...args: unknown[]) => {
    statements.set(name, (statements.get(name) ?? 0) + 1);
    return query(...args);
  };
  let named = 0;
  let replanAt = firstReplanAt;
  client.query = ((...args: unknown[]) => {
    const [config] = args;
    if (typeof config === 'object' && config !== null && 'name' in config && ++named >= replanAt) {
      replanAt *= 4;
      // Queued ahead of the statement on this connection; a failure (an aborted transaction,
      // a lost connection) shows in the statement's own result.
      (send('DISCARD PLANS') as Promise<unknown>).catch(() => undefined);
    }
    return send(...args);
  }) as typeof client.query;
}

/**
 * Runs fn in one transaction: COMMIT on success, ROLLBACK on any error (which is rethrown).
 * A client whose ROLLBACK fails has lost its connection (the server restarted, say): it is
 * destroyed instead of going back to the pool, where it would fail every later checkout.
 */
export async function withTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    broken = await client.query('ROLLBACK').then(
      () => false,
      () => true,
    );
    throw error;
  } finally {
    client.release(broken);
  }
}
