// The scheduler role: its periodic jobs (lease rescue by expiry and by ended worker session,
// early receipts, overview counts upkeep, partition upkeep, the overdue notifications report,
// the PostgreSQL settings check, and retention when the archive store is open), each also run
// once at start.
import type { Config } from '../config/schema.js';
import type { LifecycleSettings } from '../archive/lifecycle-deps.js';
import { PeriodicJob } from '../scheduler/periodic-job.js';
import { leaseRescuer, sessionRescuer, sessionRescueIntervalMs } from '../scheduler/lease-rescuer.js';
import { partitionUpkeep, partitionUpkeepIntervalMs } from '../scheduler/partition-upkeep.js';
import { receiptReconciler, receiptReconcileIntervalMs } from '../scheduler/receipt-reconciler.js';
import { retention } from '../scheduler/retention.js';
import { overviewUpkeep, overviewUpkeepIntervalMs } from '../scheduler/overview-upkeep.js';
import { overdueNotifications, overdueNotificationsIntervalMs } from '../scheduler/overdue-notifications.js';
import { recurringSchedules, recurringSchedulesIntervalMs } from '../scheduler/recurring-schedules.js';
import { serverSettingsCheck, serverSettingsCheckIntervalMs } from '../scheduler/server-settings-check.js';
import type { Infrastructure } from './infrastructure.js';

/** The retention job's settings (docs/retention.md). */
export function lifecycleSettings(config: Config): LifecycleSettings {
  return {
    serviceRetentionDays: config.SERVICE_RETENTION_DAYS,
    archiveRetentionMonths: config.ARCHIVE_RETENTION_MONTHS,
    batchRows: config.RETENTION_BATCH_ROWS,
    idempotencyKeyRetentionDays: config.IDEMPOTENCY_KEY_RETENTION_DAYS,
  };
}

export function startSchedulerRole(infra: Infrastructure, config: Config): void {
  const { pool, notifier, metrics, logger, now, archivePool } = infra;
  const rescue = {
    pool,
    notifier,
    metrics,
    logger,
    policy: {
      retry: { baseMs: config.RETRY_BASE_MS, maxMs: config.RETRY_MAX_MS },
      circuitOpenMs: config.PROVIDER_BREAKER_OPEN_MS,
    },
    random: infra.random,
  };
  const jobs = [
    new PeriodicJob('lease-rescuer', config.MAINTENANCE_INTERVAL_MS, leaseRescuer(rescue), logger),
    new PeriodicJob('session-rescuer', sessionRescueIntervalMs, sessionRescuer(rescue), logger),
    new PeriodicJob(
      'receipt-reconciler',
      receiptReconcileIntervalMs,
      receiptReconciler({ pool, logger }),
      logger,
    ),
    new PeriodicJob(
      'overview-upkeep',
      overviewUpkeepIntervalMs,
      overviewUpkeep({ pool, now, keepDays: config.SERVICE_RETENTION_DAYS }),
      logger,
    ),
    new PeriodicJob(
      'partition-upkeep',
      partitionUpkeepIntervalMs,
      partitionUpkeep({ pool, monthsAhead: config.PARTITION_MONTHS_AHEAD, now, logger }),
      logger,
    ),
    new PeriodicJob(
      'overdue-notifications',
      overdueNotificationsIntervalMs,
      overdueNotifications({ pool, now, metrics, logger }),
      logger,
    ),
    new PeriodicJob(
      'recurring-schedules',
      recurringSchedulesIntervalMs,
      recurringSchedules({ pool, notifier, metrics, logger, now, graceMs: config.SCHEDULE_GRACE_MS }),
      logger,
    ),
    new PeriodicJob(
      'server-settings-check',
      serverSettingsCheckIntervalMs,
      serverSettingsCheck({ pool, logger }),
      logger,
    ),
  ];
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
    infra.onStop(() => job.stop());
  }
  // Runs before the jobs' stops (newest first): a long copy ends after its current batch.
  infra.onStop(() => {
    retentionStop.abort();
    return Promise.resolve();
  });
}
