// Statements each process has sent to PostgreSQL, per pool: what a delivery or a request costs
// the database in round trips (the benchmarks divide it by their work). The pools count them
// (src/db/pools.ts); this counter reads their counts on each scrape.
import { Counter, type Registry } from 'prom-client';

export function registerStatementCounter(registry: Registry, read: () => ReadonlyMap<string, number>): void {
  new Counter({
    name: 'herald_db_statements_total',
    help: 'Statements this process sent to PostgreSQL, per pool (write, read, archive; not the LISTEN connection), BEGIN and COMMIT included.',
    labelNames: ['pool'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [pool, count] of read()) this.inc({ pool }, count);
    },
  });
}
