import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBucket } from './token-bucket.js';
import { CircuitBreaker } from './circuit-breaker.js';
import { burstFor, rateShare } from './provider-limits.js';

describe('token bucket', () => {
  test('allows the burst, then the rate', () => {
    const bucket = new TokenBucket(10, 3, 0);
    assert.deepEqual(
      [bucket.take(0), bucket.take(0), bucket.take(0)],
      [{ ok: true }, { ok: true }, { ok: true }],
    );
    assert.deepEqual(bucket.take(0), { ok: false, waitMs: 100 });
    assert.deepEqual(bucket.take(50), { ok: false, waitMs: 50 });
    assert.deepEqual(bucket.take(100), { ok: true });
  });
  test('never holds more than the burst, however long it idles', () => {
    const bucket = new TokenBucket(100, 2, 0);
    assert.ok(bucket.take(60_000).ok);
    assert.ok(bucket.take(60_000).ok);
    assert.equal(bucket.take(60_000).ok, false);
  });
  test('over any second, calls stay within rate + burst', () => {
    const bucket = new TokenBucket(50, 5, 0);
    let allowed = 0;
    for (let t = 0; t < 1000; t++) if (bucket.take(t).ok) allowed += 1;
    assert.ok(allowed <= 55 && allowed >= 50, `allowed ${String(allowed)}`);
  });
});

describe('circuit breaker', () => {
  const options = { windowMs: 10_000, minimumCalls: 5, failureRatio: 0.5, openMs: 30_000 };

  test('stays closed below the minimum number of calls', () => {
    const breaker = new CircuitBreaker(options);
    for (let i = 0; i < 4; i++) breaker.record(true, i);
    assert.equal(breaker.state(10), 'closed');
  });

  test('opens at the failure ratio, fails fast, half-opens after openMs, closes on a good probe', () => {
    const breaker = new CircuitBreaker(options);
    breaker.record(false, 0);
    breaker.record(false, 1);
    breaker.record(true, 2);
    breaker.record(true, 3);
    assert.equal(breaker.state(3), 'closed');
    breaker.record(true, 4);
    assert.equal(breaker.state(4), 'open');
    assert.deepEqual(breaker.admit(1004), { ok: false, retryInMs: 29_000 });
    assert.equal(breaker.state(30_004), 'half_open');
    assert.deepEqual(breaker.admit(30_004), { ok: true });
    // Only one probe at a time.
    assert.equal(breaker.admit(30_005).ok, false);
    breaker.record(false, 30_010);
    assert.equal(breaker.state(30_010), 'closed');
    assert.deepEqual(breaker.admit(30_011), { ok: true });
  });

  test('a failed probe opens it again for another openMs', () => {
    const breaker = new CircuitBreaker(options);
    for (let i = 0; i < 5; i++) breaker.record(true, i);
    assert.ok(breaker.admit(40_000).ok);
    breaker.record(true, 40_001);
    assert.equal(breaker.state(40_001), 'open');
    assert.deepEqual(breaker.admit(50_001), { ok: false, retryInMs: 20_000 });
  });

  test('old results leave the window', () => {
    const breaker = new CircuitBreaker(options);
    for (let i = 0; i < 4; i++) breaker.record(true, i);
    // Ten seconds later those failures no longer count.
    for (let i = 0; i < 5; i++) breaker.record(i === 0, 20_000 + i);
    assert.equal(breaker.state(20_010), 'closed');
  });
});

describe('deployment-wide limits', () => {
  test("a worker's share is the limit divided among the workers calling the key", () => {
    assert.equal(rateShare(100, 4), 25);
    assert.equal(rateShare(100, 0), 100);
    assert.equal(burstFor(25), 3);
    assert.equal(burstFor(0.5), 1);
  });

  test('a bucket whose rate changes keeps what it earned, up to the new burst', () => {
    const bucket = new TokenBucket(10, 1, 0);
    assert.ok(bucket.take(0).ok);
    bucket.setRate(5, 1, 0);
    assert.deepEqual(bucket.take(100), { ok: false, waitMs: 100 });
    assert.ok(bucket.take(200).ok);
  });

  test('reserving paces callers one token apart, up to the longest wait', () => {
    const bucket = new TokenBucket(10, 1, 0);
    assert.deepEqual(bucket.reserve(0, 250), { ok: true, waitMs: 0 });
    assert.deepEqual(bucket.reserve(0, 250), { ok: true, waitMs: 100 });
    assert.deepEqual(bucket.reserve(0, 250), { ok: true, waitMs: 200 });
    assert.deepEqual(bucket.reserve(0, 250), { ok: false, waitMs: 300 });
    assert.deepEqual(bucket.reserve(300, 250), { ok: true, waitMs: 0 });
  });

  test('a circuit held open by another worker stays open until then, then half-opens', () => {
    const breaker = new CircuitBreaker({
      windowMs: 10_000,
      minimumCalls: 5,
      failureRatio: 0.5,
      openMs: 1000,
    });
    assert.equal(breaker.holdOpenUntil(5000, 100), true);
    assert.equal(breaker.state(4999), 'open');
    assert.deepEqual(breaker.admit(4000), { ok: false, retryInMs: 1000 });
    assert.equal(breaker.holdOpenUntil(4500, 4000), false, 'never shortened');
    assert.equal(breaker.state(5000), 'half_open');
    assert.ok(breaker.admit(5000).ok);
    assert.equal(breaker.admit(5001).ok, false, 'one probe per worker');
  });
});
