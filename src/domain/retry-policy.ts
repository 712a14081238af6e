// Exponential backoff with full jitter, honouring a provider's Retry-After.
// Randomness is injected so tests are deterministic.

export interface RetryPolicy {
  maxAttempts: number;
  baseMs: number;
  maxMs: number;
}

export type RetryDecision = { kind: 'retry'; delayMs: number } | { kind: 'dead' };

/**
 * The longest Retry-After honoured: one day, the longest backoff RETRY_MAX_MS allows. A
 * receiver's header is input from outside: a 14-digit value would not fit a PostgreSQL interval,
 * and the statement recording the whole batch of outcomes would fail every time it is retried.
 */
export const retryAfterCapMs = 86_400_000;

/**
 * Decides what follows failed attempt number `attempt` (1-based). Full jitter
 * (delay uniform in [0, min(max, base·2^(attempt-1))]) spreads a burst of failures so
 * retries do not arrive as a storm; a Retry-After is a floor (up to `retryAfterCapMs`), never
 * shortened by jitter.
 */
export function nextRetry(
  policy: RetryPolicy,
  attempt: number,
  random: () => number,
  retryAfterMs?: number,
): RetryDecision {
  if (attempt >= policy.maxAttempts) return { kind: 'dead' };
  const ceiling = backoffMs(attempt - 1, policy);
  const jittered = Math.floor(random() * ceiling);
  // A small floor keeps a zero-jitter draw from retrying in the same instant.
  const asked = retryAfterMs === undefined || Number.isNaN(retryAfterMs) ? 0 : retryAfterMs;
  const delayMs = Math.max(jittered, Math.min(ceiling, 100), Math.min(asked, retryAfterCapMs));
  return { kind: 'retry', delayMs };
}

/**
 * Exponential backoff: `baseMs · 2^exponent`, at most `maxMs`. The ceiling of a retry's jitter,
 * and the wait of every loop that tries again after a failure (claiming, recording outcomes,
 * reconnecting LISTEN), with the loop's failures in a row as the exponent.
 */
export function backoffMs(exponent: number, bounds: { baseMs: number; maxMs: number }): number {
  // 2^1024 is Infinity and 0 · Infinity is NaN; long before 2^52 any cap is reached.
  return Math.min(bounds.maxMs, bounds.baseMs * 2 ** Math.min(exponent, 52));
}

/** A Retry-After header (RFC 9110 §10.2.3): delay-seconds or an HTTP-date, as milliseconds from now. */
export function parseRetryAfter(value: string | null, nowMs: number): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}
