// Request ids, trace context and the access log, on a server built as every role builds its
// own: the id comes back on every answer (a sane caller id echoed, anything else replaced), a
// valid traceparent's trace id is on the request's log lines, and each answered request writes
// one access-log line with its route template, status, duration and calling service, never its
// path or query string (they carry callers' values).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { buildServer } from './build-server.js';
import { createLogger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import { traceContextOf } from './request-context.js';
import { logLines } from '../../test/helpers/log-lines.js';

const { sink, lines } = logLines();
let app: FastifyInstance;
let base: string;
const metrics = createMetrics();

before(async () => {
  app = await buildServer(
    {
      logger: createLogger('info', sink),
      bodyLimit: 1_048_576,
      title: 'test',
      description: 'test',
      role: 'api',
      timeouts: { requestMs: 10_000, headersMs: 5_000, keepAliveMs: 5_000, idleMs: 60_000 },
      exposeDocs: false,
      metrics,
    },
    [
      async (routes) => {
        routes.get('/v1/things/:id', async (request) => {
          request.caller = { serviceName: 'shop' } as NonNullable<typeof request.caller>;
          request.log.info({ step: 'inside' }, 'handler ran');
          return { ok: true };
        });
        routes.get('/v1/boom', async () => {
          throw new Error('kaput');
        });
      },
    ],
  );
  base = await app.listen({ port: 0, host: '127.0.0.1' });
});
after(() => app.close());

test('every answer carries a request id: the caller’s when sane, else a new one', async () => {
  const fresh = await fetch(`${base}/v1/things/1`);
  assert.match(fresh.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  const echoed = await fetch(`${base}/v1/things/1`, { headers: { 'x-request-id': 'checkout-7f3a:42' } });
  assert.equal(echoed.headers.get('x-request-id'), 'checkout-7f3a:42');
  for (const bad of ['x'.repeat(129), 'two words', 'a"b', '<script>']) {
    const replaced = await fetch(`${base}/v1/things/1`, { headers: { 'x-request-id': bad } });
    assert.match(replaced.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/, bad);
  }
  const missing = await fetch(`${base}/nowhere`, { headers: { 'x-request-id': 'lost-1' } });
  assert.equal(missing.status, 404);
  assert.equal(missing.headers.get('x-request-id'), 'lost-1', 'error answers carry it too');
  const failed = await fetch(`${base}/v1/boom`, { headers: { 'x-request-id': 'boom-1' } });
  assert.equal(failed.status, 500);
  assert.equal(failed.headers.get('x-request-id'), 'boom-1');
});

test('a traceparent puts its trace id on the log lines; one access line per request, no query string', async () => {
  lines.length = 0;
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  await fetch(`${base}/v1/things/abc?access_token=secret-token`, {
    headers: { 'x-request-id': 'trace-me', traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
  });
  await new Promise((r) => setImmediate(r));
  const mine = lines.filter((l) => l['reqId'] === 'trace-me');
  const inside = mine.find((l) => l['step'] === 'inside');
  assert.equal(inside?.['trace_id'], traceId);
  const access = mine.filter((l) => l['msg'] === 'request');
  assert.equal(access.length, 1);
  assert.deepEqual(
    { ...access[0], ms: undefined, time: undefined, pid: undefined, hostname: undefined, level: undefined },
    {
      ...access[0],
      ms: undefined,
      time: undefined,
      pid: undefined,
      hostname: undefined,
      level: undefined,
      reqId: 'trace-me',
      trace_id: traceId,
      parent_span_id: '00f067aa0ba902b7',
      role: 'api',
      method: 'GET',
      route: '/v1/things/:id',
      status: 200,
      service: 'shop',
    },
  );
  assert.equal(typeof access[0]?.['ms'], 'number');
  assert.ok(!JSON.stringify(lines).includes('secret-token'), 'the query string is never logged');
  assert.ok(!JSON.stringify(lines).includes('/v1/things/abc'), 'nor the path with its values');
  const failedLine = lines.length;
  await fetch(`${base}/v1/boom`);
  await new Promise((r) => setImmediate(r));
  assert.ok(lines.slice(failedLine).some((l) => l['msg'] === 'request failed' && l['status'] === 500));
  const exposition = await metrics.registry.metrics();
  assert.match(
    exposition,
    /herald_http_requests_total\{role="api",method="GET",route="\/v1\/things\/:id",status="200"\} [1-9]/,
  );
  assert.match(exposition, /route="unmatched",status="404"/);
});

test('traceparent: only version 00 with non-zero ids is taken', () => {
  assert.deepEqual(traceContextOf('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'), {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    parentId: '00f067aa0ba902b7',
    sampled: true,
  });
  for (const bad of [
    undefined,
    '',
    '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
    '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7',
  ])
    assert.equal(traceContextOf(bad), undefined, String(bad));
});
