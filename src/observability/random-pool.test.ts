// Pooled random bytes: each call gets bytes no other call gets, across refills of the 4 KiB pool,
// and a request larger than the pool is served whole.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pooledRandomBytes } from './random-pool.js';

test('pooled random bytes are never handed out twice, across refills', () => {
  const seen = new Set<string>();
  // 10-byte draws (notification ids) do not divide 4096: the tail of each pool is skipped.
  for (let i = 0; i < 5000; i++) {
    const bytes = pooledRandomBytes(10);
    assert.equal(bytes.length, 10);
    seen.add(bytes.toString('hex'));
  }
  assert.equal(seen.size, 5000);
  assert.equal(pooledRandomBytes(5000).length, 5000);
  assert.notEqual(pooledRandomBytes(16).toString('hex'), pooledRandomBytes(16).toString('hex'));
});
