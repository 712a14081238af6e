import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyWebhookResponse } from './webhook-responses.js';
import { parseRetryAfter } from '../../domain/retry-policy.js';
import { signWebhook, verifyWebhookSignature } from './webhook-signature.js';

const now = Date.parse('2026-11-24T12:00:00Z');

test('status → outcome', () => {
  assert.deepEqual(classifyWebhookResponse(204, null, 'abc', now), {
    kind: 'sent',
    providerMessageId: 'abc',
  });
  assert.deepEqual(classifyWebhookResponse(503, null, null, now), { kind: 'retry', reason: 'HTTP 503' });
  assert.deepEqual(classifyWebhookResponse(429, '7', null, now), {
    kind: 'retry',
    reason: 'HTTP 429',
    retryAfterMs: 7000,
  });
  assert.deepEqual(classifyWebhookResponse(408, null, null, now), { kind: 'retry', reason: 'HTTP 408' });
  assert.deepEqual(classifyWebhookResponse(404, null, null, now), { kind: 'failed', reason: 'HTTP 404' });
  assert.deepEqual(classifyWebhookResponse(301, null, null, now), { kind: 'failed', reason: 'HTTP 301' });
});

test('Retry-After as seconds or an HTTP-date', () => {
  assert.equal(parseRetryAfter('120', now), 120_000);
  assert.equal(parseRetryAfter('Tue, 24 Nov 2026 12:00:30 GMT', now), 30_000);
  assert.equal(parseRetryAfter('soon', now), undefined);
  assert.equal(parseRetryAfter(null, now), undefined);
});

test('signatures verify, and fail when the body, secret or time is off', () => {
  const body = '{"a":1}';
  const header = signWebhook('whsec_x', body, 1_800_000_000);
  assert.match(header, /^t=1800000000,v1=[0-9a-f]{64}$/);
  assert.ok(verifyWebhookSignature('whsec_x', body, header, 1_800_000_100));
  assert.ok(!verifyWebhookSignature('whsec_x', '{"a":2}', header, 1_800_000_100));
  assert.ok(!verifyWebhookSignature('whsec_y', body, header, 1_800_000_100));
  assert.ok(!verifyWebhookSignature('whsec_x', body, header, 1_800_000_400), 'stale timestamp');
  assert.ok(!verifyWebhookSignature('whsec_x', body, 't=1800000000,v1=zz', 1_800_000_000));
});
