// The worker role: the fan-out stage and the dispatcher, woken by LISTEN/NOTIFY; and every
// `providerReportIntervalMs` a report of its provider health for the console's overview.
import { randomUUID } from 'node:crypto';
import type { Config } from '../config/schema.js';
import { writeProviderReports } from '../db/stores/overview-store.js';
import { PeriodicJob } from '../scheduler/periodic-job.js';
import { FanOutStage } from '../pipeline/fan-out-stage.js';
import { createPool } from '../db/pools.js';
import { cleanUpFinishedWorkflows, runWorkflowTick } from '../pipeline/workflow-stage.js';
import { Dispatcher } from '../pipeline/dispatcher.js';
import { BulkGovernor } from '../pipeline/bulk-governor.js';
import { bulkCapacity, type LaneLimits } from '../pipeline/delivery-claimer.js';
import { WorkerSession } from '../db/worker-session.js';
import { wakeChannels } from '../db/wake-notifier.js';
import { ProviderGuard } from '../pipeline/provider-guard.js';
import { SharedLimits, type SharedView } from '../pipeline/shared-limits.js';
import { rateShare, type KeyLimits } from '../domain/provider-limits.js';
import { SettingsCache, settingsCacheLifetime } from '../pipeline/settings-cache.js';
import { LaneSettings } from '../pipeline/lane-settings.js';
import type { RenderedMessage } from '../channels/channel-provider.js';
import type { Infrastructure } from './infrastructure.js';
import { maxHeldPerProvider } from './configured-providers.js';
import { CallbackSender } from '../pipeline/callback-sender.js';
import { expireCallbackDeadLetters } from '../db/stores/callback-store.js';
import { standardWebhookHeaders } from '../channels/webhook/webhook-signature.js';

export function startWorkerRole(infra: Infrastructure, config: Config): { fanOut: FanOutStage } {
  const { pool, listener, notifier, metrics, events, logger, now, random } = infra;
  const transactionalPool = createPool(infra.databaseUrl, 1, logger, 'fan-out-transactional');
  infra.onStop(() => transactionalPool.end());
  const fanOut = new FanOutStage({
    pool,
    transactionalPool,
    listener,
    notifier,
    metrics,
    events,
    logger,
    batchSize: config.CLAIM_BATCH_SIZE,
    topicChunk: config.TOPIC_FAN_OUT_CHUNK,
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
  const workerId = randomUUID();
  const limitsFor = keyLimits(infra, config);
  const shared = new SharedLimits({
    pool,
    workerId,
    logger,
    now: () => now().getTime(),
    refreshMs: config.PROVIDER_LIMITS_REFRESH_MS,
    expiryMs: config.PROVIDER_LIMITS_EXPIRY_MS,
    onRefresh: (view) => reportShared(infra, view, limitsFor),
  });
  const guard = providerGuard(infra, config, shared, limitsFor);
  const configured = {
    reservedShare: config.TRANSACTIONAL_RESERVED_SHARE,
    batchSize: config.CLAIM_BATCH_SIZE,
  };
  // One object the dispatcher reads on every claim; LaneSettings sets it from the database.
  const limits = { concurrency: config.WORKER_CONCURRENCY, ...configured };
  const laneSettings = new LaneSettings({ pool, listener, logger }, limits, configured);
  // The dispatcher claims under the owner this session registers (docs/decisions/0011).
  const session = new WorkerSession(infra.databaseUrl, logger, () => listener.wake(wakeChannels.deliveries));
  const dispatcher = new Dispatcher({
    session,
    pool,
    providers: infra.providers,
    guard,
    listener,
    metrics,
    events,
    logger,
    limits,
    leaseSeconds: config.LEASE_SECONDS,
    pollIntervalMs: config.POLL_INTERVAL_MS,
    retry: { maxAttempts: config.MAX_ATTEMPTS, baseMs: config.RETRY_BASE_MS, maxMs: config.RETRY_MAX_MS },
    shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS,
    random,
    renderer: infra.renderer,
    unsubscribeUrl: (message) => unsubscribeUrl(infra, config, message),
    tracking: infra.trackingLinks,
    tracer: infra.tracer,
    governor: bulkGovernor(config, limits, metrics),
  });
  const healthReport = new PeriodicJob(
    'provider-health-report',
    providerReportIntervalMs,
    () => writeProviderReports(pool, workerId, guard.report()),
    logger,
  );
  const callbacks = callbackSender(infra, config);
  // Callback dead letters live as long as the deliveries' (SERVICE_RETENTION_DAYS).
  const callbackExpiry = new PeriodicJob(
    'callback-dead-letter-expiry',
    3_600_000,
    async () => {
      await expireCallbackDeadLetters(pool, config.SERVICE_RETENTION_DAYS);
    },
    logger,
  );
  const workflows = new PeriodicJob(
    'workflows',
    config.POLL_INTERVAL_MS,
    () => runWorkflowTick({ pool, notifier, metrics, logger, batchSize: config.CLAIM_BATCH_SIZE, now }),
    logger,
  );
  const workflowCleanup = new PeriodicJob(
    'workflow-cleanup',
    3_600_000,
    () => cleanUpFinishedWorkflows({ pool, now, batchSize: config.CLAIM_BATCH_SIZE }),
    logger,
  );
  shared.start();
  void laneSettings.start();
  fanOut.start();
  callbacks.start();
  callbackExpiry.start();
  workflows.start();
  workflowCleanup.start();
  void session.start();
  dispatcher.start();
  healthReport.start();
  infra.onStop(() => shared.stop());
  infra.onStop(() => laneSettings.stop());
  infra.onStop(() => fanOut.stop());
  infra.onStop(() => workflows.stop());
  infra.onStop(() => workflowCleanup.stop());
  // Stops after the dispatcher (newest first): what it left in `sending` is taken back at once.
  infra.onStop(() => session.stop());
  infra.onStop(() => dispatcher.stop());
  infra.onStop(() => healthReport.stop());
  infra.onStop(() => callbacks.stop());
  infra.onStop(() => callbackExpiry.stop());
  return { fanOut };
}

/** The status callback sender (docs/callbacks.md): signs with Standard Webhooks headers. */
function callbackSender(infra: Infrastructure, config: Config): CallbackSender {
  return new CallbackSender({
    pool: infra.pool,
    listener: infra.listener,
    metrics: infra.metrics,
    logger: infra.logger,
    outbound: infra.outbound,
    sign: standardWebhookHeaders,
    concurrency: config.CALLBACK_CONCURRENCY,
    timeoutMs: config.CALLBACK_TIMEOUT_MS,
    // Longer than a POST can take, so a live sender's message is never claimed twice.
    leaseMs: config.CALLBACK_TIMEOUT_MS * 2 + 10_000,
    pollIntervalMs: config.POLL_INTERVAL_MS,
    retry: {
      maxAttempts: config.CALLBACK_MAX_ATTEMPTS,
      baseMs: config.CALLBACK_RETRY_BASE_MS,
      maxMs: config.CALLBACK_RETRY_MAX_MS,
      maxAgeMs: config.CALLBACK_MAX_AGE_HOURS * 3_600_000,
    },
    random: infra.random,
    now: infra.now,
    ...(infra.outboundLookup === undefined ? {} : { lookup: infra.outboundLookup }),
  });
}

/** How often a worker reports its provider health (the overview shows the latest reports). */
export const providerReportIntervalMs = 15_000;

/** The webhook limit applies per receiving origin; configured providers carry their own. */
function keyLimits(infra: Infrastructure, config: Config): (key: string) => KeyLimits {
  return (key) =>
    key.startsWith('webhook:')
      ? config.WEBHOOK_RATE_PER_SECOND > 0
        ? { ratePerSecond: config.WEBHOOK_RATE_PER_SECOND }
        : {}
      : infra.providers.limitsFor(key);
}

function providerGuard(
  infra: Infrastructure,
  config: Config,
  shared: SharedLimits,
  limitsFor: (key: string) => KeyLimits,
): ProviderGuard {
  return new ProviderGuard({
    breaker: {
      windowMs: config.PROVIDER_BREAKER_WINDOW_MS,
      minimumCalls: config.PROVIDER_BREAKER_MIN_CALLS,
      failureRatio: config.PROVIDER_BREAKER_FAILURE_RATIO,
      openMs: config.PROVIDER_BREAKER_OPEN_MS,
    },
    limitsFor,
    shared,
    now: () => infra.now().getTime(),
    maxHeldPerKey: maxHeldPerProvider(config),
    onOpen: (key) => {
      infra.metrics.circuitsOpened.inc({ provider: providerLabel(key) });
      infra.logger.warn({ key }, 'provider circuit opened');
      shared.circuitOpened(key, config.PROVIDER_BREAKER_OPEN_MS);
    },
  });
}

const providerLabel = (key: string) => key.split(':')[0] ?? key;

/**
 * The shared rate and circuits as gauges, per provider (webhook origins summed or counted). A key
 * this worker holds back from after joining others counts 0 toward its share until it may send.
 */
function reportShared(infra: Infrastructure, view: SharedView, limitsFor: (key: string) => KeyLimits): void {
  const { providerRateShare, providerSharingWorkers, providerCircuitsOpen } = infra.metrics;
  const share = new Map<string, number>();
  const workers = new Map<string, number>();
  for (const [key, n] of view.workers) {
    const rate = limitsFor(key).ratePerSecond;
    if (rate === undefined) continue;
    const provider = providerLabel(key);
    share.set(provider, (share.get(provider) ?? 0) + (view.holding.has(key) ? 0 : rateShare(rate, n)));
    workers.set(provider, Math.max(workers.get(provider) ?? 0, n));
  }
  const open = new Map<string, number>();
  for (const key of view.openUntil.keys())
    open.set(providerLabel(key), (open.get(providerLabel(key)) ?? 0) + 1);
  providerRateShare.reset();
  providerSharingWorkers.reset();
  providerCircuitsOpen.reset();
  for (const [provider, value] of share) providerRateShare.set({ provider }, value);
  for (const [provider, value] of workers) providerSharingWorkers.set({ provider }, value);
  for (const [provider, value] of open) providerCircuitsOpen.set({ provider }, value);
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

/** Bulk slots that yield to transactional work while the event loop is slow (src/pipeline/bulk-governor.ts). */
function bulkGovernor(config: Config, limits: LaneLimits, metrics: Infrastructure['metrics']): BulkGovernor {
  return new BulkGovernor({
    cap: () => bulkCapacity(limits),
    targetMs: config.BULK_EVENT_LOOP_DELAY_TARGET_MS,
    onChange: (slots) => metrics.bulkSlots.set(slots),
  });
}
