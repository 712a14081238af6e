// The audit log, newest first, searchable by action, target or who did it.
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Pool } from '../db/pools.js';
import { listAudit } from '../db/stores/audit-store.js';
import { requireConsole, sessionOf, type SessionGuardDeps } from './console-session.js';
import { consoleTime, layoutData, type RenderView } from './console-views.js';

const pageSize = 100;

/** A person by their email; an API key by its first characters and id (as the Services page lists keys). */
function actorText(kind: string, id: string, name: string): string {
  if (kind === 'api_key') return name === '' ? `API key ${id}` : `API key ${name}… (${id})`;
  return name === '' ? `${kind} ${id}` : name;
}

export function auditRoutes(deps: SessionGuardDeps & { pool: Pool; render: RenderView }): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    app.get(
      '/audit',
      {
        schema: {
          hide: true,
          querystring: Type.Object(
            {
              q: Type.Optional(Type.String({ maxLength: 200 })),
              before: Type.Optional(Type.Integer({ minimum: 1, maximum: 2 ** 53 - 1 })),
            },
            { additionalProperties: false },
          ),
        },
        preHandler: requireConsole(deps, 'audit:read'),
      },
      async (request, reply) => {
        const q = request.query.q ?? '';
        const entries = await listAudit(deps.pool, {
          text: q,
          beforeId: request.query.before,
          limit: pageSize,
        });
        const last = entries.at(-1);
        const html = await deps.render('audit', {
          ...layoutData(sessionOf(request), 'Audit log'),
          q,
          older: entries.length === pageSize && last !== undefined ? String(last.id) : '',
          entries: entries.map((e) => ({
            at: consoleTime(e.at),
            actor: actorText(e.actorKind, e.actorId, e.actorName),
            action: e.action,
            target: e.target,
            before: e.before === null ? '' : JSON.stringify(e.before),
            after: e.after === null ? '' : JSON.stringify(e.after),
            from: e.clientAddress ?? '',
          })),
        });
        return reply.type('text/html; charset=utf-8').send(html);
      },
    );
  };
}
