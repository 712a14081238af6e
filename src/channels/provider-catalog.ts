// The providers an operator can configure in HERALD_CONFIG_FILE, and how a file's `providers`
// list becomes ProviderEntry values: each entry is checked against its type's schema (every bad
// field named, no value ever shown), its credentials are read, and its adapter is built.
import { dirname } from 'node:path';
import type { Static, TSchema } from 'typebox';
import { Value } from 'typebox/value';
import type { Logger } from '../observability/logger.js';
import type { Channel } from '../domain/notification.js';
import type { OutboundPolicy } from '../domain/outbound-policy.js';
import type { ChannelProvider } from './channel-provider.js';
import type { ProviderEntry } from './provider-registry.js';
import { ProviderConfigError, createProviderContext, type ProviderContext } from './provider-settings.js';
import { ApnsSettings } from './apns/apns-settings.js';
import { createApnsProvider } from './apns/apns-provider.js';
import { FcmSettings } from './fcm/fcm-settings.js';
import { createFcmProvider } from './fcm/fcm-provider.js';
import { WebPushSettings } from './webpush/webpush-settings.js';
import { createWebPushProvider } from './webpush/webpush-provider.js';
import { SesSettings, SmtpSettings } from './email/email-settings.js';
import { createSmtpProvider } from './email/smtp-provider.js';
import { createSesProvider } from './email/ses-provider.js';
import { SmsGatewaySettings, TwilioSettings } from './sms/sms-settings.js';
import { createTwilioProvider } from './sms/twilio-provider.js';
import { createSmsGatewayProvider } from './sms/sms-gateway-provider.js';

interface CatalogEntry<S extends TSchema> {
  channel: Channel;
  settings: S;
  create: (settings: Static<S>, context: ProviderContext) => ChannelProvider;
}

function entry<S extends TSchema>(
  channel: Channel,
  settings: S,
  create: (settings: Static<S>, context: ProviderContext) => ChannelProvider,
): CatalogEntry<S> {
  return { channel, settings, create };
}

/** Every configurable provider type. Webhook and Slack need no configuration and are always on. */
export const providerTypes = {
  apns: entry('push', ApnsSettings, createApnsProvider),
  fcm: entry('push', FcmSettings, createFcmProvider),
  webpush: entry('push', WebPushSettings, createWebPushProvider),
  smtp: entry('email', SmtpSettings, createSmtpProvider),
  ses: entry('email', SesSettings, createSesProvider),
  twilio: entry('sms', TwilioSettings, createTwilioProvider),
  sms_gateway: entry('sms', SmsGatewaySettings, createSmsGatewayProvider),
} as const;

export type ProviderType = keyof typeof providerTypes;

export interface BuildOptions {
  /** The parsed HERALD_CONFIG_FILE and its path (relative file references resolve from its directory). */
  file: Record<string, unknown>;
  path: string;
  env: Record<string, string | undefined>;
  publicUrl: string | undefined;
  defaultTimeoutMs: number;
  /** Concurrency cap of a provider that sets none. */
  defaultConcurrency: number;
  /** A provider's timeout must be shorter than this (the lease), or a slow call is sent twice. */
  maxTimeoutMs: number;
  outbound: OutboundPolicy;
  logger: Logger;
}

/** Validates every provider entry and builds its adapter; throws ProviderConfigError naming every problem. */
export function buildConfiguredProviders(options: BuildOptions): ProviderEntry[] {
  const list = options.file['providers'];
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new ProviderConfigError(['providers: must be an array']);
  const problems: string[] = [];
  const valid: { index: number; type: ProviderType; settings: Record<string, unknown> }[] = [];
  list.forEach((raw: unknown, index) => {
    const where = `providers[${String(index)}]`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      problems.push(`${where}: must be an object`);
      return;
    }
    const type = (raw as Record<string, unknown>)['type'];
    if (typeof type !== 'string' || !(type in providerTypes)) {
      problems.push(`${where}.type: must be one of ${Object.keys(providerTypes).join(', ')}`);
      return;
    }
    const { settings: schema } = providerTypes[type as ProviderType];
    const settings = Value.Default(schema, structuredClone(raw)) as Record<string, unknown>;
    const errors = [...Value.Errors(schema, settings)];
    for (const error of errors.slice(0, 10)) {
      // Paths and rules only: a value may be a credential pasted in the wrong place.
      problems.push(`${where}${error.instancePath.replaceAll('/', '.')}: ${error.message}`);
    }
    if (errors.length === 0) valid.push({ index, type: type as ProviderType, settings });
  });
  const channelOf = new Map<string, Channel>([
    ['webhook', 'webhook'],
    ['slack', 'chat'],
  ]);
  for (const { index, type, settings } of valid) {
    const name = String(settings['name']);
    if (channelOf.has(name)) problems.push(`providers[${String(index)}].name: ${name} is already used`);
    channelOf.set(name, providerTypes[type].channel);
    const timeout = settings['timeoutMs'];
    if (typeof timeout === 'number' && timeout >= options.maxTimeoutMs)
      problems.push(
        `providers[${String(index)}].timeoutMs: must be shorter than LEASE_SECONDS (${String(options.maxTimeoutMs)} ms)`,
      );
  }
  for (const { index, type, settings } of valid) {
    const fallback = settings['fallback'];
    if (typeof fallback !== 'string') continue;
    const channel = channelOf.get(fallback);
    if (channel === undefined)
      problems.push(`providers[${String(index)}].fallback: no provider is named ${fallback}`);
    else if (channel !== providerTypes[type].channel || fallback === settings['name'])
      problems.push(
        `providers[${String(index)}].fallback: ${fallback} cannot stand in for this ${providerTypes[type].channel} provider`,
      );
  }
  if (problems.length > 0) throw new ProviderConfigError(problems);

  const entries: ProviderEntry[] = [];
  try {
    for (const { type, settings } of valid) {
      const name = String(settings['name']);
      const context = createProviderContext({
        providerName: name,
        configDir: dirname(options.path),
        env: options.env,
        publicUrl: options.publicUrl,
        defaultTimeoutMs: options.defaultTimeoutMs,
        outbound: options.outbound,
        logger: options.logger.child({ provider: name }),
      });
      const create = providerTypes[type].create as (s: unknown, c: ProviderContext) => ChannelProvider;
      const provider = create(settings, context);
      const rate = settings['ratePerSecond'];
      const concurrency = settings['concurrency'];
      const fallback = settings['fallback'];
      entries.push({
        provider,
        limits: {
          concurrency: typeof concurrency === 'number' ? concurrency : options.defaultConcurrency,
          ...(typeof rate === 'number' ? { ratePerSecond: rate } : {}),
        },
        ...(typeof fallback === 'string' ? { fallback } : {}),
      });
    }
  } catch (error) {
    void Promise.all(entries.map((e) => e.provider.close()));
    if (error instanceof ProviderConfigError) throw error;
    throw new ProviderConfigError([error instanceof Error ? error.message : String(error)]);
  }
  return entries;
}
