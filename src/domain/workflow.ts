// Multi-step sends (docs/workflows.md): the step syntax, its checks at ingest, and the pure
// decision of what a workflow run does next. The worker's workflow stage loads a run and the
// facts it needs, calls advanceRun, and writes the result with its effects in one transaction.
import { Type, type Static } from 'typebox';
import { channels, type Channel } from './notification.js';
import { ProblemError } from './problems.js';
import { localTime, parseLocalTime, zonedInstant } from './preferences.js';

export const maxSteps = 10;
const maxDelayMs = 30 * 86_400_000;
const maxWindowMs = 7 * 86_400_000;
export const maxDigestItems = 1000;

const Duration = Type.String({
  pattern: '^[1-9][0-9]{0,6}(s|m|h|d)$',
  description: 'A whole number of seconds, minutes, hours or days: `30s`, `10m`, `1h`, `2d`.',
});
const ChannelName = Type.Unsafe<Channel>(Type.Union(channels.map((c) => Type.Literal(c))));
const Condition = Type.Object(
  {
    attributes: Type.Optional(
      Type.Record(
        Type.String({ maxLength: 64 }),
        Type.Union([Type.String({ maxLength: 256 }), Type.Number(), Type.Boolean()]),
        {
          maxProperties: 10,
          description: "Each named user attribute must equal the value (the user's `attributes`).",
        },
      ),
    ),
    previous: Type.Optional(
      Type.Union([Type.Literal('delivered'), Type.Literal('read'), Type.Literal('failed')], {
        description: "The outcome of the run's sends so far (read counts as delivered).",
      }),
    ),
  },
  {
    additionalProperties: false,
    description: 'The step runs only when all of these hold; else it is skipped.',
  },
);
const If = Type.Optional(Condition);

const DelayStep = Type.Object(
  {
    type: Type.Literal('delay'),
    for: Type.Optional(Duration),
    until: Type.Optional(
      Type.String({
        pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$',
        description: "Next HH:MM in the user's time zone.",
      }),
    ),
    if: If,
  },
  { additionalProperties: false },
);
const DigestStep = Type.Object(
  {
    type: Type.Literal('digest'),
    key: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_.:-]+$' }),
    window: Duration,
    max_items: Type.Optional(Type.Integer({ minimum: 1, maximum: maxDigestItems })),
    if: If,
  },
  { additionalProperties: false },
);
const EscalationStep = Type.Object(
  {
    type: Type.Literal('escalation'),
    first: ChannelName,
    then: ChannelName,
    within: Duration,
    if: If,
  },
  { additionalProperties: false },
);
const SendStep = Type.Object(
  {
    type: Type.Literal('send'),
    channels: Type.Optional(Type.Array(ChannelName, { minItems: 1, uniqueItems: true })),
    if: If,
  },
  { additionalProperties: false },
);

export const StepsSchema = Type.Array(Type.Union([DelayStep, DigestStep, EscalationStep, SendStep]), {
  minItems: 1,
  maxItems: maxSteps,
  description: 'Workflow steps, run in order per user (docs/workflows.md).',
});

export type Step = Static<typeof StepsSchema>[number];
export type StepCondition = Static<typeof Condition>;

export function durationMs(text: string): number {
  const m = /^([1-9][0-9]{0,6})(s|m|h|d)$/.exec(text);
  if (m === null) return Number.NaN;
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}

/** Checks what the schema cannot: bounds, the order of steps, channels of the request. */
export function checkSteps(
  steps: readonly Step[],
  requestChannels: readonly Channel[],
  templated: boolean,
): void {
  const errors: { field: string; message: string }[] = [];
  const bad = (i: number, part: string, message: string) =>
    errors.push({ field: `body/steps/${String(i)}${part}`, message });
  const bounded = (i: number, part: string, text: string, max: number) => {
    if (!(durationMs(text) <= max)) bad(i, part, `at most ${String(max / 86_400_000)} days`);
  };
  steps.forEach((step, i) => {
    switch (step.type) {
      case 'delay':
        if ((step.for === undefined) === (step.until === undefined))
          bad(i, '', 'needs exactly one of for, until');
        if (step.for !== undefined) bounded(i, '/for', step.for, maxDelayMs);
        break;
      case 'digest':
        bounded(i, '/window', step.window, maxWindowMs);
        if (i !== steps.length - 1) bad(i, '', 'a digest must be the last step');
        if (!templated) bad(i, '', 'a digest needs a template (its summary is rendered with the items)');
        break;
      case 'escalation':
        bounded(i, '/within', step.within, maxWindowMs);
        for (const c of [step.first, step.then])
          if (!requestChannels.includes(c)) bad(i, '', `channel "${c}" is not among the request's channels`);
        if (step.first === step.then) bad(i, '', 'first and then must differ');
        break;
      case 'send':
        for (const c of step.channels ?? [])
          if (!requestChannels.includes(c))
            bad(i, '/channels', `channel "${c}" is not among the request's channels`);
        break;
    }
  });
  if (errors.length > 0)
    throw new ProblemError(
      'workflow_invalid',
      errors.map((e) => `${e.field}: ${e.message}`).join('; '),
      errors,
    );
}

/** The next instant the local wall-clock time `hhmm` happens in `timeZone` after `at`. */
export function nextLocalTime(at: Date, hhmm: string, timeZone: string): Date {
  const minutes = parseLocalTime(hhmm) ?? 0;
  const local = localTime(at, timeZone);
  for (let days = 0; days <= 2; days += 1) {
    const d = new Date(Date.UTC(local.year, local.month - 1, local.day + days));
    const candidate = zonedInstant(
      { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() },
      minutes,
      timeZone,
    );
    if (candidate.getTime() > at.getTime()) return candidate;
  }
  return new Date(at.getTime() + 86_400_000);
}

export type SendOutcome = 'read' | 'delivered' | 'failed' | 'pending';

export interface RunState {
  steps: readonly Step[];
  step: number;
  phase: 'start' | 'waiting';
  lastOutcome: string | null;
  /** The notification's version when the run's escalation sent its first channel. */
  sentVersion: number | null;
  /** When the waiting escalation's `within` runs out (it is checked earlier too). */
  waitUntil: Date | null;
  /** Whether the run has released its recipient to the fan-out at least once. */
  sent: boolean;
}

export interface RunFacts {
  now: Date;
  timeZone: string;
  attributes: Readonly<Record<string, unknown>>;
  /** The notification's current version (a PATCH raises it). */
  version: number;
  /** What the run's sends came to so far; null when it sent nothing yet. */
  outcome: SendOutcome | null;
}

export type Effect =
  | { kind: 'send'; channels: Channel[] | null }
  | { kind: 'digest'; key: string; windowMs: number; maxItems: number };

export interface RunResult {
  step: number;
  phase: 'start' | 'waiting';
  state: 'running' | 'done';
  dueAt: Date;
  lastOutcome: string | null;
  sentVersion: number | null;
  waitUntil: Date | null;
  effects: Effect[];
}

export function conditionHolds(condition: StepCondition | undefined, facts: RunFacts): boolean {
  if (condition === undefined) return true;
  for (const [name, value] of Object.entries(condition.attributes ?? {}))
    if (facts.attributes[name] !== value) return false;
  if (condition.previous !== undefined) {
    const o = facts.outcome;
    if (condition.previous === 'delivered' && o !== 'delivered' && o !== 'read') return false;
    if (condition.previous !== 'delivered' && o !== condition.previous) return false;
  }
  return true;
}

/**
 * Runs a due workflow run forward until it must wait or ends. Pure: the caller writes the
 * result and performs the effects (releasing the recipient, joining a digest) in one
 * transaction, so a crash leaves the run where it was and the next claim repeats the step.
 */
export function advanceRun(run: RunState, facts: RunFacts): RunResult {
  let { step, phase, lastOutcome, sentVersion, sent, waitUntil } = run;
  const effects: Effect[] = [];
  const now = facts.now;
  const wait = (dueAt: Date): RunResult => ({
    step,
    phase: 'waiting',
    state: 'running',
    dueAt,
    lastOutcome,
    sentVersion,
    waitUntil,
    effects,
  });
  const next = () => {
    step += 1;
    phase = 'start';
  };
  while (step < run.steps.length) {
    const s = run.steps[step];
    if (s === undefined) break;
    if (phase === 'start' && !conditionHolds(s.if, { ...facts, outcome: sent ? facts.outcome : null })) {
      lastOutcome = 'skipped';
      next();
      continue;
    }
    switch (s.type) {
      case 'delay':
        if (phase === 'waiting') {
          next();
          continue;
        }
        return wait(
          s.for !== undefined
            ? new Date(now.getTime() + durationMs(s.for))
            : nextLocalTime(now, s.until ?? '00:00', facts.timeZone),
        );
      case 'send':
        effects.push({ kind: 'send', channels: s.channels ?? null });
        sent = true;
        lastOutcome = 'sent';
        next();
        continue;
      case 'digest':
        effects.push({
          kind: 'digest',
          key: s.key,
          windowMs: durationMs(s.window),
          maxItems: s.max_items ?? maxDigestItems,
        });
        return {
          step: step + 1,
          phase: 'start',
          state: 'done',
          dueAt: now,
          lastOutcome: 'digested',
          sentVersion,
          waitUntil,
          effects,
        };
      case 'escalation':
        if (phase === 'start') {
          effects.push({ kind: 'send', channels: [s.first] });
          sentVersion = facts.version;
          lastOutcome = 'sent';
          waitUntil = new Date(now.getTime() + durationMs(s.within));
          return wait(nextEscalationCheck(now, waitUntil, durationMs(s.within)));
        }
        {
          // A read or an update of the notification stops the escalation; a failed first
          // channel, or the end of `within`, sends the second.
          lastOutcome = facts.outcome;
          const stopped = facts.outcome === 'read' || facts.version !== sentVersion;
          const end = waitUntil ?? now;
          if (!stopped && facts.outcome !== 'failed' && now.getTime() < end.getTime())
            return wait(nextEscalationCheck(now, end, durationMs(s.within)));
          if (!stopped) {
            effects.push({ kind: 'send', channels: [s.then] });
            lastOutcome = 'escalated';
          }
          waitUntil = null;
          next();
          continue;
        }
    }
  }
  // Steps that never sent (delays, skipped steps) end with the notification's own send.
  if (!sent) effects.push({ kind: 'send', channels: null });
  return { step, phase: 'start', state: 'done', dueAt: now, lastOutcome, sentVersion, waitUntil, effects };
}

/** The first check of a waiting escalation comes after this long (then ever less often). */
export const escalationFirstCheckMs = 15_000;

/**
 * When a waiting escalation is looked at next: checks for a read or a failed first channel
 * come at 15 s after the first send, then at twice the time elapsed, and at the end of
 * `within` at the latest, so a long wait costs a handful of checks.
 */
function nextEscalationCheck(now: Date, end: Date, withinMs: number): Date {
  const elapsed = now.getTime() - (end.getTime() - withinMs);
  const next = now.getTime() + Math.max(escalationFirstCheckMs, elapsed);
  return new Date(Math.min(end.getTime(), next));
}
