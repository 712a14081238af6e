// Messages for the SMS adapters' tests, and a signal that is never aborted.
import { randomUUID } from 'node:crypto';
import type { RenderedMessage } from '../../src/channels/channel-provider.js';
import type { ChannelContent } from '../../src/domain/notification.js';

export function message(target: string, content: ChannelContent): RenderedMessage {
  return {
    deliveryId: randomUUID(),
    notificationId: `svc#${randomUUID()}`,
    version: 1,
    channel: 'sms',
    target,
    userId: 'ana',
    lane: 'transactional',
    category: 'alert',
    attempt: 1,
    content,
    data: null,
    signingSecrets: [],
    device: null,
  };
}

export const live = () => new AbortController().signal;
