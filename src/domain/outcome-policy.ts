// What an attempt's result does to its delivery, decided in one place: a provider's answer, a
// call held back before it was made, a provider that threw, a lease the rescuer found expired,
// and a provider's acceptance that arrived after the attempt's lease was lost. The dispatcher's
// outcome recorder and the lease rescuer call decideOutcome and write what it returns; their SQL
// only writes these values. docs/decisions/0006-one-outcome-policy.md gives the reasons.
import type { DeliveryState } from './delivery.js';
import type { DeliveryOutcome } from './outcome.js';
import { nextRetry, type RetryPolicy } from './retry-policy.js';

/** What sending produced: the provider's answer, an exception from it, or a call held back. */
export type CallResult =
  | DeliveryOutcome
  /** The provider's send() threw: a bug or an answer it does not know; retried like `retry`. */
  | { kind: 'threw'; message: string }
  /**
   * No call was made: the provider guard held it back (circuit open, rate limit, bulkhead) or
   * the claimed batch spent its render budget first. Not the delivery's fault.
   */
  | { kind: 'deferred'; reason: string; delayMs: number };

/** Every result an attempt can end with: what sending produced, or no answer within the lease. */
export type AttemptResult = CallResult | { kind: 'lease_expired' };

/** The states an attempt's result moves a delivery to. */
export type OutcomeState = Extract<DeliveryState, 'sent' | 'retrying' | 'failed' | 'target_invalid' | 'dead'>;

export interface OutcomePolicy {
  /** Backoff between attempts; the attempt budget is each delivery's own `maxAttempts`. */
  retry: Pick<RetryPolicy, 'baseMs' | 'maxMs'>;
  /** How long a provider's circuit stays open: a configuration error waits that long. */
  circuitOpenMs: number;
}

/**
 * Where the delivery is when the result is decided. `current`: still `sending` under the lease
 * the result's attempt took (the dispatcher assumes so and its write checks it; the rescuer holds
 * the row locked). `superseded`: it moved on since (rescued, claimed again, replayed, finished),
 * and this is its state and attempts now.
 */
export type LeaseView = { kind: 'current' } | { kind: 'superseded'; state: DeliveryState; attempts: number };

export interface OutcomeInput {
  /** The attempt the result is from: the delivery's `attempts` as its claim set them (1-based). */
  attempt: number;
  /** The delivery's attempt budget (`max_attempts`, stored at fan-out). */
  maxAttempts: number;
  lease: LeaseView;
  result: AttemptResult;
  /** The send was aborted at shutdown: a `retry` or exception then means "released", not failed. */
  aborted: boolean;
  policy: OutcomePolicy;
  /** Uniform in [0, 1): the jitter. */
  random: () => number;
}

/** What to write: the delivery's new values, and the event that records the move. */
export interface Transition {
  /** The write applies only to a row still in this state with these attempts. */
  from: DeliveryState;
  fromAttempts: number;
  to: OutcomeState;
  /** Attempts to store: `fromAttempts`, or one less when the attempt does not count. */
  attempts: number;
  /** Due again this long after the writer's clock (the database's `now()`); null: unchanged. */
  delayMs: number | null;
  /** null: unchanged (a send keeps the error of the attempt before it). */
  lastError: string | null;
  /** null: unchanged. */
  providerMessageId: string | null;
  /** Stop using the target: disable the push device, remove the chat webhook URL. */
  disableTarget: boolean;
  /** A provider's acceptance recorded after the lease of its attempt was lost. */
  acceptedLate: boolean;
  event: { attempt: number; detail: string | null };
}

/**
 * `ignore`: nothing to write. `superseded`: the result's lease was lost and the result changes
 * nothing (only an acceptance does); `already_sent`: an acceptance for a delivery recorded as
 * sent since (the later call was a duplicate); `final`: an acceptance for a delivery that ended
 * otherwise and stays so (failed, target invalid, canceled).
 */
export type OutcomeDecision =
  | { kind: 'write'; transition: Transition }
  | { kind: 'ignore'; reason: 'superseded' | 'already_sent' | 'final' };

export const leaseExpiredError = 'lease expired (worker stopped or hung)';

export function decideOutcome(input: OutcomeInput): OutcomeDecision {
  const { lease } = input;
  if (lease.kind === 'superseded') return decideLateResult(input, lease);
  return { kind: 'write', transition: decideCurrent(input) };
}

/** What a move from `sending` changes beside its state and error; the rest stays as it was. */
interface Change {
  /** Default: the attempt's number (the attempt counts). */
  attempts?: number;
  delayMs?: number;
  providerMessageId?: string | null;
  disableTarget?: boolean;
  /** The event's detail when it is not the error. */
  eventDetail?: string | null;
}

/**
 * A move from `sending`, built as one literal with every field: on Node 20 an object spread
 * followed by keys its source lacks takes V8's slow clone path (about 1–3 µs a call), and this
 * runs once per delivery.
 */
function moveFromSending(
  attempt: number,
  to: OutcomeState,
  error: string | null,
  change: Change = {},
): Transition {
  return {
    from: 'sending',
    fromAttempts: attempt,
    to,
    attempts: change.attempts ?? attempt,
    delayMs: change.delayMs ?? null,
    lastError: error,
    providerMessageId: change.providerMessageId ?? null,
    disableTarget: change.disableTarget ?? false,
    acceptedLate: false,
    event: { attempt, detail: change.eventDetail === undefined ? error : change.eventDetail },
  };
}

/** The result of the attempt that holds the lease: the state machine's `sending` → next. */
function decideCurrent(input: OutcomeInput): Transition {
  const { attempt, result, policy, random } = input;
  const moveTo = (to: OutcomeState, detail: string, change?: Change) =>
    moveFromSending(attempt, to, detail, change);
  // Not the delivery's fault: back to the queue with its attempt not counted.
  const notCounted = (detail: string, delayMs: number) =>
    moveTo('retrying', detail, { attempts: attempt - 1, delayMs });
  switch (result.kind) {
    case 'sent':
      return moveFromSending(attempt, 'sent', null, {
        providerMessageId: result.providerMessageId,
        eventDetail: result.providerMessageId,
      });
    case 'failed':
      return moveTo('failed', result.reason);
    case 'target_invalid':
      return moveTo('target_invalid', result.reason, { disableTarget: true });
    case 'config_error':
      // It waits for the provider's circuit; the jitter spreads the waiting deliveries.
      return notCounted(
        `provider configuration error: ${result.reason}`,
        policy.circuitOpenMs + Math.floor(random() * 1000),
      );
    case 'deferred': {
      // Jitter spreads the deferred deliveries so they do not all come back in the same instant.
      const delayMs = Math.max(0, result.delayMs);
      return notCounted(
        `deferred: ${result.reason.replaceAll('_', ' ')}`,
        delayMs + Math.floor(random() * Math.min(1000, delayMs / 4 + 10)),
      );
    }
    case 'lease_expired': {
      // An attempt that never answered counts: a message that kills workers cannot loop forever.
      // run_at stays as it was (past): due at once, and claimed ahead of what became due since,
      // so a killed worker's deliveries do not wait behind a backlog.
      const dead = attempt >= input.maxAttempts;
      return moveTo(dead ? 'dead' : 'retrying', leaseExpiredError, { eventDetail: 'lease expired' });
    }
    case 'retry':
    case 'threw': {
      const reason = result.kind === 'retry' ? result.reason : `provider error: ${result.message}`;
      // Released at shutdown: due again now, for whichever worker claims next.
      if (input.aborted) return notCounted('released at shutdown', 0);
      const retryAfterMs = result.kind === 'retry' ? result.retryAfterMs : undefined;
      const next = nextRetry(
        { ...policy.retry, maxAttempts: input.maxAttempts },
        attempt,
        random,
        retryAfterMs,
      );
      if (next.kind === 'dead') return moveTo('dead', `${reason} (after ${String(attempt)} attempts)`);
      return moveTo('retrying', reason, { delayMs: next.delayMs });
    }
  }
}

/**
 * A result whose lease was lost (the rescuer took the delivery back, or it was claimed again).
 * Only an acceptance matters: the provider has the message, so the delivery is sent, whatever
 * retry, dead letter or new claim followed. Recording it ends a newer claim's lease too, so that
 * claim's outcome is fenced off and a replay finds nothing dead to send.
 */
function decideLateResult(
  input: OutcomeInput,
  now: Extract<LeaseView, { kind: 'superseded' }>,
): OutcomeDecision {
  const { result, attempt } = input;
  if (result.kind !== 'sent') return { kind: 'ignore', reason: 'superseded' };
  switch (now.state) {
    case 'pending':
    case 'retrying':
    case 'dead':
    case 'sending': {
      const id = result.providerMessageId;
      return {
        kind: 'write',
        transition: {
          from: now.state,
          fromAttempts: now.attempts,
          to: 'sent',
          attempts: now.attempts,
          delayMs: null,
          lastError: null,
          providerMessageId: id,
          disableTarget: false,
          acceptedLate: true,
          event: {
            attempt,
            detail: `accepted late, after the lease of attempt ${String(attempt)} was lost${id === null ? '' : `: ${id}`}`,
          },
        },
      };
    }
    case 'sent':
    case 'delivered':
    case 'bounced':
      return { kind: 'ignore', reason: 'already_sent' };
    case 'failed':
    case 'target_invalid':
    case 'canceled':
    case 'suppressed':
      return { kind: 'ignore', reason: 'final' };
  }
}
