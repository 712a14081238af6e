// What Herald sends APNs for one push delivery: the JSON payload and the apns-* headers
// (https://developer.apple.com/documentation/usernotifications/sending-notification-requests-to-apns).
// Pure: the clock comes in as a parameter.
import { createHash } from 'node:crypto';
import type { ChannelContent } from '../../domain/notification.js';
import { traceHeaders, type PushDevice, type RenderedMessage } from '../channel-provider.js';

/** APNs refuses bigger payloads with 413 PayloadTooLarge (5120 is for VoIP pushes only). */
export const apnsPayloadLimit = 4096;

/** apns-collapse-id longer than this is refused with 400 BadCollapseId. */
const collapseIdLimit = 64;

const canonicalUuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The payload: `aps` for what iOS shows, and the notification's `data` keys and `url` as custom
 * top-level keys for the app. `aps` is Apple's, so a data key of that name is dropped rather
 * than allowed to replace it. The status a caller updates over time shows as the subtitle.
 * No `mutable-content`: Herald sends no attachment for a service extension to fetch.
 */
export function apnsPayload(content: ChannelContent, data: Record<string, unknown> | null): object {
  const alert: Record<string, string> = {};
  if (content.title !== undefined) alert.title = content.title;
  if (content.status !== undefined) alert.subtitle = content.status;
  if (content.body !== undefined) alert.body = content.body;
  const custom: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(data ?? {})) if (key !== 'aps') custom[key] = value;
  if (content.url !== undefined) custom.url = content.url;
  return { ...custom, aps: { alert, sound: 'default' } };
}

/** Null when the payload fits APNs' limit, else why not (checked at ingest). */
export function payloadProblem(content: ChannelContent, data: Record<string, unknown> | null): string | null {
  const size = Buffer.byteLength(JSON.stringify(apnsPayload(content, data)));
  return size > apnsPayloadLimit
    ? `the APNs payload would be ${String(size)} bytes; the limit is ${String(apnsPayloadLimit)}`
    : null;
}

/**
 * The notification id when it fits apns-collapse-id, else a hash of it: every version of a
 * notification collapses into one on the device, so a PATCHed notification replaces the older.
 */
export function apnsCollapseId(notificationId: string): string {
  if (Buffer.byteLength(notificationId) <= collapseIdLimit) return notificationId;
  return createHash('sha256').update(notificationId).digest('base64url');
}

export interface ApnsRequest {
  /** The request headers except :method, :path and authorization. */
  headers: Record<string, string>;
  body: string;
}

export function apnsRequest(
  message: RenderedMessage,
  device: PushDevice,
  options: { nowMs: number; expirationSeconds: number },
): ApnsRequest {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'apns-topic': device.appId,
    'apns-push-type': 'alert',
    // 10 = now (wakes the device); 5 = when convenient for its power budget.
    'apns-priority': message.lane === 'transactional' ? '10' : '5',
    // An epoch, not a duration: "300" would be 1970 and the push would expire at once. 0 means
    // "deliver now or discard".
    'apns-expiration':
      options.expirationSeconds === 0
        ? '0'
        : String(Math.floor(options.nowMs / 1000) + options.expirationSeconds),
    'apns-collapse-id': apnsCollapseId(message.notificationId),
    ...traceHeaders(message),
  };
  // A correlation id that APNs echoes (not a dedup key); without it APNs makes one up.
  if (canonicalUuid.test(message.deliveryId)) headers['apns-id'] = message.deliveryId.toLowerCase();
  return { headers, body: JSON.stringify(apnsPayload(message.content, message.data)) };
}
