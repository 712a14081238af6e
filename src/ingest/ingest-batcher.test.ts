// The group commit's pacing, against a real PostgreSQL: while a commit is in flight, requests
// with few recipients wait and share the next commit (one statement for many requests), while
// requests with many recipients start a second commit next to it. The pool is wrapped to hold
// each statement 50 ms and count how many run at once.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { ensureService } from '../db/stores/api-key-store.js';
import type { Pool } from '../db/pools.js';
import type { PreparedNotification } from '../db/stores/notification-batch-store.js';
import { formatNotificationId, uuidV7 } from '../domain/ids.js';
import { pooledRandomBytes } from '../observability/random-pool.js';
import { IngestBatcher, parallelCommitRows } from './ingest-batcher.js';

let db: TestDatabase;
let serviceId: number;

before(async () => {
  db = await createTestDatabase();
  serviceId = await ensureService(db.pool, 'shop');
});
after(async () => {
  await db.drop();
});

function request(recipients: number): PreparedNotification {
  const now = new Date();
  return {
    claims: [],
    notification: {
      id: formatNotificationId({ service: 'shop', uuid: uuidV7(now.getTime(), pooledRandomBytes(10)) }),
      createdAt: now,
      serviceId,
      lane: 'bulk',
      category: 'general',
      channels: ['in_app'],
      content: { default: { title: 'Hi' } },
      data: null,
      sendAt: now,
      isScheduled: false,
      recipients: Array.from({ length: recipients }, (_, i) => `u${String(i)}`),
    },
  };
}

/** The test database's pool, each statement held 50 ms; `most` is the most that ran at once. */
function slowPool(): { pool: Pool; statements: () => number; most: () => number } {
  let running = 0;
  let most = 0;
  let statements = 0;
  const pool = {
    query: async (...args: Parameters<Pool['query']>) => {
      running += 1;
      statements += 1;
      most = Math.max(most, running);
      try {
        await new Promise((r) => setTimeout(r, 50));
        return await (db.pool.query as (...a: unknown[]) => Promise<unknown>)(...args);
      } finally {
        running -= 1;
      }
    },
  } as unknown as Pool;
  return { pool, statements: () => statements, most: () => most };
}

const count = async (table: string) =>
  Number((await db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows[0]?.n);

test('small requests arriving during a commit share the next one; no second commit starts for them', async () => {
  const slow = slowPool();
  const batcher = new IngestBatcher(slow.pool, { maxBatch: 500, maxConcurrentCommits: 4 });
  const before = await count('recipients');
  const first = batcher.submit(request(1));
  const rest = Array.from({ length: 30 }, () => batcher.submit(request(1)));
  const outcomes = await Promise.all([first, ...rest]);
  assert.ok(outcomes.every((o) => o.kind === 'created'));
  assert.equal(slow.most(), 1);
  assert.equal(slow.statements(), 2, 'the lone first request, then the other 30 together');
  assert.equal((await count('recipients')) - before, 31);
});

test('requests with many recipients start commits next to the one in flight, up to the cap', async () => {
  const slow = slowPool();
  const batcher = new IngestBatcher(slow.pool, { maxBatch: 500, maxConcurrentCommits: 4 });
  const first = batcher.submit(request(1));
  const large = Array.from({ length: 5 }, () => batcher.submit(request(parallelCommitRows)));
  await Promise.all([first, ...large]);
  assert.equal(slow.most(), 4);
  assert.equal(slow.statements(), 5, 'three large requests alone, the last two together');
});
