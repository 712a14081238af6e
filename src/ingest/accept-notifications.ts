// Operation: accept a notification request. Validate, then hand it to the group commit, which
// registers its idempotency keys and inserts the notification and one recipient row per user
// in one commit; answer after it.
// Fan-out into deliveries happens later in the pipeline, so the answer does not wait for it.
import { createHash } from 'node:crypto';
import { pooledRandomBytes } from '../observability/random-pool.js';
import type { Caller } from '../domain/caller.js';
import type { IdempotencyClaim } from '../db/stores/notification-batch-store.js';
import type { NotificationTemplateRef } from '../db/stores/notification-store.js';
import type { IngestBatcher } from './ingest-batcher.js';
import type { IngestQuota } from './ingest-quota.js';
import { wakeChannels, type WakeNotifier } from '../db/wake-notifier.js';
import { formatNotificationId, parseNotificationId, uuidV7 } from '../domain/ids.js';
import {
  contentFor,
  type Channel,
  type ChannelContent,
  type Lane,
  type NotificationContent,
} from '../domain/notification.js';
import { ProblemError } from '../domain/problems.js';
import { notificationTraceFor, type TraceContext } from '../domain/trace-context.js';
import type { Metrics } from '../observability/metrics.js';
import { newSpanId, newTraceId } from '../observability/tracing.js';
import { checkParams, type StoredTemplateVersion } from '../domain/template.js';
import { checkSteps, type Step } from '../domain/workflow.js';
import { defaultBudgetName } from '../domain/rate-budget.js';
import { renderVariantChecked, TemplateRenderError } from '../templates/template-renderer.js';

export interface AcceptDeps {
  batcher: IngestBatcher;
  now: () => Date;
  notifier: WakeNotifier;
  metrics: Metrics;
  availableChannels: ReadonlySet<Channel>;
  /** What the configured providers of a channel would refuse in this content (ProviderRegistry). */
  contentProblems: (
    channel: Channel,
    content: ChannelContent,
    data: Record<string, unknown> | null,
  ) => string[];
  maxRecipients: number;
  /** Per calling service quota (INGEST_QUOTA_PER_MINUTE); absent when there is none. */
  quota?: IngestQuota | undefined;
  /**
   * Wall-clock time one variant may take to render in the ingest check: half the per-item cap
   * deliveries and inboxes render with, so what is accepted on a quiet machine renders there
   * on a busy one too.
   */
  templateRenderMs: number;
  /** The current version of a service's template (requests naming `template`); absent: none exist. */
  resolveTemplate?:
    ((serviceId: number, key: string) => Promise<StoredTemplateVersion | undefined>) | undefined;
  /** A service's topic by key (requests naming `topic`); absent: topics are refused. */
  resolveTopic?: ((serviceId: number, key: string) => Promise<TopicAudience | undefined>) | undefined;
  /**
   * A service's rate budget id by name (requests naming `budget`, bulk sends); absent: none
   * exist. `named`: the request names it (an unknown name is refused), else the implicit default.
   */
  resolveBudget?:
    ((serviceId: number, name: string, named: boolean) => Promise<number | undefined>) | undefined;
}

/** The topic a request names, as ingest needs it: no subscriber row is read. */
export interface TopicAudience {
  id: number;
  subscribers: number;
}

export interface NotificationRequest {
  id?: string;
  /** User ids; exactly one of recipients and topic. */
  recipients?: string[] | undefined;
  /** One of the caller's topics: stored with the notification, expanded by the worker. */
  topic?: string | undefined;
  channels: Channel[];
  lane?: Lane;
  category?: string;
  content?: NotificationContent;
  send_at?: string;
  data?: Record<string, unknown>;
  /** A template key, instead of content: rendered per user locale at send time. */
  template?: string;
  params?: Record<string, unknown>;
  /** Workflow steps (docs/workflows.md): each user's send runs through them. */
  steps?: Step[];
  /** One of the caller's rate budgets (bulk lane only); absent: its `default` budget, if any. */
  budget?: string;
}

export interface AcceptResult {
  id: string;
  createdAt: Date;
  recipients: number;
  status: 'accepted' | 'scheduled';
  sendAt: Date | null;
  replayed: boolean;
}

/**
 * Refuses content a configured provider would refuse at send time (push payload over the
 * provider's size, SMS over the segment limit): better a 400 now than a failed delivery later.
 */
export function checkProviderLimits(
  deps: Pick<AcceptDeps, 'contentProblems'>,
  channels: readonly Channel[],
  content: NotificationContent,
  data: Record<string, unknown> | null,
): void {
  const errors = [...new Set(channels)].flatMap((channel) =>
    deps
      .contentProblems(channel, contentFor(content, channel), data)
      .map((message) => ({ field: `body/content/${channel}`, message })),
  );
  if (errors.length > 0) {
    throw new ProblemError('content_over_limit', errors.map((e) => e.message).join(' '), errors);
  }
}

export async function acceptNotifications(
  deps: AcceptDeps,
  caller: Caller,
  request: NotificationRequest,
  idempotencyKey: string | undefined,
  /** The request's trace context (request-context.ts): its deliveries continue this trace. */
  trace?: TraceContext,
): Promise<AcceptResult> {
  // First, before any work: a request over quota is refused whole, nothing is stored.
  deps.quota?.take(caller.serviceId);
  const now = deps.now();
  const { template, topic, recipients, steps } = await checkNotificationRequest(deps, caller, request);
  const id = notificationIdFor(caller, request.id, now);
  const sendAt = request.send_at === undefined ? now : new Date(request.send_at);
  // RFC 3339 allows a leap second (":60") that Date cannot represent.
  if (Number.isNaN(sendAt.getTime()) || sendAt.getUTCFullYear() > 9999) {
    throw new ProblemError('validation_failed', 'send_at is not a representable date-time.', [
      { field: 'body/send_at', message: 'not a representable date-time' },
    ]);
  }
  const isScheduled = sendAt.getTime() > now.getTime();
  const lane = request.lane ?? template?.lane ?? 'transactional';
  const budgetId = await resolveBudget(deps, caller, request.budget, lane);
  const claims = idempotencyClaims(request, idempotencyKey);

  const outcome = await deps.batcher.submit({
    claims,
    notification: {
      id,
      createdAt: now,
      serviceId: caller.serviceId,
      lane,
      category: request.category ?? template?.category ?? 'general',
      channels: [...new Set(request.channels)],
      content: request.content ?? {},
      data: request.data ?? null,
      sendAt,
      isScheduled,
      recipients,
      topic: topic === undefined ? null : { id: topic.id, subscribers: topic.subscribers, timeZone: null },
      template: template === undefined ? null : templateRef(template, request.params ?? {}),
      steps: steps ?? null,
      budgetId: budgetId ?? null,
      // A request without a valid traceparent still starts a trace, so its deliveries can be followed.
      trace: notificationTraceFor(trace, () => ({ traceId: newTraceId(), spanId: newSpanId() })),
    },
  });
  if (outcome.kind === 'conflict') {
    throw new ProblemError(
      'idempotency_key_reused',
      'This idempotency key or id was already used for a different request.',
    );
  }

  if (outcome.kind === 'replayed') {
    deps.metrics.idempotentReplays.inc({ service: caller.serviceName });
    const { summary } = outcome;
    const scheduled = summary.sendAt !== null && summary.sendAt.getTime() > now.getTime();
    return {
      id: summary.id,
      createdAt: summary.createdAt,
      recipients: summary.recipients,
      status: scheduled ? 'scheduled' : 'accepted',
      sendAt: summary.sendAt,
      replayed: true,
    };
  }
  const addressed = topic === undefined ? recipients.length : topic.subscribers;
  deps.metrics.recipientsAccepted.inc({ lane }, addressed);
  if (!isScheduled) deps.notifier.notify(wakeChannels.fanOut);
  return {
    id,
    createdAt: now,
    recipients: addressed,
    status: isScheduled ? 'scheduled' : 'accepted',
    sendAt: isScheduled ? sendAt : null,
    replayed: false,
  };
}

/**
 * The checks every notification request passes, sent now or by a recurring schedule: exactly
 * one of recipients (at most maxRecipients) and a topic of the caller's; available channels
 * with content to show, or a template that renders within the providers' limits.
 */
export async function checkNotificationRequest(
  deps: Pick<
    AcceptDeps,
    | 'resolveTemplate'
    | 'resolveTopic'
    | 'maxRecipients'
    | 'availableChannels'
    | 'contentProblems'
    | 'templateRenderMs'
  >,
  caller: Caller,
  request: Omit<NotificationRequest, 'id' | 'send_at'>,
): Promise<{
  template: StoredTemplateVersion | undefined;
  topic: TopicAudience | undefined;
  recipients: string[];
  steps: readonly Step[] | undefined;
}> {
  const template = await resolveTemplate(deps, caller, request);
  const topic = await resolveAudience(deps, caller, request);
  const recipients = [...new Set(request.recipients ?? [])];
  if (recipients.length > deps.maxRecipients) {
    throw new ProblemError(
      'too_many_recipients',
      `At most ${String(deps.maxRecipients)} recipients per request.`,
    );
  }
  for (const channel of request.channels) {
    if (!deps.availableChannels.has(channel)) {
      throw new ProblemError('channel_unavailable', `No provider is configured for channel "${channel}".`, [
        { field: 'body/channels', message: `"${channel}" is not available` },
      ]);
    }
    const shown = contentFor(request.content ?? {}, channel);
    if (template === undefined && shown.title === undefined && shown.body === undefined) {
      throw new ProblemError(
        'content_missing',
        `Channel "${channel}" needs a title or body in content.${channel} or content.default.`,
        [{ field: `body/content/${channel}`, message: 'needs title or body' }],
      );
    }
  }
  if (template === undefined) {
    checkProviderLimits(deps, request.channels, request.content ?? {}, request.data ?? null);
  } else {
    await checkTemplateRenders(deps, template, request.channels, request.params ?? {}, request.data ?? null);
  }
  if (topic !== undefined && request.steps !== undefined) {
    // A workflow runs per recipient from the accept on; a topic's recipients come later.
    throw new ProblemError('workflow_invalid', 'A send to a topic cannot carry steps.', [
      { field: 'body/steps', message: 'not with a topic' },
    ]);
  }
  // The request's own steps, else its template's (not for a topic, whose recipients come later).
  const steps = topic === undefined ? (request.steps ?? template?.steps ?? undefined) : undefined;
  if (steps !== undefined) checkSteps(steps, request.channels, template !== undefined);
  return { template, topic, recipients, steps };
}

/**
 * The rate budget a send is paced by: the one it names (bulk lane only; 400 budget_not_bulk
 * on a transactional send, 400 budget_not_found for a name the caller does not have, another
 * service's included), else for a bulk send the caller's budget named `default`, if any.
 */
async function resolveBudget(
  deps: Pick<AcceptDeps, 'resolveBudget'>,
  caller: Caller,
  name: string | undefined,
  lane: Lane,
): Promise<number | undefined> {
  if (name !== undefined && lane !== 'bulk') {
    throw new ProblemError('budget_not_bulk', 'Only a bulk send can name a rate budget.', [
      { field: 'body/budget', message: 'needs lane bulk' },
    ]);
  }
  if (lane !== 'bulk') return undefined;
  const id = await deps.resolveBudget?.(caller.serviceId, name ?? defaultBudgetName, name !== undefined);
  if (id === undefined && name !== undefined) {
    throw new ProblemError('budget_not_found', `This service has no rate budget "${name}".`, [
      { field: 'body/budget', message: 'no such budget' },
    ]);
  }
  return id;
}

/**
 * The topic a request names (exactly one of recipients and topic); undefined for recipients.
 * Another service's topic is not found: 404 topic_not_found, as for a key that does not exist.
 */
async function resolveAudience(
  deps: Pick<AcceptDeps, 'resolveTopic'>,
  caller: Caller,
  request: Pick<NotificationRequest, 'recipients' | 'topic'>,
): Promise<TopicAudience | undefined> {
  if ((request.recipients === undefined) === (request.topic === undefined)) {
    throw new ProblemError('validation_failed', 'Name either recipients or a topic, exactly one.', [
      {
        field: request.topic === undefined ? 'body/recipients' : 'body/topic',
        message: 'exactly one of recipients, topic',
      },
    ]);
  }
  if (request.topic === undefined) return undefined;
  const topic = await deps.resolveTopic?.(caller.serviceId, request.topic);
  if (topic === undefined) {
    throw new ProblemError('topic_not_found', `This service has no topic "${request.topic}".`, [
      { field: 'body/topic', message: 'no such topic' },
    ]);
  }
  return topic;
}

/** The current version of the template a request names; undefined for inline content. */
async function resolveTemplate(
  deps: Pick<AcceptDeps, 'resolveTemplate'>,
  caller: Caller,
  request: Pick<NotificationRequest, 'template' | 'params' | 'content'>,
): Promise<StoredTemplateVersion | undefined> {
  if (request.template === undefined) {
    if (request.params !== undefined) {
      throw new ProblemError('validation_failed', 'params are only used with a template.', [
        { field: 'body/params', message: 'needs template' },
      ]);
    }
    return undefined;
  }
  if (request.content !== undefined) {
    throw new ProblemError('validation_failed', 'Send either content or template, not both.', [
      { field: 'body/content', message: 'not allowed with template' },
    ]);
  }
  const version = await deps.resolveTemplate?.(caller.serviceId, request.template);
  if (version === undefined) {
    throw new ProblemError('template_not_found', `This service has no template "${request.template}".`, [
      { field: 'body/template', message: 'no such template' },
    ]);
  }
  return version;
}

function templateRef(
  version: StoredTemplateVersion,
  params: Record<string, unknown>,
): NotificationTemplateRef {
  return { key: version.key, version: version.version, params };
}

/**
 * For a templated request: the params match the declarations (400 template_params_invalid
 * naming each one), every channel has a variant, and every locale of every variant renders
 * within `templateRenderMs` and within the configured providers' limits, so a delivery never
 * fails on its template. Variants render one at a time, yielding in between.
 */
export async function checkTemplateRenders(
  deps: Pick<AcceptDeps, 'contentProblems' | 'templateRenderMs'>,
  version: StoredTemplateVersion,
  channels: readonly Channel[],
  params: Record<string, unknown>,
  data: Record<string, unknown> | null,
): Promise<void> {
  checkParams(version, params);
  const overLimit: { field: string; message: string }[] = [];
  for (const channel of new Set(channels)) {
    const byLocale = version.variants[channel];
    if (byLocale === undefined) {
      throw new ProblemError('content_missing', `Template ${version.key} has no ${channel} variant.`, [
        { field: 'body/template', message: `no ${channel} variant` },
      ]);
    }
    for (const locale of Object.keys(byLocale)) {
      let content: ChannelContent;
      try {
        content = (await renderVariantChecked(version, channel, locale, params, deps.templateRenderMs))
          .content;
      } catch (error) {
        if (!(error instanceof TemplateRenderError)) throw error;
        const message = `${channel} (${locale}): ${error.message}`;
        throw new ProblemError('template_params_invalid', message, [{ field: 'body/params', message }]);
      }
      for (const problem of deps.contentProblems(channel, content, data)) {
        overLimit.push({ field: `body/template`, message: `${channel} (${locale}): ${problem}` });
      }
    }
  }
  if (overLimit.length > 0) {
    throw new ProblemError('content_over_limit', overLimit.map((e) => e.message).join(' '), overLimit);
  }
}

function notificationIdFor(caller: Caller, supplied: string | undefined, now: Date): string {
  if (supplied === undefined)
    return formatNotificationId({
      service: caller.serviceName,
      uuid: uuidV7(now.getTime(), pooledRandomBytes(10)),
    });
  const parsed = parseNotificationId(supplied);
  if (parsed === undefined) {
    throw new ProblemError('invalid_notification_id', 'The id must be "<service>#<uuid>".', [
      { field: 'body/id', message: 'malformed' },
    ]);
  }
  if (parsed.service !== caller.serviceName) {
    throw new ProblemError(
      'foreign_notification_id',
      `The id must start with your service name "${caller.serviceName}#".`,
      [{ field: 'body/id', message: 'names another service' }],
    );
  }
  return formatNotificationId(parsed);
}

/** A supplied id and an Idempotency-Key header each make a claim; both must name one request. */
function idempotencyClaims(request: NotificationRequest, header: string | undefined): IdempotencyClaim[] {
  if (request.id === undefined && header === undefined) return [];
  const requestHash = createHash('sha256').update(canonicalJson(request)).digest();
  const claims: IdempotencyClaim[] = [];
  if (request.id !== undefined) claims.push({ key: `id:${request.id.toLowerCase()}`, requestHash });
  if (header !== undefined) claims.push({ key: `header:${header}`, requestHash });
  return claims;
}

/** JSON with sorted object keys, so equal requests hash equally whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
