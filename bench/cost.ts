// What a run cost, not only how fast it went: CPU seconds per process from /proc, the CPU of the
// bench database's PostgreSQL backends, the transactions committed, the statements Herald's
// pools sent (herald_db_statements_total), and the rows and index entries written per table
// (pg_stat_user_tables). docs/benchmarks.md, "Cost per delivery: method", says what each counts.
import { cpuSeconds } from './cpu.js';
import { fmt, type BenchDatabase } from './bench-lib.js';

/**
 * PostgreSQL 15 flushes a backend's statistics at most once a second while it works, and an
 * idle backend's pending ones only after 10 s: wait this long before a reading that must
 * include everything so far (or read after the backends have exited, which flushes them).
 */
export const statsSettleMs = 11_000;

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** CPU seconds of each backend connected to the bench database, except the bench's own pool. */
async function backendCpu(db: BenchDatabase): Promise<Map<number, number> | undefined> {
  const result = await db.pool.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity
      WHERE datname = current_database() AND application_name <> 'herald-bench' AND backend_type = 'client backend'`,
  );
  const cpu = new Map<number, number>();
  for (const { pid } of result.rows) {
    try {
      cpu.set(pid, cpuSeconds(pid));
    } catch {
      // exited since the query, or PostgreSQL runs elsewhere (then no backend is readable)
    }
  }
  return result.rows.length > 0 && cpu.size === 0 ? undefined : cpu;
}

/**
 * Samples the bench database's backends every `everyMs` until stopped; the CPU they spent in
 * between, with a backend that connected meanwhile counted from 0 and one that disconnected
 * counted to its last sample (so a short-lived connection's last moments are missed).
 */
export function sampleBackends(db: BenchDatabase, everyMs = 250): { stop(): Promise<number | undefined> } {
  const first = new Map<number, number>();
  const last = new Map<number, number>();
  let readable = true;
  const sample = async () => {
    const now = await backendCpu(db);
    if (now === undefined) readable = false;
    for (const [pid, cpu] of now ?? []) last.set(pid, cpu);
  };
  const started = sample().then(() => {
    for (const [pid, cpu] of last) first.set(pid, cpu);
  });
  let sampling: Promise<void> = started;
  const timer = setInterval(() => {
    sampling = sampling.then(sample, sample);
  }, everyMs);
  return {
    async stop() {
      clearInterval(timer);
      await sampling;
      await sample();
      if (!readable) return undefined;
      let total = 0;
      for (const [pid, cpu] of last) total += cpu - (first.get(pid) ?? 0);
      return total;
    },
  };
}

/** Transactions committed and rolled back in the bench database so far. */
export async function transactionCount(db: BenchDatabase): Promise<number> {
  const result = await db.pool.query<{ n: string }>(
    `SELECT (xact_commit + xact_rollback)::text AS n FROM pg_stat_database WHERE datname = current_database()`,
  );
  return Number(result.rows[0]?.n ?? 0);
}

/** One table's counters, its partitions summed under the partitioned table's name. */
export interface TableCounters {
  inserts: number;
  updates: number;
  hotUpdates: number;
  deletes: number;
  deadTuples: number;
  /** Index entries written: per partition, (inserts + non-HOT updates) × its indexes. */
  indexEntries: number;
  /** Table, TOAST and index bytes. */
  bytes: number;
}

/** pg_stat_user_tables of the bench database, per table (partitions summed into their root). */
export async function tableCounters(db: BenchDatabase): Promise<Map<string, TableCounters>> {
  const result = await db.pool.query<{
    name: string;
    ins: string;
    upd: string;
    hot: string;
    del: string;
    dead: string;
    indexes: number;
    bytes: string;
  }>(
    `SELECT coalesce(pg_partition_root(s.relid), s.relid)::regclass::text AS name,
            s.n_tup_ins::text AS ins, s.n_tup_upd::text AS upd, s.n_tup_hot_upd::text AS hot,
            s.n_tup_del::text AS del, s.n_dead_tup::text AS dead,
            (SELECT count(*)::int FROM pg_index i WHERE i.indrelid = s.relid) AS indexes,
            pg_total_relation_size(s.relid)::text AS bytes
       FROM pg_stat_user_tables s`,
  );
  const tables = new Map<string, TableCounters>();
  for (const r of result.rows) {
    const t = tables.get(r.name) ?? {
      inserts: 0,
      updates: 0,
      hotUpdates: 0,
      deletes: 0,
      deadTuples: 0,
      indexEntries: 0,
      bytes: 0,
    };
    t.inserts += Number(r.ins);
    t.updates += Number(r.upd);
    t.hotUpdates += Number(r.hot);
    t.deletes += Number(r.del);
    t.deadTuples += Number(r.dead);
    t.indexEntries += (Number(r.ins) + Number(r.upd) - Number(r.hot)) * r.indexes;
    t.bytes += Number(r.bytes);
    tables.set(r.name, t);
  }
  return tables;
}

/** What changed per table between two readings (tables that did not change left out). */
export function tableDelta(
  before: Map<string, TableCounters>,
  after: Map<string, TableCounters>,
): Map<string, TableCounters> {
  const delta = new Map<string, TableCounters>();
  for (const [name, a] of after) {
    const b = before.get(name);
    const d: TableCounters = {
      inserts: a.inserts - (b?.inserts ?? 0),
      updates: a.updates - (b?.updates ?? 0),
      hotUpdates: a.hotUpdates - (b?.hotUpdates ?? 0),
      deletes: a.deletes - (b?.deletes ?? 0),
      deadTuples: a.deadTuples, // as it stands after, not a difference
      indexEntries: a.indexEntries - (b?.indexEntries ?? 0),
      bytes: a.bytes - (b?.bytes ?? 0),
    };
    if (d.inserts + d.updates + d.deletes > 0) delta.set(name, d);
  }
  return delta;
}

/** Statements a Herald process's pools have sent, from its /metrics (undefined without metrics). */
export async function statementCount(metricsUrl: string | undefined): Promise<number | undefined> {
  if (metricsUrl === undefined) return undefined;
  const text = await (await fetch(`${metricsUrl}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n'))
    if (line.startsWith('herald_db_statements_total{'))
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
  return total;
}

/** What one run cost in total; divided by its work when printed. */
export interface Cost {
  /** CPU seconds per part: 'worker', 'api', 'PostgreSQL', 'bench', 'peer', 'Redis'. */
  cpu: Map<string, number | undefined>;
  transactions: number;
  /** Statements Herald's pools sent; undefined for the peers (counted by nobody). */
  statements: number | undefined;
  tables: Map<string, TableCounters>;
}

export const costHeader = [
  'CPU µs total',
  'by process µs',
  'PG backends µs',
  'xacts',
  'statements',
  'rows written',
  'index entries',
  'HOT updates',
];

/** The cost columns of one table row, each per unit of work (a delivery, a request). */
export function costCells(cost: Cost | undefined, units: number): string[] {
  if (cost === undefined || units === 0) return costHeader.map(() => '—');
  const micros = (s: number | undefined) => (s === undefined ? '—' : fmt((s * 1e6) / units));
  const per = (n: number) => (n / units).toFixed(n / units < 10 ? 2 : 1);
  let total = 0;
  const parts: string[] = [];
  for (const [part, seconds] of cost.cpu) {
    total += seconds ?? 0;
    if (part !== 'PostgreSQL') parts.push(`${part} ${micros(seconds)}`);
  }
  let rows = 0;
  let indexEntries = 0;
  let updates = 0;
  let hot = 0;
  for (const t of cost.tables.values()) {
    rows += t.inserts + t.updates + t.deletes;
    indexEntries += t.indexEntries;
    updates += t.updates;
    hot += t.hotUpdates;
  }
  return [
    micros(total),
    parts.join(', '),
    micros(cost.cpu.get('PostgreSQL')),
    per(cost.transactions),
    cost.statements === undefined ? '—' : per(cost.statements),
    per(rows),
    per(indexEntries),
    updates === 0 ? '—' : `${String(Math.round((100 * hot) / updates))} %`,
  ];
}

/** A process whose CPU a run counts: its part's name, its pid, and its /metrics URL if it has one. */
export interface MeteredProcess {
  part: string;
  pid: number;
  metricsUrl?: string | undefined;
}

/** The database's counters before a run, once every backend has flushed its statistics. */
export async function countersBefore(
  db: BenchDatabase,
): Promise<{ tables: Map<string, TableCounters>; transactions: number }> {
  await sleep(statsSettleMs);
  return { tables: await tableCounters(db), transactions: await transactionCount(db) };
}

/**
 * Starts counting CPU (each process's, PostgreSQL's backends', this bench process's as 'bench')
 * and statements; `stop` ends it. Call `finish` after the processes have stopped (their
 * backends exit and flush their statistics) for the whole cost.
 */
export async function startMeter(db: BenchDatabase, processes: MeteredProcess[]) {
  const statements0 = await Promise.all(processes.map((p) => statementCount(p.metricsUrl)));
  const cpu0 = processes.map((p) => cpuSeconds(p.pid));
  const self0 = process.cpuUsage();
  const backends = sampleBackends(db);
  return {
    async stop(): Promise<{ cpu: Map<string, number | undefined>; statements: number | undefined }> {
      const self = process.cpuUsage(self0);
      const cpu = new Map<string, number | undefined>();
      processes.forEach((p, i) =>
        cpu.set(p.part, (cpu.get(p.part) ?? 0) + cpuSeconds(p.pid) - (cpu0[i] ?? 0)),
      );
      cpu.set('PostgreSQL', await backends.stop());
      cpu.set('bench', (self.user + self.system) / 1e6);
      const statements1 = await Promise.all(processes.map((p) => statementCount(p.metricsUrl)));
      let statements: number | undefined;
      statements1.forEach((n, i) => {
        if (n !== undefined) statements = (statements ?? 0) + n - (statements0[i] ?? 0);
      });
      return { cpu, statements };
    },
  };
}

/** The whole cost, once the run's processes have stopped. */
export async function finishCost(
  db: BenchDatabase,
  before: { tables: Map<string, TableCounters>; transactions: number },
  measured: { cpu: Map<string, number | undefined>; statements: number | undefined },
): Promise<Cost> {
  await sleep(1000); // the exiting backends' last statistics
  return {
    ...measured,
    transactions: (await transactionCount(db)) - before.transactions,
    tables: tableDelta(before.tables, await tableCounters(db)),
  };
}
