// The channel providers this process can deliver with, by channel.
import type { Channel } from '../domain/notification.js';
import type { ChannelProvider } from './channel-provider.js';

export class ProviderRegistry {
  private readonly byChannel = new Map<Channel, ChannelProvider>();

  constructor(providers: ChannelProvider[]) {
    for (const p of providers) this.byChannel.set(p.channel, p);
  }

  forChannel(channel: Channel): ChannelProvider | undefined {
    return this.byChannel.get(channel);
  }

  /** Channels a request may ask for: in_app needs no provider (the inbox is Herald's own). */
  availableChannels(): Set<Channel> {
    return new Set<Channel>(['in_app', ...this.byChannel.keys()]);
  }

  async close(): Promise<void> {
    await Promise.all([...this.byChannel.values()].map((p) => p.close()));
  }
}
