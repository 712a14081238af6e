// The bulk governor's steps: while transactional work flows, halve over the target and grow back
// by a tenth of the cap under it, within one slot and the (runtime-changing) cap; without
// transactional work, back to the cap; off at target 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BulkGovernor } from './bulk-governor.js';

test('while transactional work flows, slots halve after a slow interval and grow back per quick one', () => {
  let cap = 150;
  const seen: number[] = [];
  const governor = new BulkGovernor({
    cap: () => cap,
    targetMs: 5,
    now: () => 10_000,
    onChange: (s) => seen.push(s),
  });
  assert.equal(governor.slots(), 150);
  governor.noteTransactional();
  assert.equal(governor.slots(), 75, 'halved at once when transactional work starts');
  governor.adjust(35);
  assert.equal(governor.slots(), 37);
  for (let i = 0; i < 9; i += 1) governor.adjust(3);
  assert.equal(governor.slots(), 150, 'back to the cap, never above it');
  assert.deepEqual(seen.slice(0, 3), [37, 52, 67]);
  for (let i = 0; i < 12; i += 1) governor.adjust(500);
  assert.equal(governor.slots(), 1, 'bulk keeps one slot however slow the loop');
  cap = 10;
  for (let i = 0; i < 20; i += 1) governor.adjust(1);
  assert.equal(governor.slots(), 10, 'a lowered cap (a larger reserved share) bounds it at once');
});

test('without transactional work for 2 s, a slow loop does not hold bulk back', () => {
  let now = 0;
  const governor = new BulkGovernor({ cap: () => 150, targetMs: 5, now: () => now });
  governor.noteTransactional();
  governor.adjust(50);
  assert.equal(governor.slots(), 37);
  now = 2_500;
  for (let i = 0; i < 10; i += 1) governor.adjust(50);
  assert.equal(governor.slots(), 150);
});

test('a target of 0 leaves bulk its whole cap', () => {
  const governor = new BulkGovernor({ cap: () => 150, targetMs: 0 });
  governor.noteTransactional();
  governor.adjust(1000);
  assert.equal(governor.slots(), 150);
});
