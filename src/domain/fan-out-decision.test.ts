// The fan-out batch's decision without a database: what each claimed recipient gets on each
// channel, given their preferences, quiet hours, the category's settings and cap counts.
// src/pipeline/preferences.test.ts keeps the cases that need the database (the round trip
// through the API and the cap lock under concurrency).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  decideFanOut,
  planFanOut,
  type CapQuery,
  type DueRecipient,
  type FanOutInputs,
  type FanOutNotification,
  type UserDeliverySettings,
} from './fan-out-decision.js';
import type { FanOutDevice, FanOutUser } from './fan-out.js';
import type { Channel, Lane } from './notification.js';
import { categoryKey, type CategorySettings, type FrequencyCap, type Preference } from './preferences.js';

const now = new Date('2025-06-01T12:00:00Z'); // 21:00 in Seoul
const serviceId = 1;

function notification(id: string, category: string, channels: Channel[]): FanOutNotification {
  return {
    id,
    createdAt: new Date('2025-06-01T11:59:00Z'),
    serviceId,
    channels,
    category,
    serviceWebhookUrl: null,
    serviceChatUrl: null,
  };
}

function contact(id: string): FanOutUser {
  return { id, email: `${id}@example.com`, phone: '+821012345678', webhookUrl: null, chatWebhookUrl: null };
}

const utc: UserDeliverySettings = { timeZone: 'UTC', noMarketing: false, quietHours: null };

interface UserSetup {
  settings?: Partial<UserDeliverySettings>;
  preferences?: Preference[];
  devices?: FanOutDevice[];
}

/** A batch: who gets which notification on which lane, who is known to Herald, the categories. */
interface BatchSetup {
  sends: { notification: FanOutNotification; userId: string; lane?: Lane }[];
  users?: Record<string, UserSetup>;
  categories?: Record<string, Partial<CategorySettings>>;
}

function inputsOf(batch: BatchSetup): FanOutInputs {
  const users = Object.entries(batch.users ?? {});
  const recipients: DueRecipient[] = batch.sends.map((s) => ({
    notificationId: s.notification.id,
    notificationCreatedAt: s.notification.createdAt,
    userId: s.userId,
    lane: s.lane ?? 'bulk',
  }));
  return {
    recipients,
    notifications: new Map(batch.sends.map((s) => [s.notification.id, s.notification])),
    users: new Map(users.map(([id]) => [id, contact(id)])),
    devices: new Map(users.map(([id, u]) => [id, u.devices ?? []])),
    userSettings: new Map(users.map(([id, u]) => [id, { ...utc, ...u.settings }])),
    preferences: new Map(users.map(([id, u]) => [id, u.preferences ?? []])),
    categories: new Map(
      Object.entries(batch.categories ?? {}).map(([category, s]) => [
        categoryKey(serviceId, category),
        { critical: false, marketing: false, defaults: {}, caps: {}, ...s },
      ]),
    ),
  };
}

/** Plans, counts (from `counted`: window start → notifications already there) and decides. */
function fanOut(
  batch: BatchSetup,
  counted: (query: CapQuery) => Record<number, number> = () => ({}),
  at = now,
) {
  const planned = planFanOut(inputsOf(batch));
  const counts = new Map(
    planned.capQueries.map((q, i) => [
      i,
      new Map(Object.entries(counted(q)).map(([bucket, n]) => [Number(bucket), n])),
    ]),
  );
  return { planned, ...decideFanOut(planned, counts, at) };
}

/** Each delivery as [user, channel, target, what was decided]. */
function outcomes(deliveries: ReturnType<typeof fanOut>['deliveries']) {
  return deliveries.map((d) => [
    d.userId,
    d.channel,
    d.target,
    d.suppressed ?? (d.deferred === undefined ? 'due' : d.deferred.detail),
  ]);
}

describe('fan-out decision: preferences', () => {
  test('opting out of a channel for a category suppresses exactly those deliveries', () => {
    const { deliveries } = fanOut({
      sends: [
        { notification: notification('news', 'news', ['email', 'sms', 'in_app']), userId: 'ana' },
        { notification: notification('orders', 'orders', ['email']), userId: 'ana' },
      ],
      users: { ana: { preferences: [{ channel: 'email', category: 'news', enabled: false }] } },
    });
    assert.deepEqual(outcomes(deliveries), [
      ['ana', 'email', 'ana@example.com', 'preference: opted out of email/news'],
      ['ana', 'sms', '+821012345678', 'due'],
      ['ana', 'in_app', 'inbox', 'due'],
      ['ana', 'email', 'ana@example.com', 'due'],
    ]);
  });

  test('an in_app opt-out suppresses the inbox delivery; a category default applies without a preference', () => {
    const { deliveries } = fanOut({
      sends: [{ notification: notification('tip', 'tips', ['in_app', 'sms', 'email']), userId: 'bo' }],
      users: { bo: { preferences: [{ channel: 'in_app', category: '*', enabled: false }] } },
      categories: { tips: { defaults: { sms: false } } },
    });
    assert.deepEqual(outcomes(deliveries), [
      ['bo', 'in_app', 'inbox', 'preference: opted out of in_app/*'],
      ['bo', 'sms', '+821012345678', 'preference: sms is off by default for tips'],
      ['bo', 'email', 'bo@example.com', 'due'],
    ]);
  });

  test('critical categories are delivered despite every opt-out, no_marketing, quiet hours and caps', () => {
    const cy: UserSetup = {
      settings: { noMarketing: true, quietHours: { startMinutes: 0, endMinutes: 23 * 60 + 59 } },
      preferences: [{ channel: '*', category: '*', enabled: false }],
    };
    const { deliveries, planned } = fanOut(
      {
        sends: [
          { notification: notification('alert', 'security', ['email', 'sms']), userId: 'cy' },
          { notification: notification('news', 'news', ['email']), userId: 'cy' },
        ],
        users: { cy },
        categories: {
          security: {
            critical: true,
            marketing: true,
            caps: { email: { bulk: { limit: 1, per: 'day', over: 'suppress' } } },
          },
        },
      },
      () => ({ [Date.parse('2025-06-01T00:00:00Z')]: 5 }),
    );
    assert.deepEqual(planned.capQueries, [], 'a critical category needs no cap counts');
    assert.deepEqual(outcomes(deliveries), [
      ['cy', 'email', 'cy@example.com', 'due'],
      ['cy', 'sms', '+821012345678', 'due'],
      ['cy', 'email', 'cy@example.com', 'preference: opted out of */*'],
    ]);
  });

  test('no_marketing suppresses marketing categories only', () => {
    const { deliveries, decided } = fanOut({
      sends: [
        { notification: notification('promo', 'promo', ['email']), userId: 'di' },
        { notification: notification('promo', 'promo', ['email']), userId: 'ed' },
        { notification: notification('orders', 'orders', ['email']), userId: 'di' },
      ],
      users: { di: { settings: { noMarketing: true } }, ed: {} },
      categories: { promo: { marketing: true } },
    });
    assert.deepEqual(outcomes(deliveries), [
      ['di', 'email', 'di@example.com', 'preference: no marketing'],
      ['ed', 'email', 'ed@example.com', 'due'],
      ['di', 'email', 'di@example.com', 'due'],
    ]);
    // The stage counts suppressions by channel and reason from these.
    assert.deepEqual(
      decided.map((d) => [d.channel, d.decision.kind === 'suppress' ? d.decision.reason : d.decision.kind]),
      [
        ['email', 'marketing'],
        ['email', 'deliver'],
        ['email', 'deliver'],
      ],
    );
  });
});

describe('fan-out decision: quiet hours', () => {
  // 20:00–23:00 in Seoul (UTC+9, no DST); `now` is 21:00 there, so they end at 14:00Z.
  const mina: UserSetup = {
    settings: { timeZone: 'Asia/Seoul', quietHours: { startMinutes: 20 * 60, endMinutes: 23 * 60 } },
  };
  const hook = {
    ...notification('hi', 'news', ['webhook', 'in_app']),
    serviceWebhookUrl: 'https://svc.example/hook',
  };

  test('bulk deliveries are deferred to the end of quiet hours; transactional ones and the inbox pass', () => {
    const { deliveries, decided } = fanOut({
      sends: [
        { notification: hook, userId: 'mina', lane: 'bulk' },
        { notification: { ...hook, id: 'now' }, userId: 'mina', lane: 'transactional' },
      ],
      users: { mina },
    });
    const quietEnd = '2025-06-01T14:00:00.000Z';
    assert.deepEqual(
      deliveries.map((d) => [d.lane, d.channel, d.deferred]),
      [
        ['bulk', 'webhook', { runAt: new Date(quietEnd), detail: `deferred: quiet hours until ${quietEnd}` }],
        ['bulk', 'in_app', undefined],
        ['transactional', 'webhook', undefined],
        ['transactional', 'in_app', undefined],
      ],
    );
    assert.deepEqual(
      decided.filter((d) => d.decision.kind === 'defer').map((d) => [d.channel, d.decision]),
      [
        [
          'webhook',
          {
            kind: 'defer',
            runAt: new Date(quietEnd),
            reason: 'quiet_hours',
            detail: `deferred: quiet hours until ${quietEnd}`,
          },
        ],
      ],
    );
  });

  test('outside quiet hours a bulk delivery is due at once', () => {
    const noon = new Date('2025-06-01T03:00:00Z'); // 12:00 in Seoul
    const { deliveries } = fanOut(
      { sends: [{ notification: hook, userId: 'mina' }], users: { mina } },
      undefined,
      noon,
    );
    assert.deepEqual(outcomes(deliveries), [
      ['mina', 'webhook', 'https://svc.example/hook', 'due'],
      ['mina', 'in_app', 'inbox', 'due'],
    ]);
  });
});

describe('fan-out decision: frequency caps', () => {
  const today = Date.parse('2025-06-01T00:00:00Z');
  const twoDevices: UserSetup = {
    devices: [
      { id: 'd1', enabled: true },
      { id: 'd2', enabled: true },
    ],
  };
  const digestCap = (cap: FrequencyCap, lane: Lane = 'bulk') => ({
    digest: { caps: { push: { [lane]: cap } } },
  });
  const digests = (count: number, lane: Lane = 'bulk') =>
    Array.from({ length: count }, (_, i) => ({
      notification: notification(`digest-${String(i)}`, 'digest', ['push']),
      userId: 'fay',
      lane,
    }));

  test('the (N+1)th notification in a batch is suppressed, counted per notification not per device', () => {
    const { deliveries, decided } = fanOut({
      sends: digests(3),
      users: { fay: twoDevices },
      categories: digestCap({ limit: 2, per: 'day', over: 'suppress' }),
    });
    assert.deepEqual(
      deliveries.map((d) => [d.notificationId, d.target, d.suppressed ?? 'due']),
      [
        ['digest-0', 'd1', 'due'],
        ['digest-0', 'd2', 'due'],
        ['digest-1', 'd1', 'due'],
        ['digest-1', 'd2', 'due'],
        ['digest-2', 'd1', 'cap: 2 bulk push per day'],
        ['digest-2', 'd2', 'cap: 2 bulk push per day'],
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
        users: { fay: { ...twoDevices, settings: { timeZone: 'Asia/Seoul' } } },
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

  test('a cap applies to its lane only; each lane counts apart', () => {
    const bulkOnly = fanOut({
      sends: [
        ...digests(2, 'bulk'),
        ...digests(2, 'transactional').map((s, i) => ({
          ...s,
          notification: { ...s.notification, id: `tx-${String(i)}` },
        })),
      ],
      users: { fay: { devices: [{ id: 'd1', enabled: true }] } },
      categories: digestCap({ limit: 1, per: 'day', over: 'suppress' }),
    });
    assert.deepEqual(
      bulkOnly.planned.capQueries.map((q) => q.lane),
      ['bulk'],
    );
    assert.deepEqual(
      bulkOnly.deliveries.map((d) => [d.lane, d.suppressed ?? 'due']),
      [
        ['bulk', 'due'],
        ['bulk', 'cap: 1 bulk push per day'],
        ['transactional', 'due'],
        ['transactional', 'due'],
      ],
    );
    const bothLanes = fanOut(
      {
        sends: [
          ...digests(1, 'bulk'),
          ...digests(1, 'transactional').map((s) => ({
            ...s,
            notification: { ...s.notification, id: 'tx' },
          })),
        ],
        users: { fay: { devices: [{ id: 'd1', enabled: true }] } },
        categories: {
          digest: {
            caps: {
              push: {
                bulk: { limit: 1, per: 'day', over: 'suppress' },
                transactional: { limit: 1, per: 'day', over: 'suppress' },
              },
            },
          },
        },
      },
      (q) => (q.lane === 'bulk' ? { [today]: 1 } : {}),
    );
    assert.deepEqual(
      bothLanes.deliveries.map((d) => [d.lane, d.suppressed ?? 'due']),
      [
        ['bulk', 'cap: 1 bulk push per day'],
        ['transactional', 'due'],
      ],
    );
  });

  test('over a deferring cap, each notification waits for the next window with room', () => {
    const { deliveries, decided } = fanOut(
      {
        sends: digests(2),
        users: { fay: { devices: [{ id: 'd1', enabled: true }] } },
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

  test("each user's cap counts their own notifications", () => {
    const { deliveries } = fanOut({
      sends: [...digests(1), { ...digests(1)[0]!, userId: 'gil' }],
      users: {
        fay: { devices: [{ id: 'd1', enabled: true }] },
        gil: { devices: [{ id: 'g1', enabled: true }] },
      },
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
        users: { fay: twoDevices },
        categories: digestCap({ limit: 5, per: 'day', over: 'suppress' }),
      }),
    );
    const counts = new Map([[0, new Map([[today, 1]])]]);
    decideFanOut(planned, counts, now);
    assert.deepEqual([...(counts.get(0) ?? [])], [[today, 1]]);
  });

  test('property: of n notifications to a capped user, exactly the room left is used', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 0, max: 6 }),
        fc.integer({ min: 1, max: 3 }),
        (n, limit, already, devices) => {
          const { deliveries } = fanOut(
            {
              sends: digests(n),
              users: {
                fay: {
                  devices: Array.from({ length: devices }, (_, i) => ({
                    id: `d${String(i)}`,
                    enabled: true,
                  })),
                },
              },
              categories: digestCap({ limit, per: 'day', over: 'suppress' }),
            },
            () => ({ [today]: already }),
          );
          const delivered = new Set(
            deliveries.filter((d) => d.suppressed === undefined).map((d) => d.notificationId),
          );
          assert.equal(delivered.size, Math.max(0, Math.min(n, limit - already)));
          // All of a notification's devices share its decision.
          for (const d of deliveries)
            assert.equal(delivered.has(d.notificationId), d.suppressed === undefined);
        },
      ),
    );
  });
});

describe('fan-out decision: targets', () => {
  test('an unknown user gets the inbox only, as UTC with no preferences; other channels are skipped', () => {
    const { deliveries, fannedOut } = fanOut({
      sends: [
        { notification: notification('n', 'news', ['in_app', 'email', 'push', 'webhook']), userId: 'ghost' },
        { notification: notification('t', 'tips', ['in_app']), userId: 'ghost' },
      ],
      categories: { tips: { defaults: { in_app: false } } },
    });
    assert.deepEqual(outcomes(deliveries), [
      ['ghost', 'in_app', 'inbox', 'due'],
      ['ghost', 'in_app', 'inbox', 'preference: in_app is off by default for tips'],
    ]);
    assert.deepEqual(
      fannedOut.map((f) => [f.recipient.notificationId, f.skipped]),
      [
        [
          'n',
          [
            { channel: 'email', reason: 'unknown_user' },
            { channel: 'push', reason: 'unknown_user' },
            { channel: 'webhook', reason: 'unknown_user' },
          ],
        ],
        ['t', []],
      ],
    );
  });

  test('every enabled device gets a delivery; a user with none skips push', () => {
    const { deliveries, fannedOut } = fanOut({
      sends: [
        { notification: notification('n', 'news', ['push']), userId: 'hal' },
        { notification: notification('n', 'news', ['push']), userId: 'ivy' },
      ],
      users: {
        hal: {
          devices: [
            { id: 'd1', enabled: true },
            { id: 'd2', enabled: false },
            { id: 'd3', enabled: true },
          ],
        },
        ivy: { devices: [{ id: 'd4', enabled: false }] },
      },
    });
    assert.deepEqual(outcomes(deliveries), [
      ['hal', 'push', 'd1', 'due'],
      ['hal', 'push', 'd3', 'due'],
    ]);
    assert.deepEqual(
      fannedOut.map((f) => [f.recipient.userId, f.skipped]),
      [
        ['hal', []],
        ['ivy', [{ channel: 'push', reason: 'no_target' }]],
      ],
    );
  });

  test('deliveries follow the claim order, and within a recipient the request’s channel order', () => {
    const { deliveries } = fanOut({
      sends: [
        { notification: notification('a', 'news', ['sms', 'in_app', 'email', 'sms']), userId: 'jo' },
        { notification: notification('b', 'news', ['email', 'sms']), userId: 'jo' },
      ],
      users: { jo: {} },
    });
    assert.deepEqual(
      deliveries.map((d) => `${d.notificationId}:${d.channel}`),
      ['a:sms', 'a:in_app', 'a:email', 'b:email', 'b:sms'],
    );
    assert.deepEqual(deliveries[0], {
      notificationId: 'a',
      notificationCreatedAt: new Date('2025-06-01T11:59:00Z'),
      serviceId,
      userId: 'jo',
      channel: 'sms',
      target: '+821012345678',
      lane: 'bulk',
      category: 'news',
    });
  });

  test('a recipient of a notification that was not loaded is an error', () => {
    const inputs = inputsOf({
      sends: [{ notification: notification('n', 'news', ['email']), userId: 'jo' }],
    });
    assert.throws(
      () => planFanOut({ ...inputs, notifications: new Map() }),
      /recipient of missing notification n/,
    );
  });

  test('property: the decision marks the planned deliveries, never adds or drops one', () => {
    const channel = fc.constantFrom<Channel>('in_app', 'email', 'sms', 'push', 'webhook');
    const preference = fc.record({
      channel: fc.constantFrom<Channel | '*'>('*', 'email', 'push', 'in_app'),
      category: fc.constantFrom('*', 'news'),
      enabled: fc.boolean(),
    });
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            channels: fc.array(channel, { maxLength: 5 }),
            known: fc.boolean(),
            lane: fc.constantFrom<Lane>('bulk', 'transactional'),
          }),
          { maxLength: 6 },
        ),
        fc.array(preference, { maxLength: 3 }),
        fc.boolean(),
        (sends, preferences, critical) => {
          const batch: BatchSetup = {
            sends: sends.map((s, i) => ({
              notification: {
                ...notification(`n${String(i)}`, 'news', s.channels),
                serviceWebhookUrl: 'https://svc.example/h',
              },
              userId: s.known ? 'kim' : `ghost-${String(i)}`,
              lane: s.lane,
            })),
            users: { kim: { preferences, devices: [{ id: 'd1', enabled: true }] } },
            categories: {
              news: { critical, caps: { email: { bulk: { limit: 1, per: 'day', over: 'defer' } } } },
            },
          };
          const { planned, deliveries } = fanOut(batch);
          const targets = planned.recipients.flatMap((p) =>
            p.plan.deliveries.map(
              (d) => `${p.recipient.userId}/${p.notification.id}/${d.channel}/${d.target}`,
            ),
          );
          assert.deepEqual(
            deliveries.map((d) => `${d.userId}/${d.notificationId}/${d.channel}/${d.target}`),
            targets,
          );
          if (critical)
            for (const d of deliveries) assert.ok(d.suppressed === undefined && d.deferred === undefined);
        },
      ),
    );
  });
});
