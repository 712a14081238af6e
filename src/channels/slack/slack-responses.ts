// How a Slack incoming webhook's answer maps to an outcome. Slack answers 200 "ok", or a status
// with a plain-text reason (https://api.slack.com/messaging/webhooks#handling_errors). The
// reason is matched against Slack's documented words and only a known word is kept: the URL is
// the caller's, so the text may come from any server, and its bytes never reach last_error.
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
  'team_disabled',
  'channel_is_archived',
]);

/** Every reason Slack documents for incoming webhooks (plus its 5xx and 429 words). */
const knownReasons = new Set([
  ...targetInvalid,
  'invalid_payload',
  'user_not_found',
  'posting_to_general_channel_denied',
  'too_many_attachments',
  'rollup_error',
  'rate_limited',
]);

export function classifySlackResponse(
  status: number,
  text: string,
  retryAfter: string | null,
  nowMs: number,
): DeliveryOutcome {
  if (status === 200) return { kind: 'sent', providerMessageId: null };
  const word = text.trim();
  const known = knownReasons.has(word) ? word : undefined;
  const reason = `HTTP ${String(status)}${known === undefined ? '' : ` ${known}`}`;
  if (status === 429 || status >= 500) {
    const retryAfterMs = parseRetryAfter(retryAfter, nowMs);
    return { kind: 'retry', reason, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
  }
  if ((known !== undefined && targetInvalid.has(known)) || status === 404 || status === 410)
    return { kind: 'target_invalid', reason };
  return { kind: 'failed', reason };
}
