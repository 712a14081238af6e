// The W3C trace context rules: what an incoming traceparent must be to be kept, the header each
// provider call gets, the trace a new notification is delivered in, and the trace of a row
// stored before trace ids were kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatTraceparent, notificationTraceFor, parseTraceparent, storedTrace } from './trace-context.js';

const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
const spanId = '00f067aa0ba902b7';
const fresh = () => ({ traceId: 'f'.repeat(32), spanId: 'e'.repeat(16) });

test('an incoming traceparent is kept only when it is exactly version 00 with non-zero ids', () => {
  assert.deepEqual(parseTraceparent(`00-${traceId}-${spanId}-00`), {
    traceId,
    parentId: spanId,
    sampled: false,
  });
  assert.equal(parseTraceparent(`00-${traceId}-${spanId}-03`)?.sampled, true);
  for (const bad of [
    `00-${traceId}-${spanId}-01-extra`,
    `00-${traceId}-${spanId}-01`.padEnd(600, 'f'),
    `ff-${traceId}-${spanId}-01`,
    `02-${traceId}-${spanId}-01`,
    `00-${traceId.slice(1)}g-${spanId}-01`,
    [`00-${traceId}-${spanId}-01`],
  ])
    assert.equal(parseTraceparent(bad), undefined, String(bad));
});

test('each provider call gets version 00, the trace id, its own span id and the sampled flag', () => {
  assert.equal(formatTraceparent(traceId, 'a'.repeat(16), true), `00-${traceId}-${'a'.repeat(16)}-01`);
  assert.equal(formatTraceparent(traceId, 'a'.repeat(16), false), `00-${traceId}-${'a'.repeat(16)}-00`);
});

test('a notification continues the request’s context, else a new unsampled trace', () => {
  assert.deepEqual(notificationTraceFor({ traceId, parentId: spanId, sampled: true }, fresh), {
    traceId,
    spanId,
    flags: 1,
  });
  assert.deepEqual(notificationTraceFor(undefined, fresh), { ...fresh(), flags: 0 });
  // Only validated contexts are kept; anything else is replaced, never repaired.
  assert.deepEqual(
    notificationTraceFor({ traceId: '0'.repeat(32), parentId: spanId, sampled: true }, fresh),
    {
      ...fresh(),
      flags: 0,
    },
  );
});

test('a stored notification’s trace; rows from before trace ids use their UUID', () => {
  assert.deepEqual(storedTrace({ traceId, spanId, flags: 1 }, 'shop#0190a4b6-7c3e-7d2a-9f00-0123456789ab'), {
    traceId,
    spanId,
    sampled: true,
  });
  assert.deepEqual(
    storedTrace({ traceId: null, spanId: null, flags: null }, 'shop#0190A4B6-7C3E-7D2A-9F00-0123456789AB'),
    { traceId: '0190a4b67c3e7d2a9f000123456789ab', spanId: null, sampled: false },
  );
  assert.equal(
    storedTrace({ traceId: null, spanId: null, flags: null }, 'shop#00000000-0000-0000-0000-000000000000'),
    undefined,
  );
});
