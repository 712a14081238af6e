// How FCM's answers map to outcomes. Errors are google.rpc.Status JSON; the FcmError
// `errorCode` in `details` is read first, then `status`, as firebase-admin does
// (https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode); docs/providers/fcm.md.
import type { DeliveryOutcome } from '../../domain/outcome.js';
import { parseRetryAfter } from '../../domain/retry-policy.js';
import { Type } from 'typebox';
import { Value } from 'typebox/value';

/** What an error body says, reduced to what the table needs. */
export interface FcmErrorAnswer {
  httpStatus: number;
  /** google.rpc.Status `status`, e.g. 'NOT_FOUND'; null when the body is not google.rpc.Status. */
  status: string | null;
  /** FcmError `errorCode`, e.g. 'UNREGISTERED'; null when absent. */
  errorCode: string | null;
  /** Fields named by a google.rpc.BadRequest detail. */
  fieldViolations: string[];
}

const fcmErrorType = 'type.googleapis.com/google.firebase.fcm.v1.FcmError';
const badRequestType = 'type.googleapis.com/google.rpc.BadRequest';

/** google.rpc.Status as FCM sends it; other properties are allowed and ignored. */
const FcmStatusBody = Type.Object({
  error: Type.Object({
    status: Type.Optional(Type.String()),
    details: Type.Optional(
      Type.Array(
        Type.Object({
          '@type': Type.String(),
          errorCode: Type.Optional(Type.String()),
          fieldViolations: Type.Optional(Type.Array(Type.Object({ field: Type.Optional(Type.String()) }))),
        }),
      ),
    ),
  }),
});

/** Reads an error body; a body that is not google.rpc.Status (a proxy's HTML page) leaves only the HTTP status. */
export function parseFcmError(httpStatus: number, text: string): FcmErrorAnswer {
  const answer: FcmErrorAnswer = { httpStatus, status: null, errorCode: null, fieldViolations: [] };
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return answer;
  }
  if (!Value.Check(FcmStatusBody, body)) return answer;
  answer.status = body.error.status ?? null;
  for (const detail of body.error.details ?? []) {
    if (detail['@type'] === fcmErrorType && detail.errorCode !== undefined)
      answer.errorCode ??= detail.errorCode;
    if (detail['@type'] === badRequestType)
      for (const violation of detail.fieldViolations ?? [])
        answer.fieldViolations.push(violation.field ?? '');
  }
  return answer;
}

/** Outcome of an FCM error answer; 401 UNAUTHENTICATED is handled by the caller (refresh, retry once). */
export function classifyFcmError(
  answer: FcmErrorAnswer,
  retryAfter: string | null,
  nowMs: number,
): DeliveryOutcome {
  const code = answer.errorCode ?? answer.status ?? 'HTTP error';
  const reason = `fcm ${String(answer.httpStatus)} ${code}`;
  const retry = (minimumMs: number): DeliveryOutcome => {
    const asked = parseRetryAfter(retryAfter, nowMs);
    if (asked === undefined && minimumMs === 0) return { kind: 'retry', reason };
    return { kind: 'retry', reason, retryAfterMs: Math.max(asked ?? 0, minimumMs) };
  };
  switch (code) {
    case 'UNREGISTERED': // the app was uninstalled or the token expired: delete it
    case 'SENDER_ID_MISMATCH': // the token belongs to another Firebase project
      return { kind: 'target_invalid', reason };
    case 'INVALID_ARGUMENT':
      // A BadRequest detail names the offending fields (payload too big, reserved data key, bad
      // TTL): the message is at fault, unless the field is the token itself. Without one, the
      // FcmError INVALID_ARGUMENT is FCM's "not a valid FCM registration token".
      if (answer.fieldViolations.length > 0)
        return answer.fieldViolations.every((f) => f === 'message.token')
          ? { kind: 'target_invalid', reason }
          : { kind: 'failed', reason };
      return answer.errorCode === 'INVALID_ARGUMENT'
        ? { kind: 'target_invalid', reason }
        : { kind: 'failed', reason };
    case 'THIRD_PARTY_AUTH_ERROR': // the APNs certificate or web-push key set in Firebase is bad
    case 'APNS_AUTH_ERROR':
    case 'UNAUTHENTICATED': // our token still refused after a fresh one
    case 'PERMISSION_DENIED': // the service account may not send for this project
      return { kind: 'config_error', reason };
    case 'QUOTA_EXCEEDED':
    case 'RESOURCE_EXHAUSTED':
      // FCM asks for at least a minute before retrying a quota error.
      return retry(60_000);
    case 'UNAVAILABLE':
      return retry(1_000);
    case 'INTERNAL':
      return retry(0);
    default:
      if (answer.httpStatus === 429) return retry(60_000);
      if (answer.httpStatus === 503) return retry(1_000);
      if (answer.httpStatus >= 500) return retry(0);
      if (answer.httpStatus === 401 || answer.httpStatus === 403) return { kind: 'config_error', reason };
      return { kind: 'failed', reason };
  }
}
