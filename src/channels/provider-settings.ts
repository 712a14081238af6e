// What every provider entry in HERALD_CONFIG_FILE shares, and how credentials are referenced:
// never inline, always `{"env": "NAME"}` or `{"file": "path"}` (relative to the config file),
// so the file can be checked in and shown without leaking anything.
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { Type, type Static } from 'typebox';
import type { Logger } from '../observability/logger.js';
import type { OutboundPolicy } from '../domain/outbound-policy.js';

export const SecretRef = Type.Union(
  [
    Type.Object({ env: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
    Type.Object({ file: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
  ],
  { description: 'A credential: {"env": "VARIABLE"} or {"file": "path"}; never the value itself.' },
);
export type SecretRef = Static<typeof SecretRef>;

/** Settings every provider entry has, whatever its type. */
export const commonProviderSettings = {
  /** Unique; names the provider's circuit, metrics and callback path /v1/callbacks/<name>. */
  name: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,39}$' }),
  /** Another provider of the same channel to try when this one fails with a retryable or provider-level error. */
  fallback: Type.Optional(Type.String({ minLength: 1 })),
  /** Calls in flight at once, per worker process (bulkhead). */
  concurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
  /** Calls per second, per worker process (token bucket). */
  ratePerSecond: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  /** Per-request timeout; a timeout is retried. */
  timeoutMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 120_000 })),
};

export class ProviderConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
    this.name = 'ProviderConfigError';
  }
}

/** What a provider factory gets besides its own settings. */
export interface ProviderContext {
  /** Reads a credential; the error names the provider and field, never the value. */
  secret(ref: SecretRef, field: string): string;
  /** Reads a non-secret file named in the config (e.g. a CA certificate), relative to the config file. */
  file(path: string, field: string): string;
  /** Where providers reach Herald's api role (PUBLIC_URL), for status callback URLs; undefined if unset. */
  publicUrl: string | undefined;
  /** Default per-request timeout when the entry has none. */
  defaultTimeoutMs: number;
  /** Which addresses a provider that calls on a caller's behalf may connect to (OUTBOUND_ALLOWED_NETWORKS). */
  outbound: OutboundPolicy;
  logger: Logger;
}

export function createProviderContext(options: {
  providerName: string;
  configDir: string;
  env: Record<string, string | undefined>;
  publicUrl: string | undefined;
  defaultTimeoutMs: number;
  outbound: OutboundPolicy;
  logger: Logger;
}): ProviderContext {
  const { providerName, configDir, env } = options;
  const readPath = (path: string, field: string): string => {
    try {
      return readFileSync(isAbsolute(path) ? path : resolve(configDir, path), 'utf8');
    } catch (cause) {
      throw new ProviderConfigError([
        `provider ${providerName}: ${field}: file ${JSON.stringify(path)} cannot be read (${(cause as NodeJS.ErrnoException).code ?? 'error'})`,
      ]);
    }
  };
  return {
    secret(ref, field) {
      if ('env' in ref) {
        const value = env[ref.env];
        if (value === undefined || value === '') {
          throw new ProviderConfigError([
            `provider ${providerName}: ${field}: environment variable ${ref.env} is not set`,
          ]);
        }
        return value;
      }
      return readPath(ref.file, field);
    },
    file: readPath,
    publicUrl: options.publicUrl,
    defaultTimeoutMs: options.defaultTimeoutMs,
    outbound: options.outbound,
    logger: options.logger,
  };
}
