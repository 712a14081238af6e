// How a webhook receiver's answer maps to an outcome. 2xx: sent. 408, 429 and 5xx: retry,
// honouring Retry-After (RFC 9110 §10.2.3: seconds or an HTTP-date). Other 4xx: the receiver
// rejects this message for good.
import type { DeliveryOutcome } from '../../domain/outcome.js';

export function parseRetryAfter(value: string | null, nowMs: number): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}

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
