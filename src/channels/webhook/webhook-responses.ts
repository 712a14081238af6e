// How a webhook receiver's answer maps to an outcome. 2xx: sent. 408, 429 and 5xx: retry,
// honouring Retry-After (RFC 9110 §10.2.3: seconds or an HTTP-date). Other 4xx: the receiver
// rejects this message for good.
import type { DeliveryOutcome } from '../../domain/outcome.js';
import { parseRetryAfter } from '../../domain/retry-policy.js';

export function classifyWebhookResponse(
  status: number,
  retryAfter: string | null,
  requestId: string | null,
  nowMs: number,
): DeliveryOutcome {
  if (status >= 200 && status < 300) return { kind: 'sent', providerMessageId: requestId };
  const retryAfterMs = parseRetryAfter(retryAfter, nowMs);
  if (status === 408 || status === 429 || status >= 500) {
    return {
      kind: 'retry',
      reason: `HTTP ${String(status)}`,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    };
  }
  return { kind: 'failed', reason: `HTTP ${String(status)}` };
}
