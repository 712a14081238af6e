// Idempotency keys within a batch, without a database: who leads, which keys are inserted and
// in which order, and what each request's outcome is once the insert has said which keys were
// new. The concurrent cases (two batches, ON CONFLICT waiting) are in
// src/api/notifications/notification-routes.test.ts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decideAgainstHeldKeys, decideIdempotency, planClaims, type KeyedRequest } from './idempotency.js';

const bodyA = Uint8Array.from([0xa]);
const bodyB = Uint8Array.from([0xb]);

function request(keys: string[], body = bodyA, serviceId = 1): KeyedRequest {
  return { serviceId, claims: keys.map((key) => ({ key, requestHash: body })) };
}

/** Plans the batch and decides it as if the database took `inserted` (default: every key). */
function decide(requests: KeyedRequest[], inserted?: [number, string][]) {
  const plan = planClaims(requests);
  const went = inserted?.map(([serviceId, key]) => ({ serviceId, key })) ?? plan.ownClaims;
  return { plan, ...decideIdempotency(requests, plan, went) };
}

describe('idempotency within a batch: leaders and followers', () => {
  test('distinct keys: every request inserts its own and is created', () => {
    const { plan, outcomes, undo } = decide([
      request(['id:1', 'header:x']),
      request(['header:y']),
      request([]),
    ]);
    assert.deepEqual([...plan.leaderOf], []);
    assert.deepEqual(
      plan.ownClaims.map((c) => [c.item, c.key]),
      [
        [0, 'header:x'],
        [1, 'header:y'],
        [0, 'id:1'],
      ],
    );
    assert.deepEqual(outcomes, [{ kind: 'created' }, { kind: 'created' }, { kind: 'created' }]);
    assert.deepEqual(undo, []);
  });

  test('keys are inserted sorted by service, then key, so batches lock them in one order', () => {
    const { plan } = decide([
      request(['b', 'B'], bodyA, 10),
      request(['a'], bodyA, 2),
      request(['c'], bodyA, 10),
    ]);
    assert.deepEqual(
      plan.ownClaims.map((c) => [c.serviceId, c.key]),
      [
        [2, 'a'],
        [10, 'B'],
        [10, 'b'],
        [10, 'c'],
      ],
    );
  });

  test('the same key with the same body replays the request created in this batch', () => {
    const { plan, outcomes } = decide([request(['header:k']), request(['header:k'])]);
    assert.deepEqual([...plan.leaderOf], [[1, 0]]);
    assert.deepEqual(
      plan.ownClaims.map((c) => c.item),
      [0],
      'the follower inserts nothing',
    );
    assert.deepEqual(outcomes, [{ kind: 'created' }, { kind: 'replayed_in_batch', leader: 0 }]);
  });

  test('the same key with another body conflicts', () => {
    const { outcomes } = decide([request(['header:k'], bodyA), request(['header:k'], bodyB)]);
    assert.deepEqual(outcomes, [{ kind: 'created' }, { kind: 'conflict' }]);
  });

  test('the same key in another service is another key', () => {
    const { plan, outcomes } = decide([request(['header:k'], bodyA, 1), request(['header:k'], bodyB, 2)]);
    assert.deepEqual([...plan.leaderOf], []);
    assert.deepEqual(outcomes, [{ kind: 'created' }, { kind: 'created' }]);
  });

  test('a chain of leaders ends at the request that inserted the keys', () => {
    // 1 repeats 0's key after claiming one of its own; 2 repeats 1's own key.
    const { plan, outcomes } = decide([
      request(['header:a']),
      request(['id:b', 'header:a']),
      request(['id:b']),
      request(['id:b'], bodyB),
    ]);
    assert.deepEqual(
      [...plan.leaderOf],
      [
        [1, 0],
        [2, 1],
        [3, 1],
      ],
    );
    assert.deepEqual(
      plan.ownClaims.map((c) => c.key),
      ['header:a'],
      "a follower's own keys are not inserted either",
    );
    assert.deepEqual(outcomes, [
      { kind: 'created' },
      { kind: 'replayed_in_batch', leader: 0 },
      { kind: 'replayed_in_batch', leader: 0 },
      { kind: 'conflict' },
    ]);
  });
});

describe('idempotency within a batch, after the insert', () => {
  test('a key an earlier request holds: the keys that went in are given back, the rest looked up', () => {
    const { outcomes, undo } = decide(
      [request(['id:1', 'header:x']), request(['header:y'])],
      [
        [1, 'header:x'],
        [1, 'header:y'],
      ],
    );
    assert.deepEqual(outcomes, [{ kind: 'lookup', keys: ['id:1'] }, { kind: 'created' }]);
    assert.deepEqual(
      undo.map((c) => [c.item, c.key]),
      [[0, 'header:x']],
    );
  });

  test('a follower of a request that was not created is looked up with all its keys', () => {
    const { outcomes, undo } = decide(
      [request(['id:1', 'header:x']), request(['header:x', 'header:z'])],
      [[1, 'header:x']],
    );
    assert.deepEqual(outcomes, [
      { kind: 'lookup', keys: ['id:1'] },
      { kind: 'lookup', keys: ['header:x', 'header:z'] },
    ]);
    assert.deepEqual(
      undo.map((c) => c.key),
      ['header:x'],
    );
  });

  test('property: with every key new, leaders create and followers match their root by body', () => {
    const keyed = fc.record({
      serviceId: fc.constantFrom(1, 2),
      keys: fc.uniqueArray(fc.constantFrom('a', 'b', 'c', 'd'), { maxLength: 3 }),
      body: fc.constantFrom(bodyA, bodyB),
    });
    fc.assert(
      fc.property(fc.array(keyed, { maxLength: 8 }), (batch) => {
        const requests = batch.map((r) => request(r.keys, r.body, r.serviceId));
        const { plan, outcomes, undo } = decide(requests);
        assert.deepEqual(undo, []);
        const ids = plan.ownClaims.map((c) => `${String(c.serviceId)}/${c.key}`);
        assert.equal(new Set(ids).size, ids.length, 'each key inserted once');
        assert.deepEqual(
          plan.ownClaims,
          [...plan.ownClaims].sort((x, y) => x.serviceId - y.serviceId || (x.key < y.key ? -1 : 1)),
        );
        outcomes.forEach((outcome, item) => {
          let root = item;
          while (plan.leaderOf.has(root)) root = plan.leaderOf.get(root)!;
          assert.ok(root <= item);
          if (root === item) assert.deepEqual(outcome, { kind: 'created' });
          else if (batch[root]!.body === batch[item]!.body)
            assert.deepEqual(outcome, { kind: 'replayed_in_batch', leader: root });
          else assert.deepEqual(outcome, { kind: 'conflict' });
        });
      }),
    );
  });
});

describe('idempotency against keys an earlier request holds', () => {
  const at = new Date('2025-06-01T12:00:00Z');
  const held = (notificationId: string, requestHash = bodyA) => ({
    notificationId,
    notificationCreatedAt: at,
    requestHash,
  });
  const keys = ['id:1', 'header:x'];

  test('every key held by one notification with the same body: replay it', () => {
    assert.deepEqual(decideAgainstHeldKeys(request(keys), keys, [held('n1'), held('n1')]), {
      kind: 'replay',
      notificationId: 'n1',
      notificationCreatedAt: at,
    });
  });

  test('another body, another notification, a key not held, or none held: conflict', () => {
    const r = request(keys);
    assert.deepEqual(decideAgainstHeldKeys(r, keys, [held('n1'), held('n1', bodyB)]), { kind: 'conflict' });
    assert.deepEqual(decideAgainstHeldKeys(r, keys, [held('n1'), held('n2')]), { kind: 'conflict' });
    assert.deepEqual(decideAgainstHeldKeys(r, keys, [held('n1')]), { kind: 'conflict' });
    assert.deepEqual(decideAgainstHeldKeys(r, keys, []), { kind: 'conflict' });
  });

  test('bodies are compared byte by byte', () => {
    const r = request(['k'], Uint8Array.from([1, 2, 3]));
    assert.equal(decideAgainstHeldKeys(r, ['k'], [held('n1', Uint8Array.from([1, 2, 3]))]).kind, 'replay');
    assert.equal(decideAgainstHeldKeys(r, ['k'], [held('n1', Uint8Array.from([1, 2, 4]))]).kind, 'conflict');
    assert.equal(decideAgainstHeldKeys(r, ['k'], [held('n1', Uint8Array.from([1, 2]))]).kind, 'conflict');
  });
});
