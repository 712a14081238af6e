// Job: fire the due occurrences of recurring schedules. A schedule has one run per time zone of
// its audience; each due run is claimed with SKIP LOCKED, and in the same transaction its
// occurrence's notification is written (to the run zone's users, or to the topic with the zone
// as a filter) under the idempotency key schedule:<id>:<zone>:<occurrence>, and the run moves
// to its next occurrence. A crash before the commit leaves the run due; two schedulers never
// claim one run, and a replayed key writes nothing: an occurrence is sent at most once.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { withTransaction, type Pool, type PoolClient } from '../db/pools.js';
import { wakeChannels, type WakeNotifier } from '../db/wake-notifier.js';
import { writeNotificationBatch, type NewNotification } from '../db/stores/notification-batch-store.js';
import {
  addScheduleRuns,
  advanceRun,
  audienceZones,
  claimDueRuns,
  markZonesChecked,
  recipientsInZone,
  type DueRun,
} from '../db/stores/schedule-store.js';
import { findTemplateVersion } from '../db/stores/template-store.js';
import { formatNotificationId, uuidV7 } from '../domain/ids.js';
import { isTimeZone, nextOccurrence, settleDueRun } from '../domain/schedule.js';
import type { Metrics } from '../observability/metrics.js';

export const recurringSchedulesIntervalMs = 5_000;

/** Runs claimed per transaction, and transactions per job run at most. */
const batchSize = 20;
const maxRounds = 50;

export interface RecurringScheduleDeps {
  pool: Pool;
  notifier: WakeNotifier;
  metrics: Metrics;
  logger: Logger;
  now: () => Date;
  /** SCHEDULE_GRACE_MS: how late a missed occurrence may still be sent. */
  graceMs: number;
}

export function recurringSchedules(deps: RecurringScheduleDeps): () => Promise<void> {
  return async () => {
    for (let round = 0; round < maxRounds; round += 1) {
      const { claimed, sent } = await withTransaction(deps.pool, (client) => fireDueRuns(client, deps));
      if (sent > 0) deps.notifier.notify(wakeChannels.fanOut);
      if (claimed < batchSize) return;
    }
  };
}

/** Fires one batch of due runs in the caller's transaction. */
export async function fireDueRuns(
  client: PoolClient,
  deps: Pick<RecurringScheduleDeps, 'now' | 'graceMs' | 'metrics' | 'logger'>,
): Promise<{ claimed: number; sent: number }> {
  const now = deps.now();
  const runs = await claimDueRuns(client, now, batchSize);
  let sent = 0;
  for (const run of runs) {
    const zone = run.fixedZone ?? run.runZone;
    if (!isTimeZone(zone)) {
      // A zone this runtime does not know (set in the users table by hand): nothing can be computed.
      deps.logger.warn(
        { schedule: run.scheduleId, timeZone: zone },
        'schedule run in an unknown time zone dropped',
      );
      await client.query('DELETE FROM schedule_runs WHERE schedule_id = $1 AND time_zone = $2', [
        run.scheduleId,
        run.runZone,
      ]);
      continue;
    }
    const { send, next } = settleDueRun(run.cron, zone, run.nextRunAt, now, deps.graceMs);
    const created = send !== undefined && (await writeOccurrence(client, run, send, now, deps.logger));
    await advanceRun(client, run, next, created ? send : undefined);
    deps.metrics.schedulesFired.inc({ outcome: created ? 'sent' : 'skipped' });
    if (created) sent += 1;
    if (run.fixedZone === null && run.zonesStale && (await markZonesChecked(client, run.scheduleId, now)))
      await addMissingZones(client, run, now);
  }
  return { claimed: runs.length, sent };
}

/** Adds runs for audience zones that appeared since the schedule last looked (users moved or joined). */
export async function addMissingZones(
  client: PoolClient,
  run: Pick<DueRun, 'scheduleId' | 'cron' | 'topicId' | 'request'>,
  now: Date,
): Promise<void> {
  const zones = await audienceZones(
    client,
    run.topicId === null ? { recipients: run.request.recipients ?? [] } : { topicId: run.topicId },
  );
  await addScheduleRuns(
    client,
    run.scheduleId,
    zones.filter(isTimeZone).map((z) => ({ timeZone: z, nextRunAt: nextOccurrence(run.cron, z, now) })),
  );
}

/**
 * Writes one occurrence's notification; false when there is nothing to send (no recipients in
 * the zone, the template is gone) or the occurrence was already written (its key replays).
 */
async function writeOccurrence(
  client: PoolClient,
  run: DueRun,
  occurrence: Date,
  now: Date,
  logger: Logger,
): Promise<boolean> {
  const { request } = run;
  const perUserZone = run.fixedZone === null ? run.runZone : null;
  const recipients =
    run.topicId === null ? await recipientsInZone(client, request.recipients ?? [], perUserZone) : [];
  if (run.topicId === null && recipients.length === 0) return false;
  const template =
    request.template === undefined
      ? undefined
      : await findTemplateVersion(client, run.serviceId, request.template);
  if (request.template !== undefined && template === undefined) {
    logger.warn(
      { schedule: run.scheduleId, template: request.template },
      'scheduled template no longer exists',
    );
    return false;
  }
  const key = `schedule:${run.scheduleId}:${run.runZone}:${occurrence.toISOString()}`;
  const digest = createHash('sha256').update(key).digest();
  const notification: NewNotification = {
    id: formatNotificationId({
      service: run.serviceName,
      uuid: uuidV7(occurrence.getTime(), digest.subarray(0, 10)),
    }),
    createdAt: now,
    serviceId: run.serviceId,
    lane: request.lane ?? template?.lane ?? 'transactional',
    category: request.category ?? template?.category ?? 'general',
    channels: request.channels,
    content: request.content ?? {},
    data: request.data ?? null,
    sendAt: now,
    isScheduled: false,
    recipients,
    topic:
      run.topicId === null
        ? null
        : { id: run.topicId, subscribers: run.topicSubscribers, timeZone: perUserZone },
    template:
      template === undefined
        ? null
        : { key: template.key, version: template.version, params: request.params ?? {} },

    // Steps run per recipient from the accept on; a topic's recipients come later, so none there.
    steps: run.topicId === null ? (request.steps ?? template?.steps ?? null) : null,
  };
  const [outcome] = await writeNotificationBatch(client, [
    { notification, claims: [{ key, requestHash: digest }] },
  ]);
  return outcome?.kind === 'created';
}
