// Operation: accept a notification request. Validate, then hand it to the group commit, which
// registers its idempotency keys and inserts the notification and one recipient row per user
// in one transaction; answer after that commit.
// Fan-out into deliveries happens later in the pipeline (DESIGN 5).
import { createHash, randomBytes } from 'node:crypto';
import type { Caller } from '../db/stores/api-key-store.js';
import type { IdempotencyClaim } from '../db/stores/notification-store.js';
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
import type { Metrics } from '../observability/metrics.js';

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
}

export interface NotificationRequest {
  id?: string;
  recipients: string[];
  channels: Channel[];
  lane?: Lane;
  category?: string;
  content?: NotificationContent;
  send_at?: string;
  data?: Record<string, unknown>;
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
): Promise<AcceptResult> {
  // First, before any work: a request over quota is refused whole, nothing is stored.
  deps.quota?.take(caller.serviceId);
  const now = deps.now();
  const recipients = [...new Set(request.recipients)];
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
    if (shown.title === undefined && shown.body === undefined) {
      throw new ProblemError(
        'content_missing',
        `Channel "${channel}" needs a title or body in content.${channel} or content.default.`,
        [{ field: `body/content/${channel}`, message: 'needs title or body' }],
      );
    }
  }
  checkProviderLimits(deps, request.channels, request.content ?? {}, request.data ?? null);
  const id = notificationIdFor(caller, request.id, now);
  const sendAt = request.send_at === undefined ? now : new Date(request.send_at);
  // RFC 3339 allows a leap second (":60") that Date cannot represent.
  if (Number.isNaN(sendAt.getTime()) || sendAt.getUTCFullYear() > 9999) {
    throw new ProblemError('validation_failed', 'send_at is not a representable date-time.', [
      { field: 'body/send_at', message: 'not a representable date-time' },
    ]);
  }
  const isScheduled = sendAt.getTime() > now.getTime();
  const lane = request.lane ?? 'transactional';
  const claims = idempotencyClaims(request, idempotencyKey);

  const outcome = await deps.batcher.submit({
    claims,
    notification: {
      id,
      createdAt: now,
      serviceId: caller.serviceId,
      lane,
      category: request.category ?? 'general',
      channels: [...new Set(request.channels)],
      content: request.content ?? {},
      data: request.data ?? null,
      sendAt,
      isScheduled,
      recipients,
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
  deps.metrics.recipientsAccepted.inc({ lane }, recipients.length);
  if (!isScheduled) deps.notifier.notify(wakeChannels.fanOut);
  return {
    id,
    createdAt: now,
    recipients: recipients.length,
    status: isScheduled ? 'scheduled' : 'accepted',
    sendAt: isScheduled ? sendAt : null,
    replayed: false,
  };
}

function notificationIdFor(caller: Caller, supplied: string | undefined, now: Date): string {
  if (supplied === undefined)
    return formatNotificationId({
      service: caller.serviceName,
      uuid: uuidV7(now.getTime(), randomBytes(10)),
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
