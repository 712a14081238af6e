import { test } from 'node:test';
import assert from 'node:assert/strict';
import { admitByBudget, recipientKey } from './budget-admission.js';
import type { NewDelivery } from './fan-out-decision.js';

const delivery = (userId: string, extra: Partial<NewDelivery> = {}): NewDelivery => ({
  notificationId: 'shop#n',
  notificationCreatedAt: new Date(0),
  serviceId: 1,
  userId,
  channel: 'webhook',
  target: userId,
  lane: 'bulk',
  category: 'general',
  ...extra,
});
const key = (u: string) => recipientKey('shop#n', u);

test('recipients are admitted in claim order while their deliveries fit the window', () => {
  const deliveries = [delivery('a'), delivery('b'), delivery('b', { channel: 'email' }), delivery('c')];
  const budgetOf = new Map([
    [key('a'), 7],
    [key('b'), 7],
    [key('c'), 7],
  ]);
  const { held, spent } = admitByBudget({ deliveries }, budgetOf, new Map([[7, { room: 2, used: 3 }]]));
  // b costs 2 and does not fit after a; c would, but order is kept.
  assert.deepEqual([...held], [key('b'), key('c')]);
  assert.deepEqual([...spent], [[7, 1]]);
});

test('suppressed deliveries cost nothing; unbudgeted recipients are not paced', () => {
  const deliveries = [delivery('a', { suppressed: 'opted_out' }), delivery('b'), delivery('free')];
  const budgetOf = new Map([
    [key('a'), 7],
    [key('b'), 7],
  ]);
  const { held, spent } = admitByBudget({ deliveries }, budgetOf, new Map([[7, { room: 1, used: 0 }]]));
  assert.deepEqual([...held], []);
  assert.deepEqual([...spent], [[7, 1]]);
});

test('an empty window admits one recipient costing more than the budget; a used one does not', () => {
  const deliveries = [delivery('a'), delivery('a', { channel: 'email' }), delivery('a', { channel: 'sms' })];
  const budgetOf = new Map([[key('a'), 7]]);
  assert.deepEqual(
    [...admitByBudget({ deliveries }, budgetOf, new Map([[7, { room: 2, used: 0 }]])).spent],
    [[7, 3]],
  );
  assert.deepEqual(
    [...admitByBudget({ deliveries }, budgetOf, new Map([[7, { room: 2, used: 1 }]])).held],
    [key('a')],
  );
});
