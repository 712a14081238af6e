// Frequency caps as the fan-out batch decides them, without a database: counts already in the
// window, the batch's own notifications, lanes, users, deferral to later windows. The cap's
// lock under concurrent batches is tested on the database in src/pipeline/preferences.test.ts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decideFanOut, planFanOut } from './fan-out-decision.js';
import type { FanOutDevice } from './fan-out.js';
import type { Lane } from './notification.js';
import type { FrequencyCap } from './preferences.js';
import { fanOut, inputsOf, notification, now } from '../../test/helpers/fan-out-batch.js';

const today = Date.parse('2025-06-01T00:00:00Z');

function devices(count: number, prefix = 'd'): { devices: FanOutDevice[] } {
  return {
    devices: Array.from({ length: count }, (_, i) => ({ id: `${prefix}${String(i + 1)}`, enabled: true })),
  };
}

/** The category 'digest' with one cap on push. */
function digestCap(cap: FrequencyCap, lane: Lane = 'bulk') {
  return { digest: { caps: { push: { [lane]: cap } } } };
}

/** `count` digest notifications to fay on push, with ids `<lane>-<n>`. */
function digests(count: number, lane: Lane = 'bulk', userId = 'fay') {
  return Array.from({ length: count }, (_, i) => ({
    notification: notification(`${lane}-${String(i)}`, 'digest', ['push']),
    userId,
    lane,
  }));
}

describe('frequency caps: counting', () => {
  test('the (N+1)th notification in a batch is suppressed, counted per notification not per device', () => {
    const { deliveries, decided } = fanOut({
      sends: digests(3),
      users: { fay: devices(2) },
      categories: digestCap({ limit: 2, per: 'day', over: 'suppress' }),
    });
    assert.deepEqual(
      deliveries.map((d) => [d.notificationId, d.target, d.suppressed ?? 'due']),
      [
        ['bulk-0', 'd1', 'due'],
        ['bulk-0', 'd2', 'due'],
        ['bulk-1', 'd1', 'due'],
        ['bulk-1', 'd2', 'due'],
        ['bulk-2', 'd1', 'cap: 2 bulk push per day'],
        ['bulk-2', 'd2', 'cap: 2 bulk push per day'],
      ],
    );
    // One decision per notification and channel, covering both devices.
    assert.deepEqual(
      decided.map((d) => [d.decision.kind, d.targets]),
      [
        ['deliver', 2],
        ['deliver', 2],
        ['suppress', 2],
      ],
    );
  });

  test('what the database already counted in the window takes its share of the cap', () => {
    const { planned, deliveries } = fanOut(
      {
        sends: digests(2),
        users: { fay: { ...devices(2), settings: { timeZone: 'Asia/Seoul' } } },
        categories: digestCap({ limit: 2, per: 'day', over: 'suppress' }),
      },
      // The Seoul day holding `now` started at 15:00Z the day before.
      () => ({ [Date.parse('2025-05-31T15:00:00Z')]: 1 }),
    );
    assert.deepEqual(planned.capQueries, [
      {
        userId: 'fay',
        category: 'digest',
        channel: 'push',
        lane: 'bulk',
        per: 'day',
        timeZone: 'Asia/Seoul',
      },
    ]);
    assert.deepEqual(
      deliveries.map((d) => d.suppressed ?? 'due'),
      ['due', 'due', 'cap: 2 bulk push per day', 'cap: 2 bulk push per day'],
    );
  });

  test("each user's cap counts their own notifications", () => {
    const { deliveries } = fanOut({
      sends: [...digests(1), ...digests(1, 'bulk', 'gil')],
      users: { fay: devices(1), gil: devices(1, 'g') },
      categories: digestCap({ limit: 1, per: 'day', over: 'suppress' }),
    });
    assert.deepEqual(
      deliveries.map((d) => [d.userId, d.suppressed ?? 'due']),
      [
        ['fay', 'due'],
        ['gil', 'due'],
      ],
    );
  });

  test('the counts passed in are left as they were', () => {
    const planned = planFanOut(
      inputsOf({
        sends: digests(1),
        users: { fay: devices(2) },
        categories: digestCap({ limit: 5, per: 'day', over: 'suppress' }),
      }),
    );
    const counts = new Map([[0, new Map([[today, 1]])]]);
    decideFanOut(planned, counts, now);
    assert.deepEqual([...(counts.get(0) ?? [])], [[today, 1]]);
  });

  test('property: of n notifications to a capped user, exactly the room left is used', () => {
    const counts = fc.tuple(
      fc.integer({ min: 1, max: 8 }),
      fc.integer({ min: 1, max: 5 }),
      fc.integer({ min: 0, max: 6 }),
      fc.integer({ min: 1, max: 3 }),
    );
    fc.assert(
      fc.property(counts, ([n, limit, already, deviceCount]) => {
        const { deliveries } = fanOut(
          {
            sends: digests(n),
            users: { fay: devices(deviceCount) },
            categories: digestCap({ limit, per: 'day', over: 'suppress' }),
          },
          () => ({ [today]: already }),
        );
        const delivered = new Set(
          deliveries.filter((d) => d.suppressed === undefined).map((d) => d.notificationId),
        );
        assert.equal(delivered.size, Math.max(0, Math.min(n, limit - already)));
        // All of a notification's devices share its decision.
        for (const d of deliveries) assert.equal(delivered.has(d.notificationId), d.suppressed === undefined);
      }),
    );
  });
});

describe('frequency caps: lanes, critical categories and deferral', () => {
  test('a cap applies to its lane only', () => {
    const { planned, deliveries } = fanOut({
      sends: [...digests(2, 'bulk'), ...digests(2, 'transactional')],
      users: { fay: devices(1) },
      categories: digestCap({ limit: 1, per: 'day', over: 'suppress' }),
    });
    assert.deepEqual(
      planned.capQueries.map((q) => q.lane),
      ['bulk'],
    );
    assert.deepEqual(
      deliveries.map((d) => [d.lane, d.suppressed ?? 'due']),
      [
        ['bulk', 'due'],
        ['bulk', 'cap: 1 bulk push per day'],
        ['transactional', 'due'],
        ['transactional', 'due'],
      ],
    );
  });

  test('each lane counts apart', () => {
    const perLane = { limit: 1, per: 'day', over: 'suppress' } as const;
    const { deliveries } = fanOut(
      {
        sends: [...digests(1, 'bulk'), ...digests(1, 'transactional')],
        users: { fay: devices(1) },
        categories: { digest: { caps: { push: { bulk: perLane, transactional: perLane } } } },
      },
      (q) => (q.lane === 'bulk' ? { [today]: 1 } : {}),
    );
    assert.deepEqual(
      deliveries.map((d) => [d.lane, d.suppressed ?? 'due']),
      [
        ['bulk', 'cap: 1 bulk push per day'],
        ['transactional', 'due'],
      ],
    );
  });

  test('a critical category has no cap', () => {
    const { planned, deliveries } = fanOut(
      {
        sends: digests(3),
        users: { fay: devices(1) },
        categories: {
          digest: { critical: true, caps: { push: { bulk: { limit: 1, per: 'day', over: 'suppress' } } } },
        },
      },
      () => ({ [today]: 9 }),
    );
    assert.deepEqual(planned.capQueries, []);
    assert.deepEqual(
      deliveries.map((d) => d.suppressed ?? 'due'),
      ['due', 'due', 'due'],
    );
  });

  test('over a deferring cap, each notification waits for the next window with room', () => {
    const { deliveries, decided } = fanOut(
      {
        sends: digests(2),
        users: { fay: devices(1) },
        categories: digestCap({ limit: 1, per: 'day', over: 'defer' }),
      },
      () => ({ [today]: 1 }),
    );
    // The first takes tomorrow's slot; the second, in the same batch, the day after's.
    assert.deepEqual(
      deliveries.map((d) => d.deferred),
      [
        {
          runAt: new Date('2025-06-02T00:00:00Z'),
          detail: 'deferred: cap: 1 bulk push per day until 2025-06-02T00:00:00.000Z',
        },
        {
          runAt: new Date('2025-06-03T00:00:00Z'),
          detail: 'deferred: cap: 1 bulk push per day until 2025-06-03T00:00:00.000Z',
        },
      ],
    );
    assert.deepEqual(
      decided.map((d) => (d.decision.kind === 'defer' ? d.decision.reason : d.decision.kind)),
      ['cap', 'cap'],
    );
  });
});
