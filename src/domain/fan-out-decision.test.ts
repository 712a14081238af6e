// The fan-out batch's decision without a database: what each claimed recipient gets on each
// channel, given their preferences, quiet hours and the category's settings (caps:
// fan-out-caps.test.ts). src/pipeline/preferences.test.ts keeps the cases that need the
// database: the round trip through the API.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { planFanOut } from './fan-out-decision.js';
import type { Channel, Lane } from './notification.js';
import {
  fanOut,
  inputsOf,
  notification,
  outcomes,
  serviceId,
  type BatchSetup,
  type UserSetup,
} from '../../test/helpers/fan-out-batch.js';

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

describe('fan-out decision: unknown users and devices', () => {
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
});

describe('fan-out decision: the batch', () => {
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
