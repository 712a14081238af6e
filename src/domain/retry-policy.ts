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

/** A Retry-After header (RFC 9110 §10.2.3): delay-seconds or an HTTP-date, as milliseconds from now. */
export function parseRetryAfter(value: string | null, nowMs: number): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}
