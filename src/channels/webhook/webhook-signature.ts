// Webhook signatures, two ways for the same request:
// - Standard Webhooks (standardwebhooks.com), which stock receiver libraries verify: headers
//   `webhook-id` (the delivery id, the same on every attempt), `webhook-timestamp` (unix seconds)
//   and `webhook-signature`: `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, one per
//   signing secret, space-separated (the current secret, and during a rotation's overlap the
//   previous one). The HMAC key is the secret's bytes: base64 after "whsec_".
// - `Herald-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` keyed with the
//   whole current secret string, Herald's first scheme, kept until receivers have moved
//   (docs/providers/webhook.md). verifyWebhookSignature checks it and the timestamp.
import { createHmac, timingSafeEqual } from 'node:crypto';

export const signatureHeader = 'herald-signature';

export function signWebhook(secret: string, body: string, unixSeconds: number): string {
  const mac = createHmac('sha256', secret)
    .update(`${String(unixSeconds)}.${body}`)
    .digest('hex');
  return `t=${String(unixSeconds)},v1=${mac}`;
}

/** The Standard Webhooks HMAC key of a "whsec_…" secret (base64, either alphabet). */
function standardKey(secret: string): Buffer {
  return Buffer.from(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret, 'base64');
}

/** The Standard Webhooks headers of one request, one signature per secret. */
export function standardWebhookHeaders(
  secrets: readonly string[],
  messageId: string,
  body: string,
  unixSeconds: number,
): Record<string, string> {
  const signed = `${messageId}.${String(unixSeconds)}.${body}`;
  return {
    'webhook-id': messageId,
    'webhook-timestamp': String(unixSeconds),
    'webhook-signature': secrets
      .map((s) => `v1,${createHmac('sha256', standardKey(s)).update(signed).digest('base64')}`)
      .join(' '),
  };
}

export function verifyWebhookSignature(
  secret: string,
  body: string,
  header: string,
  nowSeconds: number,
  toleranceSeconds = 300,
): boolean {
  const parts = new Map(header.split(',').map((p) => p.split('=', 2) as [string, string]));
  const t = Number(parts.get('t'));
  const v1 = parts.get('v1');
  if (!Number.isInteger(t) || v1 === undefined || Math.abs(nowSeconds - t) > toleranceSeconds) return false;
  const expected = Buffer.from(signWebhook(secret, body, t).split('v1=')[1] ?? '', 'hex');
  const given = Buffer.from(v1, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
