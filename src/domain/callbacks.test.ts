import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideCallback, type CallbackRetryPolicy } from './callbacks.js';

const policy: CallbackRetryPolicy = { maxAttempts: 4, baseMs: 1000, maxMs: 8000, maxAgeMs: 60_000 };
const top = () => 0.999_999;
const bottom = () => 0;

test('a delivered message is deleted; a refused target is dead at once', () => {
  assert.deepEqual(decideCallback({ kind: 'delivered' }, 1, 0, policy, top), { kind: 'delete' });
  assert.deepEqual(decideCallback({ kind: 'give_up', reason: 'blocked' }, 1, 0, policy, top), {
    kind: 'dead',
    reason: 'blocked',
  });
});

test('failures back off exponentially with full jitter, capped, until the attempts run out', () => {
  const delays = [1, 2, 3].map((attempt) => {
    const d = decideCallback({ kind: 'retry', reason: 'HTTP 500' }, attempt, 0, policy, top);
    if (d.kind !== 'retry') throw new Error(`attempt ${String(attempt)}: ${d.kind}`);
    return d.delayMs;
  });
  assert.deepEqual(delays, [999, 1999, 3999]);
  const low = decideCallback({ kind: 'retry', reason: 'HTTP 500' }, 3, 0, policy, bottom);
  assert.deepEqual(low, { kind: 'retry', delayMs: 100, reason: 'HTTP 500' });
  assert.deepEqual(decideCallback({ kind: 'retry', reason: 'timeout' }, 4, 0, policy, top), {
    kind: 'dead',
    reason: 'timeout',
  });
});

test('Retry-After is a floor within bounds, and the maximum age ends the series', () => {
  const asked = decideCallback(
    { kind: 'retry', reason: 'HTTP 429', retryAfterMs: 5000 },
    1,
    0,
    policy,
    bottom,
  );
  assert.deepEqual(asked, { kind: 'retry', delayMs: 5000, reason: 'HTTP 429' });
  const huge = decideCallback(
    { kind: 'retry', reason: 'HTTP 429', retryAfterMs: 9e15 },
    1,
    0,
    policy,
    bottom,
  );
  assert.deepEqual(huge, { kind: 'retry', delayMs: 8000, reason: 'HTTP 429' });
  assert.equal(decideCallback({ kind: 'retry', reason: 'HTTP 503' }, 1, 59_500, policy, top).kind, 'dead');
});
