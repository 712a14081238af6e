// Webhook channel: POSTs the rendered notification as JSON to the user's or the service's URL,
// signed (see webhook-signature.ts), with a timeout. Uses undici's request API on a keep-alive
// agent: the fetch API's web streams and signal objects cost several times more CPU per call.
// Every connection passes the outbound policy (../outbound-connector.ts).
import { Agent, request } from 'undici';
import { traceHeaders, type ChannelProvider, type RenderedMessage } from '../channel-provider.js';
import type { DeliveryOutcome } from '../../domain/outcome.js';
import type { OutboundPolicy } from '../../domain/outbound-policy.js';
import { outboundConnector, type OutboundLookup } from '../outbound-connector.js';
import { unansweredOutcome } from '../network-reason.js';
import { signatureHeader, signWebhook, standardWebhookHeaders } from './webhook-signature.js';
import { classifyWebhookResponse } from './webhook-responses.js';

export interface WebhookProviderOptions {
  timeoutMs: number;
  /** Which addresses the receivers may have; checked on every new connection. */
  outbound: OutboundPolicy;
  /** Replaces DNS (tests). */
  lookup?: OutboundLookup;
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
      connect: outboundConnector(options.outbound, { timeout: options.timeoutMs, lookup: options.lookup }),
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
      ...traceHeaders(message),
    };
    const [current] = message.signingSecrets;
    if (current !== undefined) {
      const unixSeconds = Math.floor(this.now() / 1000);
      headers[signatureHeader] = signWebhook(current, body, unixSeconds);
      Object.assign(
        headers,
        standardWebhookHeaders(message.signingSecrets, message.deliveryId, body, unixSeconds),
      );
    }
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
      // Timeouts, refused or reset connections: the receiver may be back soon. A blocked
      // address fails for good.
      return unansweredOutcome(error, signal);
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
