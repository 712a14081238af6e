// THE port every delivery channel's adapter implements. An adapter turns a rendered message
// into a call on its provider's wire protocol and classifies the answer as a DeliveryOutcome;
// an exception escaping send() is treated as a retry by the dispatcher.
import type { Channel, ChannelContent, Lane } from '../domain/notification.js';
import type { DeliveryOutcome } from '../domain/outcome.js';

export interface RenderedMessage {
  deliveryId: string;
  notificationId: string;
  /** The notification's version this message was rendered from (newer replaces older on the target). */
  version: number;
  channel: Channel;
  /** Device id, address or URL, per channel. */
  target: string;
  userId: string;
  lane: Lane;
  category: string;
  attempt: number;
  content: ChannelContent;
  data: Record<string, unknown> | null;
  /** Secret the sending service signs webhooks with. */
  signingSecret: string | null;
}

export interface ChannelProvider {
  readonly name: string;
  readonly channel: Channel;
  send(message: RenderedMessage, signal: AbortSignal): Promise<DeliveryOutcome>;
  close(): Promise<void>;
}
