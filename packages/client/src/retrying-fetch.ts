// The fetch every SDK call goes through: a timeout per attempt, and retries with backoff for
// what is safe to repeat. A POST /v1/notifications carries an Idempotency-Key (the caller's or a
// new UUID) that every retry repeats, so Herald accepts it once however often it is sent.
import { HeraldTimeout } from './problem.js';

export interface RetryPolicy {
  /** Attempts after the first (default 3). */
  retries: number;
  /** Each attempt's time limit, headers and body (default 10 000 ms). */
  timeoutMs: number;
  /** First backoff; it doubles per retry, with jitter, up to 30 s (default 250 ms). */
  backoffMs: number;
}

/** Statuses after which a request that may be repeated is sent again. */
const retryStatuses = new Set([408, 429, 500, 502, 503, 504]);

/**
 * May this request be sent again after an unknown outcome (no answer, a 5xx)? GET, PUT, DELETE
 * and PATCH (versioned in Herald) mean the same when repeated; a POST only with an
 * Idempotency-Key. Any request may be repeated after a 429: Herald refused it before doing
 * anything.
 */
function repeatable(request: Request): boolean {
  return request.method !== 'POST' || request.headers.has('idempotency-key');
}

/** The answer's Retry-After (seconds or an HTTP date) in ms; undefined when absent or unreadable. */
export function retryAfterMs(response: Response): number | undefined {
  const value = response.headers.get('retry-after');
  if (value === null) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

function backoff(policy: RetryPolicy, attempt: number): number {
  const ceiling = Math.min(30_000, policy.backoffMs * 2 ** attempt);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function retryingFetch(
  policy: RetryPolicy,
  inner: typeof fetch = fetch,
): (request: Request) => Promise<Response> {
  return async (request) => {
    for (let attempt = 0; ; attempt++) {
      const last = attempt >= policy.retries;
      const signal = AbortSignal.timeout(policy.timeoutMs);
      let response: Response;
      try {
        response = await inner(new Request(request.clone(), { signal }));
        // The body too must arrive in time: read it under the same signal.
        const body = await response.arrayBuffer();
        response = new Response(response.status === 204 ? null : body, response);
      } catch (error) {
        const timedOut = signal.aborted;
        if (last || !repeatable(request)) {
          if (timedOut) throw new HeraldTimeout(request.method, request.url, policy.timeoutMs);
          throw error;
        }
        await sleep(backoff(policy, attempt));
        continue;
      }
      const retry =
        !last && retryStatuses.has(response.status) && (response.status === 429 || repeatable(request));
      if (!retry) return response;
      await sleep(retryAfterMs(response) ?? backoff(policy, attempt));
    }
  };
}
