// The providers a process sends through: webhooks and Slack are always on; push, email and SMS
// come from the JSON file HERALD_CONFIG_FILE names, each entry checked (a bad one stops start-up
// naming the field, never the credential).
import { resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import { ConfigError, readProviderFile } from '../config/load-config.js';
import type { ProviderEntry } from '../channels/provider-registry.js';
import type { ChannelProvider } from '../channels/channel-provider.js';
import { buildConfiguredProviders } from '../channels/provider-catalog.js';
import { ProviderConfigError } from '../channels/provider-settings.js';
import { WebhookProvider } from '../channels/webhook/webhook-provider.js';
import { SlackProvider } from '../channels/slack/slack-provider.js';
import type { OutboundPolicy } from '../domain/outbound-policy.js';
import type { Logger } from '../observability/logger.js';

export function defaultProviders(
  config: Config,
  env: Record<string, string | undefined>,
  outbound: OutboundPolicy,
  logger: Logger,
): (ChannelProvider | ProviderEntry)[] {
  return [
    new WebhookProvider({ timeoutMs: config.WEBHOOK_TIMEOUT_MS, outbound }),
    new SlackProvider({ timeoutMs: config.WEBHOOK_TIMEOUT_MS, outbound }),
    ...configuredProviders(config, env, outbound, logger),
  ];
}

/** The providers HERALD_CONFIG_FILE lists, built; a bad entry stops start-up naming the field. */
function configuredProviders(
  config: Config,
  env: Record<string, string | undefined>,
  outbound: OutboundPolicy,
  logger: Logger,
): ProviderEntry[] {
  if (config.HERALD_CONFIG_FILE === undefined) return [];
  try {
    return buildConfiguredProviders({
      file: readProviderFile(config.HERALD_CONFIG_FILE),
      path: resolve(config.HERALD_CONFIG_FILE),
      env,
      publicUrl: config.PUBLIC_URL,
      defaultTimeoutMs: config.WEBHOOK_TIMEOUT_MS,
      defaultConcurrency: maxHeldPerProvider(config),
      maxTimeoutMs: config.LEASE_SECONDS * 1000,
      outbound,
      logger,
    });
  } catch (error) {
    if (error instanceof ProviderConfigError)
      throw new ConfigError(error.problems.map((p) => `HERALD_CONFIG_FILE: ${p}`));
    throw error;
  }
}

/** Slots of a worker one provider may hold, in flight plus waiting for its cap. */
export function maxHeldPerProvider(config: Config): number {
  return Math.max(1, Math.ceil(config.WORKER_CONCURRENCY * config.PROVIDER_MAX_SLOT_SHARE));
}
