// The worker role: the fan-out stage and the dispatcher, woken by LISTEN/NOTIFY; and every
// `providerReportIntervalMs` a report of its provider health for the console's overview.
import { randomUUID } from 'node:crypto';
import type { Config } from '../config/schema.js';
import { writeProviderReports } from '../db/stores/overview-store.js';
import { PeriodicJob } from '../scheduler/periodic-job.js';
import { FanOutStage } from '../pipeline/fan-out-stage.js';
import { Dispatcher } from '../pipeline/dispatcher.js';
import { ProviderGuard } from '../pipeline/provider-guard.js';
import { SettingsCache, settingsCacheLifetime } from '../pipeline/settings-cache.js';
import type { RenderedMessage } from '../channels/channel-provider.js';
import type { Infrastructure } from './infrastructure.js';
import { maxHeldPerProvider } from './configured-providers.js';

export function startWorkerRole(infra: Infrastructure, config: Config): { fanOut: FanOutStage } {
  const { pool, listener, notifier, metrics, events, logger, now, random } = infra;
  const fanOut = new FanOutStage({
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
    settings: new SettingsCache(listener, {
      ...settingsCacheLifetime,
      maxEntries: 100_000,
      now: () => now().getTime(),
      random,
    }),
  });
  const guard = providerGuard(infra, config);
  const dispatcher = new Dispatcher({
    pool,
    providers: infra.providers,
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
    renderer: infra.renderer,
    unsubscribeUrl: (message) => unsubscribeUrl(infra, config, message),
    tracer: infra.tracer,
  });
  const workerId = randomUUID();
  const healthReport = new PeriodicJob(
    'provider-health-report',
    providerReportIntervalMs,
    () => writeProviderReports(pool, workerId, guard.report()),
    logger,
  );
  fanOut.start();
  dispatcher.start();
  healthReport.start();
  infra.onStop(() => fanOut.stop());
  infra.onStop(() => dispatcher.stop());
  infra.onStop(() => healthReport.stop());
  return { fanOut };
}

/** How often a worker reports its provider health (the overview shows the latest reports). */
export const providerReportIntervalMs = 15_000;

function providerGuard(infra: Infrastructure, config: Config): ProviderGuard {
  return new ProviderGuard({
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
        : infra.providers.limitsFor(key),
    now: () => infra.now().getTime(),
    maxHeldPerKey: maxHeldPerProvider(config),
    onOpen: (key) => {
      infra.metrics.circuitsOpened.inc({ provider: key.split(':')[0] ?? key });
      infra.logger.warn({ key }, 'provider circuit opened');
    },
  });
}

/** An email's one-click unsubscribe link, when PUBLIC_URL says where the api role is reached. */
function unsubscribeUrl(infra: Infrastructure, config: Config, message: RenderedMessage): string | undefined {
  const base = config.PUBLIC_URL;
  if (base === undefined || infra.unsubscribeTokens === undefined || message.channel !== 'email')
    return undefined;
  return infra.unsubscribeTokens.url(base, {
    deliveryId: message.deliveryId,
    userId: message.userId,
    channel: message.channel,
    category: message.category,
  });
}
