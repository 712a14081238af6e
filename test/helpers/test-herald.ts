// Starts Herald in-process on a test database, with a calling service and its API key.
import { loadConfig } from '../../src/config/load-config.js';
import { startHerald, type Herald } from '../../src/composition/create-herald.js';
import type { RoleName } from '../../src/composition/roles.js';
import { createApiKey, ensureService } from '../../src/db/stores/api-key-store.js';
import { permissions, type Permission } from '../../src/domain/permissions.js';
import { createLogger, type Logger } from '../../src/observability/logger.js';
import type { ChannelProvider } from '../../src/channels/channel-provider.js';
import type { OutboundLookup } from '../../src/channels/outbound-connector.js';
import type { TestDatabase } from './test-database.js';
import { loopbackNetworks } from './loopback-allowed.js';

export interface TestHerald {
  herald: Herald;
  apiKey: string;
  /** Calls the api role (or `base`) with the test key unless `key` is given (null: none). */
  call(
    method: string,
    path: string,
    body?: unknown,
    options?: { key?: string | null; headers?: Record<string, string>; base?: string },
  ): Promise<{ status: number; headers: Headers; body: any }>;
  stop(): Promise<void>;
}

export async function startTestHerald(
  db: TestDatabase,
  options: {
    roles?: RoleName[];
    env?: Record<string, string>;
    service?: string;
    /** The test key's permissions; every permission unless given. */
    keyPermissions?: readonly Permission[];
    now?: () => Date;
    random?: () => number;
    providers?: ChannelProvider[];
    /** Replaces DNS for the status callbacks' URL checks and sender. */
    outboundLookup?: OutboundLookup;
    /** Where Herald logs; silent unless given (LOG_LEVEL does not apply to a given logger). */
    logger?: Logger;
  } = {},
): Promise<TestHerald> {
  const config = loadConfig({
    DATABASE_URL: db.url,
    API_PORT: '0',
    QUERY_PORT: '0',
    CONSOLE_PORT: '0',
    LOG_LEVEL: 'silent',
    POLL_INTERVAL_MS: '200',
    MAINTENANCE_INTERVAL_MS: '200',
    RETRY_BASE_MS: '20',
    RETRY_MAX_MS: '200',
    // The template database has partitions a year back for tests with an earlier clock: the
    // scheduler's retention job must not drop them (test/system/retention.test.ts sets its own).
    SERVICE_RETENTION_DAYS: '3650',
    IDEMPOTENCY_KEY_RETENTION_DAYS: '3650',
    // The stand-ins listen on loopback; a test of the policy itself sets this to '' (unset).
    OUTBOUND_ALLOWED_NETWORKS: loopbackNetworks,
    // Every answer a test sees is checked against the OpenAPI document as it leaves.
    RESPONSE_VALIDATION: 'true',
    ...options.env,
  });
  // Created first: the intake role binds its queues to existing services as it starts.
  const serviceId = await ensureService(db.pool, options.service ?? 'shop');
  const apiKey = await createApiKey(db.pool, serviceId, options.keyPermissions ?? permissions);
  const herald = await startHerald({
    config,
    roles: options.roles ?? ['api', 'query', 'worker', 'scheduler'],
    logger: options.logger ?? createLogger('silent'),
    ...(options.now === undefined ? {} : { now: options.now }),
    ...(options.random === undefined ? {} : { random: options.random }),
    ...(options.providers === undefined ? {} : { providers: options.providers }),
    ...(options.outboundLookup === undefined ? {} : { outboundLookup: options.outboundLookup }),
  });
  return {
    herald,
    apiKey,
    async call(method, path, body, callOptions = {}) {
      const key = callOptions.key === undefined ? apiKey : callOptions.key;
      const headers: Record<string, string> = { ...callOptions.headers };
      if (key !== null) headers['authorization'] = `Bearer ${key}`;
      if (body !== undefined) headers['content-type'] ??= 'application/json';
      const base = callOptions.base ?? herald.apiUrl ?? '';
      const response = await fetch(`${base}${path}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
      });
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = text === '' ? undefined : JSON.parse(text);
      } catch {
        // not JSON: keep the text
      }
      return { status: response.status, headers: response.headers, body: parsed };
    },
    stop: () => herald.stop(),
  };
}

export function idPath(id: string): string {
  return encodeURIComponent(id);
}
