// New W3C trace and span ids: drawn from a shared pool of random bytes, refilled as it runs out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newSpanId, newTraceId } from './tracing.js';

test('trace and span ids are lowercase hex of their W3C length, never all zero, and never repeat', () => {
  const ids = new Set<string>();
  // 3,000 of each span many refills of the 4 KiB pool, at offsets that do not divide it.
  for (let i = 0; i < 3000; i++) {
    const traceId = newTraceId();
    const spanId = newSpanId();
    assert.match(traceId, /^[0-9a-f]{32}$/);
    assert.match(spanId, /^[0-9a-f]{16}$/);
    assert.notEqual(traceId, '0'.repeat(32));
    assert.notEqual(spanId, '0'.repeat(16));
    ids.add(traceId).add(spanId);
  }
  assert.equal(ids.size, 6000);
});
