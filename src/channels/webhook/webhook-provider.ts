// Webhook channel: POSTs the rendered notification as JSON to the user's or the service's URL,
// signed (see webhook-signature.ts), with a timeout. Uses Node's global fetch (undici, keep-alive).
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

  constructor(private readonly options: WebhookProviderOptions) {
    this.now = options.now ?? Date.now;
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
    let response: Response;
    try {
      response = await fetch(message.target, {
        method: 'POST',
        headers,
        body,
        redirect: 'manual',
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.options.timeoutMs)]),
      });
    } catch (error) {
      // Timeouts, refused or reset connections: the receiver may be back soon.
      const reason =
        error instanceof Error && error.name === 'TimeoutError'
          ? 'timeout'
          : `network error: ${describe(error)}`;
      return { kind: 'retry', reason };
    }
    // Drain without buffering a large body: we only need the status.
    await response.body?.cancel().catch(() => undefined);
    return classifyWebhookResponse(
      response.status,
      response.headers.get('retry-after'),
      response.headers.get('x-request-id'),
      this.now(),
    );
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause;
    if (cause instanceof Error && 'code' in cause && typeof cause.code === 'string') return cause.code;
    return error.name;
  }
  return 'unknown';
}
