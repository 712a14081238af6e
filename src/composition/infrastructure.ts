// What every role of a process shares, opened once: providers, the database (embedded when
// DATABASE_URL is unset) migrated and partitioned, the query role's read replica, the archive
// store, one LISTEN connection for the channels the process's roles hear, the NOTIFY sender,
// metrics, API-key authentication, unsubscribe signing and the template renderer. Closed in the reverse order it was opened.
import type { Config } from '../config/schema.js';
import { createPool, statementsSent, type Pool } from '../db/pools.js';
import { isConnectionError } from '../db/pg-errors.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../db/embedded-postgres.js';
import { migrate, readMigrations, type Migration } from '../db/migrate.js';
import { ensurePartitions } from '../db/partitions.js';
import { readBacklog } from '../db/stores/delivery-store.js';
import { readCallbackBacklog } from '../db/stores/callback-store.js';
import { readReplicaLag } from '../db/replica-lag.js';
import { WakeNotifier, wakeChannels, type WakeChannel } from '../db/wake-notifier.js';
import { ensureSigningKey } from '../db/stores/signing-key-store.js';
import { TrackingLinks } from '../templates/tracking-links.js';
import { createApiKeyAuth, type Authenticate } from '../http/api-key-auth.js';
import { findCallerByKey } from '../db/stores/api-key-store.js';
import type { ServerOptions } from '../http/build-server.js';
import { WakeListener } from '../db/wake-listener.js';
import { PipelineEvents } from '../pipeline/pipeline-events.js';
import { UnsubscribeTokens } from '../api/unsubscribe/unsubscribe-token.js';
import { archiveDatabaseUrl, openArchive } from '../archive/archive-store.js';
import { ProviderRegistry, type ProviderEntry } from '../channels/provider-registry.js';
import type { ChannelProvider } from '../channels/channel-provider.js';
import type { OutboundLookup } from '../channels/outbound-connector.js';
import { OutboundPolicy } from '../domain/outbound-policy.js';
import { parseIpNetworkList } from '../domain/ip-address.js';
import { createMetrics, type Metrics } from '../observability/metrics.js';
import { registerStatementCounter } from '../observability/statement-metrics.js';
import { BudgetedRenderer } from '../templates/budgeted-renderer.js';
import type { Logger } from '../observability/logger.js';
import type { Tracer } from '../observability/tracing.js';
import type { RoleName } from './roles.js';
import { StopList } from './stop-list.js';
import { defaultProviders } from './configured-providers.js';
import { ensureDevApiKey } from './dev-api-key.js';

export interface HeraldOptions {
  config: Config;
  roles: readonly RoleName[];
  logger: Logger;
  /** Clock and randomness, injectable for tests. */
  now?: () => Date;
  random?: () => number;
  /** Replaces the configured providers (tests that need a provider of their own). */
  providers?: (ChannelProvider | ProviderEntry)[];
  /** Where provider credentials referenced as {"env": …} are read (main passes process.env). */
  env?: Record<string, string | undefined>;
  /** Replaces DNS for the status callbacks (tests of names that resolve to refused addresses). */
  outboundLookup?: OutboundLookup;
}

export interface Infrastructure {
  readonly config: Config;
  readonly logger: Logger;
  readonly roles: ReadonlySet<RoleName>;
  readonly now: () => Date;
  readonly random: () => number;
  readonly databaseUrl: string;
  readonly embedded: boolean;
  readonly pool: Pool;
  /** Where the query role reads: the replica (DATABASE_READ_URL) when set, else `pool`. */
  readonly readPool: Pool;
  readonly migrations: Migration[];
  /** The archive store's pool (docs/retention.md); opened for the query and scheduler roles. */
  readonly archivePool: Pool | undefined;
  readonly listener: WakeListener;
  readonly notifier: WakeNotifier;
  readonly metrics: Metrics;
  /** Spans of requests and delivery attempts, exported over OTLP; undefined when tracing is off. */
  readonly tracer: Tracer | undefined;
  readonly events: PipelineEvents;
  readonly providers: ProviderRegistry;
  readonly outbound: OutboundPolicy;
  /** Replaces DNS for the status callbacks' URL checks and sender (tests); undefined: dns.lookup. */
  readonly outboundLookup: OutboundLookup | undefined;
  readonly authenticate: Authenticate;
  /** Signs the one-click unsubscribe links (api and worker roles). */
  readonly unsubscribeTokens: UnsubscribeTokens | undefined;
  /** Email open and click links (TRACKING_URL set; worker and query roles). */
  readonly trackingLinks: TrackingLinks | undefined;
  /** One per process: what blew its render limit is remembered for the inbox and the worker alike. */
  readonly renderer: BudgetedRenderer;
  readonly devApiKey: string | undefined;
  /** Every HTTP server's options: body limit, timeouts, whether it serves the API documents. */
  readonly serverOptions: Omit<ServerOptions, 'title' | 'description' | 'role'>;
  /** Registers what must be undone when the process stops (run newest first). */
  onStop(stop: () => Promise<void>): void;
  close(): Promise<void>;
}

/** Opens the shared parts; on a failure closes what was opened and throws. */
export async function openInfrastructure(options: HeraldOptions): Promise<Infrastructure> {
  const { config, logger } = options;
  const roles = new Set(options.roles);
  const now = options.now ?? (() => new Date());
  const stops = new StopList((error) => logger.warn({ err: error }, 'error while stopping'));
  try {
    // Validated by loadConfig: every entry is a network.
    const outbound = new OutboundPolicy(parseIpNetworkList(config.OUTBOUND_ALLOWED_NETWORKS ?? '').networks);
    // Providers first: a bad provider entry stops start-up before anything else starts.
    const providers = new ProviderRegistry(
      options.providers ?? defaultProviders(config, options.env ?? {}, outbound, logger),
    );
    stops.add(() => providers.close());
    // Stopped after everything opened later (servers, roles, pools; only the providers close
    // after it), so the spans of what is stopping are still exported.
    const tracer = await openTracer(config, roles, logger, stops);
    const database = await openDatabase(config, logger, stops);
    const { pool } = database;
    const migrations = await readMigrations();
    const applied = await migrate(pool, migrations);
    if (applied.length > 0) logger.info({ applied }, 'applied migrations');
    await ensurePartitions(pool, now(), config.PARTITION_MONTHS_AHEAD);
    const archivePool = await openArchiveFor(roles, config, database.url, logger, stops);
    const listener = await startListener(roles, database.url, logger, stops);
    const notifier = new WakeNotifier(pool, logger);
    stops.add(() => notifier.close());
    const replica = openReplicaFor(roles, config, logger, stops);
    // The backlog is database-wide: published by scheduler processes only, so a sum over the
    // other processes' metrics does not multiply it. A replica's lag: by the processes reading it.
    const metrics = createMetrics({
      ...(roles.has('scheduler')
        ? { readPending: () => readBacklog(pool), readCallbackBacklog: () => readCallbackBacklog(pool) }
        : {}),
      ...(replica === undefined ? {} : { readReplicaLag: () => readReplicaLag(replica) }),
    });
    registerStatementCounter(metrics.registry, statementsSent);
    const authenticate = createApiKeyAuth({ lookup: (key) => findCallerByKey(pool, key) });
    // A revoked key is forgotten by every api and query process when its NOTIFY arrives.
    listener.subscribe(wakeChannels.auth, () => authenticate.forget());
    return {
      config,
      logger,
      roles,
      now,
      random: options.random ?? Math.random,
      databaseUrl: database.url,
      embedded: database.embedded !== undefined,
      pool,
      readPool: replica ?? pool,
      migrations,
      archivePool,
      listener,
      notifier,
      metrics,
      tracer,
      events: new PipelineEvents(),
      providers,
      outbound,
      outboundLookup: options.outboundLookup,
      authenticate,
      unsubscribeTokens:
        roles.has('api') || roles.has('worker')
          ? new UnsubscribeTokens(
              config.UNSUBSCRIBE_SECRET !== undefined
                ? Buffer.from(config.UNSUBSCRIBE_SECRET, 'utf8')
                : await ensureSigningKey(pool, 'unsubscribe'),
            )
          : undefined,
      trackingLinks:
        config.TRACKING_URL !== undefined && (roles.has('worker') || roles.has('query'))
          ? new TrackingLinks({
              key:
                config.TRACKING_SECRET !== undefined
                  ? Buffer.from(config.TRACKING_SECRET, 'utf8')
                  : await ensureSigningKey(pool, 'tracking'),
              baseUrl: config.TRACKING_URL,
              ttlSeconds: config.TRACKING_LINK_TTL_DAYS * 86_400,
              now,
            })
          : undefined,
      renderer: new BudgetedRenderer({
        budgetMs: config.RENDER_BUDGET_MS,
        itemMs: config.RENDER_ITEM_LIMIT_MS,
        metrics,
        logger,
      }),
      devApiKey:
        database.embedded !== undefined && config.DEV_API_KEY
          ? await ensureDevApiKey(pool, config.HERALD_DATA_DIR)
          : undefined,
      serverOptions: {
        logger,
        bodyLimit: config.BODY_LIMIT_BYTES,
        timeouts: {
          requestMs: config.HTTP_REQUEST_TIMEOUT_MS,
          headersMs: config.HTTP_HEADERS_TIMEOUT_MS,
          keepAliveMs: config.HTTP_KEEP_ALIVE_TIMEOUT_MS,
          idleMs: config.HTTP_IDLE_TIMEOUT_MS,
        },
        // ops-port: the API documents only on OPS_PORT (docs/security.md).
        exposeDocs: config.OPS_ENDPOINTS !== 'ops-port',
        opsToken: config.OPS_TOKEN,
        validateResponses: config.RESPONSE_VALIDATION,
        isUnavailable: isConnectionError,
        metrics,
        tracer,
      },
      onStop: (stop) => stops.add(stop),
      close: () => stops.stopAll(),
    };
  } catch (error) {
    await stops.stopAll();
    throw error;
  }
}

/**
 * The OpenTelemetry tracer when OTEL_EXPORTER_OTLP_ENDPOINT is set. The SDK is imported only
 * then: a process without tracing loads none of it.
 */
async function openTracer(
  config: Config,
  roles: ReadonlySet<RoleName>,
  logger: Logger,
  stops: StopList,
): Promise<Tracer | undefined> {
  const endpoint = config.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (endpoint === undefined) return undefined;
  const { createOtelTracer } = await import('../observability/otel-tracing.js');
  const tracer = createOtelTracer({
    endpoint,
    serviceName: config.OTEL_SERVICE_NAME,
    headers: exportHeaders(config.OTEL_EXPORTER_OTLP_HEADERS),
    roles: [...roles],
  });
  stops.add(() => tracer.shutdown());
  // The endpoint only: it may carry credentials in its user part, which stay out of the log.
  logger.info({ endpoint: new URL(endpoint).origin }, 'tracing: exporting spans over OTLP/HTTP');
  return tracer;
}

/** OTEL_EXPORTER_OTLP_HEADERS (`k=v,k2=v2`, values URL-encoded; validated by the schema). */
function exportHeaders(text: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const pair of text === undefined ? [] : text.split(',')) {
    const at = pair.indexOf('=');
    const value = pair.slice(at + 1).trim();
    let decoded = value;
    try {
      decoded = decodeURIComponent(value);
    } catch {
      // Not percent-encoding after all: sent as written.
    }
    headers[pair.slice(0, at).trim()] = decoded;
  }
  return headers;
}

async function openDatabase(
  config: Config,
  logger: Logger,
  stops: StopList,
): Promise<{ url: string; pool: Pool; embedded: EmbeddedPostgres | undefined }> {
  let url = config.DATABASE_URL;
  let embedded: EmbeddedPostgres | undefined;
  if (url === undefined) {
    const started = await startEmbeddedPostgres({
      dataDir: config.HERALD_DATA_DIR,
      port: config.EMBEDDED_PG_PORT,
      logger,
    });
    stops.add(() => started.stop());
    embedded = started;
    url = started.url;
  }
  const pool = createPool(url, config.DATABASE_POOL_SIZE, logger, 'write');
  stops.add(() => pool.end());
  return { url, pool, embedded };
}

/** The query role's read replica, when DATABASE_READ_URL is set. */
function openReplicaFor(
  roles: ReadonlySet<RoleName>,
  config: Config,
  logger: Logger,
  stops: StopList,
): Pool | undefined {
  if (!roles.has('query') || config.DATABASE_READ_URL === undefined) return undefined;
  const replica = createPool(config.DATABASE_READ_URL, config.DATABASE_POOL_SIZE, logger, 'read');
  stops.add(() => replica.end());
  return replica;
}

/** The archive store: the scheduler moves old months there, the support lookups (query and console roles) read it. */
async function openArchiveFor(
  roles: ReadonlySet<RoleName>,
  config: Config,
  databaseUrl: string,
  logger: Logger,
  stops: StopList,
): Promise<Pool | undefined> {
  if (!roles.has('scheduler') && !roles.has('query') && !roles.has('console')) return undefined;
  const archive = await openArchive({
    url: archiveDatabaseUrl(databaseUrl, config.ARCHIVE_DATABASE_URL),
    serviceUrl: databaseUrl,
    poolSize: Math.min(config.DATABASE_POOL_SIZE, 4),
    logger,
  });
  stops.add(() => archive.end());
  return archive;
}

/** One LISTEN connection per process, for the channels its roles hear (hints only). */
async function startListener(
  roles: ReadonlySet<RoleName>,
  databaseUrl: string,
  logger: Logger,
  stops: StopList,
): Promise<WakeListener> {
  const heard: Record<RoleName, WakeChannel[]> = {
    api: [wakeChannels.settings, wakeChannels.auth],
    query: [wakeChannels.inbox, wakeChannels.auth],
    worker: [wakeChannels.fanOut, wakeChannels.deliveries, wakeChannels.settings, wakeChannels.callbacks],
    scheduler: [],
    console: [],
    intake: [wakeChannels.settings],
  };
  const channels = new Set([...roles].flatMap((role) => heard[role]));
  const listener = new WakeListener(databaseUrl, [...channels], logger);
  if (channels.size > 0) {
    await listener.start();
    stops.add(() => listener.stop());
  }
  return listener;
}
