// Recurring schedules and their next runs, one per time zone (docs/topics.md#recurring-schedules).
// The scheduler claims due runs with SKIP LOCKED and, in the same transaction, writes the
// occurrence's notification (under an idempotency key of schedule, zone and occurrence) and
// moves the run on.
import type { Pool, PoolClient } from '../pools.js';
import type { Channel, Lane, NotificationContent } from '../../domain/notification.js';
import type { Step } from '../../domain/workflow.js';

/** The notification body each occurrence sends, as stored (the request schema's fields). */
export interface ScheduledRequest {
  recipients?: string[];
  topic?: string;
  channels: Channel[];
  lane?: Lane;
  category?: string;
  content?: NotificationContent;
  template?: string;
  params?: Record<string, unknown>;
  data?: Record<string, unknown>;
  /** Workflow steps, for a schedule to recipients (docs/workflows.md). */
  steps?: Step[];
}

export interface Schedule {
  id: string;
  cron: string;
  timeZone: string | null;
  request: ScheduledRequest;
  state: 'active' | 'paused';
  createdAt: Date;
  updatedAt: Date;
  runs: { timeZone: string; nextRunAt: Date; lastRunAt: Date | null }[];
}

interface ScheduleRow {
  id: string;
  cron: string;
  time_zone: string | null;
  request: ScheduledRequest;
  state: 'active' | 'paused';
  created_at: Date;
  updated_at: Date;
  runs: { time_zone: string; next_run_at: string; last_run_at: string | null }[] | null;
}

const scheduleSelect = `SELECT s.id, s.cron, s.time_zone, s.request, s.state, s.created_at, s.updated_at,
       (SELECT json_agg(json_build_object('time_zone', r.time_zone, 'next_run_at', r.next_run_at,
                                          'last_run_at', r.last_run_at) ORDER BY r.time_zone)
          FROM schedule_runs r WHERE r.schedule_id = s.id) AS runs
  FROM schedules s`;

function toSchedule(r: ScheduleRow): Schedule {
  return {
    id: r.id,
    cron: r.cron,
    timeZone: r.time_zone,
    request: r.request,
    state: r.state,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    runs: (r.runs ?? []).map((run) => ({
      timeZone: run.time_zone,
      nextRunAt: new Date(run.next_run_at),
      lastRunAt: run.last_run_at === null ? null : new Date(run.last_run_at),
    })),
  };
}

export async function insertSchedule(
  client: PoolClient,
  s: {
    id: string;
    serviceId: number;
    cron: string;
    timeZone: string | null;
    request: ScheduledRequest;
    topicId: number | null;
    now: Date;
  },
): Promise<void> {
  await client.query(
    `INSERT INTO schedules (id, service_id, cron, time_zone, request, topic_id, state, created_at, updated_at, zones_checked_at)
     VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $7, $7)`,
    [s.id, s.serviceId, s.cron, s.timeZone, JSON.stringify(s.request), s.topicId, s.now],
  );
}

/** Adds a run for each zone the schedule has none for yet. */
export async function addScheduleRuns(
  client: PoolClient,
  scheduleId: string,
  runs: readonly { timeZone: string; nextRunAt: Date }[],
): Promise<void> {
  if (runs.length === 0) return;
  await client.query(
    `INSERT INTO schedule_runs (schedule_id, time_zone, next_run_at)
     SELECT $1, z, n FROM unnest($2::text[], $3::timestamptz[]) AS t(z, n)
     ON CONFLICT (schedule_id, time_zone) DO NOTHING`,
    [scheduleId, runs.map((r) => r.timeZone), runs.map((r) => r.nextRunAt)],
  );
}

/**
 * The time zones of a schedule's audience: its users' zones (recipients that name no user are
 * left out), or its topic's subscribers' zones.
 */
export async function audienceZones(
  db: Pool | PoolClient,
  audience: { recipients: readonly string[] } | { topicId: number },
): Promise<string[]> {
  const result =
    'topicId' in audience
      ? await db.query<{ time_zone: string }>(
          `SELECT DISTINCT u.time_zone FROM topic_subscribers s JOIN users u ON u.id = s.user_id
            WHERE s.topic_id = $1`,
          [audience.topicId],
        )
      : await db.query<{ time_zone: string }>(
          'SELECT DISTINCT time_zone FROM users WHERE id = ANY($1::text[])',
          [audience.recipients],
        );
  return result.rows.map((r) => r.time_zone).sort();
}

/** Those of `recipients` that are users in `timeZone` (null: all that are users). */
export async function recipientsInZone(
  client: PoolClient,
  recipients: readonly string[],
  timeZone: string | null,
): Promise<string[]> {
  const result = await client.query<{ id: string }>(
    'SELECT id FROM users WHERE id = ANY($1::text[]) AND ($2::text IS NULL OR time_zone = $2) ORDER BY id',
    [recipients, timeZone],
  );
  return result.rows.map((r) => r.id);
}

export async function findSchedule(
  db: Pool | PoolClient,
  serviceId: number,
  id: string,
): Promise<Schedule | undefined> {
  const result = await db.query<ScheduleRow>(`${scheduleSelect} WHERE s.service_id = $1 AND s.id = $2`, [
    serviceId,
    id,
  ]);
  const row = result.rows[0];
  return row === undefined ? undefined : toSchedule(row);
}

export async function listSchedules(
  pool: Pool,
  serviceId: number,
  after: string | undefined,
  limit: number,
): Promise<Schedule[]> {
  const result = await pool.query<ScheduleRow>(
    `${scheduleSelect} WHERE s.service_id = $1 AND ($2::uuid IS NULL OR s.id > $2) ORDER BY s.id LIMIT $3`,
    [serviceId, after ?? null, limit],
  );
  return result.rows.map(toSchedule);
}

/**
 * Pauses or resumes a schedule; on resume each run moves to `nextRuns(zone)` (occurrences
 * while paused are not sent). False when the service has no such schedule.
 */
export async function setScheduleState(
  client: PoolClient,
  serviceId: number,
  id: string,
  state: 'active' | 'paused',
  now: Date,
  nextRun: (cron: string, timeZone: string) => Date,
): Promise<boolean> {
  const result = await client.query<{ cron: string; before: string }>(
    `UPDATE schedules s SET state = $3, updated_at = $4
       FROM (SELECT id, state AS before FROM schedules WHERE service_id = $1 AND id = $2 FOR UPDATE) b
      WHERE s.id = b.id RETURNING s.cron, b.before`,
    [serviceId, id, state, now],
  );
  const row = result.rows[0];
  if (row === undefined) return false;
  if (state === 'active' && row.before === 'paused') {
    const runs = await client.query<{ time_zone: string }>(
      'SELECT time_zone FROM schedule_runs WHERE schedule_id = $1 FOR UPDATE',
      [id],
    );
    const zones = runs.rows.map((r) => r.time_zone);
    await client.query(
      `UPDATE schedule_runs r SET next_run_at = t.n FROM unnest($2::text[], $3::timestamptz[]) AS t(z, n)
        WHERE r.schedule_id = $1 AND r.time_zone = t.z`,
      [id, zones, zones.map((z) => nextRun(row.cron, z))],
    );
  }
  return true;
}

export async function deleteSchedule(pool: Pool, serviceId: number, id: string): Promise<boolean> {
  const result = await pool.query('DELETE FROM schedules WHERE service_id = $1 AND id = $2', [serviceId, id]);
  return (result.rowCount ?? 0) > 0;
}

/** A due run, locked until the caller commits, with what firing it needs. */
export interface DueRun {
  scheduleId: string;
  runZone: string;
  nextRunAt: Date;
  serviceId: number;
  serviceName: string;
  cron: string;
  /** The schedule's fixed zone (all recipients at once), or null: per user, this run's zone only. */
  fixedZone: string | null;
  request: ScheduledRequest;
  topicId: number | null;
  topicSubscribers: number;
  /** True when the audience's zones are due to be read again (hourly). */
  zonesStale: boolean;
}

/** Claims up to `limit` due runs of active schedules (SKIP LOCKED: two schedulers never share one). */
export async function claimDueRuns(client: PoolClient, now: Date, limit: number): Promise<DueRun[]> {
  const result = await client.query<{
    schedule_id: string;
    time_zone: string;
    next_run_at: Date;
    service_id: string;
    service_name: string;
    cron: string;
    fixed_zone: string | null;
    request: ScheduledRequest;
    topic_id: string | null;
    subscribers: string | null;
    zones_stale: boolean;
  }>(
    `SELECT r.schedule_id, r.time_zone, r.next_run_at, s.service_id, v.name AS service_name, s.cron,
            s.time_zone AS fixed_zone, s.request, s.topic_id, t.subscribers,
            s.zones_checked_at < $1::timestamptz - interval '1 hour' AS zones_stale
       FROM schedule_runs r
       JOIN schedules s ON s.id = r.schedule_id
       JOIN services v ON v.id = s.service_id
       LEFT JOIN topics t ON t.id = s.topic_id
      WHERE r.next_run_at <= $1 AND s.state = 'active'
      ORDER BY r.next_run_at
      LIMIT $2
      FOR UPDATE OF r SKIP LOCKED`,
    [now, limit],
  );
  return result.rows.map((r) => ({
    scheduleId: r.schedule_id,
    runZone: r.time_zone,
    nextRunAt: r.next_run_at,
    serviceId: Number(r.service_id),
    serviceName: r.service_name,
    cron: r.cron,
    fixedZone: r.fixed_zone,
    request: r.request,
    topicId: r.topic_id === null ? null : Number(r.topic_id),
    topicSubscribers: Number(r.subscribers ?? 0),
    zonesStale: r.zones_stale,
  }));
}

export async function advanceRun(
  client: PoolClient,
  run: Pick<DueRun, 'scheduleId' | 'runZone'>,
  next: Date,
  sent: Date | undefined,
): Promise<void> {
  await client.query(
    `UPDATE schedule_runs SET next_run_at = $3, last_run_at = COALESCE($4, last_run_at)
      WHERE schedule_id = $1 AND time_zone = $2`,
    [run.scheduleId, run.runZone, next, sent ?? null],
  );
}

/** Marks the schedule's zones read; false when another run did so in the last hour. */
export async function markZonesChecked(client: PoolClient, scheduleId: string, now: Date): Promise<boolean> {
  const result = await client.query(
    `UPDATE schedules SET zones_checked_at = $2
      WHERE id = $1 AND zones_checked_at < $2::timestamptz - interval '1 hour'`,
    [scheduleId, now],
  );
  return (result.rowCount ?? 0) > 0;
}
