import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  advanceRun,
  checkSteps,
  nextLocalTime,
  type RunFacts,
  type RunState,
  type Step,
} from './workflow.js';
import { ProblemError } from './problems.js';

const now = new Date('2026-03-07T12:00:00Z');
const facts = (over: Partial<RunFacts> = {}): RunFacts => ({
  now,
  timeZone: 'UTC',
  attributes: {},
  version: 1,
  outcome: null,
  ...over,
});
const run = (steps: Step[], over: Partial<RunState> = {}): RunState => ({
  steps,
  step: 0,
  phase: 'start',
  lastOutcome: null,
  sentVersion: null,
  waitUntil: null,
  sent: false,
  ...over,
});

test('a delay waits, then the run ends with the notification’s own send', () => {
  const steps: Step[] = [{ type: 'delay', for: '10m' }];
  const first = advanceRun(run(steps), facts());
  assert.equal(first.state, 'running');
  assert.equal(first.phase, 'waiting');
  assert.equal(first.dueAt.toISOString(), '2026-03-07T12:10:00.000Z');
  assert.deepEqual(first.effects, []);
  const second = advanceRun(run(steps, { step: first.step, phase: first.phase }), facts());
  assert.equal(second.state, 'done');
  assert.deepEqual(second.effects, [{ kind: 'send', channels: null }]);
});

test('until: the next such local time in the user’s zone, across a DST change', () => {
  // New York moves to daylight time on 2026-03-08 at 02:00: 09:00 is 14:00Z before, 13:00Z after.
  assert.equal(
    nextLocalTime(new Date('2026-03-07T15:00:00Z'), '09:00', 'America/New_York').toISOString(),
    '2026-03-08T13:00:00.000Z',
  );
  assert.equal(
    nextLocalTime(new Date('2026-03-07T13:00:00Z'), '09:00', 'America/New_York').toISOString(),
    '2026-03-07T14:00:00.000Z',
  );
  // 02:30 does not happen on 2026-03-08 in New York: moved forward by the gap.
  assert.equal(
    nextLocalTime(new Date('2026-03-08T05:00:00Z'), '02:30', 'America/New_York').toISOString(),
    '2026-03-08T07:30:00.000Z',
  );
  assert.equal(
    nextLocalTime(new Date('2026-03-07T12:00:00Z'), '09:00', 'Asia/Seoul').toISOString(),
    '2026-03-08T00:00:00.000Z',
  );
});

test('escalation: first channel, then the second unless read or updated in between', () => {
  const steps: Step[] = [{ type: 'escalation', first: 'in_app', then: 'sms', within: '5m' }];
  const started = advanceRun(run(steps), facts({ version: 3 }));
  assert.deepEqual(started.effects, [{ kind: 'send', channels: ['in_app'] }]);
  assert.equal(started.sentVersion, 3);
  assert.equal(started.waitUntil?.toISOString(), '2026-03-07T12:05:00.000Z');
  assert.equal(started.dueAt.toISOString(), '2026-03-07T12:00:15.000Z', 'first check after 15 s');
  const waiting = run(steps, {
    phase: 'waiting',
    sent: true,
    sentVersion: 3,
    waitUntil: new Date('2026-03-07T12:00:00Z'),
  });
  assert.deepEqual(advanceRun(waiting, facts({ version: 3, outcome: 'delivered' })).effects, [
    { kind: 'send', channels: ['sms'] },
  ]);
  assert.deepEqual(advanceRun(waiting, facts({ version: 3, outcome: 'read' })).effects, []);
  assert.deepEqual(advanceRun(waiting, facts({ version: 4, outcome: 'delivered' })).effects, []);
});

test('a waiting escalation: checked early, second channel at once when the first failed', () => {
  const steps: Step[] = [{ type: 'escalation', first: 'push', then: 'sms', within: '10m' }];
  // First sent at 12:00, so the wait ends 12:10; checked at 12:00:15.
  const waiting = run(steps, {
    phase: 'waiting',
    sent: true,
    sentVersion: 1,
    waitUntil: new Date('2026-03-07T12:10:00Z'),
  });
  const at = (iso: string, outcome: RunFacts['outcome']) =>
    advanceRun(waiting, facts({ now: new Date(iso), outcome }));
  const early = at('2026-03-07T12:00:15Z', 'pending');
  assert.deepEqual(early.effects, []);
  assert.equal(early.state, 'running');
  assert.equal(early.dueAt.toISOString(), '2026-03-07T12:00:30.000Z', 'then at twice the time elapsed');
  assert.equal(at('2026-03-07T12:06:00Z', 'delivered').dueAt.toISOString(), '2026-03-07T12:10:00.000Z');
  assert.deepEqual(at('2026-03-07T12:00:15Z', 'failed').effects, [{ kind: 'send', channels: ['sms'] }]);
  const read = at('2026-03-07T12:00:15Z', 'read');
  assert.deepEqual(read.effects, []);
  assert.equal(read.state, 'done');
  assert.deepEqual(at('2026-03-07T12:10:00Z', 'delivered').effects, [{ kind: 'send', channels: ['sms'] }]);
});

test('conditions on attributes and on the previous outcome skip a step', () => {
  const steps: Step[] = [
    { type: 'send', channels: ['in_app'] },
    { type: 'send', channels: ['sms'], if: { attributes: { plan: 'pro' } } },
    { type: 'send', channels: ['email'], if: { previous: 'failed' } },
  ];
  const pro = advanceRun(run(steps), facts({ attributes: { plan: 'pro' }, outcome: 'delivered' }));
  assert.deepEqual(pro.effects, [
    { kind: 'send', channels: ['in_app'] },
    { kind: 'send', channels: ['sms'] },
  ]);
  const free = advanceRun(run(steps), facts({ attributes: { plan: 'free' }, outcome: 'failed' }));
  assert.deepEqual(free.effects, [
    { kind: 'send', channels: ['in_app'] },
    { kind: 'send', channels: ['email'] },
  ]);
});

test('a digest step hands the run to the digest and ends it', () => {
  const result = advanceRun(run([{ type: 'digest', key: 'k', window: '1h', max_items: 5 }]), facts());
  assert.equal(result.state, 'done');
  assert.deepEqual(result.effects, [{ kind: 'digest', key: 'k', windowMs: 3_600_000, maxItems: 5 }]);
});

test('checkSteps refuses what the schema lets through but cannot run', () => {
  const refuse = (steps: Step[], channels: ('in_app' | 'sms')[] = ['in_app'], templated = true) =>
    assert.throws(
      () => checkSteps(steps, channels, templated),
      (e: unknown) => e instanceof ProblemError && e.code === 'workflow_invalid',
    );
  refuse([{ type: 'delay', for: '31d' }]);
  refuse([{ type: 'delay' }]);
  refuse([{ type: 'digest', key: 'k', window: '8d' }]);
  refuse([{ type: 'digest', key: 'k', window: '1h' }], ['in_app'], false);
  refuse([{ type: 'escalation', first: 'in_app', then: 'sms', within: '1m' }]);
  refuse([{ type: 'escalation', first: 'in_app', then: 'in_app', within: '1m' }]);
  checkSteps(
    [
      { type: 'delay', until: '09:00' },
      { type: 'escalation', first: 'in_app', then: 'sms', within: '1h' },
    ],
    ['in_app', 'sms'],
    false,
  );
});
