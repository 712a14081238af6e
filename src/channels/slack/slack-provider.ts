// Chat channel: posts to a Slack incoming webhook (POST JSON {text}, answer 200 "ok").
// The text is Slack mrkdwn: the title in bold, the body, and the URL as a link; &, < and > are
// escaped as Slack requires (https://api.slack.com/reference/surfaces/formatting#escaping).
import { Agent, request } from 'undici';
import { traceHeaders, type ChannelProvider, type RenderedMessage } from '../channel-provider.js';
import type { DeliveryOutcome } from '../../domain/outcome.js';
import type { OutboundPolicy } from '../../domain/outbound-policy.js';
import { outboundConnector, type OutboundLookup } from '../outbound-connector.js';
import { unansweredOutcome } from '../network-reason.js';
import { classifySlackResponse } from './slack-responses.js';

export function slackText(message: RenderedMessage): string {
  const escape = (text: string) =>
    text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
  const { title, body, url, status } = message.content;
  const lines: string[] = [];
  if (title !== undefined)
    lines.push(`*${escape(title)}*${status === undefined ? '' : ` (${escape(status)})`}`);
  if (body !== undefined) lines.push(escape(body));
  if (url !== undefined) lines.push(`<${url.replaceAll('|', '%7C').replaceAll('>', '%3E')}|Open>`);
  return lines.join('\n');
}

export class SlackProvider implements ChannelProvider {
  readonly name = 'slack';
  readonly channel = 'chat' as const;
  private readonly agent: Agent;
  private readonly now: () => number;

  constructor(
    private readonly options: {
      timeoutMs: number;
      /** Which addresses the webhook URLs may have; checked on every new connection. */
      outbound: OutboundPolicy;
      /** Replaces DNS (tests). */
      lookup?: OutboundLookup;
      now?: () => number;
    },
  ) {
    this.now = options.now ?? Date.now;
    this.agent = new Agent({
      connect: outboundConnector(options.outbound, { timeout: options.timeoutMs, lookup: options.lookup }),
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
    });
  }

  async send(message: RenderedMessage, signal: AbortSignal): Promise<DeliveryOutcome> {
    try {
      const response = await request(message.target, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...traceHeaders(message) },
        body: JSON.stringify({ text: slackText(message) }),
        dispatcher: this.agent,
        signal,
      });
      const text = (await response.body.text()).slice(0, 1000);
      const retryAfter = response.headers['retry-after'];
      return classifySlackResponse(
        response.statusCode,
        text,
        typeof retryAfter === 'string' ? retryAfter : null,
        this.now(),
      );
    } catch (error) {
      return unansweredOutcome(error, signal);
    }
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
