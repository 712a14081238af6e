// The composition root: config → database → pools → stores → providers → roles. The only code
// that constructs infrastructure and reads Config. Returns a start/stop handle.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/schema.js';
import { createPool, type Pool } from '../db/pools.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../db/embedded-postgres.js';
import { migrate, readMigrations } from '../db/migrate.js';
import { ensurePartitions } from '../db/partitions.js';
import { createApiKey, ensureService, grantPermissions } from '../db/stores/api-key-store.js';
import { permissions } from '../domain/permissions.js';
import { readBacklog } from '../db/stores/delivery-store.js';
import { WakeNotifier, wakeChannels, type WakeChannel } from '../db/wake-notifier.js';
import { buildServer, roleDocumentRoutes, type OpenApiDocument } from '../http/build-server.js';
import { createApiKeyAuth } from '../http/api-key-auth.js';
import { notificationRoutes } from '../ingest/notification-routes.js';
import { IngestBatcher } from '../ingest/ingest-batcher.js';
import { userRoutes } from '../ingest/user-routes.js';
import { serviceRoutes } from '../ingest/service-routes.js';
import { deadLetterRoutes } from '../ingest/dead-letter-routes.js';
import { inboxRoutes } from '../query/inbox-routes.js';
import { InboxPresenter } from '../query/inbox-presenter.js';
import { InboxStreams } from '../query/inbox-stream.js';
import { requireInboxAccess, UserTokens } from '../query/user-auth.js';
import { CredentialRevocations } from '../query/credential-revocations.js';
import { supportRoutes } from '../query/support-routes.js';
import { inboxPageRoutes } from '../query/inbox-page-routes.js';
import { FanOutStage } from '../pipeline/fan-out-stage.js';
import { Dispatcher } from '../pipeline/dispatcher.js';
import { ProviderGuard } from '../pipeline/provider-guard.js';
import { PipelineEvents } from '../pipeline/pipeline-events.js';
import { WakeListener } from '../pipeline/wake-up.js';
import { SettingsCache } from '../pipeline/settings-cache.js';
import { ensureSigningKey } from '../db/stores/signing-key-store.js';
import { preferenceRoutes, userPreferenceRoutes } from '../ingest/preference-routes.js';
import { templateRoutes } from '../ingest/template-routes.js';
import { unsubscribeRoutes } from '../ingest/unsubscribe-routes.js';
import { UnsubscribeTokens } from '../ingest/unsubscribe-token.js';
import { IngestQuota } from '../ingest/ingest-quota.js';
import { PeriodicJob } from '../scheduler/periodic-job.js';
import { leaseRescuer } from '../scheduler/lease-rescuer.js';
import { partitionUpkeep } from '../scheduler/partition-upkeep.js';
import { archiveDatabaseUrl, openArchive } from '../archive/archive-store.js';
import { retention } from '../scheduler/retention.js';
import type { LifecycleSettings } from '../archive/lifecycle-deps.js';
import { ProviderRegistry, type ProviderEntry } from '../channels/provider-registry.js';
import { buildConfiguredProviders } from '../channels/provider-catalog.js';
import { ProviderConfigError } from '../channels/provider-settings.js';
import { ConfigError, readProviderFile } from '../config/load-config.js';
import { callbackRoutes } from '../ingest/callback-routes.js';
import { settingsChange } from '../db/settings-change.js';
import { receiptReconciler } from '../scheduler/receipt-reconciler.js';
import { WebhookProvider } from '../channels/webhook/webhook-provider.js';
import { SlackProvider } from '../channels/slack/slack-provider.js';
import type { ChannelProvider } from '../channels/channel-provider.js';
import { OutboundPolicy } from '../domain/outbound-policy.js';
import { parseIpNetworkList } from '../domain/ip-address.js';
import { createMetrics, type Metrics } from '../observability/metrics.js';
import { metricsRoutes, opsRoutes } from '../observability/health.js';
import { BudgetedRenderer } from '../templates/budgeted-renderer.js';
import type { Logger } from '../observability/logger.js';
import { roleNames, type RoleName } from './roles.js';

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
}

export interface Herald {
  readonly databaseUrl: string;
  readonly pool: Pool;
  /** The archive store's pool (docs/retention.md); opened for the query and scheduler roles. */
  readonly archivePool: Pool | undefined;
  readonly metrics: Metrics;
  readonly events: PipelineEvents;
  readonly apiUrl: string | undefined;
  readonly queryUrl: string | undefined;
  /** The ops port's server (OPS_PORT), when this process listens on it. */
  readonly opsUrl: string | undefined;
  readonly devApiKey: string | undefined;
  readonly fanOut: FanOutStage | undefined;
  stop(): Promise<void>;
}

export async function startHerald(options: HeraldOptions): Promise<Herald> {
  const { config, logger } = options;
  const now = options.now ?? (() => new Date());
  const random = options.random ?? Math.random;
  const roles = new Set(options.roles);
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) {
      await stop().catch((error: unknown) => logger.warn({ err: error }, 'error while stopping'));
    }
  };

  try {
    // Validated by loadConfig: every entry is a network.
    const outbound = new OutboundPolicy(parseIpNetworkList(config.OUTBOUND_ALLOWED_NETWORKS ?? '').networks);
    // Providers first: a bad provider entry stops start-up before anything else starts.
    const providers = new ProviderRegistry(
      options.providers ?? [
        new WebhookProvider({ timeoutMs: config.WEBHOOK_TIMEOUT_MS, outbound }),
        new SlackProvider({ timeoutMs: config.WEBHOOK_TIMEOUT_MS, outbound }),
        ...configuredProviders(config, options.env ?? {}, outbound, logger),
      ],
    );
    stops.push(() => providers.close());
    let embedded: EmbeddedPostgres | undefined;
    let databaseUrl = config.DATABASE_URL;
    if (databaseUrl === undefined) {
      embedded = await startEmbeddedPostgres({
        dataDir: config.HERALD_DATA_DIR,
        port: config.EMBEDDED_PG_PORT,
        logger,
      });
      stops.push(() => embedded?.stop() ?? Promise.resolve());
      databaseUrl = embedded.url;
    }
    const pool = createPool(databaseUrl, config.DATABASE_POOL_SIZE, logger, 'write');
    stops.push(() => pool.end());
    const migrations = await readMigrations();
    const applied = await migrate(pool, migrations);
    if (applied.length > 0) logger.info({ applied }, 'applied migrations');
    await ensurePartitions(pool, now(), config.PARTITION_MONTHS_AHEAD);

    // The archive store: the scheduler moves old months there, the query role's support lookup reads it.
    let archivePool: Pool | undefined;
    if (roles.has('scheduler') || roles.has('query')) {
      const opened = await openArchive({
        url: archiveDatabaseUrl(databaseUrl, config.ARCHIVE_DATABASE_URL),
        serviceUrl: databaseUrl,
        poolSize: Math.min(config.DATABASE_POOL_SIZE, 4),
        logger,
      });
      stops.push(() => opened.end());
      archivePool = opened;
    }

    // One LISTEN connection per process, for the channels its roles hear (hints only).
    const listened = new Set<WakeChannel>();
    if (roles.has('api')) listened.add(wakeChannels.settings).add(wakeChannels.auth);
    if (roles.has('worker'))
      for (const c of [wakeChannels.fanOut, wakeChannels.deliveries, wakeChannels.settings]) listened.add(c);
    if (roles.has('query')) listened.add(wakeChannels.inbox).add(wakeChannels.auth);
    const listener = new WakeListener(databaseUrl, [...listened], logger);
    if (listened.size > 0) {
      await listener.start();
      stops.push(() => listener.stop());
    }

    const devApiKey =
      embedded !== undefined && config.DEV_API_KEY
        ? await ensureDevApiKey(pool, config.HERALD_DATA_DIR)
        : undefined;
    const metrics = createMetrics(() => readBacklog(pool));
    const events = new PipelineEvents();
    const notifier = new WakeNotifier(pool, logger);
    stops.push(() => notifier.close());
    const authenticate = createApiKeyAuth({ pool });
    // A revoked key is forgotten by every api and query process when its NOTIFY arrives.
    listener.subscribe(wakeChannels.auth, () => authenticate.forget());
    // Unsubscribe links: signed by the api role's checker and the worker's email rendering alike.
    const unsubscribeTokens =
      roles.has('api') || roles.has('worker')
        ? new UnsubscribeTokens(
            config.UNSUBSCRIBE_SECRET !== undefined
              ? Buffer.from(config.UNSUBSCRIBE_SECRET, 'utf8')
              : await ensureSigningKey(pool, 'unsubscribe'),
          )
        : undefined;
    const roleList = roleNames.filter((r) => roles.has(r));
    const ops = opsRoutes({ pool, migrations, roles: roleList });
    // ops-port: /metrics and the API documents only on OPS_PORT (docs/security.md).
    const opsPortOnly = config.OPS_ENDPOINTS === 'ops-port';
    const publicOps = opsPortOnly ? [ops] : [ops, metricsRoutes(metrics)];
    const serverOptions = {
      logger,
      bodyLimit: config.BODY_LIMIT_BYTES,
      timeouts: {
        requestMs: config.HTTP_REQUEST_TIMEOUT_MS,
        headersMs: config.HTTP_HEADERS_TIMEOUT_MS,
        keepAliveMs: config.HTTP_KEEP_ALIVE_TIMEOUT_MS,
        idleMs: config.HTTP_IDLE_TIMEOUT_MS,
      },
      exposeDocs: !opsPortOnly,
      opsToken: config.OPS_TOKEN,
    };
    const documents: { role: RoleName; document: () => OpenApiDocument }[] = [];
    // One per process: what blew its render limit is remembered for the inbox and the worker alike.
    const renderer = new BudgetedRenderer({
      budgetMs: config.RENDER_BUDGET_MS,
      itemMs: config.RENDER_ITEM_LIMIT_MS,
      metrics,
      logger,
    });
    // Ingest checks against half the cap, so what it accepts renders in time on a busier machine.
    const templateRenderMs = Math.max(1, Math.floor(config.RENDER_ITEM_LIMIT_MS / 2));

    const listen = async (app: FastifyInstance, port: number): Promise<string> => {
      stops.push(() => app.close());
      return app.listen({ port, host: config.HOST });
    };

    let apiUrl: string | undefined;
    if (roles.has('api')) {
      // Templates' current versions, cached and dropped by the herald_settings NOTIFY of a save.
      const templateCache = new SettingsCache(listener, {
        ttlMs: 60_000,
        jitterMs: 10_000,
        maxEntries: 10_000,
        now: () => now().getTime(),
        random,
      });
      const batcher = new IngestBatcher(pool, {
        maxBatch: 500,
        maxConcurrentCommits: config.INGEST_CONCURRENT_COMMITS,
      });
      // Registered before the server's close, so it runs after it: answered requests are committed.
      stops.push(() => batcher.drain());
      const app = await buildServer(
        {
          ...serverOptions,
          title: 'Herald API',
          description: 'Send notifications; manage users, devices and dead letters.',
        },
        [
          ...publicOps,
          notificationRoutes({
            pool,
            batcher,
            now,
            notifier,
            metrics,
            authenticate,
            availableChannels: providers.availableChannels(),
            contentProblems: (channel, content, data) => providers.contentProblems(channel, content, data),
            maxRecipients: config.MAX_RECIPIENTS_PER_REQUEST,
            templateRenderMs,
            resolveTemplate: (serviceId, key) => templateCache.currentTemplate(pool, serviceId, key),
            quota:
              config.INGEST_QUOTA_PER_MINUTE > 0
                ? new IngestQuota(config.INGEST_QUOTA_PER_MINUTE, () => now().getTime())
                : undefined,
          }),
          userRoutes({ pool, authenticate, maxBulkUsers: 1000, outbound }),
          serviceRoutes({ pool, authenticate, outbound }),
          deadLetterRoutes({
            pool,
            authenticate,
            notifier,
            now,
            replayableDays: Math.max(1, config.SERVICE_RETENTION_DAYS - 1),
          }),
          callbackRoutes({ pool, providers, metrics, publicUrl: config.PUBLIC_URL }),
          preferenceRoutes({ pool, authenticate }),
          templateRoutes({
            pool,
            authenticate,
            templateRenderMs,
            onSaved: (serviceId, keys) => {
              for (const key of keys) templateCache.invalidate(settingsChange.template(serviceId, key));
            },
          }),
          ...(unsubscribeTokens === undefined
            ? []
            : [unsubscribeRoutes({ pool, tokens: unsubscribeTokens })]),
        ],
      );
      apiUrl = await listen(app, config.API_PORT);
      documents.push({ role: 'api', document: () => app.swagger() });
    }

    let queryUrl: string | undefined;
    if (roles.has('query')) {
      let readPool = pool;
      if (config.DATABASE_READ_URL !== undefined) {
        const replica = createPool(config.DATABASE_READ_URL, config.DATABASE_POOL_SIZE, logger, 'read');
        stops.push(() => replica.end());
        readPool = replica;
      }
      const tokens = new UserTokens({
        secret:
          config.USER_TOKEN_SECRET !== undefined
            ? Buffer.from(config.USER_TOKEN_SECRET, 'utf8')
            : await ensureSigningKey(pool, 'user-token'),
        defaultTtlSeconds: config.USER_TOKEN_TTL_SECONDS,
        now,
        ...(config.USER_JWKS_URL !== undefined &&
        config.USER_JWT_ISSUER !== undefined &&
        config.USER_JWT_AUDIENCE !== undefined
          ? {
              external: {
                jwksUrl: config.USER_JWKS_URL,
                issuer: config.USER_JWT_ISSUER,
                audience: config.USER_JWT_AUDIENCE,
                userClaim: config.USER_JWT_USER_CLAIM,
              },
            }
          : {}),
      });
      const presenter = new InboxPresenter(renderer);
      // Revocations are read from the primary: a replica's lag would extend a revoked token's life.
      const revocations = new CredentialRevocations({ pool, now: () => now().getTime() });
      listener.subscribe(wakeChannels.auth, (payload) => revocations.forget(payload));
      const streams = new InboxStreams({
        readPool,
        // NOTIFY is delivered by the primary only: the listener is on it even with a replica.
        listener,
        presenter,
        metrics,
        logger,
        revocations,
        pollMs: config.STREAM_POLL_MS,
        maxConnections: config.STREAM_MAX_CONNECTIONS,
        maxPerUser: config.STREAM_MAX_PER_USER,
        maxPerKey: config.STREAM_MAX_PER_KEY,
        // Often enough that an idle stream never meets HTTP_IDLE_TIMEOUT_MS.
        heartbeatMs: Math.min(20_000, Math.floor(config.HTTP_IDLE_TIMEOUT_MS / 3)),
      });
      const access = { tokens, authenticate, revocations };
      const app = await buildServer(
        {
          ...serverOptions,
          title: 'Herald query API',
          description: 'Read notifications: inboxes, realtime streams and lookups.',
        },
        [
          ...publicOps,
          inboxRoutes({
            readPool,
            pool,
            tokens,
            authenticate,
            revocations,
            notifier,
            streams,
            presenter,
            cursorKey: await ensureSigningKey(pool, 'inbox-cursor'),
            tokenIssuesPerMinute: config.USER_TOKEN_ISSUE_PER_MINUTE,
            now,
          }),
          // The user's own preferences (a token for that user), or a key of the user directory.
          userPreferenceRoutes({
            pool,
            guards: {
              read: requireInboxAccess(access, ['users:read', 'users:write']),
              write: requireInboxAccess(access, ['users:write']),
            },
          }),
          supportRoutes({ readPool, archivePool, authenticate, now }),
          inboxPageRoutes(),
        ],
      );
      queryUrl = await listen(app, config.QUERY_PORT);
      documents.push({ role: 'query', document: () => app.swagger() });
      // Runs before the server's close (stops run in reverse): open streams would hold it open.
      stops.push(() => streams.stop());
    }

    let opsUrl: string | undefined;
    if (opsPortOnly || (!roles.has('api') && !roles.has('query') && config.OPS_PORT > 0)) {
      const app = await buildServer(
        { ...serverOptions, title: 'Herald operations', description: 'Health and metrics.' },
        [
          ops,
          metricsRoutes(metrics),
          roleDocumentRoutes(documents.map((d) => ({ role: d.role, document: d.document() }))),
        ],
      );
      opsUrl = await listen(app, config.OPS_PORT);
    }

    let fanOut: FanOutStage | undefined;
    if (roles.has('worker')) {
      const settingsCache = new SettingsCache(listener, {
        ttlMs: 60_000,
        jitterMs: 10_000,
        maxEntries: 100_000,
        now: () => now().getTime(),
        random,
      });
      fanOut = new FanOutStage({
        pool,
        listener,
        notifier,
        metrics,
        events,
        logger,
        batchSize: config.CLAIM_BATCH_SIZE,
        pollIntervalMs: config.POLL_INTERVAL_MS,
        maxAttempts: config.MAX_ATTEMPTS,
        now,
        settings: settingsCache,
      });
      const guard = new ProviderGuard({
        breaker: {
          windowMs: config.PROVIDER_BREAKER_WINDOW_MS,
          minimumCalls: config.PROVIDER_BREAKER_MIN_CALLS,
          failureRatio: config.PROVIDER_BREAKER_FAILURE_RATIO,
          openMs: config.PROVIDER_BREAKER_OPEN_MS,
        },
        // The webhook limit applies per receiving origin; configured providers carry their own.
        limitsFor: (key) =>
          key.startsWith('webhook:')
            ? config.WEBHOOK_RATE_PER_SECOND > 0
              ? { ratePerSecond: config.WEBHOOK_RATE_PER_SECOND }
              : {}
            : providers.limitsFor(key),
        now: () => now().getTime(),
        maxHeldPerKey: maxHeldPerProvider(config),
        onOpen: (key) => {
          metrics.circuitsOpened.inc({ provider: key.split(':')[0] ?? key });
          logger.warn({ key }, 'provider circuit opened');
        },
      });
      const dispatcher = new Dispatcher({
        pool,
        providers,
        guard,
        listener,
        metrics,
        events,
        logger,
        limits: {
          concurrency: config.WORKER_CONCURRENCY,
          reservedShare: config.TRANSACTIONAL_RESERVED_SHARE,
          batchSize: config.CLAIM_BATCH_SIZE,
        },
        leaseSeconds: config.LEASE_SECONDS,
        pollIntervalMs: config.POLL_INTERVAL_MS,
        retry: { maxAttempts: config.MAX_ATTEMPTS, baseMs: config.RETRY_BASE_MS, maxMs: config.RETRY_MAX_MS },
        shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS,
        random,
        renderer,
        unsubscribeUrl: (message) => {
          const base = config.PUBLIC_URL;
          if (base === undefined || unsubscribeTokens === undefined || message.channel !== 'email')
            return undefined;
          return unsubscribeTokens.url(base, {
            deliveryId: message.deliveryId,
            userId: message.userId,
            channel: message.channel,
            category: message.category,
          });
        },
      });
      fanOut.start();
      dispatcher.start();
      const stage = fanOut;
      stops.push(() => stage.stop());
      stops.push(() => dispatcher.stop());
    }

    const jobs: PeriodicJob[] = [];
    if (roles.has('scheduler')) {
      jobs.push(
        new PeriodicJob(
          'lease-rescuer',
          config.MAINTENANCE_INTERVAL_MS,
          leaseRescuer({ pool, notifier, metrics, logger }),
          logger,
        ),
        new PeriodicJob('receipt-reconciler', 5_000, receiptReconciler({ pool, logger }), logger),
        new PeriodicJob(
          'partition-upkeep',
          3_600_000,
          partitionUpkeep({ pool, monthsAhead: config.PARTITION_MONTHS_AHEAD, now, logger }),
          logger,
        ),
      );
      const retentionStop = new AbortController();
      if (archivePool !== undefined)
        jobs.push(
          new PeriodicJob(
            'retention',
            config.RETENTION_INTERVAL_MS,
            retention({
              pool,
              archivePool,
              now,
              logger,
              metrics,
              settings: lifecycleSettings(config),
              signal: retentionStop.signal,
            }),
            logger,
          ),
        );
      for (const job of jobs) {
        job.start();
        stops.push(() => job.stop());
      }
      // Runs before the jobs' stops (reverse order): a long copy ends after its current batch.
      stops.push(() => {
        retentionStop.abort();
        return Promise.resolve();
      });
    }

    logger.info({ roles: roleList, apiUrl, queryUrl, embedded: embedded !== undefined }, 'herald started');
    return {
      databaseUrl,
      pool,
      archivePool,
      metrics,
      events,
      apiUrl,
      queryUrl,
      opsUrl,
      devApiKey,
      fanOut,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** The retention job's settings (docs/retention.md). */
export function lifecycleSettings(config: Config): LifecycleSettings {
  return {
    serviceRetentionDays: config.SERVICE_RETENTION_DAYS,
    archiveRetentionMonths: config.ARCHIVE_RETENTION_MONTHS,
    batchRows: config.RETENTION_BATCH_ROWS,
    idempotencyKeyRetentionDays: config.IDEMPOTENCY_KEY_RETENTION_DAYS,
  };
}

/**
 * With the embedded database, a "dev" service and its key make the first curl work. The key
 * is kept in the data directory (mode 600) so it stays the same across restarts.
 */
async function ensureDevApiKey(pool: Pool, dataDir: string): Promise<string> {
  const file = join(resolve(dataDir), 'dev-api-key');
  if (existsSync(file)) {
    const key = (await readFile(file, 'utf8')).trim();
    // A key kept from before permissions existed (or before new ones) gets every permission again.
    if (await grantPermissions(pool, key, permissions)) return key;
  }
  const serviceId = await ensureService(pool, 'dev');
  const key = await createApiKey(
    pool,
    serviceId,
    permissions,
    `development key ${randomBytes(3).toString('hex')}`,
  );
  await writeFile(file, `${key}\n`, { mode: 0o600 });
  return key;
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

/**
 * Slots of a worker one provider may hold, in flight plus waiting for its cap: three quarters,
 * so a slow or hanging provider always leaves a quarter to the other channels.
 */
function maxHeldPerProvider(config: Config): number {
  return Math.max(1, Math.ceil(config.WORKER_CONCURRENCY * 0.75));
}
