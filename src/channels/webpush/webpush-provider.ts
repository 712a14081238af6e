// Push to browsers through their push services (RFC 8030). The `web-push` package encrypts the
// payload (RFC 8291, aes128gcm) and builds the headers; Herald sends with its own keep-alive
// undici agent, so timeouts, aborts and connection reuse work as for every other adapter. The
// VAPID JWT (RFC 8292) is signed once per push-service origin and reused for 11 of its 12 hours.
import { unansweredOutcome } from '../network-reason.js';
import { outboundConnector } from '../outbound-connector.js';
import type { OutboundPolicy } from '../../domain/outbound-policy.js';
import { createECDH, createHash } from 'node:crypto';
import { rootCertificates } from 'node:tls';
import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';
import { Agent, request } from 'undici';
import webPush from 'web-push';
import type { ChannelContent } from '../../domain/notification.js';
import type { DeliveryOutcome } from '../../domain/outcome.js';
import {
  traceHeaders,
  type ChannelProvider,
  type Platform,
  type RenderedMessage,
} from '../channel-provider.js';
import { ProviderConfigError, type ProviderContext } from '../provider-settings.js';
import { classifyWebPushResponse } from './webpush-responses.js';
import type { WebPushSettings } from './webpush-settings.js';

/**
 * Push services must accept 4096-byte bodies: one aes128gcm record leaves 3993 bytes of
 * plaintext (4096 − 86 header − 16 tag − 1 delimiter).
 */
export const webPushPlaintextLimitBytes = 3993;
const defaultTtlSeconds = 86_400;
/** RFC 8292 §2: exp at most 24 h ahead. Signed for 12 h, replaced with an hour to spare. */
const vapidLifetimeS = 12 * 3600;
const vapidRenewBeforeS = 3600;
/** The longest notification id (`service#uuid`: 63 + 1 + 36) and version ingest must make room for. */
const longestNotificationId = 'x'.repeat(100);
const largestVersion = 2_147_483_647;

/** A browser's PushSubscription as JSON (https://w3c.github.io/push-api/#dom-pushsubscriptionjson). */
const PushSubscriptionJson = Type.Object({
  endpoint: Type.String({ minLength: 1 }),
  keys: Type.Object({
    p256dh: Type.String({ pattern: '^[A-Za-z0-9_-]+={0,2}$' }),
    auth: Type.String({ pattern: '^[A-Za-z0-9_-]+={0,2}$' }),
  }),
});
type PushSubscriptionJson = Static<typeof PushSubscriptionJson>;

export interface WebPushProviderOptions {
  name: string;
  apps: readonly string[] | undefined;
  vapidSubject: string;
  vapidPublicKey: string;
  vapidPrivateKey: string;
  /** PEM of an extra CA to trust besides the system roots. */
  ca: string | undefined;
  ttlSeconds: number;
  timeoutMs: number;
  /** The endpoint is the subscriber's: every connection to it passes the outbound policy. */
  outbound: OutboundPolicy;
  now?: () => number;
}

export function createWebPushProvider(
  settings: WebPushSettings,
  context: ProviderContext,
  options: { now?: () => number } = {},
): WebPushProvider {
  const vapidPrivateKey = context.secret(settings.vapidPrivateKey, 'vapidPrivateKey').trim();
  checkVapidKeys(settings.name, settings.vapidPublicKey, vapidPrivateKey);
  return new WebPushProvider({
    name: settings.name,
    apps: settings.apps,
    vapidSubject: settings.vapidSubject,
    vapidPublicKey: settings.vapidPublicKey,
    vapidPrivateKey,
    ca: settings.caFile === undefined ? undefined : context.file(settings.caFile, 'caFile'),
    ttlSeconds: settings.ttlSeconds ?? defaultTtlSeconds,
    timeoutMs: settings.timeoutMs ?? context.defaultTimeoutMs,
    outbound: context.outbound,
    ...(options.now === undefined ? {} : { now: options.now }),
  });
}

/** The private key must be 32 bytes and the public key its own: a mismatch fails every send. */
function checkVapidKeys(providerName: string, publicKey: string, privateKey: string): void {
  const ecdh = createECDH('prime256v1');
  let derived: string;
  try {
    const bytes = Buffer.from(privateKey, 'base64url');
    if (!/^[A-Za-z0-9_-]{43}$/.test(privateKey) || bytes.length !== 32) throw new RangeError('length');
    ecdh.setPrivateKey(bytes);
    derived = ecdh.getPublicKey('base64url', 'uncompressed');
  } catch {
    throw new ProviderConfigError([
      `provider ${providerName}: vapidPrivateKey: not a base64url P-256 private key (32 bytes)`,
    ]);
  }
  if (derived !== publicKey)
    throw new ProviderConfigError([
      `provider ${providerName}: vapidPublicKey: is not the public half of vapidPrivateKey`,
    ]);
}

export class WebPushProvider implements ChannelProvider {
  readonly name: string;
  readonly channel = 'push' as const;
  readonly serves: { platform: Platform; appIds?: readonly string[] };
  private readonly agent: Agent;
  private readonly now: () => number;
  /** Authorization header per push-service origin (the JWT's `aud`). */
  private readonly vapid = new Map<string, { authorization: string; renewAtMs: number }>();

  constructor(private readonly options: WebPushProviderOptions) {
    this.name = options.name;
    this.now = options.now ?? Date.now;
    this.serves = { platform: 'web', ...(options.apps === undefined ? {} : { appIds: options.apps }) };
    this.agent = new Agent({
      // An explicit CA list replaces the system roots, so keep them beside the extra one.
      connect: outboundConnector(options.outbound, {
        timeout: options.timeoutMs,
        ...(options.ca === undefined ? {} : { tls: { ca: [...rootCertificates, options.ca] } }),
      }),
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      keepAliveTimeout: 60_000,
    });
  }

  async send(message: RenderedMessage, signal: AbortSignal): Promise<DeliveryOutcome> {
    if (message.device === null) return { kind: 'failed', reason: 'webpush: the message has no push device' };
    const subscription = parseSubscription(message.device.token);
    if (typeof subscription === 'string')
      return { kind: 'target_invalid', reason: `webpush: ${subscription}` };
    const payload = webPushPayload(message.content, message.data, message.notificationId, message.version);
    if (Buffer.byteLength(payload) > webPushPlaintextLimitBytes)
      return { kind: 'failed', reason: 'webpush: payload over 3993 bytes' };
    let authorization: string;
    try {
      authorization = this.vapidAuthorization(subscription.origin);
    } catch {
      return {
        kind: 'config_error',
        reason: 'webpush: the VAPID header cannot be signed with these settings',
      };
    }
    let details: ReturnType<typeof webPush.generateRequestDetails>;
    try {
      // No vapidDetails: the Authorization header comes from the per-origin cache instead
      // of a fresh signature per message; it is set below.
      details = webPush.generateRequestDetails(subscription.json, payload, {
        TTL: this.options.ttlSeconds,
        urgency: message.lane === 'transactional' ? 'high' : 'normal',
        topic: webPushTopic(message.notificationId),
        contentEncoding: 'aes128gcm',
      });
    } catch {
      // The subscription's p256dh is not a P-256 point, or its auth secret is unusable.
      return { kind: 'target_invalid', reason: 'webpush: subscription keys cannot be used for encryption' };
    }
    const headers: Record<string, string> = {};
    // Typed as strings, but TTL and Content-Length are numbers; undici sets Content-Length itself.
    for (const [name, value] of Object.entries(details.headers as Record<string, unknown>))
      if (name !== 'Content-Length' && name !== 'Authorization')
        headers[name] = typeof value === 'string' ? value : String(value);
    headers.Authorization = authorization;
    Object.assign(headers, traceHeaders(message));
    let response: Awaited<ReturnType<typeof request>>;
    let text: string;
    try {
      response = await request(subscription.url, {
        method: 'POST',
        headers,
        body: details.body,
        dispatcher: this.agent,
        signal,
      });
      text = (await response.body.text()).slice(0, 1000);
    } catch (error) {
      return unansweredOutcome(error, signal, 'webpush ');
    }
    const header = (name: string): string | null => {
      const value = response.headers[name];
      return typeof value === 'string' ? value : (value?.[0] ?? null);
    };
    return classifyWebPushResponse(
      response.statusCode,
      text,
      { location: header('location'), retryAfter: header('retry-after') },
      this.now(),
    );
  }

  private vapidAuthorization(origin: string): string {
    const nowMs = this.now();
    const cached = this.vapid.get(origin);
    if (cached !== undefined && nowMs < cached.renewAtMs) return cached.authorization;
    const exp = Math.floor(nowMs / 1000) + vapidLifetimeS;
    const { Authorization } = webPush.getVapidHeaders(
      origin,
      this.options.vapidSubject,
      this.options.vapidPublicKey,
      this.options.vapidPrivateKey,
      'aes128gcm',
      exp,
    );
    this.vapid.set(origin, { authorization: Authorization, renewAtMs: (exp - vapidRenewBeforeS) * 1000 });
    return Authorization;
  }

  checkContent(content: ChannelContent, data: Record<string, unknown> | null): string | null {
    const bytes = Buffer.byteLength(webPushPayload(content, data, longestNotificationId, largestVersion));
    return bytes > webPushPlaintextLimitBytes
      ? `Web Push payload is ${String(bytes)} bytes (with the notification id); the limit is ${String(webPushPlaintextLimitBytes)}`
      : null;
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

/** The plaintext a service worker receives in its push event. */
export function webPushPayload(
  content: ChannelContent,
  data: Record<string, unknown> | null,
  notificationId: string,
  version: number,
): string {
  return JSON.stringify({
    title: content.title,
    body: content.body,
    url: content.url,
    data,
    notification_id: notificationId,
    version,
  });
}

/** RFC 8030 §5.4 Topic: ≤ 32 base64url characters; every version of a notification shares it. */
export function webPushTopic(notificationId: string): string {
  return createHash('sha256').update(notificationId).digest('base64url').slice(0, 32);
}

/** The device token as a subscription with an https endpoint, or why it is not one. */
function parseSubscription(token: string): { json: PushSubscriptionJson; url: URL; origin: string } | string {
  let value: unknown;
  try {
    value = JSON.parse(token);
  } catch {
    return 'the subscription is not JSON';
  }
  if (!Value.Check(PushSubscriptionJson, value)) return 'the subscription lacks endpoint or keys';
  let url: URL;
  try {
    url = new URL(value.endpoint);
  } catch {
    return 'the subscription endpoint is not a URL';
  }
  if (url.protocol !== 'https:') return 'the subscription endpoint is not https';
  if (Buffer.from(value.keys.p256dh, 'base64url').length !== 65) return 'p256dh is not a P-256 public key';
  if (Buffer.from(value.keys.auth, 'base64url').length < 16) return 'auth is shorter than 16 bytes';
  return { json: value, url, origin: url.origin };
}
