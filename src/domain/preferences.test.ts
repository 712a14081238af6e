import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  capWindowStart,
  decideDelivery,
  matchingPreference,
  nextCapWindow,
  quietHoursEnd,
  zonedInstant,
  type CategorySettings,
  type DecisionInput,
  type Preference,
  type RecipientSettings,
} from './preferences.js';

const recipient: RecipientSettings = {
  timeZone: 'UTC',
  noMarketing: false,
  quietHours: null,
  preferences: [],
};
const settings: CategorySettings = { critical: false, marketing: false, defaults: {}, caps: {} };
const now = new Date('2025-06-01T12:00:00Z');

function decide(over: Partial<DecisionInput>) {
  return decideDelivery({
    channel: 'email',
    category: 'news',
    lane: 'bulk',
    now,
    settings,
    recipient,
    capUsage: () => 0,
    ...over,
  });
}

describe('preferences', () => {
  test('the most specific preference wins', () => {
    const prefs: Preference[] = [
      { channel: '*', category: '*', enabled: false },
      { channel: '*', category: 'news', enabled: true },
      { channel: 'email', category: '*', enabled: false },
      { channel: 'email', category: 'news', enabled: true },
    ];
    assert.equal(matchingPreference(prefs, 'email', 'news')?.enabled, true);
    assert.deepEqual(matchingPreference(prefs, 'email', 'promo'), prefs[2]);
    assert.deepEqual(matchingPreference(prefs, 'push', 'news'), prefs[1]);
    assert.deepEqual(matchingPreference(prefs, 'push', 'promo'), prefs[0]);
    assert.equal(matchingPreference([], 'push', 'promo'), undefined);
  });

  test('opted out: suppressed with the rule that matched; other channels delivered', () => {
    const r = {
      ...recipient,
      preferences: [{ channel: 'email' as const, category: 'news', enabled: false }],
    };
    assert.deepEqual(decide({ recipient: r }), {
      kind: 'suppress',
      reason: 'preference',
      detail: 'preference: opted out of email/news',
    });
    assert.equal(decide({ recipient: r, channel: 'push' }).kind, 'deliver');
    assert.equal(decide({ recipient: r, category: 'orders' }).kind, 'deliver');
  });

  test('category default applies only without a preference; no default means opted in', () => {
    const s = { ...settings, defaults: { sms: false } };
    assert.equal(decide({ settings: s, channel: 'sms' }).kind, 'suppress');
    assert.equal(decide({ settings: s, channel: 'email' }).kind, 'deliver');
    const optedIn = {
      ...recipient,
      preferences: [{ channel: 'sms' as const, category: '*', enabled: true }],
    };
    assert.equal(decide({ settings: s, channel: 'sms', recipient: optedIn }).kind, 'deliver');
    assert.equal(decide({ settings: undefined }).kind, 'deliver');
  });

  test('no marketing suppresses marketing categories only', () => {
    const r = { ...recipient, noMarketing: true };
    assert.deepEqual(decide({ recipient: r, settings: { ...settings, marketing: true } }), {
      kind: 'suppress',
      reason: 'marketing',
      detail: 'preference: no marketing',
    });
    assert.equal(decide({ recipient: r }).kind, 'deliver');
  });

  test('critical categories ignore opt-outs, quiet hours and caps', () => {
    const r: RecipientSettings = {
      ...recipient,
      noMarketing: true,
      quietHours: { startMinutes: 0, endMinutes: 23 * 60 + 59 },
      preferences: [{ channel: '*', category: '*', enabled: false }],
    };
    const s: CategorySettings = {
      ...settings,
      critical: true,
      caps: { email: { bulk: { limit: 1, per: 'day', over: 'suppress' } } },
    };
    assert.deepEqual(decide({ recipient: r, settings: s, capUsage: () => 5 }), {
      kind: 'deliver',
      runAt: now,
    });
  });
});

describe('quiet hours', () => {
  const seoul: RecipientSettings = {
    ...recipient,
    timeZone: 'Asia/Seoul', // UTC+9, no DST
    quietHours: { startMinutes: 22 * 60, endMinutes: 7 * 60 },
  };

  test('bulk is deferred to the end of quiet hours across midnight; transactional passes', () => {
    const at2300 = new Date('2025-06-01T14:00:00Z'); // 23:00 in Seoul
    const d = decide({ recipient: seoul, now: at2300 });
    assert.ok(d.kind === 'defer');
    assert.equal(d.runAt.toISOString(), '2025-06-01T22:00:00.000Z'); // 07:00 next day
    assert.equal(d.detail, 'deferred: quiet hours until 2025-06-01T22:00:00.000Z');
    const at0300 = new Date('2025-06-01T18:00:00Z'); // 03:00 in Seoul, after midnight
    assert.equal(
      quietHoursEnd(at0300, seoul.quietHours!, 'Asia/Seoul')?.toISOString(),
      '2025-06-01T22:00:00.000Z',
    );
    assert.deepEqual(decide({ recipient: seoul, now: at2300, lane: 'transactional' }), {
      kind: 'deliver',
      runAt: at2300,
    });
    assert.equal(decide({ recipient: seoul, now: new Date('2025-06-01T03:00:00Z') }).kind, 'deliver'); // noon
    assert.equal(decide({ recipient: seoul, now: at2300, channel: 'in_app' }).kind, 'deliver');
  });

  test('a window within one day, and the end at a DST change', () => {
    const ny: RecipientSettings = {
      ...recipient,
      timeZone: 'America/New_York',
      quietHours: { startMinutes: 60, endMinutes: 2 * 60 + 30 }, // 01:00–02:30
    };
    // 2025-03-09: 02:00 EST jumps to 03:00 EDT, so 02:30 does not exist; it ends at 03:30 EDT.
    const at0130 = new Date('2025-03-09T06:30:00Z');
    assert.equal(
      quietHoursEnd(at0130, ny.quietHours!, ny.timeZone)?.toISOString(),
      '2025-03-09T07:30:00.000Z',
    );
    // 2025-11-02: 01:30 happens twice; the end is 02:30 EST.
    const firstAt0130 = new Date('2025-11-02T05:30:00Z');
    assert.equal(
      quietHoursEnd(firstAt0130, ny.quietHours!, ny.timeZone)?.toISOString(),
      '2025-11-02T07:30:00.000Z',
    );
    assert.equal(
      zonedInstant({ year: 2025, month: 11, day: 2 }, 90, ny.timeZone).toISOString(),
      '2025-11-02T05:30:00.000Z',
    );
  });
});

describe('frequency caps', () => {
  const cap = (over: 'suppress' | 'defer'): CategorySettings => ({
    ...settings,
    caps: { push: { bulk: { limit: 3, per: 'day', over } } },
  });

  test('the (N+1)th in a window is suppressed', () => {
    const under = decide({ channel: 'push', settings: cap('suppress'), capUsage: () => 2 });
    assert.ok(under.kind === 'deliver');
    assert.equal(under.capBucket, Date.parse('2025-06-01T00:00:00Z'));
    assert.deepEqual(decide({ channel: 'push', settings: cap('suppress'), capUsage: () => 3 }), {
      kind: 'suppress',
      reason: 'cap',
      detail: 'cap: 3 bulk push per day',
    });
    assert.equal(
      decide({ channel: 'push', lane: 'transactional', settings: cap('suppress'), capUsage: () => 3 }).kind,
      'deliver',
    );
  });

  test('deferring goes to the next window with room, past quiet hours', () => {
    const r: RecipientSettings = {
      ...recipient,
      timeZone: 'Europe/Berlin', // UTC+2 in June
      quietHours: { startMinutes: 22 * 60, endMinutes: 8 * 60 },
    };
    const day1 = Date.parse('2025-05-31T22:00:00Z'); // local midnight 2025-06-01
    const d = decide({
      channel: 'push',
      recipient: r,
      settings: cap('defer'),
      capUsage: (bucket) => (bucket === day1 ? 3 : 0),
    });
    assert.ok(d.kind === 'defer');
    // Next local day starts at midnight, inside quiet hours: 08:00 local = 06:00Z.
    assert.equal(d.runAt.toISOString(), '2025-06-02T06:00:00.000Z');
    assert.equal(d.reason, 'cap');
    assert.equal(d.capBucket, Date.parse('2025-06-01T22:00:00Z'));
  });

  test('windows: local day and hour, including 30-minute offsets and DST days', () => {
    const at = new Date('2025-06-01T12:10:00Z');
    assert.equal(capWindowStart(at, 'hour', 'Asia/Kolkata').toISOString(), '2025-06-01T11:30:00.000Z');
    assert.equal(capWindowStart(at, 'day', 'Asia/Kolkata').toISOString(), '2025-05-31T18:30:00.000Z');
    const dstDay = capWindowStart(new Date('2025-03-09T12:00:00Z'), 'day', 'America/New_York');
    assert.equal(dstDay.toISOString(), '2025-03-09T05:00:00.000Z');
    assert.equal(nextCapWindow(dstDay, 'day', 'America/New_York').toISOString(), '2025-03-10T04:00:00.000Z');
  });
});
