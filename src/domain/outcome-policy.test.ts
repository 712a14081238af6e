import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canTransition, deliveryStates, type DeliveryState } from './delivery.js';
import {
  decideOutcome,
  leaseExpiredError,
  type AttemptResult,
  type LeaseView,
  type OutcomeDecision,
  type OutcomeInput,
  type OutcomePolicy,
} from './outcome-policy.js';
import { backoffMs, retryAfterCapMs } from './retry-policy.js';

const resultKinds = [
  'sent',
  'retry',
  'target_invalid',
  'failed',
  'config_error',
  'threw',
  'deferred',
  'lease_expired',
] as const satisfies readonly AttemptResult['kind'][];
type Position = 'first' | 'middle' | 'last' | 'beyond';
const positions: readonly Position[] = ['first', 'middle', 'last', 'beyond'];
/** Final until a receipt or never: a late result never moves them. */
const finalStates: readonly DeliveryState[] = [
  'sent',
  'delivered',
  'bounced',
  'failed',
  'target_invalid',
  'canceled',
  'suppressed',
];

function attemptAt(position: Position, maxAttempts: number): number {
  switch (position) {
    case 'first':
      return 1;
    case 'middle':
      return Math.max(1, Math.ceil(maxAttempts / 2));
    case 'last':
      return maxAttempts;
    case 'beyond':
      return maxAttempts + 1;
  }
}

/** Results with their attempt spent (the provider was asked, or the lease ran out), unless aborted. */
const reachedProvider = (r: AttemptResult) =>
  r.kind === 'sent' ||
  r.kind === 'retry' ||
  r.kind === 'threw' ||
  r.kind === 'failed' ||
  r.kind === 'target_invalid' ||
  r.kind === 'lease_expired';
/** Results that retry or die by the attempt budget. */
const retryable = (r: AttemptResult) =>
  r.kind === 'retry' || r.kind === 'threw' || r.kind === 'lease_expired';

/** Every rule the decision keeps, whatever the input. */
function checkInvariants(input: OutcomeInput, decision: OutcomeDecision): void {
  const { result, lease, attempt } = input;
  const context = JSON.stringify({ input: { ...input, random: undefined }, decision });
  if (lease.kind === 'superseded') {
    // Only an acceptance acts on a lost lease, and never on a delivery that ended.
    const acts = result.kind === 'sent' && !finalStates.includes(lease.state);
    assert.equal(decision.kind, acts ? 'write' : 'ignore', context);
    if (decision.kind === 'ignore') {
      const expected =
        result.kind !== 'sent'
          ? 'superseded'
          : ['sent', 'delivered', 'bounced'].includes(lease.state)
            ? 'already_sent'
            : 'final';
      assert.equal(decision.reason, expected, context);
      return;
    }
  }
  assert.equal(decision.kind, 'write', context);
  const t = decision.transition;
  // Allowed by the state machine, and never from a final state.
  assert.ok(canTransition(t.from, t.to), `${t.from} -> ${t.to} not allowed: ${context}`);
  assert.ok(!finalStates.includes(t.from), context);
  // The event records the attempt the result came from.
  assert.equal(t.event.attempt, attempt, context);
  // run_at is never put in the past, and always fits a PostgreSQL interval.
  if (t.delayMs !== null) {
    assert.ok(Number.isFinite(t.delayMs) && t.delayMs >= 0, context);
    assert.ok(
      t.delayMs <=
        Math.max(
          input.policy.retry.maxMs,
          retryAfterCapMs,
          input.policy.circuitOpenMs + 1000,
          maxDeferral(result),
        ),
      context,
    );
  }
  if (lease.kind === 'superseded') {
    // A late acceptance: sent, with the provider's id; attempts and run_at untouched.
    assert.equal(t.to, 'sent', context);
    assert.equal(t.acceptedLate, true, context);
    assert.equal(t.from, lease.state, context);
    assert.equal(t.attempts, lease.attempts, context);
    assert.equal(t.fromAttempts, lease.attempts, context);
    assert.equal(t.delayMs, null, context);
    assert.equal(t.providerMessageId, result.kind === 'sent' ? result.providerMessageId : undefined, context);
    assert.match(t.event.detail ?? '', /^accepted late/, context);
    return;
  }
  assert.equal(t.from, 'sending', context);
  assert.equal(t.fromAttempts, attempt, context);
  assert.equal(t.acceptedLate, false, context);
  // Attempts never go below what the delivery had before this claim; only an attempt that
  // reached the provider (or held the lease to its end) counts. A deferral never counts.
  const spent =
    reachedProvider(result) && !(input.aborted && (result.kind === 'retry' || result.kind === 'threw'));
  assert.equal(t.attempts, spent ? attempt : attempt - 1, context);
  // Dead only when the attempts are used up, and then always for a retryable result.
  if (t.to === 'dead') assert.ok(attempt >= input.maxAttempts && retryable(result), context);
  if (retryable(result) && spent) assert.equal(t.to === 'dead', attempt >= input.maxAttempts, context);
  // Each result kind's state.
  const expectedStates: Record<AttemptResult['kind'], readonly string[]> = {
    sent: ['sent'],
    failed: ['failed'],
    target_invalid: ['target_invalid'],
    config_error: ['retrying'],
    deferred: ['retrying'],
    retry: ['retrying', 'dead'],
    threw: ['retrying', 'dead'],
    lease_expired: ['retrying', 'dead'],
  };
  assert.ok(expectedStates[result.kind].includes(t.to), context);
  // Only an invalid target is disabled; only a send keeps last_error and carries the id.
  assert.equal(t.disableTarget, result.kind === 'target_invalid', context);
  if (t.to === 'sent') {
    assert.equal(t.lastError, null, context);
    assert.equal(t.providerMessageId, result.kind === 'sent' ? result.providerMessageId : null, context);
  } else {
    assert.equal(typeof t.lastError, 'string', context);
    assert.equal(t.providerMessageId, null, context);
  }
  // A retry is due again at once only when released or rescued (which keeps its past run_at);
  // a final state keeps run_at.
  if (t.to === 'retrying' && result.kind !== 'lease_expired') assert.notEqual(t.delayMs, null, context);
  if (t.to === 'sent' || t.to === 'failed' || t.to === 'target_invalid')
    assert.equal(t.delayMs, null, context);
  if (result.kind === 'lease_expired') {
    assert.equal(t.lastError, leaseExpiredError, context);
    assert.equal(t.delayMs, null, context);
  }
  if (result.kind === 'retry' && t.to === 'retrying' && !input.aborted) {
    // Retry-After is honoured (up to its cap), and the jitter stays under the backoff ceiling.
    const asked = Math.min(result.retryAfterMs ?? 0, retryAfterCapMs);
    const ceiling = backoffMs(attempt - 1, input.policy.retry);
    assert.ok((t.delayMs ?? 0) >= asked, context);
    assert.ok((t.delayMs ?? 0) <= Math.max(ceiling, asked), context);
  }
  if (result.kind === 'deferred') {
    const held = Math.max(0, result.delayMs);
    assert.ok(
      (t.delayMs ?? -1) >= held && (t.delayMs ?? 0) < held + Math.min(1000, held / 4 + 10) + 1,
      context,
    );
  }
  if (result.kind === 'config_error') {
    const open = input.policy.circuitOpenMs;
    assert.ok((t.delayMs ?? -1) >= open && (t.delayMs ?? 0) < open + 1000, context);
  }
}

function maxDeferral(result: AttemptResult): number {
  return result.kind === 'deferred' ? Math.max(0, result.delayMs) * 1.25 + 1010 : 0;
}

const arbPolicy: fc.Arbitrary<OutcomePolicy> = fc.record({
  retry: fc.record({
    baseMs: fc.integer({ min: 1, max: 3_600_000 }),
    maxMs: fc.integer({ min: 1, max: 86_400_000 }),
  }),
  circuitOpenMs: fc.integer({ min: 1, max: 600_000 }),
});
const arbText = fc.string({ maxLength: 20 });
const arbResult: fc.Arbitrary<AttemptResult> = fc.oneof(
  fc.record({ kind: fc.constant('sent' as const), providerMessageId: fc.option(arbText) }),
  fc.record(
    {
      kind: fc.constant('retry' as const),
      reason: arbText,
      // Past the cap too, up to values that would not fit an interval.
      retryAfterMs: fc.oneof(
        fc.nat({ max: 200_000_000 }),
        fc.constant(1e26),
        fc.constant(Number.POSITIVE_INFINITY),
      ),
    },
    { requiredKeys: ['kind', 'reason'] },
  ),
  fc.record({ kind: fc.constant('target_invalid' as const), reason: arbText }),
  fc.record({ kind: fc.constant('failed' as const), reason: arbText }),
  fc.record({ kind: fc.constant('config_error' as const), reason: arbText }),
  fc.record({ kind: fc.constant('threw' as const), message: arbText }),
  fc.record({
    kind: fc.constant('deferred' as const),
    reason: fc.constantFrom('circuit_open', 'rate_limited', 'provider_busy', 'render_budget'),
    delayMs: fc.nat({ max: 600_000 }),
  }),
  fc.constant({ kind: 'lease_expired' as const }),
);
const arbPosition = fc.constantFrom(...positions);
const arbLease = (attempt: number): fc.Arbitrary<LeaseView> =>
  fc.oneof(
    fc.constant({ kind: 'current' as const }),
    fc.record({
      kind: fc.constant('superseded' as const),
      state: fc.constantFrom(...deliveryStates),
      // A replay resets attempts to 0; claims since may have passed the result's attempt.
      attempts: fc.integer({ min: 0, max: attempt + 3 }),
    }),
  );
/** A random source drawing from a fixed list of values in [0, 1). */
const arbRandom = fc
  .array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: 1, maxLength: 4 })
  .map((draws) => () => {
    let i = 0;
    return () => draws[i++ % draws.length] ?? 0;
  });
const arbInput: fc.Arbitrary<OutcomeInput & { makeRandom: () => () => number }> = fc
  .record({ maxAttempts: fc.integer({ min: 1, max: 100 }), position: arbPosition })
  .chain(({ maxAttempts, position }) => {
    const attempt = attemptAt(position, maxAttempts);
    return fc.record({
      attempt: fc.constant(attempt),
      maxAttempts: fc.constant(maxAttempts),
      lease: arbLease(attempt),
      result: arbResult,
      aborted: fc.boolean(),
      policy: arbPolicy,
      makeRandom: arbRandom,
    });
  })
  .map((input) => ({ ...input, random: input.makeRandom() }));

describe('outcome policy: properties', () => {
  test('every decision keeps the invariants', () => {
    fc.assert(
      fc.property(arbInput, (input) => {
        checkInvariants(input, decideOutcome(input));
      }),
      { numRuns: 5000 },
    );
  });

  test('the same input and draws give the same decision (no hidden clock or state)', () => {
    fc.assert(
      fc.property(arbInput, (input) => {
        const once = decideOutcome({ ...input, random: input.makeRandom() });
        const twice = decideOutcome({ ...input, random: input.makeRandom() });
        assert.deepEqual(once, twice);
      }),
    );
  });

  test('a later attempt never waits for a shorter ceiling: retry delays grow with the attempt', () => {
    fc.assert(
      fc.property(arbPolicy, fc.integer({ min: 1, max: 60 }), (policy, attempt) => {
        const at = (n: number) =>
          decideOutcome({
            attempt: n,
            maxAttempts: 100,
            lease: { kind: 'current' },
            result: { kind: 'retry', reason: 'HTTP 503' },
            aborted: false,
            policy,
            random: () => 0.999_999,
          });
        const delay = (d: OutcomeDecision) => (d.kind === 'write' ? (d.transition.delayMs ?? 0) : 0);
        assert.ok(delay(at(attempt + 1)) >= delay(at(attempt)));
      }),
    );
  });
});

describe('outcome policy: every result kind × attempt position × lease state', () => {
  const policy: OutcomePolicy = { retry: { baseMs: 2000, maxMs: 3_600_000 }, circuitOpenMs: 30_000 };
  const sample: Record<AttemptResult['kind'], AttemptResult> = {
    sent: { kind: 'sent', providerMessageId: 'msg-1' },
    retry: { kind: 'retry', reason: 'HTTP 503', retryAfterMs: 5000 },
    target_invalid: { kind: 'target_invalid', reason: 'Unregistered' },
    failed: { kind: 'failed', reason: 'HTTP 400' },
    config_error: { kind: 'config_error', reason: 'bad credentials' },
    threw: { kind: 'threw', message: 'socket hang up' },
    deferred: { kind: 'deferred', reason: 'circuit_open', delayMs: 1000 },
    lease_expired: { kind: 'lease_expired' },
  };
  const leases: LeaseView[] = [
    { kind: 'current' },
    ...deliveryStates.map((state) => ({ kind: 'superseded' as const, state, attempts: 2 })),
  ];
  test('each combination keeps the invariants', () => {
    let checked = 0;
    for (const kind of resultKinds)
      for (const position of positions)
        for (const maxAttempts of [1, 2, 5])
          for (const lease of leases)
            for (const aborted of [false, true]) {
              const input: OutcomeInput = {
                attempt: attemptAt(position, maxAttempts),
                maxAttempts,
                lease,
                result: sample[kind],
                aborted,
                policy,
                random: () => 0.5,
              };
              checkInvariants(input, decideOutcome(input));
              checked += 1;
            }
    assert.equal(checked, resultKinds.length * positions.length * 3 * leases.length * 2);
  });
});

describe('outcome policy: the rules, by example', () => {
  const policy: OutcomePolicy = { retry: { baseMs: 1000, maxMs: 10_000 }, circuitOpenMs: 30_000 };
  const decide = (overrides: Partial<OutcomeInput> & Pick<OutcomeInput, 'result'>) =>
    decideOutcome({
      attempt: 2,
      maxAttempts: 3,
      lease: { kind: 'current' },
      aborted: false,
      policy,
      random: () => 0.5,
      ...overrides,
    });
  const transition = (d: OutcomeDecision) => {
    assert.equal(d.kind, 'write');
    return d.transition;
  };

  test('a retry backs off with jitter; on the last attempt the delivery is dead', () => {
    assert.deepEqual(transition(decide({ result: { kind: 'retry', reason: 'HTTP 503' } })), {
      from: 'sending',
      fromAttempts: 2,
      to: 'retrying',
      attempts: 2,
      delayMs: 1000,
      lastError: 'HTTP 503',
      providerMessageId: null,
      disableTarget: false,
      acceptedLate: false,
      event: { attempt: 2, detail: 'HTTP 503' },
    });
    const dead = transition(decide({ attempt: 3, result: { kind: 'retry', reason: 'HTTP 503' } }));
    assert.equal(dead.to, 'dead');
    assert.equal(dead.lastError, 'HTTP 503 (after 3 attempts)');
    assert.equal(dead.delayMs, null);
  });

  test('an exception is a retry with its message; aborted at shutdown it is released', () => {
    assert.equal(
      transition(decide({ result: { kind: 'threw', message: 'boom' } })).lastError,
      'provider error: boom',
    );
    const released = transition(decide({ result: { kind: 'threw', message: 'aborted' }, aborted: true }));
    assert.deepEqual(
      {
        to: released.to,
        attempts: released.attempts,
        delayMs: released.delayMs,
        detail: released.event.detail,
      },
      { to: 'retrying', attempts: 1, delayMs: 0, detail: 'released at shutdown' },
    );
  });

  test('a deferral and a configuration error wait without spending the attempt', () => {
    const deferred = transition(
      decide({ result: { kind: 'deferred', reason: 'render_budget', delayMs: 0 }, random: () => 0 }),
    );
    assert.deepEqual(
      { attempts: deferred.attempts, delayMs: deferred.delayMs, detail: deferred.event.detail },
      { attempts: 1, delayMs: 0, detail: 'deferred: render budget' },
    );
    const config = transition(decide({ result: { kind: 'config_error', reason: 'bad key' } }));
    assert.deepEqual(
      { attempts: config.attempts, delayMs: config.delayMs },
      { attempts: 1, delayMs: 30_500 },
    );
  });

  test('an expired lease is retried at once (its run_at kept), or dead on the last attempt', () => {
    const retried = transition(decide({ result: { kind: 'lease_expired' } }));
    assert.deepEqual(
      {
        to: retried.to,
        delayMs: retried.delayMs,
        detail: retried.event.detail,
        lastError: retried.lastError,
      },
      { to: 'retrying', delayMs: null, detail: 'lease expired', lastError: leaseExpiredError },
    );
    assert.equal(transition(decide({ attempt: 3, result: { kind: 'lease_expired' } })).to, 'dead');
  });

  test('a late acceptance makes a dead, retrying, pending or newly claimed delivery sent', () => {
    for (const state of ['dead', 'retrying', 'pending', 'sending'] as const) {
      const late = transition(
        decide({
          attempt: 3,
          lease: { kind: 'superseded', state, attempts: state === 'pending' ? 0 : 3 },
          result: { kind: 'sent', providerMessageId: 'msg-9' },
        }),
      );
      assert.equal(late.to, 'sent');
      assert.equal(late.providerMessageId, 'msg-9');
      assert.equal(late.event.detail, 'accepted late, after the lease of attempt 3 was lost: msg-9');
    }
    assert.deepEqual(
      decide({
        lease: { kind: 'superseded', state: 'sent', attempts: 3 },
        result: { kind: 'sent', providerMessageId: 'x' },
      }),
      { kind: 'ignore', reason: 'already_sent' },
    );
    assert.deepEqual(
      decide({
        lease: { kind: 'superseded', state: 'dead', attempts: 3 },
        result: { kind: 'retry', reason: 'late 503' },
      }),
      { kind: 'ignore', reason: 'superseded' },
    );
  });

  test('Retry-After is a floor up to one day; a value past any interval is capped', () => {
    const asked = (retryAfterMs: number) =>
      transition(decide({ result: { kind: 'retry', reason: '429', retryAfterMs } })).delayMs;
    assert.equal(asked(30_000), 30_000);
    assert.equal(asked(1e26), retryAfterCapMs);
  });
});
