import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatNotificationId, parseNotificationId, uuidV7 } from './ids.js';
import { backoffMs, nextRetry, retryAfterCapMs } from './retry-policy.js';
import { isEmailAddress, normalizePhone } from './contact.js';
import { planDeliveries } from './fan-out.js';
import { canTransition, deliveryStates, initialStates, transitions } from './delivery.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../db/package-root.js';

describe('notification ids', () => {
  test('parses service#uuid and normalises the uuid to lower case', () => {
    assert.deepEqual(parseNotificationId('shop#0192F1A2-7C3B-7D4E-8F90-1234567890AB'), {
      service: 'shop',
      uuid: '0192f1a2-7c3b-7d4e-8f90-1234567890ab',
    });
    assert.equal(
      formatNotificationId({ service: 'a-b_c', uuid: '0192f1a2-7c3b-7d4e-8f90-1234567890ab' }),
      'a-b_c#0192f1a2-7c3b-7d4e-8f90-1234567890ab',
    );
  });
  for (const bad of [
    '',
    '#0192f1a2-7c3b-7d4e-8f90-1234567890ab',
    'shop#',
    'shop#0192f1a2',
    'shop 0192f1a2-7c3b-7d4e-8f90-1234567890ab',
    '1shop#0192f1a2-7c3b-7d4e-8f90-1234567890ab',
    'shop#0192f1a2-7c3b-7d4e-8f90-1234567890abx',
  ]) {
    test(`rejects ${JSON.stringify(bad)}`, () => assert.equal(parseNotificationId(bad), undefined));
  }
  test('uuidV7 carries the time, version 7 and the RFC variant, and sorts by time', () => {
    const random = new Uint8Array(10).fill(0xff);
    const a = uuidV7(1_700_000_000_000, random);
    const b = uuidV7(1_700_000_000_001, new Uint8Array(10));
    assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(parseInt(a.replace(/-/g, '').slice(0, 12), 16), 1_700_000_000_000);
    assert.ok(a < b);
    // The random bytes in order, the version and variant bits written over the first and third.
    assert.equal(
      uuidV7(1_700_000_000_000, Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])),
      '018bcfe5-6800-7102-8304-05060708090a',
    );
  });
});

describe('retry policy', () => {
  const policy = { maxAttempts: 5, baseMs: 1000, maxMs: 10_000 };
  test('full jitter below an exponentially growing ceiling', () => {
    assert.deepEqual(
      nextRetry(policy, 1, () => 0.5),
      { kind: 'retry', delayMs: 500 },
    );
    assert.deepEqual(
      nextRetry(policy, 3, () => 0.5),
      { kind: 'retry', delayMs: 2000 },
    );
    assert.deepEqual(
      nextRetry(policy, 4, () => 0.999),
      { kind: 'retry', delayMs: 7992 },
    );
  });
  test('the ceiling is capped at maxMs', () => {
    assert.deepEqual(
      nextRetry({ ...policy, maxAttempts: 20 }, 15, () => 0.999),
      { kind: 'retry', delayMs: 9990 },
    );
  });
  test('a zero draw still waits a little', () => {
    assert.deepEqual(
      nextRetry(policy, 1, () => 0),
      { kind: 'retry', delayMs: 100 },
    );
  });
  test('Retry-After is a floor that jitter never shortens', () => {
    assert.deepEqual(
      nextRetry(policy, 1, () => 0.1, 30_000),
      { kind: 'retry', delayMs: 30_000 },
    );
  });
  test('a Retry-After past one day is capped (a 14-digit header would not fit an interval)', () => {
    assert.deepEqual(
      nextRetry(policy, 1, () => 0.1, 1e26),
      { kind: 'retry', delayMs: retryAfterCapMs },
    );
    assert.deepEqual(
      nextRetry(policy, 1, () => 0.1, Number.POSITIVE_INFINITY),
      {
        kind: 'retry',
        delayMs: retryAfterCapMs,
      },
    );
  });
  test('after the last attempt the delivery is dead', () => {
    assert.deepEqual(
      nextRetry(policy, 5, () => 0.5),
      { kind: 'dead' },
    );
  });
});

describe('loop backoff', () => {
  test('doubles from the base up to the cap: the claim loops, outcome recording, LISTEN reconnects', () => {
    const claim = { baseMs: 100, maxMs: 10_000 };
    assert.deepEqual(
      [0, 1, 2, 6, 7, 50].map((n) => backoffMs(n, claim)),
      [100, 200, 400, 6400, 10_000, 10_000],
    );
    assert.deepEqual(
      [1, 4, 5].map((n) => backoffMs(n, { baseMs: 50, maxMs: 1000 })),
      [100, 800, 1000],
    );
    assert.equal(backoffMs(0, { baseMs: 200, maxMs: 10_000 }), 200);
  });
  test('a long outage never overflows into NaN or Infinity', () => {
    assert.equal(backoffMs(5000, { baseMs: 100, maxMs: 10_000 }), 10_000);
    assert.equal(backoffMs(5000, { baseMs: 0, maxMs: 10_000 }), 0);
  });
});

describe('contact validation', () => {
  test('email addresses', () => {
    for (const ok of ['kim@example.com', 'a.b+tag@sub.example.co.kr']) assert.ok(isEmailAddress(ok), ok);
    for (const bad of [
      'kim',
      'kim@',
      '@example.com',
      'kim@example',
      'k im@example.com',
      `${'a'.repeat(65)}@example.com`,
      'kim@exa_mple.com',
    ]) {
      assert.ok(!isEmailAddress(bad), bad);
    }
  });
  test('phone numbers must be valid E.164', () => {
    assert.equal(normalizePhone('+821012345678'), '+821012345678');
    assert.equal(normalizePhone('+14155552671'), '+14155552671');
    for (const bad of ['01012345678', '+1234', '+8210123', '+82 10 1234 5678', '+999123456789'])
      assert.equal(normalizePhone(bad), undefined, bad);
  });
});

describe('fan-out plan', () => {
  const user = {
    id: 'u',
    email: 'u@example.com',
    phone: '+821012345678',
    webhookUrl: null,
    chatWebhookUrl: 'https://hooks.slack.example/u',
  };
  test('push goes to every enabled device; other channels to their one target', () => {
    const plan = planDeliveries(
      ['in_app', 'push', 'email', 'sms', 'webhook', 'chat'],
      user,
      [
        { id: 'd1', enabled: true },
        { id: 'd2', enabled: false },
        { id: 'd3', enabled: true },
      ],
      { webhookUrl: 'https://svc.example/hook', chatWebhookUrl: 'https://hooks.slack.example/svc' },
    );
    assert.deepEqual(plan.deliveries, [
      { channel: 'in_app', target: 'inbox' },
      { channel: 'push', target: 'd1' },
      { channel: 'push', target: 'd3' },
      { channel: 'email', target: 'u@example.com' },
      { channel: 'sms', target: '+821012345678' },
      { channel: 'webhook', target: 'https://svc.example/hook' },
      { channel: 'chat', target: 'https://hooks.slack.example/u' },
    ]);
    assert.deepEqual(plan.skipped, []);
  });
  test('channels without a target are skipped with a reason; in_app needs no registered user', () => {
    const plan = planDeliveries(['in_app', 'push', 'webhook', 'chat'], undefined, [], {
      webhookUrl: null,
      chatWebhookUrl: null,
    });
    assert.deepEqual(plan.deliveries, [{ channel: 'in_app', target: 'inbox' }]);
    assert.deepEqual(plan.skipped, [
      { channel: 'push', reason: 'unknown_user' },
      { channel: 'webhook', reason: 'unknown_user' },
      { channel: 'chat', reason: 'unknown_user' },
    ]);
  });
  test("chat falls back to the service's Slack webhook", () => {
    const plan = planDeliveries(['chat'], { ...user, chatWebhookUrl: null }, [], {
      webhookUrl: null,
      chatWebhookUrl: 'https://hooks.slack.example/svc',
    });
    assert.deepEqual(plan.deliveries, [{ channel: 'chat', target: 'https://hooks.slack.example/svc' }]);
  });
});

test('delivery state machine: terminal states do not move, dead can be replayed', () => {
  assert.ok(canTransition('sending', 'retrying'));
  assert.ok(canTransition('dead', 'pending'));
  assert.ok(!canTransition('sent', 'pending'));
  assert.ok(!canTransition('canceled', 'sending'));
});

test('docs/delivery-states.md draws exactly the transitions in delivery.ts', () => {
  const doc = readFileSync(join(packageRoot, 'docs/delivery-states.md'), 'utf8');
  const arrows = [...doc.matchAll(/^\s+(\[\*\]|\w+) --> (\w+)/gm)].map((m) => `${m[1] ?? ''}->${m[2] ?? ''}`);
  const expected = [
    ...initialStates.map((s) => `[*]->${s}`),
    ...deliveryStates.flatMap((from) => transitions[from].map((to) => `${from}->${to}`)),
  ];
  assert.deepEqual([...arrows].sort(), [...expected].sort());
});
