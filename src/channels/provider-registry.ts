// The channel providers this process can deliver with, and which to use for a message: the
// primary for its channel (for push: by the device's platform and app), then its fallbacks.
import type { Channel, ChannelContent } from '../domain/notification.js';
import type { KeyLimits } from '../domain/provider-limits.js';
import type { ChannelProvider, PushDevice } from './channel-provider.js';

export interface ProviderEntry {
  provider: ChannelProvider;
  limits?: KeyLimits;
  /** Name of the provider to try when this one fails with a retryable or provider-level error. */
  fallback?: string;
}

export class ProviderRegistry {
  private readonly entries: ProviderEntry[];
  private readonly byName = new Map<string, ProviderEntry>();

  constructor(providers: readonly (ChannelProvider | ProviderEntry)[]) {
    this.entries = providers.map((p) => ('provider' in p ? p : { provider: p }));
    for (const entry of this.entries) {
      const { name } = entry.provider;
      if (this.byName.has(name)) throw new Error(`two providers are named ${name}`);
      this.byName.set(name, entry);
    }
    for (const entry of this.entries) {
      if (entry.fallback === undefined) continue;
      const fallback = this.byName.get(entry.fallback);
      if (fallback === undefined)
        throw new Error(`provider ${entry.provider.name}: fallback ${entry.fallback} is not configured`);
      if (fallback.provider.channel !== entry.provider.channel)
        throw new Error(
          `provider ${entry.provider.name}: fallback ${entry.fallback} serves ${fallback.provider.channel}, not ${entry.provider.channel}`,
        );
    }
  }

  /**
   * The providers to try for a message, in order: its primary, then the primary's fallbacks.
   * For push the primary serves the device's platform and lists its app (or lists no apps);
   * for other channels it is the first provider configured for the channel.
   */
  chainFor(channel: Channel, device: PushDevice | null): ChannelProvider[] {
    const primary = channel === 'push' ? this.pushPrimary(device) : this.firstFor(channel);
    const chain: ChannelProvider[] = [];
    for (let entry = primary; entry !== undefined && !chain.includes(entry.provider);) {
      chain.push(entry.provider);
      entry = entry.fallback === undefined ? undefined : this.byName.get(entry.fallback);
    }
    return chain;
  }

  limitsFor(name: string): KeyLimits {
    return this.byName.get(name)?.limits ?? {};
  }

  named(name: string): ChannelProvider | undefined {
    return this.byName.get(name)?.provider;
  }

  /** Channels a request may ask for: in_app needs no provider (the inbox is Herald's own). */
  availableChannels(): Set<Channel> {
    return new Set<Channel>(['in_app', ...this.entries.map((e) => e.provider.channel)]);
  }

  /**
   * What the providers of a channel would refuse in this content (e.g. a push payload over a
   * provider's size limit), so ingest can answer 400 instead of failing at send time.
   */
  contentProblems(channel: Channel, content: ChannelContent, data: Record<string, unknown> | null): string[] {
    const problems = new Set<string>();
    for (const { provider } of this.entries) {
      if (provider.channel !== channel || provider.checkContent === undefined) continue;
      const problem = provider.checkContent(content, data);
      if (problem !== null) problems.add(problem);
    }
    return [...problems];
  }

  async close(): Promise<void> {
    await Promise.all(this.entries.map((e) => e.provider.close()));
  }

  private firstFor(channel: Channel): ProviderEntry | undefined {
    return this.entries.find((e) => e.provider.channel === channel);
  }

  private pushPrimary(device: PushDevice | null): ProviderEntry | undefined {
    if (device === null) return this.firstFor('push');
    const forPlatform = this.entries.filter(
      (e) => e.provider.channel === 'push' && e.provider.serves?.platform === device.platform,
    );
    return (
      forPlatform.find((e) => e.provider.serves?.appIds?.includes(device.appId) === true) ??
      forPlatform.find((e) => e.provider.serves?.appIds === undefined)
    );
  }
}
