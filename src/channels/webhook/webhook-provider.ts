// Webhook channel: POSTs the rendered notification as JSON to the user's or the service's URL,
// signed (see webhook-signature.ts), with a timeout. Uses undici's request API on a keep-alive
// agent: the fetch API's web streams and signal objects cost several times more CPU per call.
import { Agent, request } from 'undici';
import type { ChannelProvider, RenderedMessage } from '../channel-provider.js';
import type { DeliveryOutcome } from '../../domain/outcome.js';
import { signatureHeader, signWebhook } from './webhook-signature.js';
import { classifyWebhookResponse } from './webhook-responses.js';

export interface WebhookProviderOptions {
  timeoutMs: number;
  now?: () => number;
}

export class WebhookProvider implements ChannelProvider {
  readonly name = 'webhook';
  readonly channel = 'webhook' as const;
  private readonly now: () => number;
  private readonly agent: Agent;

  constructor(private readonly options: WebhookProviderOptions) {
    this.now = options.now ?? Date.now;
    this.agent = new Agent({
      connect: { timeout: options.timeoutMs },
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      keepAliveTimeout: 30_000,
    });
  }

  async send(message: RenderedMessage, signal: AbortSignal): Promise<DeliveryOutcome> {
    const body = JSON.stringify({
      delivery_id: message.deliveryId,
      notification_id: message.notificationId,
      version: message.version,
      user_id: message.userId,
      category: message.category,
      lane: message.lane,
      attempt: message.attempt,
      ...message.content,
      data: message.data,
    });
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'Herald-Webhook/1',
      'herald-delivery-id': message.deliveryId,
    };
    if (message.signingSecret !== null)
      headers[signatureHeader] = signWebhook(message.signingSecret, body, Math.floor(this.now() / 1000));
    let status: number;
    let responseHeaders: Record<string, string | string[] | undefined>;
    try {
      const response = await request(message.target, {
        method: 'POST',
        headers,
        body,
        dispatcher: this.agent,
        signal,
        // undici's request API does not follow redirects; a 3xx is the receiver's answer.
      });
      status = response.statusCode;
      responseHeaders = response.headers;
      // Discard the body (up to a small limit, then the connection is dropped): only the status matters.
      await response.body.dump({ limit: 16_384 });
    } catch (error) {
      // Timeouts, refused or reset connections: the receiver may be back soon.
      return { kind: 'retry', reason: isTimeout(error) ? 'timeout' : `network error: ${describe(error)}` };
    }
    const header = (name: string): string | null => {
      const value = responseHeaders[name];
      return typeof value === 'string' ? value : (value?.[0] ?? null);
    };
    return classifyWebhookResponse(status, header('retry-after'), header('x-request-id'), this.now());
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

function isTimeout(error: unknown): boolean {
  const code = error instanceof Error && 'code' in error ? error.code : undefined;
  return (
    code === 'UND_ERR_CONNECT_TIMEOUT' ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT'
  );
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    if ('code' in error && typeof error.code === 'string') return error.code;
    const cause = error.cause;
    if (cause instanceof Error && 'code' in cause && typeof cause.code === 'string') return cause.code;
    return error.name;
  }
  return 'unknown';
}
