// How a push service's answer maps to an outcome (RFC 8030 §5, RFC 8292 §4; autopush's error
// list, https://mozilla-services.github.io/autopush-rs/errors.html); docs/providers/web-push.md.
import { Type } from 'typebox';
import { Value } from 'typebox/value';
import type { DeliveryOutcome } from '../../domain/outcome.js';
import { parseRetryAfter } from '../../domain/retry-policy.js';

/** autopush's JSON error body; other services send text or nothing. */
const AutopushError = Type.Object({ errno: Type.Integer() });

export function classifyWebPushResponse(
  status: number,
  text: string,
  headers: { location: string | null; retryAfter: string | null },
  nowMs: number,
): DeliveryOutcome {
  // 201 Created is the RFC's answer; some services answer 200 or 202.
  if (status >= 200 && status < 300) return { kind: 'sent', providerMessageId: headers.location };
  const reason = `webpush ${String(status)}${errno(text)}`;
  if (status === 404 || status === 410) return { kind: 'target_invalid', reason }; // expired or unsubscribed
  // VAPID refused: bad signature, aud, exp or key. A key that differs from the one a single
  // subscription was made with looks the same on the wire, so it is treated as ours to fix.
  if (status === 401 || status === 403) return { kind: 'config_error', reason };
  if (status === 429 || status >= 500) {
    const retryAfterMs = parseRetryAfter(headers.retryAfter, nowMs);
    return { kind: 'retry', reason, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
  }
  // 400 (headers or encryption), 413 (payload too large) and anything else: this message cannot go.
  return { kind: 'failed', reason };
}

function errno(text: string): string {
  try {
    const body: unknown = JSON.parse(text);
    return Value.Check(AutopushError, body) ? ` errno ${String(body.errno)}` : '';
  } catch {
    return '';
  }
}
