// Email through Amazon SES v2 SendEmail, signed with SigV4 by the AWS SDK. The message is the
// same composed MIME that SMTP sends, passed as Content.Raw. Status reports (SES event
// publishing → SNS → HTTPS) arrive at handleCallback, authenticated with HTTP Basic auth.
import { createHash, timingSafeEqual } from 'node:crypto';
import { SESv2Client, SendEmailCommand } from '@aws-sdk/client-sesv2';
import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';
import type {
  CallbackRequest,
  CallbackResult,
  ChannelProvider,
  RenderedMessage,
  StatusUpdate,
} from '../channel-provider.js';
import type { DeliveryOutcome } from '../../domain/outcome.js';
import { parseRetryAfter } from '../../domain/retry-policy.js';
import type { Logger } from '../../observability/logger.js';
import { ProviderConfigError, type ProviderContext } from '../provider-settings.js';
import { composeEmail, senderAddress, type EmailOptions } from './compose-email.js';
import type { SesSettings } from './email-settings.js';

// ---- SendEmail errors → outcomes (docs/providers/ses.md; the SDK names each exception
// after the x-amzn-ErrorType of the answer).

const errorOutcomes: Record<string, 'failed' | 'config_error' | 'retry'> = {
  // The message itself is refused (virus, bad content, malformed request): resending the same fails.
  MessageRejected: 'failed',
  BadRequestException: 'failed',
  // Our account or setup: an operator must act (verify the domain, lift the pause or suspension,
  // create the configuration set).
  MailFromDomainNotVerifiedException: 'config_error',
  AccountSuspendedException: 'config_error',
  SendingPausedException: 'config_error',
  NotFoundException: 'config_error',
  // Sending rate or quota: AWS says wait and try again.
  TooManyRequestsException: 'retry',
  LimitExceededException: 'retry',
  InternalServiceErrorException: 'retry',
};

/** Error names of the SDK's own transport failures: no answer came (in time). */
const transportErrors = new Set(['TimeoutError', 'RequestTimeout', 'AbortError', 'NetworkingError']);

interface SdkError {
  name: string;
  message: string;
  status: number | undefined;
  retryAfter: string | null;
  code: string | undefined;
}

function asSdkError(error: unknown): SdkError {
  const e = (typeof error === 'object' && error !== null ? error : {}) as {
    name?: unknown;
    message?: unknown;
    code?: unknown;
    $metadata?: { httpStatusCode?: unknown };
    $response?: { headers?: Record<string, unknown> };
  };
  const retryAfter = e.$response?.headers?.['retry-after'];
  const status = e.$metadata?.httpStatusCode;
  return {
    name: typeof e.name === 'string' ? e.name : 'Error',
    message: typeof e.message === 'string' ? e.message : String(error),
    status: typeof status === 'number' ? status : undefined,
    retryAfter: typeof retryAfter === 'string' ? retryAfter : null,
    code: typeof e.code === 'string' ? e.code : undefined,
  };
}

/** Maps an error the SDK raised for SendEmail to an outcome. */
export function classifySesError(error: unknown, nowMs: number): DeliveryOutcome {
  const e = asSdkError(error);
  const reason = `${e.status === undefined ? '' : `${String(e.status)} `}${e.name}: ${e.message}`
    .replace(/\s+/g, ' ')
    .slice(0, 200);
  const retry = (): DeliveryOutcome => {
    const retryAfterMs = parseRetryAfter(e.retryAfter, nowMs);
    return { kind: 'retry', reason, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
  };
  const known = errorOutcomes[e.name];
  if (known === 'retry') return retry();
  if (known !== undefined) return { kind: known, reason };
  // SignatureDoesNotMatch, UnrecognizedClientException, InvalidSignatureException,
  // AccessDeniedException, ExpiredTokenException: our keys, clock or IAM policy.
  if (e.status === 401 || e.status === 403) return { kind: 'config_error', reason };
  if (e.status === 429 || (e.status !== undefined && e.status >= 500)) return retry();
  if (e.status !== undefined && e.status >= 400) return { kind: 'failed', reason };
  // No answer: a timeout, a refused or reset connection (e.code ECONNREFUSED…), anything unknown.
  return { kind: 'retry', reason: transportErrors.has(e.name) ? `timeout: ${reason}` : (e.code ?? reason) };
}

// ---- Status reports: SNS envelopes carrying SES events.

const SnsEnvelope = Type.Object({
  Type: Type.String(),
  Message: Type.Optional(Type.String()),
  SubscribeURL: Type.Optional(Type.String()),
  TopicArn: Type.Optional(Type.String()),
});

const Recipient = Type.Object({ emailAddress: Type.String() });

/** The SES event fields Herald reads; SES sends many more (event publishing and identity notifications). */
const SesEvent = Type.Object({
  eventType: Type.Optional(Type.String()),
  notificationType: Type.Optional(Type.String()),
  mail: Type.Object({ messageId: Type.String({ minLength: 1 }) }),
  delivery: Type.Optional(Type.Object({ smtpResponse: Type.Optional(Type.String()) })),
  bounce: Type.Optional(
    Type.Object({
      bounceType: Type.String(),
      bounceSubType: Type.Optional(Type.String()),
      bouncedRecipients: Type.Optional(
        Type.Array(
          Type.Object({ emailAddress: Type.String(), diagnosticCode: Type.Optional(Type.String()) }),
        ),
      ),
    }),
  ),
  complaint: Type.Optional(
    Type.Object({
      complaintFeedbackType: Type.Optional(Type.String()),
      complainedRecipients: Type.Optional(Type.Array(Recipient)),
    }),
  ),
  reject: Type.Optional(Type.Object({ reason: Type.Optional(Type.String()) })),
  failure: Type.Optional(Type.Object({ errorMessage: Type.Optional(Type.String()) })),
});
type SesEvent = Static<typeof SesEvent>;

/**
 * One SES event → a status update, or null for events that change nothing (Send, Open, Click,
 * DeliveryDelay, Subscription).
 *
 * Soft bounces: SES reports a Transient (or Undetermined) bounce only after it has stopped
 * retrying the message itself, so the message did not arrive, but the address is not known to
 * be bad. Recording that as 'bounced' would read as a hard bounce, and ignoring it would leave
 * the delivery 'sent' for good; it is recorded as 'failed', never targetInvalid, with the bounce
 * type and diagnostic in the detail.
 */
export function statusUpdateFor(event: SesEvent): StatusUpdate | null {
  const providerMessageId = event.mail.messageId;
  const type = event.eventType ?? event.notificationType ?? 'unknown';
  switch (type) {
    case 'Delivery':
      return { providerMessageId, state: 'delivered', detail: event.delivery?.smtpResponse ?? null };
    case 'Bounce': {
      const bounce = event.bounce;
      const diagnostic = bounce?.bouncedRecipients?.[0]?.diagnosticCode;
      const kind = `${bounce?.bounceType ?? 'Undetermined'}/${bounce?.bounceSubType ?? 'General'}`;
      const detail = `bounce ${kind}${diagnostic === undefined ? '' : `: ${diagnostic}`}`.slice(0, 300);
      if (bounce?.bounceType === 'Permanent') {
        return { providerMessageId, state: 'bounced', detail, targetInvalid: true };
      }
      return { providerMessageId, state: 'failed', detail: `soft ${detail}`, targetInvalid: false };
    }
    case 'Complaint':
      return {
        providerMessageId,
        state: 'complained',
        detail: `complaint${event.complaint?.complaintFeedbackType === undefined ? '' : `: ${event.complaint.complaintFeedbackType}`}`,
      };
    case 'Reject':
      return { providerMessageId, state: 'failed', detail: `rejected: ${event.reject?.reason ?? 'unknown'}` };
    case 'Rendering Failure':
      return {
        providerMessageId,
        state: 'failed',
        detail: `rendering failure: ${event.failure?.errorMessage ?? 'unknown'}`,
      };
    default:
      return null;
  }
}

/** SNS endpoints only: sns.<region>.amazonaws.com (and .com.cn in China), over https. */
export function isSnsUrl(url: string): boolean {
  try {
    const u = new URL(url);
    return u.protocol === 'https:' && /^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$/.test(u.hostname);
  } catch {
    return false;
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** The password of an `Authorization: Basic` header, or null. The user name is not checked. */
function basicPassword(header: string | string[] | undefined): string | null {
  const value = Array.isArray(header) ? header[0] : header;
  const match = value === undefined ? null : /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(value);
  if (match?.[1] === undefined) return null;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon === -1 ? null : decoded.slice(colon + 1);
}

export interface SesProviderOptions {
  /** Confirms an SNS subscription by GET SubscribeURL; replaceable so tests need no internet. */
  confirmSubscription?: (url: string, signal: AbortSignal) => Promise<void>;
  now?: () => number;
}

async function getUrl(url: string, signal: AbortSignal): Promise<void> {
  const response = await fetch(url, { signal, redirect: 'error' });
  await response.arrayBuffer();
  if (!response.ok) throw new Error(`HTTP ${String(response.status)}`);
}

export class SesProvider implements ChannelProvider {
  readonly channel = 'email' as const;
  readonly name: string;
  private readonly client: SESv2Client;
  private readonly email: EmailOptions;
  private readonly sender: string;
  private readonly callbackPasswordHash: Buffer | null;
  private readonly timeoutMs: number;
  private readonly logger: Logger;
  private readonly confirmSubscription: (url: string, signal: AbortSignal) => Promise<void>;
  private readonly now: () => number;

  constructor(
    private readonly settings: SesSettings,
    context: ProviderContext,
    options: SesProviderOptions = {},
  ) {
    this.name = settings.name;
    try {
      this.sender = senderAddress(settings.from);
    } catch (cause) {
      throw new ProviderConfigError([
        `provider ${settings.name}: from: ${cause instanceof Error ? cause.message : 'invalid'}`,
      ]);
    }
    this.email = { from: settings.from, listUnsubscribe: settings.listUnsubscribe };
    this.timeoutMs = settings.timeoutMs ?? context.defaultTimeoutMs;
    this.logger = context.logger;
    this.now = options.now ?? Date.now;
    this.confirmSubscription = options.confirmSubscription ?? getUrl;
    this.callbackPasswordHash =
      settings.callbackPassword === undefined
        ? null
        : sha256(context.secret(settings.callbackPassword, 'callbackPassword'));
    this.client = new SESv2Client({
      region: settings.region,
      ...(settings.endpoint === undefined ? {} : { endpoint: settings.endpoint }),
      credentials: {
        accessKeyId: settings.accessKeyId,
        secretAccessKey: context.secret(settings.secretAccessKey, 'secretAccessKey'),
      },
      // Herald's retry policy, circuit and rate limits own retries; the SDK must not add its own.
      maxAttempts: 1,
      requestHandler: {
        connectionTimeout: this.timeoutMs,
        requestTimeout: this.timeoutMs,
        throwOnRequestTimeout: true,
      },
    });
  }

  async send(message: RenderedMessage, signal: AbortSignal): Promise<DeliveryOutcome> {
    const isAborted = () => signal.aborted;
    if (isAborted()) return { kind: 'retry', reason: 'aborted' };
    const composed = await composeEmail(message, this.email);
    try {
      const output = await this.client.send(
        new SendEmailCommand({
          FromEmailAddress: this.sender,
          Destination: { ToAddresses: [message.target] },
          Content: { Raw: { Data: composed.raw } },
          ...(this.settings.configurationSet === undefined
            ? {}
            : { ConfigurationSetName: this.settings.configurationSet }),
          // Tag values allow only ASCII letters, digits, '_' and '-'.
          EmailTags: [
            { Name: 'delivery_id', Value: message.deliveryId.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 256) },
            {
              Name: 'category',
              Value: message.category.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 256) || '_',
            },
          ],
        }),
        { abortSignal: signal },
      );
      return { kind: 'sent', providerMessageId: output.MessageId ?? null };
    } catch (error) {
      if (isAborted()) return { kind: 'retry', reason: 'aborted' };
      return classifySesError(error, this.now());
    }
  }

  async handleCallback(request: CallbackRequest): Promise<CallbackResult> {
    if (this.callbackPasswordHash === null) {
      return {
        ok: false,
        status: 401,
        reason: 'this provider has no callbackPassword: status reports are refused',
      };
    }
    const password = basicPassword(request.headers.authorization);
    // Compare digests so the time taken says nothing about the password's length or prefix.
    if (password === null || !timingSafeEqual(sha256(password), this.callbackPasswordHash)) {
      // SNS sends its credentials only after a Basic challenge.
      return {
        ok: false,
        status: 401,
        reason: 'Basic credentials missing or wrong',
        challenge: 'Basic realm="herald"',
      };
    }
    let body: unknown;
    try {
      body = JSON.parse(request.rawBody.toString('utf8'));
    } catch {
      return { ok: false, status: 400, reason: 'body is not JSON' };
    }
    // SNS raw message delivery posts the SES event itself, without the envelope.
    if (Value.Check(SesEvent, body)) return this.eventResult(body);
    if (!Value.Check(SnsEnvelope, body)) return { ok: false, status: 400, reason: 'not an SNS message' };
    switch (body.Type) {
      case 'Notification': {
        let event: unknown;
        try {
          event = JSON.parse(body.Message ?? '');
        } catch {
          return { ok: false, status: 400, reason: 'SNS Message is not JSON' };
        }
        if (!Value.Check(SesEvent, event)) return { ok: false, status: 400, reason: 'not an SES event' };
        return this.eventResult(event);
      }
      case 'SubscriptionConfirmation':
        return this.confirm(body.SubscribeURL, body.TopicArn);
      default:
        // UnsubscribeConfirmation and anything newer: nothing to record.
        return { ok: true, updates: [], ignored: 1 };
    }
  }

  private eventResult(event: SesEvent): CallbackResult {
    const update = statusUpdateFor(event);
    return update === null
      ? { ok: true, updates: [], ignored: 1 }
      : { ok: true, updates: [update], ignored: 0 };
  }

  /**
   * Confirms the SNS subscription by fetching SubscribeURL, but only from an SNS host: anyone
   * who learned the callback password could otherwise make Herald fetch any URL (SSRF).
   */
  private async confirm(url: string | undefined, topicArn: string | undefined): Promise<CallbackResult> {
    if (url === undefined || !isSnsUrl(url)) {
      this.logger.warn(
        { provider: this.name, topicArn },
        'SNS subscription confirmation ignored: SubscribeURL is not an https sns.<region>.amazonaws.com URL',
      );
      return { ok: true, updates: [], ignored: 1 };
    }
    try {
      await this.confirmSubscription(url, AbortSignal.timeout(this.timeoutMs));
    } catch (error) {
      this.logger.error(
        { provider: this.name, topicArn, err: error },
        'SNS subscription confirmation failed; SNS can resend it from the console',
      );
      return { ok: false, status: 400, reason: 'subscription confirmation failed' };
    }
    this.logger.info({ provider: this.name, topicArn }, 'SNS subscription confirmed');
    return { ok: true, updates: [], ignored: 1 };
  }

  close(): Promise<void> {
    this.client.destroy();
    return Promise.resolve();
  }
}

export function createSesProvider(
  settings: SesSettings,
  context: ProviderContext,
  options?: SesProviderOptions,
): SesProvider {
  return new SesProvider(settings, context, options);
}
