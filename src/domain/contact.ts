// Contact addresses: validation (email by shape and length, phones by libphonenumber-js) and
// how much of a target a reader is shown.
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import type { Channel } from './notification.js';

// RFC 5321 limits: 64 octets local part, 254 in all. Pragmatic shape: one @, a dot in the domain,
// no spaces or control characters. Deliverability is the mail server's business.
const emailPattern =
  /^[^\s@"(),:;<>[\\\]]{1,64}@(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i;

export function isEmailAddress(text: string): boolean {
  return text.length <= 254 && emailPattern.test(text);
}

/** A phone number in E.164 form (+ and 8–15 digits) that libphonenumber-js judges valid. */
export function normalizePhone(text: string): string | undefined {
  if (!/^\+[1-9]\d{6,14}$/.test(text)) return undefined;
  const parsed = parsePhoneNumberFromString(text);
  return parsed?.isValid() === true ? parsed.number : undefined;
}

/**
 * What a reader without the right to see contact data sees of a target (support, most keys): enough to confirm it with the user ("k***@example.com", the
 * last two digits of a phone), never the whole address. Webhook and chat URLs show only their
 * origin: a Slack incoming-webhook path is itself the credential. Device ids and the inbox are
 * Herald's own identifiers and shown as they are.
 */
export function maskTarget(channel: Channel, target: string): string {
  switch (channel) {
    case 'email': {
      const at = target.lastIndexOf('@');
      return at < 1 ? '***' : `${target.slice(0, 1)}***${target.slice(at)}`;
    }
    case 'sms':
      return target.length < 7
        ? '***'
        : `${target.slice(0, 3)}${'*'.repeat(target.length - 5)}${target.slice(-2)}`;
    case 'webhook':
    case 'chat':
      return URL.canParse(target) ? `${new URL(target).origin}/***` : '***';
    case 'push':
    case 'in_app':
      return target;
  }
}

/**
 * A target as a reader is shown it: in full (email, phone) only to a reader allowed to see
 * contact data. URLs are never shown beyond their origin to anyone: a Slack incoming-webhook
 * path, a receiver's userinfo or a token in its query string is a credential.
 */
export function presentTarget(channel: Channel, target: string, inFull: boolean): string {
  if (channel === 'webhook' || channel === 'chat' || !inFull) return maskTarget(channel, target);
  return target;
}

/** A URL target as stored values are shown: its origin, the rest hidden. */
export function maskUrl(url: string): string {
  return maskTarget('webhook', url);
}

/**
 * A device token as shown: in full only to a reader allowed to see contact data, and never for
 * Web Push, whose subscription holds the endpoint's capability URL and the encryption secret.
 */
export function presentDeviceToken(platform: string, token: string, inFull: boolean): string {
  if (platform === 'web') {
    let endpoint: unknown;
    try {
      endpoint = (JSON.parse(token) as { endpoint?: unknown }).endpoint;
    } catch {
      endpoint = undefined;
    }
    return typeof endpoint === 'string' ? `web push subscription at ${maskUrl(endpoint)}` : '***';
  }
  return inFull ? token : `${token.slice(0, 6)}***`;
}
