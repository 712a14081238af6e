// What the email channel's tests share: messages to an address, a provider context over the
// given secrets (loopback allowed, for the stand-ins), and small readers of outcomes.
import { createLogger } from '../../src/observability/logger.js';
import { createProviderContext, type ProviderContext } from '../../src/channels/provider-settings.js';
import type { RenderedMessage } from '../../src/channels/channel-provider.js';
import type { ChannelContent } from '../../src/domain/notification.js';
import type { DeliveryOutcome } from '../../src/domain/outcome.js';
import { loopbackAllowed } from './loopback-allowed.js';

let sequence = 0;
export function emailMessage(target: string, content: ChannelContent, userId = 'ana'): RenderedMessage {
  sequence += 1;
  return {
    deliveryId: `d-${String(sequence)}`,
    notificationId: `svc#n-${String(sequence)}`,
    version: 1,
    channel: 'email',
    target,
    userId,
    lane: 'transactional',
    category: 'alerts',
    attempt: 1,
    content,
    data: null,
    signingSecrets: [],
    device: null,
  };
}

export function testContext(env: Record<string, string> = {}): ProviderContext {
  return createProviderContext({
    providerName: 'email-test',
    configDir: process.cwd(),
    env,
    publicUrl: undefined,
    defaultTimeoutMs: 5_000,
    outbound: loopbackAllowed,
    logger: createLogger('silent'),
  });
}

/** The reason of any outcome but sent ('' for sent). */
export const reasonOf = (outcome: DeliveryOutcome): string => ('reason' in outcome ? outcome.reason : '');

/** A fresh signal per send, as the dispatcher gives each delivery its own. */
export const never = (): AbortSignal => new AbortController().signal;
