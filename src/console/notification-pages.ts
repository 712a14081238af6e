// Notifications in the console: a search across services by id (a caller-supplied id is the
// notification's id), the caller's Idempotency-Key, service, recipient, template, delivery state
// and creation day (always a bounded range: the last 7 days unless given, at
// most 92, so only those months' partitions are read), newest first; and one notification's
// timeline: accepted, fanned out per recipient, each delivery's events, the inbox copy's read,
// seen and archived times. Targets are shown masked.
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import type { Pool } from '../db/pools.js';
import { listServices } from '../db/stores/api-key-store.js';
import {
  notificationTimeline,
  searchNotifications,
  type FoundNotification,
  type NotificationSearch,
  type NotificationTimeline,
} from '../db/stores/notification-search-store.js';
import { maskTarget } from '../domain/contact.js';
import { deliveryStates } from '../domain/delivery.js';
import { parseNotificationId } from '../domain/ids.js';
import { notificationStatus } from '../domain/notification-status.js';
import { ProblemError } from '../domain/problems.js';
import { requireConsole, sessionOf, type SessionGuardDeps } from './console-session.js';
import { consoleTime, layoutData, type RenderView } from './console-views.js';

export interface NotificationPageDeps extends SessionGuardDeps {
  pool: Pool;
  render: RenderView;
}

const shown = 100;
const dayMs = 86_400_000;
const defaultDays = 7;
const maxDays = 92;
const day = Type.String({ pattern: '^(\\d{4}-\\d{2}-\\d{2})?$' });
const SearchQuery = Type.Object(
  {
    id: Type.Optional(Type.String({ maxLength: 120 })),
    service: Type.Optional(Type.String({ maxLength: 64 })),
    user: Type.Optional(Type.String({ maxLength: 200 })),
    template: Type.Optional(Type.String({ maxLength: 200 })),
    key: Type.Optional(Type.String({ maxLength: 255 })),
    state: Type.Optional(Type.Union([Type.Literal(''), ...deliveryStates.map((s) => Type.Literal(s))])),
    since: Type.Optional(day),
    until: Type.Optional(day),
    before_us: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 53 - 1 })),
    before_id: Type.Optional(Type.String({ maxLength: 120 })),
  },
  { additionalProperties: false },
);
type SearchForm = Static<typeof SearchQuery>;

const html = 'text/html; charset=utf-8';
const text = (v: string | undefined) => (v === undefined || v === '' ? undefined : v);
const when = consoleTime;
const dayOf = (d: Date) => d.toISOString().slice(0, 10);

function invalid(field: string, message: string): ProblemError {
  return new ProblemError('validation_failed', message, [{ field: `querystring/${field}`, message }]);
}

/** The created_at range: `since` through `until` (whole UTC days), 7 days to today unless given. */
function rangeOf(form: SearchForm, now: Date): { from: Date; to: Date; since: string; until: string } {
  const untilDay = text(form.until) ?? dayOf(now);
  const to = new Date(Date.parse(`${untilDay}T00:00:00Z`) + dayMs);
  const sinceDay = text(form.since) ?? dayOf(new Date(to.getTime() - defaultDays * dayMs));
  const from = new Date(`${sinceDay}T00:00:00Z`);
  if (Number.isNaN(from.getTime())) throw invalid('since', 'not a day');
  if (Number.isNaN(to.getTime())) throw invalid('until', 'not a day');
  if (from >= to) throw invalid('since', 'The first day is after the last.');
  if (to.getTime() - from.getTime() > maxDays * dayMs)
    throw invalid('since', `Search at most ${String(maxDays)} days at a time.`);
  return { from, to, since: sinceDay, until: untilDay };
}

function present(r: FoundNotification, names: Map<number, string>) {
  return {
    id: r.id,
    href: `/notifications/${encodeURIComponent(r.id)}`,
    created: when(r.createdAt),
    service: names.get(r.serviceId) ?? String(r.serviceId),
    lane: r.lane,
    category: r.category,
    channels: r.channels.join(', '),
    template: r.template ?? '',
    canceled: r.canceledAt !== null,
    recipients: r.recipients,
    deliveries: Object.entries(r.deliveries)
      .map(([state, count]) => `${state} ${String(count)}`)
      .join(', '),
  };
}

/** The timeline as the view shows it: times as text, targets masked, events under their delivery. */
function presentTimeline(t: NotificationTimeline, service: string, now: Date) {
  const v = t.view;
  const content = v.content.default ?? Object.values(v.content)[0] ?? {};
  return {
    id: v.id,
    service,
    status: notificationStatus(v, now),
    lane: v.lane,
    category: v.category,
    channels: v.channels.join(', '),
    template: v.template === null ? '' : `${v.template.key} v${String(v.template.version)}`,
    send_at: when(v.sendAt),
    created: when(v.createdAt),
    canceled: when(v.canceledAt),
    title: content.title ?? '',
    recipients: v.recipients.map((r) => ({
      user_id: r.userId,
      state: r.state,
      fanned_out: when(t.fannedOutAt.get(r.userId)),
      skipped: Array.isArray(r.skipped)
        ? (r.skipped as { channel?: unknown; reason?: unknown }[])
            .map((s) => `${String(s.channel)}: ${String(s.reason)}`)
            .join('; ')
        : '',
    })),
    deliveries: v.deliveries.map((d) => ({
      id: d.id,
      user_id: d.userId,
      channel: d.channel,
      target: maskTarget(d.channel, d.target),
      provider: t.providers.get(d.id) ?? '',
      provider_message_id: d.providerMessageId ?? '',
      state: d.state,
      attempts: d.attempts,
      last_error: d.lastError ?? '',
      events: t.events
        .filter((e) => e.deliveryId === d.id)
        .map((e) => ({ at: when(e.at), state: e.state, attempt: e.attempt, detail: e.detail ?? '' })),
    })),
    inbox: t.inbox.map((i) => ({
      user_id: i.userId,
      created: when(i.createdAt),
      read: when(i.readAt),
      seen: when(i.seenAt),
      archived: when(i.archivedAt),
      deleted: when(i.deletedAt),
    })),
  };
}

export function notificationPages(deps: NotificationPageDeps): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const reader = requireConsole(deps, 'read');

    app.get(
      '/notifications',
      { schema: { hide: true, querystring: SearchQuery }, preHandler: reader },
      async (request, reply) => {
        const form = request.query;
        const range = rangeOf(form, deps.now());
        const id = text(form.id);
        if (id !== undefined && parseNotificationId(id) === undefined)
          throw invalid('id', 'A notification id is <service>#<uuid>.');
        const key = text(form.key);
        if (key !== undefined && text(form.service) === undefined)
          throw invalid('key', 'Choose the service that sent the Idempotency-Key: keys are per service.');
        const services = await listServices(deps.pool);
        const serviceId =
          text(form.service) === undefined ? undefined : services.find((s) => s.name === form.service)?.id;
        const search: NotificationSearch = {
          from: range.from,
          to: range.to,
          id,
          serviceId,
          userId: text(form.user),
          template: text(form.template),
          idempotencyKey: key,
          deliveryState: text(form.state) as NotificationSearch['deliveryState'],
          before:
            form.before_us === undefined || form.before_id === undefined
              ? undefined
              : { createdUs: form.before_us, id: form.before_id },
          limit: shown + 1,
        };
        const unknownService = text(form.service) !== undefined && serviceId === undefined;
        const rows = unknownService ? [] : await searchNotifications(deps.pool, search);
        const names = new Map(services.map((s) => [s.id, s.name]));
        const filter = {
          id: id ?? '',
          service: form.service ?? '',
          user: form.user ?? '',
          template: form.template ?? '',
          key: form.key ?? '',
          state: form.state ?? '',
          since: range.since,
          until: range.until,
        };
        const last = rows.length > shown ? rows[shown - 1] : undefined;
        const older =
          last === undefined
            ? ''
            : new URLSearchParams({
                ...Object.fromEntries(Object.entries(filter).filter(([, v]) => v !== '')),
                before_us: String(last.createdUs),
                before_id: last.id,
              }).toString();
        const page = await deps.render('notifications', {
          ...layoutData(sessionOf(request), 'Notifications'),
          services,
          states: deliveryStates,
          filter,
          max_days: maxDays,
          rows: rows.slice(0, shown).map((r) => present(r, names)),
          older,
        });
        return reply.type(html).send(page);
      },
    );

    app.get(
      '/notifications/:id',
      {
        schema: { hide: true, params: Type.Object({ id: Type.String({ maxLength: 120 }) }) },
        preHandler: reader,
      },
      async (request, reply) => {
        const { id } = request.params;
        if (parseNotificationId(id) === undefined)
          throw new ProblemError('validation_failed', 'A notification id is <service>#<uuid>.', [
            { field: 'params/id', message: 'malformed' },
          ]);
        const timeline = await notificationTimeline(deps.pool, id);
        if (timeline === undefined) throw new ProblemError('not_found', 'No notification with this id.');
        const names = new Map((await listServices(deps.pool)).map((s) => [s.id, s.name]));
        const service = names.get(timeline.view.serviceId) ?? String(timeline.view.serviceId);
        const page = await deps.render('notification', {
          ...layoutData(sessionOf(request), 'Notification'),
          n: presentTimeline(timeline, service, deps.now()),
        });
        return reply.type(html).send(page);
      },
    );
  };
}
