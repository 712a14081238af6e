// Exponential backoff with full jitter, honouring a provider's Retry-After.
// Randomness is injected so tests are deterministic.

export interface RetryPolicy {
  maxAttempts: number;
  baseMs: number;
  maxMs: number;
}

export type RetryDecision = { kind: 'retry'; delayMs: number } | { kind: 'dead' };

/**
 * Decides what follows failed attempt number `attempt` (1-based). Full jitter
 * (delay uniform in [0, min(max, base·2^(attempt-1))]) spreads a burst of failures so
 * retries do not arrive as a storm; a Retry-After is a floor, never shortened by jitter.
 */
export function nextRetry(
  policy: RetryPolicy,
  attempt: number,
  random: () => number,
  retryAfterMs?: number,
): RetryDecision {
  if (attempt >= policy.maxAttempts) return { kind: 'dead' };
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** (attempt - 1));
  const jittered = Math.floor(random() * ceiling);
  // A small floor keeps a zero-jitter draw from retrying in the same instant.
  const delayMs = Math.max(jittered, Math.min(ceiling, 100), retryAfterMs ?? 0);
  return { kind: 'retry', delayMs };
}
