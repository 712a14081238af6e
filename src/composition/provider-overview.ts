// The console's view of the providers (src/console/provider-pages.ts), built from the same
// settings the worker builds its providers from. Credentials are reduced to whether each is set:
// the overview never holds a credential, nor the variable or file it is read from.
import { resolve } from 'node:path';
import { Value } from 'typebox/value';
import type { TSchema } from 'typebox';
import type { Config } from '../config/schema.js';
import { readProviderFile } from '../config/load-config.js';
import { providerTypes, type ProviderType } from '../channels/provider-catalog.js';
import type { ConfiguredProvider, ProviderOverview } from '../console/provider-pages.js';
import { maxHeldPerProvider } from './configured-providers.js';

/** A credential reference ({"env": …} or {"file": …}), as provider-settings.ts declares them. */
function isCredential(value: unknown): boolean {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 1 && (keys[0] === 'env' || keys[0] === 'file');
}

/** Whether a settings schema is (optionally) a credential reference. */
function declaresCredential(schema: TSchema): boolean {
  const anyOf = (schema as { anyOf?: { properties?: Record<string, unknown> }[] }).anyOf;
  return anyOf?.some((s) => s.properties?.['env'] !== undefined) === true;
}

/** Every credential in an entry: the references it holds, and the declared ones it leaves out. */
function credentialsOf(
  type: ProviderType,
  entry: Record<string, unknown>,
): ConfiguredProvider['credentials'] {
  const found: ConfiguredProvider['credentials'] = [];
  const walk = (value: unknown, path: string) => {
    if (isCredential(value)) found.push({ field: path, set: true });
    else if (typeof value === 'object' && value !== null)
      for (const [k, v] of Object.entries(value)) walk(v, path === '' ? k : `${path}.${k}`);
  };
  walk(entry, '');
  const properties =
    (providerTypes[type].settings as { properties?: Record<string, TSchema> }).properties ?? {};
  for (const [field, schema] of Object.entries(properties))
    if (declaresCredential(schema) && entry[field] === undefined) found.push({ field, set: false });
  return found;
}

function fallbacksOf(name: string, fallbackOf: ReadonlyMap<string, string>): string[] {
  const chain: string[] = [];
  let next = fallbackOf.get(name);
  while (next !== undefined && next !== name && !chain.includes(next)) {
    chain.push(next);
    next = fallbackOf.get(next);
  }
  return chain;
}

/** The overview of what HERALD_CONFIG_FILE lists (already validated at start-up) and the built-in providers. */
export function providerOverview(config: Config): ProviderOverview {
  const concurrency = maxHeldPerProvider(config);
  const builtIn = (name: string, channel: 'webhook' | 'chat'): ConfiguredProvider => ({
    name,
    type: name,
    channel,
    fallbacks: [],
    concurrency,
    concurrencyIsDefault: true,
    // WEBHOOK_RATE_PER_SECOND limits webhooks per receiving origin; Slack has no rate of its own.
    ratePerSecond:
      channel === 'webhook' && config.WEBHOOK_RATE_PER_SECOND > 0
        ? config.WEBHOOK_RATE_PER_SECOND
        : undefined,
    ratePer: 'per receiving origin',
    timeoutMs: config.WEBHOOK_TIMEOUT_MS,
    credentials: [],
  });
  const file = config.HERALD_CONFIG_FILE === undefined ? {} : readProviderFile(config.HERALD_CONFIG_FILE);
  const list = Array.isArray(file['providers']) ? (file['providers'] as unknown[]) : [];
  // The file passed the provider checks at start-up; an entry of no known type is skipped all the same.
  const entries = list.flatMap((raw) => {
    const type = (raw as { type?: unknown }).type;
    if (typeof type !== 'string' || !(type in providerTypes)) return [];
    const schema: TSchema = providerTypes[type as ProviderType].settings;
    const settings = Value.Default(schema, structuredClone(raw)) as Record<string, unknown>;
    return [{ type: type as ProviderType, settings }];
  });
  const fallbackOf = new Map(
    entries.flatMap(({ settings }) =>
      typeof settings['fallback'] === 'string'
        ? [[String(settings['name']), settings['fallback']] as const]
        : [],
    ),
  );
  const configured = entries.map(({ type, settings }): ConfiguredProvider => {
    const name = String(settings['name']);
    const own = settings['concurrency'];
    const rate = settings['ratePerSecond'];
    const timeout = settings['timeoutMs'];
    return {
      name,
      type,
      channel: providerTypes[type].channel,
      fallbacks: fallbacksOf(name, fallbackOf),
      concurrency: typeof own === 'number' ? own : concurrency,
      concurrencyIsDefault: typeof own !== 'number',
      ratePerSecond: typeof rate === 'number' ? rate : undefined,
      ratePer: 'per provider',
      timeoutMs: typeof timeout === 'number' ? timeout : config.WEBHOOK_TIMEOUT_MS,
      credentials: credentialsOf(type, settings),
    };
  });
  return {
    providers: [builtIn('webhook', 'webhook'), builtIn('slack', 'chat'), ...configured],
    breaker: {
      minCalls: config.PROVIDER_BREAKER_MIN_CALLS,
      failureRatio: config.PROVIDER_BREAKER_FAILURE_RATIO,
      windowMs: config.PROVIDER_BREAKER_WINDOW_MS,
      openMs: config.PROVIDER_BREAKER_OPEN_MS,
    },
    maxSlotShare: config.PROVIDER_MAX_SLOT_SHARE,
    source: config.HERALD_CONFIG_FILE === undefined ? '' : resolve(config.HERALD_CONFIG_FILE),
  };
}
