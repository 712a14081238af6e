// The read replica's lag gauge: a server that is not a replica reads 0 (an in-recovery server is
// not available to the tests; the CASE in replica-lag.ts covers it), and a replica that cannot
// be reached reads NaN (unknown) while the rest of the scrape succeeds.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { createMetrics } from '../observability/metrics.js';
import { readReplicaLag } from './replica-lag.js';

let db: TestDatabase;

before(async () => {
  db = await createTestDatabase();
});
after(() => db.drop());

test('a server that is not in recovery lags by 0 seconds', async () => {
  assert.equal(await readReplicaLag(db.pool), 0);
  const metrics = createMetrics({ readReplicaLag: () => readReplicaLag(db.pool) });
  assert.match(await metrics.registry.metrics(), /^herald_read_replica_lag_seconds 0$/m);
});

test('an unreachable replica reads NaN; the scrape succeeds', async () => {
  const metrics = createMetrics({ readReplicaLag: () => Promise.reject(new Error('connection refused')) });
  const text = await metrics.registry.metrics();
  // prom-client writes NaN as `Nan`; Prometheus reads it either way.
  assert.match(text, /^herald_read_replica_lag_seconds nan$/im);
  assert.match(text, /^process_cpu_user_seconds_total /m);
});

test('without a replica the gauge is not published', async () => {
  assert.doesNotMatch(await createMetrics().registry.metrics(), /herald_read_replica_lag_seconds/);
});
