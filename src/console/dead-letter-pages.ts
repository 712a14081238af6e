// Dead letters in the console: every service's, filtered by service, channel, provider, reason
// and time; one letter's attempts; replay of the selected letters or of all that match the
// filter (operators and admins). Targets are shown masked. Every replay is in the audit log.
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import type { Pool } from '../db/pools.js';
import { listServices } from '../db/stores/api-key-store.js';
import { appendAudit } from '../db/stores/audit-store.js';
import {
  findDeadLetter,
  listDeliveryEvents,
  replayMatching,
  searchDeadLetters,
  type DeadLetter,
  type DeadLetterFilter,
} from '../db/stores/dead-letter-store.js';
import { wakeChannels, type WakeNotifier } from '../db/wake-notifier.js';
import { maskTarget } from '../domain/contact.js';
import { uuidPatternText } from '../domain/ids.js';
import { channels, type Channel } from '../domain/notification.js';
import { ProblemError } from '../domain/problems.js';
import { actorOf, requireConsole, sessionOf, type SessionGuardDeps } from './console-session.js';
import { consoleTime, layoutData, type RenderView } from './console-views.js';

export interface DeadLetterPageDeps extends SessionGuardDeps {
  pool: Pool;
  render: RenderView;
  notifier: WakeNotifier;
  /** Letters of notifications older than this many days are not replayed (their month may be leaving). */
  replayableDays: number;
}

const shown = 200;
const maxReplay = 10_000;
const day = Type.String({ pattern: '^(\\d{4}-\\d{2}-\\d{2})?$' });
const FilterFields = {
  service: Type.Optional(Type.String({ maxLength: 64 })),
  channel: Type.Optional(Type.Union([Type.Literal(''), ...channels.map((c) => Type.Literal(c))])),
  provider: Type.Optional(Type.String({ maxLength: 100 })),
  reason: Type.Optional(Type.String({ maxLength: 200 })),
  since: Type.Optional(day),
  until: Type.Optional(day),
};
const FilterSchema = Type.Object(FilterFields);
export type FilterForm = Static<typeof FilterSchema>;
const FilterQuery = Type.Object(
  { ...FilterSchema.properties, replayed: Type.Optional(Type.Integer({ minimum: 0 })) },
  { additionalProperties: false },
);
const Uuid = Type.String({ pattern: uuidPatternText });

/** The form's filter as the store's, resolving the service's name; undefined for an unknown service. */
function toFilter(
  services: readonly { id: number; name: string }[],
  form: FilterForm,
): DeadLetterFilter | undefined {
  const text = (v: string | undefined) => (v === undefined || v === '' ? undefined : v);
  let serviceId: number | undefined;
  if (text(form.service) !== undefined) {
    serviceId = services.find((s) => s.name === form.service)?.id;
    if (serviceId === undefined) return undefined;
  }
  const at = (v: string | undefined) =>
    text(v) === undefined ? undefined : new Date(`${String(v)}T00:00:00Z`);
  return {
    serviceId,
    channel: text(form.channel),
    provider: text(form.provider),
    reason: text(form.reason),
    since: at(form.since),
    until: at(form.until),
  };
}

function filterForm(form: FilterForm): Required<FilterForm> {
  return {
    service: form.service ?? '',
    channel: form.channel ?? '',
    provider: form.provider ?? '',
    reason: form.reason ?? '',
    since: form.since ?? '',
    until: form.until ?? '',
  };
}

function presentLetter(r: DeadLetter, serviceNames: Map<number, string>) {
  return {
    id: r.id,
    died: consoleTime(r.diedAt),
    service: serviceNames.get(r.serviceId) ?? String(r.serviceId),
    notification_id: r.notificationId,
    user_id: r.userId,
    channel: r.channel,
    target: maskTarget(r.channel as Channel, r.target),
    provider: r.provider ?? '',
    attempts: r.attempts,
    last_error: r.lastError ?? '',
  };
}

export function deadLetterPages(deps: DeadLetterPageDeps): FastifyPluginAsync {
  const html = 'text/html; charset=utf-8';
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const reader = requireConsole(deps, 'read');

    app.get(
      '/dead-letters',
      { schema: { hide: true, querystring: FilterQuery }, preHandler: reader },
      async (request, reply) => {
        const { replayed, ...form } = request.query;
        const services = await listServices(deps.pool);
        const filter = toFilter(services, form);
        const rows = filter === undefined ? [] : await searchDeadLetters(deps.pool, filter, shown + 1);
        const names = new Map(services.map((s) => [s.id, s.name]));
        const fields = filterForm(form);
        const page = await deps.render('dead-letters', {
          ...layoutData(sessionOf(request), 'Dead letters'),
          notice: replayed === undefined ? '' : `${String(replayed)} dead letter(s) re-queued.`,
          services,
          channels,
          filter: fields,
          filter_fields: Object.entries(fields).filter(([, v]) => v !== ''),
          rows: rows.slice(0, shown).map((r) => presentLetter(r, names)),
          more: rows.length > shown,
        });
        return reply.type(html).send(page);
      },
    );

    app.get(
      '/dead-letters/:id',
      { schema: { hide: true, params: Type.Object({ id: Uuid }) }, preHandler: reader },
      async (request, reply) => {
        const letter = await findDeadLetter(deps.pool, request.params.id);
        if (letter === undefined) throw new ProblemError('not_found', 'No dead letter with this id.');
        const names = new Map((await listServices(deps.pool)).map((s) => [s.id, s.name]));
        const events = await listDeliveryEvents(deps.pool, letter.id);
        const page = await deps.render('dead-letter', {
          ...layoutData(sessionOf(request), 'Dead letter'),
          letter: presentLetter(letter, names),
          events: events.map((e) => ({
            ...e,
            at: consoleTime(e.at),
            detail: e.detail ?? '',
          })),
        });
        return reply.type(html).send(page);
      },
    );

    app.post(
      '/dead-letters/replay',
      {
        schema: {
          hide: true,
          body: Type.Object(
            {
              _csrf: Type.Optional(Type.String({ maxLength: 100 })),
              scope: Type.Union([Type.Literal('selected'), Type.Literal('matching')]),
              ids: Type.Optional(Type.Union([Uuid, Type.Array(Uuid, { maxItems: 1000 })])),
              ...FilterFields,
            },
            { additionalProperties: false },
          ),
        },
        preHandler: requireConsole(deps, 'dead_letters:replay'),
      },
      async (request, reply) => {
        const { scope, ids: picked, ...rest } = request.body;
        const form: FilterForm = { ...rest };
        delete (form as { _csrf?: string })._csrf;
        const ids = picked === undefined ? [] : Array.isArray(picked) ? picked : [picked];
        if (scope === 'selected' && ids.length === 0)
          throw new ProblemError('validation_failed', 'Select the dead letters to replay.', [
            { field: 'body/ids', message: 'none selected' },
          ]);
        const filter = toFilter(await listServices(deps.pool), form) ?? { serviceId: -1 };
        const notBefore = new Date(deps.now().getTime() - deps.replayableDays * 86_400_000);
        const selection = scope === 'selected' ? { ids } : filter;
        const replayed = await replayMatching(deps.pool, selection, maxReplay, notBefore);
        if (replayed.length > 0) deps.notifier.notify(wakeChannels.deliveries);
        await appendAudit(deps.pool, {
          ...actorOf(request),
          action: 'dead_letters.replay',
          target: scope === 'selected' ? `${String(ids.length)} selected` : 'all matching',
          after: {
            scope,
            filter: scope === 'matching' ? filterForm(form) : undefined,
            replayed: replayed.length,
            ids: replayed.slice(0, 100),
          },
        });
        const back = new URLSearchParams({
          ...Object.fromEntries(Object.entries(filterForm(form)).filter(([, v]) => v !== '')),
          replayed: String(replayed.length),
        });
        return reply.redirect(`/dead-letters?${back.toString()}`, 303);
      },
    );
  };
}
