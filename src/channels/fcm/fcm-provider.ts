// Push through Firebase Cloud Messaging's HTTP v1 API: one POST per message
// (https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages/send), authorised
// with a cached OAuth2 token (fcm-oauth.ts), over a keep-alive undici agent. Answers map to
// outcomes in fcm-errors.ts.
import { createHash } from 'node:crypto';
import { rootCertificates } from 'node:tls';
import { Type } from 'typebox';
import { Value } from 'typebox/value';
import { Agent, request } from 'undici';
import type { ChannelContent } from '../../domain/notification.js';
import type { DeliveryOutcome } from '../../domain/outcome.js';
import {
  traceHeaders,
  type ChannelProvider,
  type Platform,
  type RenderedMessage,
} from '../channel-provider.js';
import { ProviderConfigError, type ProviderContext } from '../provider-settings.js';
import { classifyFcmError, parseFcmError } from './fcm-errors.js';
import { FcmAccessTokens } from './fcm-oauth.js';
import { networkReason } from '../network-reason.js';
import { FcmServiceAccount, type FcmSettings } from './fcm-settings.js';

/**
 * FCM refuses notification + data over 4096 bytes. Ingest allows 4000 so the fields added at
 * send time (notification_id, the platform block) still fit.
 */
export const fcmContentLimitBytes = 4000;
const defaultUrl = 'https://fcm.googleapis.com';
const defaultTtlSeconds = 86_400;
/** Keys FCM reserves in `data` (https://firebase.google.com/docs/cloud-messaging/concept-options#data_messages). */
const reservedDataKeys = new Set(['from', 'notification', 'message_type']);
const isReservedDataKey = (key: string) =>
  reservedDataKeys.has(key) || key.startsWith('google') || key.startsWith('gcm');

const SendAnswer = Type.Object({ name: Type.String({ minLength: 1 }) });

export interface FcmProviderOptions {
  name: string;
  account: FcmServiceAccount;
  url: string;
  platform: Platform;
  apps: readonly string[] | undefined;
  /** PEM of an extra CA to trust besides the system roots. */
  ca: string | undefined;
  ttlSeconds: number;
  timeoutMs: number;
  now?: () => number;
}

export function createFcmProvider(
  settings: FcmSettings,
  context: ProviderContext,
  options: { now?: () => number } = {},
): FcmProvider {
  const account = parseServiceAccount(
    settings.name,
    context.secret(settings.serviceAccount, 'serviceAccount'),
  );
  return new FcmProvider({
    name: settings.name,
    account,
    url: settings.url ?? defaultUrl,
    platform: settings.platform ?? 'android',
    apps: settings.apps,
    ca: settings.caFile === undefined ? undefined : context.file(settings.caFile, 'caFile'),
    ttlSeconds: settings.ttlSeconds ?? defaultTtlSeconds,
    timeoutMs: settings.timeoutMs ?? context.defaultTimeoutMs,
    ...(options.now === undefined ? {} : { now: options.now }),
  });
}

/** The service-account JSON, checked at startup; errors name the missing fields, never values. */
function parseServiceAccount(providerName: string, json: string): FcmServiceAccount {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new ProviderConfigError([`provider ${providerName}: serviceAccount: not a JSON document`]);
  }
  if (!Value.Check(FcmServiceAccount, value)) {
    const fields = new Set<string>();
    for (const error of Value.Errors(FcmServiceAccount, value)) {
      const required = (error.params as { requiredProperties?: unknown }).requiredProperties;
      if (Array.isArray(required)) for (const name of required) fields.add(`/${String(name)}`);
      else fields.add(error.instancePath || '/');
    }
    throw new ProviderConfigError([
      `provider ${providerName}: serviceAccount: missing or invalid ${[...fields].join(', ')}`,
    ]);
  }
  return value;
}

export class FcmProvider implements ChannelProvider {
  readonly name: string;
  readonly channel = 'push' as const;
  readonly serves: { platform: Platform; appIds?: readonly string[] };
  private readonly agent: Agent;
  private readonly tokens: FcmAccessTokens;
  private readonly now: () => number;
  private readonly sendUrl: string;

  constructor(private readonly options: FcmProviderOptions) {
    this.name = options.name;
    this.now = options.now ?? Date.now;
    this.serves = {
      platform: options.platform,
      ...(options.apps === undefined ? {} : { appIds: options.apps }),
    };
    this.agent = new Agent({
      // An explicit CA list replaces the system roots, so keep them beside the extra one.
      connect: {
        timeout: options.timeoutMs,
        ...(options.ca === undefined ? {} : { ca: [...rootCertificates, options.ca] }),
      },
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      keepAliveTimeout: 60_000,
    });
    this.tokens = new FcmAccessTokens({
      account: options.account,
      dispatcher: this.agent,
      timeoutMs: options.timeoutMs,
      now: this.now,
    });
    this.sendUrl = `${options.url}/v1/projects/${encodeURIComponent(options.account.project_id)}/messages:send`;
  }

  async send(message: RenderedMessage, signal: AbortSignal): Promise<DeliveryOutcome> {
    if (message.device === null) return { kind: 'failed', reason: 'fcm: the message has no push device' };
    const body = JSON.stringify({ message: this.fcmMessage(message, message.device.token) });
    let token = await this.tokens.get(signal);
    if (!token.ok) return token.outcome;
    let answer = await this.post(body, token.token, signal, traceHeaders(message));
    if (answer.kind === 'unauthenticated') {
      // Our access token was revoked or expired early: one fresh token, one more try.
      this.tokens.invalidate(token.token);
      token = await this.tokens.get(signal);
      if (!token.ok) return token.outcome;
      answer = await this.post(body, token.token, signal, traceHeaders(message));
    }
    return answer.kind === 'unauthenticated' ? answer.outcome : answer;
  }

  /** The outcome, or 'unauthenticated' when FCM refused the access token itself. */
  private async post(
    body: string,
    token: string,
    signal: AbortSignal,
    /** The call's traceparent, when it has one. */
    trace: Record<string, string>,
  ): Promise<DeliveryOutcome | { kind: 'unauthenticated'; outcome: DeliveryOutcome }> {
    try {
      const response = await request(this.sendUrl, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json; charset=utf-8',
          ...trace,
        },
        body,
        dispatcher: this.agent,
        signal,
      });
      const text = await response.body.text();
      if (response.statusCode === 200) {
        const sent = parseJson(text);
        return { kind: 'sent', providerMessageId: Value.Check(SendAnswer, sent) ? sent.name : null };
      }
      const retryAfter = response.headers['retry-after'];
      const error = parseFcmError(response.statusCode, text);
      const outcome = classifyFcmError(error, typeof retryAfter === 'string' ? retryAfter : null, this.now());
      // 401 without an FcmError code is about our OAuth token (THIRD_PARTY_AUTH_ERROR is not).
      return error.httpStatus === 401 && error.errorCode === null
        ? { kind: 'unauthenticated', outcome }
        : outcome;
    } catch (error) {
      return { kind: 'retry', reason: `fcm ${signal.aborted ? 'aborted' : networkReason(error)}` };
    }
  }

  /** The v1 Message resource for one device. */
  fcmMessage(message: RenderedMessage, token: string): Record<string, unknown> {
    const { notification, data } = fcmPayload(message.content, message.data);
    data.notification_id = message.notificationId;
    const ttl = this.options.ttlSeconds;
    const isUrgent = message.lane === 'transactional';
    const collapseId = collapseKey(message.notificationId);
    const fcm: Record<string, unknown> = { token, data };
    if (notification !== undefined) fcm.notification = notification;
    switch (this.options.platform) {
      case 'android':
        fcm.android = {
          priority: isUrgent ? 'high' : 'normal',
          ttl: `${String(ttl)}s`,
          collapse_key: collapseId,
        };
        break;
      case 'ios':
        // https://developer.apple.com/documentation/usernotifications/sending-notification-requests-to-apns
        fcm.apns = {
          headers: {
            'apns-priority': isUrgent ? '10' : '5',
            'apns-collapse-id': collapseId,
            'apns-expiration': String(Math.floor(this.now() / 1000) + ttl),
            'apns-push-type': notification === undefined ? 'background' : 'alert',
          },
          ...(notification === undefined ? { payload: { aps: { 'content-available': 1 } } } : {}),
        };
        break;
      case 'web': {
        const url = message.content.url;
        fcm.webpush = {
          headers: {
            TTL: String(ttl),
            Urgency: isUrgent ? 'high' : 'normal',
            Topic: webPushTopic(message.notificationId),
          },
          // FCM accepts only https links.
          ...(url?.startsWith('https://') === true ? { fcm_options: { link: url } } : {}),
        };
        break;
      }
    }
    return fcm;
  }

  checkContent(content: ChannelContent, data: Record<string, unknown> | null): string | null {
    const reserved = Object.keys(data ?? {}).filter(isReservedDataKey);
    if (reserved.length > 0) return `FCM reserves the data keys ${reserved.join(', ')}`;
    const bytes = fcmPayloadBytes(content, data);
    return bytes > fcmContentLimitBytes
      ? `FCM push payload (notification and data) is ${String(bytes)} bytes; the limit is ${String(fcmContentLimitBytes)}`
      : null;
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

/** notification and data as FCM carries them: data values are strings, objects are JSON. */
export function fcmPayload(
  content: ChannelContent,
  data: Record<string, unknown> | null,
): { notification: { title?: string; body?: string } | undefined; data: Record<string, string> } {
  const strings: Record<string, string> = {};
  for (const [key, value] of Object.entries(data ?? {})) {
    // JSON.stringify gives undefined for undefined and functions, which JSON data never holds.
    const json: unknown = typeof value === 'string' ? value : JSON.stringify(value);
    strings[key] = typeof json === 'string' ? json : 'null';
  }
  if (content.url !== undefined) strings.url = content.url;
  const notification =
    content.title === undefined && content.body === undefined
      ? undefined
      : {
          ...(content.title === undefined ? {} : { title: content.title }),
          ...(content.body === undefined ? {} : { body: content.body }),
        };
  return { notification, data: strings };
}

/** The size FCM's limit applies to: the JSON of notification and data. */
export function fcmPayloadBytes(content: ChannelContent, data: Record<string, unknown> | null): number {
  return Buffer.byteLength(JSON.stringify(fcmPayload(content, data)), 'utf8');
}

/** The notification id, or its digest when longer than apns-collapse-id's 64 bytes. */
function collapseKey(notificationId: string): string {
  return Buffer.byteLength(notificationId) <= 64
    ? notificationId
    : createHash('sha256').update(notificationId).digest('base64url');
}

/** RFC 8030 Topic: at most 32 base64url characters, so a digest of the notification id. */
function webPushTopic(notificationId: string): string {
  return createHash('sha256').update(notificationId).digest('base64url').slice(0, 32);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
