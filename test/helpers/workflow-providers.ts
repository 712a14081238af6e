// Providers for the workflow tests: an SMS provider that records what it sends, an email provider
// that refuses everything for good, and an iOS push provider that accepts everything.
import type { ChannelProvider, RenderedMessage } from '../../src/channels/channel-provider.js';
import type { DeliveryOutcome } from '../../src/domain/outcome.js';

export class RecordingSms implements ChannelProvider {
  readonly name = 'sms-recorder';
  readonly channel = 'sms' as const;
  readonly calls: RenderedMessage[] = [];
  send(message: RenderedMessage): Promise<DeliveryOutcome> {
    this.calls.push(message);
    return Promise.resolve({ kind: 'sent', providerMessageId: `sms-${message.deliveryId}` });
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A push provider for iOS devices that accepts every message. */
export class AcceptingPush implements ChannelProvider {
  readonly name = 'push-recorder';
  readonly channel = 'push' as const;
  readonly serves = { platform: 'ios' as const };
  send(message: RenderedMessage): Promise<DeliveryOutcome> {
    return Promise.resolve({ kind: 'sent', providerMessageId: `push-${message.deliveryId}` });
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** An email provider that refuses every message for good. */
export class RefusingEmail implements ChannelProvider {
  readonly name = 'refusing-mail';
  readonly channel = 'email' as const;
  send(): Promise<DeliveryOutcome> {
    return Promise.resolve({ kind: 'failed', reason: 'mailbox closed' });
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}
