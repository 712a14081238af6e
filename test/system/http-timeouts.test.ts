// Slow clients over real sockets: a body trickled a byte at a time gets 408 request_timeout and
// its connection closed within HTTP_REQUEST_TIMEOUT_MS (plus Node's check interval), also when a
// 401 was answered before the body was read; headers trickled (slowloris) get the same within
// HTTP_HEADERS_TIMEOUT_MS; a realtime stream, a long response to a request long received,
// outlives the request timeout.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../helpers/test-herald.js';
import { slowRequest, type SlowExchange } from '../helpers/slow-client.js';
import { openSse } from '../helpers/sse-client.js';
import { assertProblem } from '../helpers/problem-response.js';
import { timeoutCheckIntervalMs } from '../../src/http/build-server.js';

const requestMs = 1500;
const headersMs = 1000;
const checkMs = timeoutCheckIntervalMs({ requestMs, headersMs, keepAliveMs: 5000, idleMs: 60_000 });
/** Scheduling slack on a loaded machine: the close is judged against timeout + check + this. */
const marginMs = 1000;

let db: TestDatabase;
let h: TestHerald;
let api: string;

before(async () => {
  db = await createTestDatabase();
  h = await startTestHerald(db, {
    roles: ['api', 'query', 'worker'],
    env: { HTTP_REQUEST_TIMEOUT_MS: String(requestMs), HTTP_HEADERS_TIMEOUT_MS: String(headersMs) },
  });
  api = h.herald.apiUrl ?? '';
});
after(async () => {
  await h.stop();
  await db.drop();
});

const body = JSON.stringify({
  recipients: ['ann'],
  channels: ['in_app'],
  content: { default: { title: 'Hi' } },
});

function postHead(authorization: string): string {
  return (
    `POST /v1/notifications HTTP/1.1\r\nHost: herald\r\nAuthorization: ${authorization}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${String(Buffer.byteLength(body))}\r\n\r\n`
  );
}

/** The exchange as the problem helper reads responses. */
function asResponse(exchange: SlowExchange) {
  return {
    status: exchange.status ?? 0,
    contentType: exchange.headers['content-type'] ?? '',
    text: exchange.body,
  };
}

describe('a body trickled a byte at a time', () => {
  test('is answered 408 request_timeout and its connection closed within the request timeout', async () => {
    const exchange = await slowRequest(api, {
      head: postHead(`Bearer ${h.apiKey}`),
      trickled: body,
      everyMs: 500,
      giveUpAfterMs: 20_000,
    });
    assertProblem(asResponse(exchange), 'trickled body', { status: 408, code: 'request_timeout' });
    assert.equal(exchange.headers['connection'], 'close');
    assert.ok(exchange.trickledBytes < body.length, 'the body was never complete');
    assert.ok(
      exchange.closedAfterMs >= requestMs - 50,
      `closed after ${exchange.closedAfterMs.toFixed(0)} ms, before the timeout`,
    );
    assert.ok(
      exchange.closedAfterMs <= requestMs + checkMs + marginMs,
      `closed after ${exchange.closedAfterMs.toFixed(0)} ms (limit ${String(requestMs + checkMs + marginMs)})`,
    );
  });

  test('after a 401 from the auth hook, the connection is closed at once, not read to the timeout', async () => {
    const exchange = await slowRequest(api, {
      head: postHead(`Bearer hk_${'x'.repeat(43)}`),
      trickled: body,
      everyMs: 500,
      giveUpAfterMs: 20_000,
    });
    assertProblem(asResponse(exchange), 'trickled body, unknown key', {
      status: 401,
      code: 'unauthenticated',
    });
    assert.equal(exchange.headers['connection'], 'close');
    assert.ok(
      exchange.closedAfterMs < requestMs,
      `closed after ${exchange.closedAfterMs.toFixed(0)} ms: by the request timeout, not after the 401`,
    );
  });
  test('a 413 for a declared length over the body limit closes the connection too', async () => {
    const exchange = await slowRequest(api, {
      head: postHead(`Bearer ${h.apiKey}`).replace(/Content-Length: \d+/, 'Content-Length: 1000000'),
      trickled: body,
      everyMs: 500,
      giveUpAfterMs: 20_000,
    });
    assertProblem(asResponse(exchange), 'over-long body', { status: 413, code: 'payload_too_large' });
    assert.equal(exchange.headers['connection'], 'close');
    assert.ok(exchange.closedAfterMs < requestMs, `closed after ${exchange.closedAfterMs.toFixed(0)} ms`);
  });
});

describe('headers trickled a byte at a time (slowloris)', () => {
  test('are answered 408 and the connection closed within the headers timeout', async () => {
    const exchange = await slowRequest(api, {
      head: 'GET /v1/service HTTP/1.1\r\nHost: herald\r\n',
      trickled: `X-Padding: ${'a'.repeat(200)}`,
      everyMs: 200,
      giveUpAfterMs: 20_000,
    });
    assertProblem(asResponse(exchange), 'trickled headers', { status: 408, code: 'request_timeout' });
    assert.ok(
      exchange.closedAfterMs <= headersMs + checkMs + marginMs,
      `closed after ${exchange.closedAfterMs.toFixed(0)} ms (limit ${String(headersMs + checkMs + marginMs)})`,
    );
  });

  test('a connection that sends nothing is closed within the headers timeout', async () => {
    const exchange = await slowRequest(api, { head: '', trickled: '', everyMs: 1000, giveUpAfterMs: 20_000 });
    assert.ok(
      exchange.closedAfterMs <= headersMs + checkMs + marginMs,
      `closed after ${exchange.closedAfterMs.toFixed(0)} ms`,
    );
  });
});

describe('what the timeouts leave alone', () => {
  test('a request answered after its body was read keeps its connection alive', async () => {
    const res = await fetch(`${api}/v1/notifications`, {
      method: 'POST',
      headers: { authorization: `Bearer ${h.apiKey}`, 'content-type': 'application/json' },
      body,
    });
    assert.equal(res.status, 202);
    assert.notEqual(res.headers.get('connection'), 'close');
    await res.text();
  });

  test('a realtime stream outlives the request timeout: it still gets events after one fired', async () => {
    const query = h.herald.queryUrl ?? '';
    const issued = await h.call('POST', '/v1/users/sol/token', {}, { base: query });
    assert.equal(issued.status, 201);
    const stream = await openSse(`${query}/v1/users/sol/inbox/stream`, {
      authorization: `Bearer ${issued.body.token as string}`,
    });
    try {
      assert.equal(stream.status, 200);
      await stream.waitForEvents(1, (e) => e.event === 'ready');
      // A request timeout firing on another connection proves the stream is now older than it.
      const timedOut = await slowRequest(api, {
        head: postHead(`Bearer ${h.apiKey}`),
        trickled: '',
        everyMs: 1000,
        giveUpAfterMs: 20_000,
      });
      assert.equal(timedOut.status, 408);
      const sent = await h.call('POST', '/v1/notifications', {
        recipients: ['sol'],
        channels: ['in_app'],
        content: { default: { title: 'Still here' } },
      });
      assert.equal(sent.status, 202);
      const [created] = await stream.waitForEvents(1, (e) => e.event === 'created');
      assert.equal(created?.data.id, sent.body.id);
    } finally {
      stream.close();
    }
  });
});
