// The processor on a real database: what it accepts, replays and refuses, and what it does
// while the database cannot be reached (holds the message, extends its lease, releases it
// only when told to stop).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { createPool, type Pool } from '../db/pools.js';
import { isConnectionError } from '../db/pg-errors.js';
import { ensureService } from '../db/stores/api-key-store.js';
import { findRateBudgetId } from '../db/stores/rate-budget-store.js';
import { WakeNotifier } from '../db/wake-notifier.js';
import type { AcceptDeps } from '../ingest/accept-notifications.js';
import { IngestBatcher } from '../ingest/ingest-batcher.js';
import { createLogger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import { IntakeProcessor, type IntakeMessage } from './intake-processor.js';

const logger = createLogger('silent');
let db: TestDatabase;
let serviceId: number;
const pools: Pool[] = [];

before(async () => {
  db = await createTestDatabase();
  serviceId = await ensureService(db.pool, 'billing');
});
after(async () => {
  for (const pool of pools) await pool.end();
  await db.drop();
});

function processorOn(pool: Pool): IntakeProcessor {
  const accept: AcceptDeps = {
    batcher: new IngestBatcher(pool, { maxBatch: 500, maxConcurrentCommits: 2 }),
    now: () => new Date(),
    notifier: new WakeNotifier(pool, logger),
    metrics: createMetrics(),
    availableChannels: new Set(['in_app']),
    contentProblems: () => [],
    maxRecipients: 1000,
    templateRenderMs: 1000,
    resolveBudget: (service, name) => findRateBudgetId(pool, service, name),
  };
  return new IntakeProcessor({
    accept,
    services: new Map([['billing', serviceId]]),
    maxBytes: 2048,
    isUnavailable: isConnectionError,
    logger,
    retryDelayMs: { first: 10, max: 40 },
  });
}

const body = (title: string, extra: Record<string, unknown> = {}) =>
  Buffer.from(
    JSON.stringify({ recipients: ['u1'], channels: ['in_app'], content: { default: { title } }, ...extra }),
  );

function message(fields: Partial<IntakeMessage>): IntakeMessage {
  return { service: 'billing', body: body('hello'), ...fields };
}

test('accepts a message, replays its redelivery, refuses another request under the same key', async () => {
  const processor = processorOn(db.pool);
  const signal = new AbortController().signal;
  const first = await processor.process(message({ brokerMessageId: 'm-1' }), signal);
  assert.ok(first.kind === 'accepted');
  const again = await processor.process(message({ brokerMessageId: 'm-1' }), signal);
  assert.deepEqual(again, {
    kind: 'accepted',
    id: first.id,
    replayed: true,
  });
  const other = await processor.process(message({ brokerMessageId: 'm-1', body: body('other') }), signal);
  assert.equal(other.kind === 'invalid' && other.problem.code, 'idempotency_key_reused');
  // The caller's Idempotency-Key is the same key space as over HTTP; a body id is a key too.
  const keyed = await processor.process(
    message({ idempotencyKey: 'order-7', brokerMessageId: 'm-2' }),
    signal,
  );
  assert.equal(keyed.kind, 'accepted');
  const byId = await processor.process(
    message({ body: body('with id', { id: 'billing#0190a000-0000-7000-8000-000000000001' }) }),
    signal,
  );
  assert.equal(byId.kind, 'accepted');
});

test('refuses what HTTP refuses, with the same codes, and unkeyed or oversized messages', async () => {
  const processor = processorOn(db.pool);
  const signal = new AbortController().signal;
  const codeOf = async (m: IntakeMessage) => {
    const outcome = await processor.process(m, signal);
    return outcome.kind === 'invalid' ? outcome.problem.code : outcome.kind;
  };
  assert.equal(await codeOf(message({ brokerMessageId: 'x1', body: Buffer.from('{') })), 'invalid_json');
  assert.equal(
    await codeOf(message({ brokerMessageId: 'x2', body: Buffer.alloc(4096, 32) })),
    'payload_too_large',
  );
  assert.equal(
    await codeOf(message({ brokerMessageId: 'x3', body: body('t', { lane: 'fast' }) })),
    'validation_failed',
  );
  assert.equal(
    await codeOf(message({ brokerMessageId: 'x4', body: Buffer.from('{"recipients":["\\u0000"]}') })),
    'validation_failed',
  );
  assert.equal(await codeOf(message({})), 'validation_failed');
  assert.equal(await codeOf(message({ idempotencyKey: 'has space' })), 'validation_failed');
  assert.equal(
    await codeOf(
      message({
        brokerMessageId: 'x5',
        body: body('t', { id: 'shop#0190a000-0000-7000-8000-000000000002' }),
      }),
    ),
    'foreign_notification_id',
  );
  assert.equal(
    await codeOf(
      message({ brokerMessageId: 'x6', body: body('t', { steps: [{ type: 'delay', for: '99d' }] }) }),
    ),
    'workflow_invalid',
  );
  // A budget only on a bulk send, and only one of the service's own.
  assert.equal(
    await codeOf(message({ brokerMessageId: 'x7', body: body('t', { budget: 'sale' }) })),
    'budget_not_bulk',
  );
  assert.equal(
    await codeOf(message({ brokerMessageId: 'x8', body: body('t', { lane: 'bulk', budget: 'sale' }) })),
    'budget_not_found',
  );
  const { rows } = await db.pool.query<{ n: string }>(
    "SELECT count(*) AS n FROM notifications WHERE content->'default'->>'title' = 't'",
  );
  assert.equal(Number(rows[0]?.n), 0, 'nothing refused was stored');
});

test('steps in a message start workflow runs as over HTTP', async () => {
  const processor = processorOn(db.pool);
  const outcome = await processor.process(
    message({ brokerMessageId: 'wf-1', body: body('later', { steps: [{ type: 'delay', for: '10m' }] }) }),
    new AbortController().signal,
  );
  assert.equal(outcome.kind, 'accepted');
  const { rows } = await db.pool.query<{ state: string; steps: unknown }>(
    `SELECT r.state, w.steps FROM recipients r JOIN workflow_runs w
        ON w.notification_id = r.notification_id AND w.user_id = r.user_id
      WHERE r.notification_id = $1`,
    [outcome.id],
  );
  assert.deepEqual(rows, [{ state: 'held', steps: [{ type: 'delay', for: '10m' }] }]);
});

test('while the database is unreachable it holds the message, extends its lease, and releases it on stop', async () => {
  // A port that accepts connections and closes them at once: every query fails to connect.
  const server: Server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const dead = createPool(`postgres://postgres@127.0.0.1:${String(port)}/none`, 2, logger, 'dead');
  pools.push(dead);
  const processor = processorOn(dead);
  const stopping = new AbortController();
  let heartbeats = 0;
  const outcome = processor.process(message({ brokerMessageId: 'held-1' }), stopping.signal, () => {
    heartbeats += 1;
    if (heartbeats === 3) stopping.abort();
  });
  assert.deepEqual(await outcome, { kind: 'retry' });
  assert.ok(heartbeats >= 3, 'the lease was extended before each wait');
  server.close();
});
