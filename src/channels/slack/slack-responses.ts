// How a Slack incoming webhook's answer maps to an outcome. Slack answers 200 "ok", or a status
// with a plain-text reason (https://api.slack.com/messaging/webhooks#handling_errors).
import type { DeliveryOutcome } from '../../domain/outcome.js';
import { parseRetryAfter } from '../../domain/retry-policy.js';

/** Reasons meaning the webhook itself is gone or refused: stop using it. */
const targetInvalid = new Set([
  'action_prohibited',
  'invalid_token',
  'channel_not_found',
  'no_service',
  'no_service_id',
  'no_team',
  'channel_is_archived',
]);

export function classifySlackResponse(
  status: number,
  text: string,
  retryAfter: string | null,
  nowMs: number,
): DeliveryOutcome {
  const reason = text.trim().slice(0, 100) || `HTTP ${String(status)}`;
  if (status === 200) return { kind: 'sent', providerMessageId: null };
  if (status === 429 || status >= 500) {
    const retryAfterMs = parseRetryAfter(retryAfter, nowMs);
    return {
      kind: 'retry',
      reason: `${String(status)} ${reason}`,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    };
  }
  if (targetInvalid.has(reason) || status === 404 || status === 410)
    return { kind: 'target_invalid', reason: `${String(status)} ${reason}` };
  return { kind: 'failed', reason: `${String(status)} ${reason}` };
}
