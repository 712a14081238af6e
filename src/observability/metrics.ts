// Prometheus metrics (prom-client). One registry per process, built by the composition root
// and handed to the parts that record into it.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { callbackMetrics, type CallbackMetrics } from './callback-metrics.js';
import { workflowMetrics, type WorkflowMetrics } from './workflow-metrics.js';
import { pipelineMetrics, type PipelineMetrics } from './pipeline-metrics.js';

/** Every metric a process records, grouped by the part of Herald that records it. */
export interface Metrics
  extends
    IngestMetrics,
    PipelineMetrics,
    InboxMetrics,
    TemplateMetrics,
    RetentionMetrics,
    ReceiptMetrics,
    BacklogMetrics,
    ReplicaMetrics,
    CallbackMetrics,
    WorkflowMetrics,
    HttpMetrics {
  registry: Registry;
}

export interface HttpMetrics {
  httpRequests: Counter<'role' | 'method' | 'route' | 'status'>;
  httpRequestSeconds: Histogram<'role' | 'method' | 'route'>;
}

export interface IngestMetrics {
  recipientsAccepted: Counter<'lane'>;
  idempotentReplays: Counter<'service'>;
  /** Broker intake: messages settled per broker, service and outcome. */
  intakeMessages: Counter<'broker' | 'service' | 'outcome'>;
}

export interface InboxMetrics {
  inboxStreamsOpen: Gauge;
  inboxStreamEvents: Counter<'event'>;
  /** Opens and clicks that reached the query role (pixel, links, app reports), by result. */
  engagementReports: Counter<'kind' | 'source' | 'result'>;
}

export interface TemplateMetrics {
  templateRenderFailures: Counter<'reason'>;
}

export interface RetentionMetrics {
  retentionRuns: Counter<'result'>;
  retentionLastSuccess: Gauge;
  retentionRowsCopied: Counter<'table'>;
  retentionPartitionsDropped: Counter<'store'>;
  retentionPartitionsSkipped: Counter<'reason'>;
  retentionCopyRowsDone: Gauge;
  retentionCopyRowsTotal: Gauge;
  retentionIdempotencyKeysDeleted: Counter;
}

export interface ReceiptMetrics {
  receiptsReceived: Counter<'provider' | 'result'>;
}

export interface BacklogMetrics {
  pendingDeliveries: Gauge<'lane'>;
  oldestPendingSeconds: Gauge<'lane'>;
  waitingRecipients: Gauge<'lane'>;
  oldestWaitingRecipientSeconds: Gauge<'lane'>;
  /** Set by the scheduler's overdue-notifications job. */
  overdueNotifications: Gauge<'lane'>;
}

export interface ReplicaMetrics {
  replicaLagSeconds: Gauge;
}

export interface PendingReading {
  lane: string;
  pending: number;
  oldestSeconds: number;
  /** Recipients due and not yet fanned out into deliveries. */
  recipients: number;
  oldestRecipientSeconds: number;
}

/**
 * Node's gauges that prom-client names with `_total`, a suffix Prometheus keeps for counters
 * (`promtool check metrics` refuses them); Herald leaves them out.
 */
const misnamedDefaults = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/** What a process reads from the database for the gauges only some processes publish. */
export interface DatabaseGauges {
  /**
   * Scheduler processes only: the backlog figures, read on each scrape. They are database-wide,
   * so one kind of process publishes them (and the overdue gauge its job sets); elsewhere the
   * gauges are absent, and a sum over processes does not multiply them.
   */
  readPending?: () => Promise<PendingReading[]>;
  /**
   * Query processes with a read replica (DATABASE_READ_URL) only: how far behind the primary
   * its reads are, in seconds, read on each scrape; null when unknown.
   */
  readReplicaLag?: () => Promise<number | null>;
  /** Scheduler processes only: the status callback messages pending and dead. */
  readCallbackBacklog?: () => Promise<{ pending: number; dead: number }>;
}

/** Process and Node.js metrics carry their standard names (`process_…`, `nodejs_…`). */
export function createMetrics(database: DatabaseGauges = {}): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  for (const name of misnamedDefaults) registry.removeSingleMetric(name);
  return {
    registry,
    ...ingestMetrics(registry),
    ...pipelineMetrics(registry),
    ...inboxMetrics(registry),
    ...templateMetrics(registry),
    ...retentionMetrics(registry),
    ...receiptMetrics(registry),
    ...backlogMetrics(registry, database.readPending),
    ...replicaMetrics(registry, database.readReplicaLag),
    ...callbackMetrics(registry, database.readCallbackBacklog),
    ...workflowMetrics(registry),
    ...httpMetrics(registry),
  };
}

/** Every HTTP role: requests by route template (not the URL: ids would explode the series). */
function httpMetrics(registry: Registry): HttpMetrics {
  return {
    httpRequests: new Counter({
      name: 'herald_http_requests_total',
      help: "HTTP requests answered, per role (api, query, console, ops), method, route template ('unmatched' for no route) and status.",
      labelNames: ['role', 'method', 'route', 'status'],
      registers: [registry],
    }),
    httpRequestSeconds: new Histogram({
      name: 'herald_http_request_duration_seconds',
      help: 'Time from a request arriving to its answer being sent, per role, method and route template.',
      labelNames: ['role', 'method', 'route'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
  };
}

/** The api role: the notifications it accepted. */
function ingestMetrics(registry: Registry): IngestMetrics {
  return {
    recipientsAccepted: new Counter({
      name: 'herald_recipients_accepted_total',
      help: 'Recipients of accepted (committed) notifications, per lane: one per user addressed.',
      labelNames: ['lane'],
      registers: [registry],
    }),
    idempotentReplays: new Counter({
      name: 'herald_idempotent_replays_total',
      help: 'Requests answered from an earlier request with the same idempotency key, per calling service.',
      labelNames: ['service'],
      registers: [registry],
    }),
    intakeMessages: new Counter({
      name: 'herald_intake_messages_total',
      help: 'Broker intake: messages accepted, replayed (an idempotency key seen before), dead-lettered with their problem, or released to the broker unsettled (stopping while the database was down).',
      labelNames: ['broker', 'service', 'outcome'],
      registers: [registry],
    }),
  };
}

/** The query role's realtime inbox streams. */
function inboxMetrics(registry: Registry): InboxMetrics {
  return {
    inboxStreamsOpen: new Gauge({
      name: 'herald_inbox_streams_open',
      help: 'Realtime (SSE) inbox streams open in this query process.',
      registers: [registry],
    }),
    inboxStreamEvents: new Counter({
      name: 'herald_inbox_stream_events_total',
      help: 'Events written to realtime inbox streams, per event (created, read, ready, reset, …); one per connection.',
      labelNames: ['event'],
      registers: [registry],
    }),
    engagementReports: new Counter({
      name: 'herald_engagement_reports_total',
      help: 'Opens and clicks reaching the query role, per kind, source (pixel, link, app) and result (recorded, repeated, not_found, refused).',
      labelNames: ['kind', 'source', 'result'],
      registers: [registry],
    }),
  };
}

/** Template rendering, wherever it happens (the inbox, the dispatcher). */
function templateMetrics(registry: Registry): TemplateMetrics {
  return {
    templateRenderFailures: new Counter({
      name: 'herald_template_render_failures_total',
      help: 'Templated items not rendered (inbox items shown not renderable, deliveries failed or deferred), per reason: limit (over the per-item render cap), error (the template fails with its params), budget (the request or batch had spent its render budget).',
      labelNames: ['reason'],
      registers: [registry],
    }),
  };
}

/** The retention job (docs/retention.md). */
function retentionMetrics(registry: Registry): RetentionMetrics {
  return {
    retentionRuns: new Counter({
      name: 'herald_retention_runs_total',
      help: 'Runs of the retention job, per result: success, failed, interrupted (at shutdown) or locked (another process was running it).',
      labelNames: ['result'],
      registers: [registry],
    }),
    retentionLastSuccess: new Gauge({
      name: 'herald_retention_last_success_timestamp_seconds',
      help: 'When the retention job last finished without an error in this process (Unix seconds; 0: not yet).',
      registers: [registry],
    }),
    retentionRowsCopied: new Counter({
      name: 'herald_retention_rows_copied_total',
      help: 'Rows the retention job copied from the service store to the archive, per table.',
      labelNames: ['table'],
      registers: [registry],
    }),
    retentionPartitionsDropped: new Counter({
      name: 'herald_retention_partitions_dropped_total',
      help: 'Month partitions the retention job dropped, per store (service, archive).',
      labelNames: ['store'],
      registers: [registry],
    }),
    retentionPartitionsSkipped: new Counter({
      name: 'herald_retention_partitions_skipped_total',
      help: 'Month partitions past retention the job left in place, per reason (live_work, count_mismatch, lock_timeout).',
      labelNames: ['reason'],
      registers: [registry],
    }),
    retentionCopyRowsDone: new Gauge({
      name: 'herald_retention_copy_rows_done',
      help: 'Rows of the table-month being copied to the archive that are copied so far (0 between copies).',
      registers: [registry],
    }),
    retentionCopyRowsTotal: new Gauge({
      name: 'herald_retention_copy_rows_planned',
      help: 'Rows of the table-month being copied to the archive (0 between copies).',
      registers: [registry],
    }),
    retentionIdempotencyKeysDeleted: new Counter({
      name: 'herald_retention_idempotency_keys_deleted_total',
      help: 'Caller idempotency keys deleted after IDEMPOTENCY_KEY_RETENTION_DAYS.',
      registers: [registry],
    }),
  };
}

/** Provider status reports (delivery receipts) posted to the api role. */
function receiptMetrics(registry: Registry): ReceiptMetrics {
  return {
    receiptsReceived: new Counter({
      name: 'herald_provider_receipts_total',
      help: 'Provider status reports received, per provider and result (applied, unchanged, early, rejected).',
      labelNames: ['provider', 'result'],
      registers: [registry],
    }),
  };
}

/** The backlog gauges, filled on each scrape by `readPending`: one query for both. */
function backlogMetrics(
  registry: Registry,
  readPending: (() => Promise<PendingReading[]>) | undefined,
): BacklogMetrics {
  let lastReading: Promise<PendingReading[]> | undefined;
  // Every backlog gauge is filled from one query per scrape.
  const reading = (): Promise<PendingReading[]> => {
    lastReading ??= (readPending?.() ?? Promise.resolve([])).finally(() => {
      setImmediate(() => (lastReading = undefined));
    });
    return lastReading;
  };
  // Without readPending the gauges are made but registered nowhere: this process does not publish them.
  const registers = readPending === undefined ? [] : [registry];
  const gauge = (name: string, help: string, value: (r: PendingReading) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['lane'],
      registers,
      async collect() {
        for (const r of await reading()) this.set({ lane: r.lane }, value(r));
      },
    });
  return {
    pendingDeliveries: gauge(
      'herald_pending_deliveries',
      'Deliveries waiting to be sent (pending, retrying or sending), per lane.',
      (r) => r.pending,
    ),
    oldestPendingSeconds: gauge(
      'herald_oldest_pending_delivery_age_seconds',
      'Age of the oldest due delivery not yet sent, per lane.',
      (r) => r.oldestSeconds,
    ),
    waitingRecipients: gauge(
      'herald_waiting_recipients',
      'Recipients of accepted notifications that are due and not yet fanned out into deliveries, per lane (above 0 for long: no worker is fanning out).',
      (r) => r.recipients,
    ),
    oldestWaitingRecipientSeconds: gauge(
      'herald_oldest_waiting_recipient_age_seconds',
      'Age of the oldest due recipient not yet fanned out, per lane (since its send time).',
      (r) => r.oldestRecipientSeconds,
    ),
    overdueNotifications: new Gauge({
      name: 'herald_overdue_notifications',
      help: 'Notifications accepted over an hour ago and not final although their work has been due for an hour (a recipient not fanned out, a delivery not claimed, a lease not rescued), per lane; set every 5 minutes by the scheduler.',
      labelNames: ['lane'],
      registers,
    }),
  };
}

/** The read replica's lag, read on each scrape; absent without a replica, NaN while unknown. */
function replicaMetrics(
  registry: Registry,
  readReplicaLag: (() => Promise<number | null>) | undefined,
): ReplicaMetrics {
  return {
    replicaLagSeconds: new Gauge({
      name: 'herald_read_replica_lag_seconds',
      help: 'How far the read replica (DATABASE_READ_URL) this query process reads from is behind the primary: 0 when it has replayed all it received, or when the server is not a replica; else the age of the last transaction it replayed; NaN when unknown (the replica cannot be reached, or has replayed nothing since it started).',
      registers: readReplicaLag === undefined ? [] : [registry],
      async collect() {
        // NaN, not 0, for unknown (an unlabelled gauge always has a value); a replica that cannot
        // be reached must not fail the whole scrape.
        const lag = await readReplicaLag?.().catch(() => null);
        this.set(lag ?? Number.NaN);
      },
    }),
  };
}
