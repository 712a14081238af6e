// W3C trace context from POST /v1/notifications to the provider calls (docs/tracing.md), with
// tracing off: the notification keeps the request's trace id and sampled flag; every call to the
// webhook receiver and the Slack stand-in carries a traceparent with that trace id and a span id
// of its own, also on a retried attempt; the delivery's log lines carry the trace id. A request
// without a traceparent, or with a malformed or hostile one, gets a new trace id, and nothing of
// what the caller sent reaches a provider.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../helpers/test-herald.js';
import { waitFor } from '../helpers/wait-for.js';
import { WebhookReceiver, type ReceivedWebhook } from '../stand-ins/webhook-receiver.js';
import { SlackWebhookStandIn } from '../stand-ins/slack-webhook.js';
import { createLogger } from '../../src/observability/logger.js';
import { logLines } from '../helpers/log-lines.js';

const chatPath = '/services/T1/B1/tracepath';
const callerSpan = '00f067aa0ba902b7';
const traceparentShape = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$/;

let db: TestDatabase;
let h: TestHerald;
let secret: string | undefined;
const receiver = new WebhookReceiver(() => secret);
const slack = new SlackWebhookStandIn();
const { lines, sink } = logLines();

before(async () => {
  await Promise.all([receiver.start(), slack.start()]);
  db = await createTestDatabase();
  h = await startTestHerald(db, { roles: ['api', 'worker'], logger: createLogger('debug', sink) });
  const hook = await h.call('PUT', '/v1/service/webhook', { url: receiver.url });
  secret = hook.body.webhook_secret as string;
});
after(async () => {
  await h.stop();
  await Promise.all([receiver.stop(), slack.stop()]);
  await db.drop();
});

/** Sends to `user` (webhook, and chat when asked) and returns the notification id. */
async function send(user: string, headers: Record<string, string>, channels = ['webhook']): Promise<string> {
  const res = await h.call(
    'POST',
    '/v1/notifications',
    { recipients: [user], channels, content: { default: { title: 'Trace me', body: user } } },
    { headers },
  );
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return String(res.body.id);
}

const webhooksOf = (user: string): ReceivedWebhook[] =>
  receiver.ledger.filter((r) => r.body['user_id'] === user);

async function storedTrace(
  id: string,
): Promise<{ trace_id: string; trace_span_id: string; trace_flags: number }> {
  const row = await db.pool.query<{ trace_id: string; trace_span_id: string; trace_flags: number }>(
    'SELECT trace_id, trace_span_id, trace_flags FROM notifications WHERE id = $1',
    [id],
  );
  assert.ok(row.rows[0] !== undefined);
  return row.rows[0];
}

test('the request’s trace id and flags reach every provider call, with a new span id per call and attempt', async () => {
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  await h.call('PUT', '/v1/users/tess', { chat_webhook_url: slack.url(chatPath) });
  // The first webhook call fails (the script runs before the ledger records the call), so the
  // delivery is attempted twice.
  receiver.answer((request) =>
    request.body['user_id'] === 'tess' && webhooksOf('tess').length === 0 ? { status: 503 } : { status: 200 },
  );
  const id = await send('tess', { traceparent: `00-${traceId}-${callerSpan}-01` }, ['webhook', 'chat']);
  const calls = await waitFor('two webhook attempts and the chat message', () => {
    const hooks = webhooksOf('tess');
    const chat = slack.accepted.filter((m) => m.path === chatPath);
    return hooks.length >= 2 && chat.length === 1
      ? [...hooks.map((r) => r.headers.traceparent), chat[0]?.traceparent]
      : undefined;
  });
  receiver.answer(() => ({ status: 200 }));
  const spans = calls.map((header) => {
    const match = traceparentShape.exec(String(header));
    assert.ok(match !== null, `a well-formed traceparent: ${String(header)}`);
    assert.equal(match[1], traceId);
    assert.equal(match[3], '01', 'the caller’s sampled flag');
    return match[2];
  });
  assert.equal(new Set(spans).size, spans.length, 'a span id of its own per call');
  assert.ok(!spans.includes(callerSpan), 'never the caller’s span id');
  assert.deepEqual(await storedTrace(id), { trace_id: traceId, trace_span_id: callerSpan, trace_flags: 1 });
  // The delivery's log lines carry the trace id: one per provider call at debug level.
  const callLines = await waitFor('the provider call log lines', () => {
    const found = lines.filter((l) => l['msg'] === 'provider call' && l['trace_id'] === traceId);
    return found.length >= 3 ? found : undefined;
  });
  assert.deepEqual(new Set(callLines.map((l) => l['span_id'])), new Set(spans));
  // The accepting request's own log lines carry it too.
  assert.ok(lines.some((l) => l['msg'] === 'request' && l['trace_id'] === traceId && l['status'] === 202));
});

test('without a traceparent the notification gets a new trace id, and its calls carry it', async () => {
  await h.call('PUT', '/v1/users/nora', {});
  const id = await send('nora', {});
  const [received] = await waitFor('the webhook', () =>
    webhooksOf('nora').length > 0 ? webhooksOf('nora') : undefined,
  );
  const stored = await storedTrace(id);
  assert.match(stored.trace_id, /^(?!0{32})[0-9a-f]{32}$/);
  assert.equal(stored.trace_flags, 0, 'unsampled: nothing recorded it');
  const match = traceparentShape.exec(String(received?.headers.traceparent));
  assert.equal(match?.[1], stored.trace_id);
  assert.equal(match[3], '00');
});

test('a malformed or hostile traceparent is ignored: a new trace id, and nothing of it reaches a provider', async () => {
  const hexTrace = 'a'.repeat(32);
  const hostile = [
    `00-4bf92f3577b34da6a3ce929d0e0e4736-${callerSpan}-01-${'f'.repeat(4000)}`, // overlong
    `00-4bf92f3577b34da6a3ce929d0e0e473g-${callerSpan}-01`, // not hex
    `00-${'0'.repeat(32)}-${callerSpan}-01`, // all-zero trace id
    `00-${hexTrace}-${'0'.repeat(16)}-01`, // all-zero parent id
    `ff-${hexTrace}-${callerSpan}-01`, // version ff is invalid
    `00-${hexTrace.toUpperCase()}-${callerSpan}-01`, // upper case
    `00-${hexTrace}-${callerSpan}-01,00-${'b'.repeat(32)}-${callerSpan}-01`, // two values
    `00-${hexTrace}-${callerSpan}-1`, // short flags
    `<script>alert(1)</script>`,
  ];
  await Promise.all(hostile.map((_, i) => h.call('PUT', `/v1/users/mal-${String(i)}`, {})));
  const ids = await Promise.all(hostile.map((traceparent, i) => send(`mal-${String(i)}`, { traceparent })));
  const received = await waitFor('every hostile request’s webhook', () => {
    const all = hostile.map((_, i) => webhooksOf(`mal-${String(i)}`)[0]);
    return all.every((r) => r !== undefined) ? all : undefined;
  });
  const seen = new Set<string>();
  for (const [i, header] of hostile.entries()) {
    const sent = String(received[i]?.headers.traceparent);
    const match = traceparentShape.exec(sent);
    assert.ok(match?.[1] !== undefined, `well-formed: ${sent}`);
    const stored = await storedTrace(ids[i] ?? '');
    assert.equal(match[1], stored.trace_id, 'the notification’s new trace id');
    assert.equal(stored.trace_flags, 0);
    for (const part of ['4bf92f3577b34da6a3ce929d0e0e4736', hexTrace, hexTrace.toUpperCase(), callerSpan])
      assert.ok(
        !sent.includes(part) && stored.trace_id !== part,
        `nothing of ${header.slice(0, 60)} is kept`,
      );
    assert.notEqual(sent, header);
    seen.add(match[1]);
  }
  assert.equal(seen.size, hostile.length, 'each its own new trace');
  // The raw header values appear in no provider call at all.
  const everything =
    JSON.stringify(receiver.ledger.map((r) => r.headers)) + JSON.stringify(receiver.ledger.map((r) => r.raw));
  assert.ok(!everything.includes('<script>') && !everything.includes('f'.repeat(100)));
});
