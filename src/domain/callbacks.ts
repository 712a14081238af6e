// Status callbacks to calling services (docs/callbacks.md): the event types a subscription may
// name, and what follows one attempt to deliver a callback message.
import { nextRetry, type RetryPolicy } from './retry-policy.js';

export const callbackEventTypes = [
  'notification.accepted',
  'delivery.sent',
  'delivery.delivered',
  'delivery.failed',
  'delivery.dead',
  'delivery.suppressed',
  'inbox.read',
  'inbox.clicked',
  'email.opened',
  'email.clicked',
  'email.bounced',
  'email.complained',
] as const;
export type CallbackEventType = (typeof callbackEventTypes)[number];

/** The result of one POST to a subscriber. */
export type CallbackAttempt =
  | { kind: 'delivered' }
  /** An answer that is not 2xx, or no answer (timeout, refused, reset, body too large). */
  | { kind: 'retry'; reason: string; retryAfterMs?: number }
  /** Cannot succeed by trying again: the outbound policy refuses every address of the target. */
  | { kind: 'give_up'; reason: string };

export interface CallbackRetryPolicy extends RetryPolicy {
  /** Give up once this long has passed since the first attempt of the series. */
  maxAgeMs: number;
}

export type CallbackDecision =
  { kind: 'delete' } | { kind: 'retry'; delayMs: number; reason: string } | { kind: 'dead'; reason: string };

/**
 * What follows attempt number `attempt` (1-based) of a message first tried `ageMs` ago: a
 * delivered message is deleted; a failed one is retried with exponential backoff and full jitter
 * (a Retry-After is a floor, capped by `maxMs`) until `maxAttempts` or `maxAgeMs`, then dead.
 */
export function decideCallback(
  result: CallbackAttempt,
  attempt: number,
  ageMs: number,
  policy: CallbackRetryPolicy,
  random: () => number,
): CallbackDecision {
  if (result.kind === 'delivered') return { kind: 'delete' };
  if (result.kind === 'give_up') return { kind: 'dead', reason: result.reason };
  // Retry-After within bounds: never longer than the longest backoff.
  const asked = result.retryAfterMs === undefined ? undefined : Math.min(result.retryAfterMs, policy.maxMs);
  const next = nextRetry(policy, attempt, random, asked);
  if (next.kind === 'dead' || ageMs + next.delayMs > policy.maxAgeMs)
    return { kind: 'dead', reason: result.reason };
  return { kind: 'retry', delayMs: next.delayMs, reason: result.reason };
}
