// Customer support in the console: find a user by an exact id, email or phone (shown masked),
// then their notifications of the last 12 months from every service, from the service store
// and the archive, each with every delivery attempt. Support staff and admins only; every
// lookup and every history opened is written to the audit log.
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Pool } from '../db/pools.js';
import { appendAudit } from '../db/stores/audit-store.js';
import {
  lookupUserHistory,
  type HistoryNotification,
  type HistoryPosition,
} from '../db/stores/support-store.js';
import { findUsersByContact } from '../db/stores/user-store.js';
import { isEmailAddress, maskTarget, normalizePhone } from '../domain/contact.js';
import { ProblemError } from '../domain/problems.js';
import { actorOf, requireConsole, sessionOf, type SessionGuardDeps } from './console-session.js';
import { consoleTime, layoutData, type RenderView } from './console-views.js';

export interface SupportPageDeps extends SessionGuardDeps {
  pool: Pool;
  archivePool: Pool | undefined;
  render: RenderView;
}

const historyDays = 366;
const pageSize = 50;
const time = consoleTime;

function encodePosition(p: HistoryPosition): string {
  return Buffer.from(`${String(p.createdUs)}|${p.id}`).toString('base64url');
}

function decodePosition(text: string): HistoryPosition {
  const [micros, id] = Buffer.from(text, 'base64url').toString('utf8').split('|');
  const createdUs = Number(micros);
  if (!Number.isSafeInteger(createdUs) || id === undefined || id === '' || id.length > 300)
    throw new ProblemError('cursor_invalid', 'The "after" position is not one this page gave out.');
  return { createdUs, id };
}

function presentNotification(n: HistoryNotification) {
  return {
    id: n.id,
    created: time(n.createdAt),
    service: n.service,
    category: n.category,
    lane: n.lane,
    template: n.template === null ? '' : `${n.template.key} v${String(n.template.version ?? '?')}`,
    recipient: n.recipient.state,
    skipped: n.recipient.skipped.map((s) => `${s.channel} (${s.reason})`).join(', '),
    inbox:
      n.inbox === null
        ? ''
        : [
            `delivered ${time(n.inbox.createdAt)}`,
            n.inbox.readAt === null ? 'unread' : `read ${time(n.inbox.readAt)}`,
          ].join(', '),
    deliveries: n.deliveries.map((d) => ({
      channel: d.channel,
      target: maskTarget(d.channel, d.target),
      provider: d.provider ?? '',
      state: d.state,
      events: d.events.map((e) => ({
        at: time(e.createdAt),
        state: e.state,
        attempt: e.attempt,
        detail: e.detail ?? '',
      })),
    })),
  };
}

function auditLookup(deps: SupportPageDeps, request: FastifyRequest, action: string, target: string) {
  return appendAudit(deps.pool, { ...actorOf(request), action, target });
}

/** A phone number as people paste it ("+82 10-1234-5678"), in E.164; undefined when it is none. */
function phoneOf(q: string): string | undefined {
  return normalizePhone(q.replace(/[\s().-]/g, ''));
}

/** What the audit log keeps of a search: an email or phone masked, as the page shows it. */
function auditedQuery(q: string): string {
  if (isEmailAddress(q)) return maskTarget('email', q.toLowerCase());
  const phone = phoneOf(q);
  return phone === undefined ? q : maskTarget('sms', phone);
}

export function supportPages(deps: SupportPageDeps): FastifyPluginAsync {
  const html = 'text/html; charset=utf-8';
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const guard = requireConsole(deps, 'support:lookup');

    app.get(
      '/support',
      {
        schema: {
          hide: true,
          querystring: Type.Object(
            { q: Type.Optional(Type.String({ maxLength: 254 })) },
            { additionalProperties: false },
          ),
        },
        preHandler: guard,
      },
      async (request, reply) => {
        const q = (request.query.q ?? '').trim();
        const users =
          q === ''
            ? []
            : await findUsersByContact(
                deps.pool,
                {
                  id: q,
                  email: isEmailAddress(q) ? q.toLowerCase() : null,
                  phone: phoneOf(q) ?? null,
                },
                50,
              );
        if (q !== '') await auditLookup(deps, request, 'support.find_user', auditedQuery(q));
        const page = await deps.render('support', {
          ...layoutData(sessionOf(request), 'Customer support'),
          q,
          users: users.map((u) => ({
            id: u.id,
            email: u.email === null ? '' : maskTarget('email', u.email),
            phone: u.phone === null ? '' : maskTarget('sms', u.phone),
            created: time(u.createdAt),
          })),
        });
        return reply.type(html).send(page);
      },
    );

    app.get(
      '/support/users/:userId',
      {
        schema: {
          hide: true,
          params: Type.Object({ userId: Type.String({ minLength: 1, maxLength: 128 }) }),
          querystring: Type.Object(
            { after: Type.Optional(Type.String({ maxLength: 400 })) },
            { additionalProperties: false },
          ),
        },
        preHandler: guard,
      },
      async (request, reply) => {
        const { userId } = request.params;
        const to = new Date(deps.now().getTime() + 60_000);
        const from = new Date(to.getTime() - historyDays * 86_400_000);
        const after = request.query.after === undefined ? undefined : decodePosition(request.query.after);
        const history = await lookupUserHistory(
          { service: deps.pool, archive: deps.archivePool },
          { userId, from, to, limit: pageSize, ...(after === undefined ? {} : { after }) },
        );
        await auditLookup(deps, request, 'support.user_history', `user:${userId}`);
        const page = await deps.render('support-user', {
          ...layoutData(sessionOf(request), `Notifications of ${userId}`),
          user_id: userId,
          from: time(from),
          to: time(to),
          notifications: history.notifications.map(presentNotification),
          older: history.next === undefined ? '' : encodePosition(history.next),
        });
        return reply.type(html).send(page);
      },
    );
  };
}
