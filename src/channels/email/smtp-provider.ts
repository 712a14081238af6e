// Email over an SMTP relay: one pooled nodemailer transport per provider, sending the composed
// MIME bytes with an explicit envelope. The reply table (classifySmtpError) follows RFC 5321
// §4.2 reply classes and RFC 3463 enhanced codes (docs/providers/smtp.md).
import { createTransport } from 'nodemailer';
import type Mail from 'nodemailer/lib/mailer';
import type { SMTPPoolOptions, SMTPPoolSentMessageInfo } from 'nodemailer/lib/smtp-pool';
import type { ChannelProvider, RenderedMessage } from '../channel-provider.js';
import type { DeliveryOutcome } from '../../domain/outcome.js';
import { ProviderConfigError, type ProviderContext } from '../provider-settings.js';
import { composeEmail, senderAddress, type EmailOptions } from './compose-email.js';
import type { SmtpSettings } from './email-settings.js';

/** What nodemailer attaches to the errors it raises (nodemailer/lib/errors). */
interface SmtpError {
  code: string | undefined;
  responseCode: number | undefined;
  response: string | undefined;
  command: string | undefined;
  message: string;
}

function asSmtpError(error: unknown): SmtpError {
  const e = (typeof error === 'object' && error !== null ? error : {}) as Record<string, unknown>;
  const text = (key: string) => (typeof e[key] === 'string' ? e[key] : undefined);
  return {
    code: text('code'),
    responseCode: typeof e.responseCode === 'number' ? e.responseCode : undefined,
    response: text('response'),
    command: text('command'),
    message: error instanceof Error ? error.message : String(error),
  };
}

/** "550 5.1.1 No such user" → "5.1.1" (RFC 3463 class.subject.detail after the reply code). */
export function enhancedCode(response: string | undefined): string | undefined {
  return response === undefined ? undefined : /^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})\b/.exec(response)?.[1];
}

/** Replies about our credentials or TLS requirements: 530 auth required, 534 mechanism too weak,
 * 535 bad credentials, 538 encryption required for the mechanism (RFC 4954 §6). */
const authReplies = new Set([530, 534, 535, 538]);
/** Codes whose 5.1.x enhanced code speaks of the recipient's address (RFC 5321 §4.2.3). */
const addressReplies = new Set([550, 551, 553]);
/** 5.1.7 and 5.1.8 are about the *sender's* address: our From is at fault, not the target. */
const senderStatuses = new Set(['5.1.7', '5.1.8']);
/** Nodemailer codes for our own setup: credentials, TLS we required, the transport's options. */
const configCodes = new Set(['EAUTH', 'ENOAUTH', 'EOAUTH2', 'ETLS', 'EREQUIRETLS', 'ECONFIG']);

/** Maps what nodemailer raised for one send to an outcome. */
export function classifySmtpError(error: unknown): DeliveryOutcome {
  const e = asSmtpError(error);
  const reason = (e.response ?? e.message).replace(/\s+/g, ' ').trim().slice(0, 200);
  const code = e.responseCode;
  if (code !== undefined) {
    if (authReplies.has(code)) return { kind: 'config_error', reason };
    if (code >= 400 && code < 500) return { kind: 'retry', reason };
    if (code >= 500 && code < 600) {
      const enhanced = enhancedCode(e.response);
      if (enhanced !== undefined && senderStatuses.has(enhanced)) return { kind: 'config_error', reason };
      if (addressReplies.has(code) && enhanced?.startsWith('5.1.') === true) {
        return { kind: 'target_invalid', reason };
      }
      // A sender refused at MAIL FROM (not for size) refuses every message: our From is at fault.
      if (e.command === 'MAIL FROM' && code !== 552) return { kind: 'config_error', reason };
      return { kind: 'failed', reason };
    }
  }
  if (e.code !== undefined && configCodes.has(e.code)) return { kind: 'config_error', reason };
  if (e.code === 'EABORT') return { kind: 'retry', reason: 'aborted' };
  // An envelope nodemailer refused before talking to the server (no usable recipient).
  if (e.code === 'EENVELOPE') return { kind: 'failed', reason };
  // ECONNECTION, ETIMEDOUT, ESOCKET, EDNS, EPROTOCOL and anything unknown: the message may or
  // may not have gone, and another attempt is the safe side (duplicates are counted, not hidden).
  return { kind: 'retry', reason: e.code === undefined ? reason : `${e.code} ${reason}` };
}

/**
 * The queue id from the server's reply to DATA: Postfix "250 2.0.0 Ok: queued as 4Xy1",
 * Exim "250 OK id=1tAbC-000123-XY". Null when the reply names none.
 */
export function queueIdFrom(response: string): string | null {
  const match = /\bqueued as\s+<?([^\s>]+)>?/i.exec(response) ?? /\bid=([^\s]+)/.exec(response);
  return match?.[1] ?? null;
}

export class SmtpProvider implements ChannelProvider {
  readonly channel = 'email' as const;
  readonly name: string;
  private readonly transport: Mail<SMTPPoolSentMessageInfo, SMTPPoolOptions>;
  private readonly email: EmailOptions;

  constructor(settings: SmtpSettings, context: ProviderContext) {
    this.name = settings.name;
    try {
      senderAddress(settings.from);
    } catch (cause) {
      throw new ProviderConfigError([
        `provider ${settings.name}: from: ${cause instanceof Error ? cause.message : 'invalid'}`,
      ]);
    }
    this.email = { from: settings.from, listUnsubscribe: settings.listUnsubscribe };
    const timeoutMs = settings.timeoutMs ?? context.defaultTimeoutMs;
    const password =
      settings.password === undefined ? undefined : context.secret(settings.password, 'password');
    this.transport = createTransport({
      pool: true,
      host: settings.host,
      port: settings.port,
      secure: settings.secure ?? false,
      requireTLS: settings.requireTls ?? false,
      ...(settings.user === undefined ? {} : { auth: { user: settings.user, pass: password ?? '' } }),
      ...(settings.caFile === undefined ? {} : { tls: { ca: context.file(settings.caFile, 'caFile') } }),
      maxConnections: settings.concurrency ?? 5,
      // Herald's retry policy owns retries: the pool must not resend a message on a new
      // connection behind its back when a connection drops mid-send.
      maxRequeues: 0,
      connectionTimeout: timeoutMs,
      greetingTimeout: timeoutMs,
      socketTimeout: timeoutMs,
    });
  }

  async send(message: RenderedMessage, signal: AbortSignal): Promise<DeliveryOutcome> {
    if (signal.aborted) return { kind: 'retry', reason: 'aborted' };
    const composed = await composeEmail(message, this.email);
    try {
      const info = await this.transport.sendMail({
        envelope: composed.envelope,
        raw: composed.raw,
        // The pool drops a queued message, or closes the connection carrying it, on abort.
        signal,
      });
      return { kind: 'sent', providerMessageId: queueIdFrom(info.response) ?? composed.messageId };
    } catch (error) {
      return classifySmtpError(error);
    }
  }

  close(): Promise<void> {
    this.transport.close();
    return Promise.resolve();
  }
}

export function createSmtpProvider(settings: SmtpSettings, context: ProviderContext): SmtpProvider {
  return new SmtpProvider(settings, context);
}
