// OpenTelemetry tracing (docs/tracing.md): with OTEL_EXPORTER_OTLP_ENDPOINT set, a local OTLP/HTTP
// receiver gets, as JSON, the api role's server span of POST /v1/notifications (a child of the
// caller's span) and a client span per provider call (a child of the request's span), all in the
// caller's trace; the traceparent the webhook receiver gets names the client span. Spans still
// buffered are exported when Herald stops. Without the setting the SDK is never imported: only
// otel-tracing.ts imports it, and only a dynamic import loads that file.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../helpers/test-herald.js';
import { waitFor } from '../helpers/wait-for.js';
import { WebhookReceiver } from '../stand-ins/webhook-receiver.js';
import { OtlpReceiver, type ReceivedSpan } from '../stand-ins/otlp-receiver.js';
import { packageRoot } from '../../src/db/package-root.js';

const traceId = '0af7651916cd43dd8448eb211c80319c';
const callerSpan = 'b7ad6b7169203331';
const serverKind = 2;
const clientKind = 3;

let db: TestDatabase;
let h: TestHerald;
let stopped = false;
const otlp = new OtlpReceiver();
const receiver = new WebhookReceiver(() => undefined);

before(async () => {
  await Promise.all([otlp.start(), receiver.start()]);
  db = await createTestDatabase();
  h = await startTestHerald(db, {
    roles: ['api', 'worker'],
    env: {
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.base,
      OTEL_EXPORTER_OTLP_HEADERS: 'x-collector-key=k%C3%A9y 1,x-tenant=shop',
      OTEL_SERVICE_NAME: 'herald-under-test',
    },
  });
  await h.call('PUT', '/v1/service/webhook', { url: receiver.url });
});
after(async () => {
  if (!stopped) await h.stop();
  await Promise.all([otlp.stop(), receiver.stop()]);
  await db.drop();
});

async function deliver(user: string, headers: Record<string, string>): Promise<{ id: string; sent: string }> {
  await h.call('PUT', `/v1/users/${user}`, {});
  const res = await h.call(
    'POST',
    '/v1/notifications',
    { recipients: [user], channels: ['webhook'], content: { default: { title: 'Traced' } } },
    { headers },
  );
  assert.equal(res.status, 202, JSON.stringify(res.body));
  const received = await waitFor(`the webhook for ${user}`, () =>
    receiver.ledger.find((r) => r.body['user_id'] === user),
  );
  return { id: String(res.body.id), sent: String(received.headers.traceparent) };
}

test('spans of the request and of each provider call reach the OTLP receiver in the caller’s trace', async () => {
  const traced = await deliver('otto', { traceparent: `00-${traceId}-${callerSpan}-01` });
  const fresh = await deliver('fred', {});
  const stored = await db.pool.query<{
    id: string;
    trace_id: string;
    trace_span_id: string;
    trace_flags: number;
  }>('SELECT id, trace_id, trace_span_id, trace_flags FROM notifications WHERE id = ANY($1)', [
    [traced.id, fresh.id],
  ]);
  // Stopping flushes what the batch processor still holds.
  await h.stop();
  stopped = true;
  const inTrace = (id: string) => otlp.spans.filter((s) => s.traceId === id);
  const one = (spans: ReceivedSpan[], name: string, kind: number): ReceivedSpan => {
    const found = spans.filter((s) => s.name === name && s.kind === kind);
    assert.equal(found.length, 1, `one ${name} span in ${JSON.stringify(spans.map((s) => s.name))}`);
    return found[0] as ReceivedSpan;
  };

  const request = one(inTrace(traceId), 'POST /v1/notifications', serverKind);
  assert.equal(request.parentSpanId, callerSpan);
  assert.equal(request.attributes['http.response.status_code'], 202);
  assert.equal(request.attributes['http.route'], '/v1/notifications');
  assert.equal(request.resource['service.name'], 'herald-under-test');
  const call = one(inTrace(traceId), 'send webhook', clientKind);
  assert.equal(call.parentSpanId, request.spanId, 'the provider call is a child of the request');
  assert.equal(call.attributes['herald.outcome'], 'sent');
  assert.equal(traced.sent, `00-${traceId}-${call.spanId}-01`, 'the webhook got the client span’s id');
  const tracedRow = stored.rows.find((r) => r.id === traced.id);
  assert.deepEqual(
    {
      trace_id: tracedRow?.trace_id,
      trace_span_id: tracedRow?.trace_span_id,
      trace_flags: tracedRow?.trace_flags,
    },
    { trace_id: traceId, trace_span_id: request.spanId, trace_flags: 1 },
  );

  // Without a traceparent the request's span starts a trace (sampled), which the delivery continues.
  const freshRow = stored.rows.find((r) => r.id === fresh.id);
  const freshTrace = String(freshRow?.trace_id);
  assert.notEqual(freshTrace, traceId);
  const root = one(inTrace(freshTrace), 'POST /v1/notifications', serverKind);
  assert.equal(root.parentSpanId, '');
  const freshCall = one(inTrace(freshTrace), 'send webhook', clientKind);
  assert.equal(freshCall.parentSpanId, root.spanId);
  assert.equal(fresh.sent, `00-${freshTrace}-${freshCall.spanId}-01`);
  assert.ok(otlp.contentTypes.every((t) => t.startsWith('application/json')));
  // OTEL_EXPORTER_OTLP_HEADERS: URL-decoded values on every export.
  assert.ok(otlp.requestHeaders.length > 0);
  for (const headers of otlp.requestHeaders) {
    assert.equal(headers['x-collector-key'], 'kéy 1');
    assert.equal(headers['x-tenant'], 'shop');
  }
});

test('the OpenTelemetry SDK is imported only by otel-tracing.ts, and that file only dynamically', () => {
  const sources: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) sources.push(path);
    }
  };
  walk(join(packageRoot, 'src'));
  for (const path of sources) {
    const text = readFileSync(path, 'utf8');
    const name = relative(packageRoot, path);
    if (name !== join('src', 'observability', 'otel-tracing.ts'))
      assert.ok(!text.includes("from '@opentelemetry/"), `${name} imports the SDK`);
    for (const line of text.split('\n').filter((l) => l.includes('otel-tracing.js')))
      assert.match(line, /await import\('\.\.\/observability\/otel-tracing\.js'\)/, `${name}: ${line}`);
  }
});
