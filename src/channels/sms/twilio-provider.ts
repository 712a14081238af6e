// SMS through Twilio Programmable Messaging: POST /2010-04-01/Accounts/{sid}/Messages.json,
// form-encoded, HTTP Basic with the account SID and auth token; status callbacks come back
// signed with X-Twilio-Signature. Twilio documents no idempotency key on Message create, so a
// timeout after the POST is retried and may send twice (at-least-once).
import { createHmac, timingSafeEqual } from 'node:crypto';
import { Agent, request } from 'undici';
import {
  traceHeaders,
  type CallbackRequest,
  type CallbackResult,
  type ChannelProvider,
  type RenderedMessage,
  type StatusUpdate,
} from '../channel-provider.js';
import { ProviderConfigError, type ProviderContext } from '../provider-settings.js';
import type { ChannelContent } from '../../domain/notification.js';
import type { DeliveryOutcome } from '../../domain/outcome.js';
import { parseRetryAfter } from '../../domain/retry-policy.js';
import type { TwilioSettings } from './sms-settings.js';
import { headerValue } from './sms-http.js';
import { unansweredOutcome } from '../network-reason.js';
import { checkSmsText, smsText } from './sms-text.js';

/** Twilio's longest Body, in characters. */
export const twilioMaxChars = 1600;

// Twilio error codes (https://www.twilio.com/docs/api/errors) → outcome. Checked before the
// HTTP status, which Twilio sets to 400 for most of them.
const twilioCodes = new Map<number, 'retry' | 'target_invalid' | 'failed' | 'config_error'>([
  [21211, 'target_invalid'], // invalid 'To' number
  [21612, 'target_invalid'], // 'To' not reachable from this sender (unroutable)
  [21614, 'target_invalid'], // 'To' is not a mobile number (not SMS-capable)
  [21610, 'failed'], // the recipient replied STOP: Twilio refuses until they reply START
  [21606, 'config_error'], // 'From' is not an SMS-capable number of this account
  [21408, 'config_error'], // the destination region is not enabled for this account
  [20003, 'config_error'], // authentication failed
  [20429, 'retry'], // too many requests
  [21611, 'retry'], // 'From' has more than 10 h of messages queued
]);

const optedOutCode = 21610;

/** How a Messages.json answer maps to an outcome. `body` is the parsed JSON (or undefined). */
export function classifyTwilioResponse(
  status: number,
  body: unknown,
  retryAfter: string | null,
  nowMs: number,
): DeliveryOutcome {
  const fields = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  if (status >= 200 && status < 300) {
    // A 2xx without a sid cannot be tracked, but the message was accepted: re-sending would duplicate.
    return { kind: 'sent', providerMessageId: typeof fields.sid === 'string' ? fields.sid : null };
  }
  const code = typeof fields.code === 'number' ? fields.code : undefined;
  const text =
    code === optedOutCode
      ? 'the recipient opted out (replied STOP)'
      : typeof fields.message === 'string'
        ? fields.message.replace(/\s+/g, ' ').slice(0, 200)
        : 'no error message';
  const reason = `twilio ${String(status)}${code === undefined ? '' : ` ${String(code)}`} ${text}`;
  const kind =
    (code === undefined ? undefined : twilioCodes.get(code)) ??
    (status === 401 || status === 403
      ? 'config_error'
      : status === 429 || status >= 500
        ? 'retry'
        : 'failed');
  if (kind !== 'retry') return { kind, reason };
  const retryAfterMs = parseRetryAfter(retryAfter, nowMs);
  return { kind, reason, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
}

// Status callback ErrorCodes meaning the number itself is bad (https://www.twilio.com/docs/api/errors):
// 30005 unknown destination, 30006 landline or unreachable carrier. 30003 (handset unreachable,
// e.g. switched off) and 30007 (carrier filtering) are about this message, not the number.
const invalidNumberErrors = new Set(['30005', '30006']);

/** One status callback's form fields → an update, or null when no change is needed. */
export function twilioStatusUpdate(params: URLSearchParams): StatusUpdate | null {
  const sid = params.get('MessageSid') ?? params.get('SmsSid');
  const status = params.get('MessageStatus') ?? params.get('SmsStatus');
  if (sid === null || status === null) return null;
  if (status === 'delivered') return { providerMessageId: sid, state: 'delivered', detail: null };
  if (status === 'undelivered' || status === 'failed') {
    const errorCode = params.get('ErrorCode');
    const targetInvalid = errorCode !== null && invalidNumberErrors.has(errorCode);
    return {
      providerMessageId: sid,
      state: 'failed',
      detail: `twilio ${status}${errorCode === null || errorCode === '' ? '' : ` ${errorCode}`}`,
      ...(targetInvalid ? { targetInvalid: true } : {}),
    };
  }
  // queued, accepted, scheduled, sending, sent, canceled, read …: intermediate or not ours to act on.
  return null;
}

/**
 * X-Twilio-Signature: base64 HMAC-SHA1 keyed with the auth token over the full URL followed by
 * every POST parameter's name and value, sorted by name
 * (https://www.twilio.com/docs/usage/webhooks/webhooks-security).
 */
export function twilioSignature(authToken: string, url: string, params: URLSearchParams): string {
  const pairs = [...params].sort(([ak, av], [bk, bv]) =>
    ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0,
  );
  const hmac = createHmac('sha1', authToken).update(url);
  for (const [key, value] of pairs) hmac.update(key + value);
  return hmac.digest('base64');
}

export class TwilioProvider implements ChannelProvider {
  readonly channel = 'sms' as const;
  readonly name: string;
  private readonly agent: Agent;
  private readonly endpoint: string;
  private readonly authorization: string;
  private readonly callbackUrl: string | undefined;
  private readonly limits: { maxSegments: number; maxChars: number };
  private readonly now: () => number;

  constructor(
    settings: TwilioSettings,
    /** The form field naming the sender, and its value. */
    private readonly sender: ['From' | 'MessagingServiceSid', string],
    private readonly authToken: string,
    options: { timeoutMs: number; publicUrl: string | undefined; now?: () => number },
  ) {
    this.name = settings.name;
    this.now = options.now ?? Date.now;
    const base = (settings.url ?? 'https://api.twilio.com').replace(/\/+$/, '');
    this.endpoint = `${base}/2010-04-01/Accounts/${settings.accountSid}/Messages.json`;
    this.authorization = `Basic ${Buffer.from(`${settings.accountSid}:${authToken}`).toString('base64')}`;
    this.callbackUrl =
      options.publicUrl === undefined
        ? undefined
        : `${options.publicUrl.replace(/\/+$/, '')}/v1/callbacks/${settings.name}`;
    this.limits = { maxSegments: settings.maxSegments ?? 10, maxChars: twilioMaxChars };
    this.agent = new Agent({
      connect: { timeout: options.timeoutMs },
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      keepAliveTimeout: 30_000,
    });
  }

  checkContent(content: ChannelContent): string | null {
    return checkSmsText(smsText(content), this.limits);
  }

  async send(message: RenderedMessage, signal: AbortSignal): Promise<DeliveryOutcome> {
    const text = smsText(message.content);
    const problem = checkSmsText(text, this.limits);
    if (problem !== null) return { kind: 'failed', reason: problem };
    const form = new URLSearchParams({ To: message.target, Body: text });
    form.set(...this.sender);
    if (this.callbackUrl !== undefined) form.set('StatusCallback', this.callbackUrl);
    let status: number;
    let answer: string;
    let retryAfter: string | string[] | undefined;
    try {
      const response = await request(this.endpoint, {
        method: 'POST',
        headers: {
          authorization: this.authorization,
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
          ...traceHeaders(message),
        },
        body: form.toString(),
        dispatcher: this.agent,
        signal,
      });
      status = response.statusCode;
      retryAfter = response.headers['retry-after'];
      answer = await response.body.text();
    } catch (error) {
      return unansweredOutcome(error, signal, 'twilio ');
    }
    let body: unknown;
    try {
      body = JSON.parse(answer);
    } catch {
      body = undefined;
    }
    return classifyTwilioResponse(
      status,
      body,
      typeof retryAfter === 'string' ? retryAfter : (retryAfter?.[0] ?? null),
      this.now(),
    );
  }

  handleCallback(request: CallbackRequest): CallbackResult {
    const given = headerValue(request.headers, 'x-twilio-signature');
    if (given === undefined) return { ok: false, status: 401, reason: 'no X-Twilio-Signature' };
    const params = new URLSearchParams(request.rawBody.toString('utf8'));
    const expected = Buffer.from(twilioSignature(this.authToken, request.url, params));
    const actual = Buffer.from(given);
    if (actual.length !== expected.length || !timingSafeEqual(actual, expected))
      return { ok: false, status: 401, reason: 'X-Twilio-Signature does not match' };
    if (params.get('MessageSid') === null && params.get('SmsSid') === null)
      return { ok: false, status: 400, reason: 'no MessageSid' };
    const update = twilioStatusUpdate(params);
    return update === null
      ? { ok: true, updates: [], ignored: 1 }
      : { ok: true, updates: [update], ignored: 0 };
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

/** Builds the provider from its settings entry; throws ProviderConfigError naming what is wrong. */
export function createTwilioProvider(
  settings: TwilioSettings,
  context: ProviderContext,
  options: { now?: () => number } = {},
): TwilioProvider {
  const { from, messagingServiceSid } = settings;
  if ((from === undefined) === (messagingServiceSid === undefined)) {
    throw new ProviderConfigError([
      `provider ${settings.name}: set exactly one of from and messagingServiceSid (found ${from === undefined ? 'neither' : 'both'})`,
    ]);
  }
  // Files often end in a newline, which is no part of the token.
  const authToken = context.secret(settings.authToken, 'authToken').trim();
  return new TwilioProvider(
    settings,
    from === undefined ? ['MessagingServiceSid', messagingServiceSid ?? ''] : ['From', from],
    authToken,
    {
      timeoutMs: settings.timeoutMs ?? context.defaultTimeoutMs,
      publicUrl: context.publicUrl,
      ...(options.now === undefined ? {} : { now: options.now }),
    },
  );
}
