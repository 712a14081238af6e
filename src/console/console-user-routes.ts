// People: console accounts, listed, created (with a password shown once) and changed (role,
// disabled) by admins. Each change is in the audit log with the account before and after, and
// a changed account's sessions end, so a new role or a disabling takes effect at once.
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { withTransaction, type Pool } from '../db/pools.js';
import { listConsoleUsers, updateConsoleUser, type ConsoleUser } from '../db/stores/console-user-store.js';
import { deleteSessionsOf, type ActiveSession } from '../db/stores/console-session-store.js';
import { appendAudit } from '../db/stores/audit-store.js';
import { consoleRoles, type ConsoleRole } from '../domain/console-roles.js';
import { isEmailAddress } from '../domain/contact.js';
import { ProblemError } from '../domain/problems.js';
import { auditedAccount, createAccount } from './console-accounts.js';
import { actorOf, requireConsole, sessionOf, type SessionGuardDeps } from './console-session.js';
import { layoutData, type RenderView } from './console-views.js';

export interface ConsoleUserDeps extends SessionGuardDeps {
  pool: Pool;
  render: RenderView;
}

const Role = Type.Unsafe<ConsoleRole>(Type.Union(consoleRoles.map((r) => Type.Literal(r))));

function presentAccount(u: ConsoleUser) {
  return {
    id: u.id,
    email: u.email,
    name: u.name,
    role: u.role,
    disabled: u.disabled,
    state: u.disabled
      ? 'disabled'
      : u.lockedUntil !== null && u.lockedUntil > new Date()
        ? 'locked'
        : 'enabled',
    last_login: u.lastLoginAt?.toISOString().slice(0, 16).replace('T', ' ') ?? 'never',
  };
}

/** The people page, with a just-created account's password or an error when there is one. */
async function page(
  deps: ConsoleUserDeps,
  reply: FastifyReply,
  session: ActiveSession,
  extra: { status?: number; created?: object; error?: string },
) {
  const users = (await listConsoleUsers(deps.pool)).map(presentAccount);
  const html = await deps.render('console-users', {
    ...layoutData(session, 'People'),
    users,
    roles: consoleRoles,
    created: extra.created ?? '',
    error: extra.error ?? '',
  });
  return reply
    .code(extra.status ?? 200)
    .type('text/html; charset=utf-8')
    .send(html);
}

export function consoleUserRoutes(deps: ConsoleUserDeps): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const guard = requireConsole(deps, 'console_users:manage');

    app.get('/console-users', { schema: { hide: true }, preHandler: guard }, async (request, reply) =>
      page(deps, reply, sessionOf(request), {}),
    );

    app.post(
      '/console-users',
      {
        schema: {
          hide: true,
          body: Type.Object(
            {
              // Checked by the guard, which answers csrf_failed when it is missing.
              _csrf: Type.Optional(Type.String({ maxLength: 100 })),
              email: Type.String({ maxLength: 254 }),
              name: Type.Optional(Type.String({ maxLength: 200 })),
              role: Role,
            },
            { additionalProperties: false },
          ),
        },
        preHandler: guard,
      },
      async (request, reply) => {
        const session = sessionOf(request);
        const { email, name = '', role } = request.body;
        if (!isEmailAddress(email))
          return page(deps, reply, session, { status: 400, error: `${email} is not an email address.` });
        const created = await createAccount(deps.pool, { email, name, role }, actorOf(request));
        if (created === undefined)
          return page(deps, reply, session, {
            status: 409,
            error: `An account with the email ${email} exists.`,
          });
        return page(deps, reply, session, {
          status: 201,
          created: { email: created.user.email, role: created.user.role, password: created.password },
        });
      },
    );

    app.post(
      '/console-users/:id',
      {
        schema: {
          hide: true,
          params: Type.Object({ id: Type.Integer({ minimum: 1, maximum: 2 ** 53 - 1 }) }),
          body: Type.Object(
            {
              // Checked by the guard, which answers csrf_failed when it is missing.
              _csrf: Type.Optional(Type.String({ maxLength: 100 })),
              role: Type.Optional(Role),
              disabled: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])),
            },
            { additionalProperties: false },
          ),
        },
        preHandler: guard,
      },
      async (request, reply) => {
        const session = sessionOf(request);
        const { id } = request.params;
        const disabled = request.body.disabled === undefined ? undefined : request.body.disabled === 'true';
        if (id === session.userId && (disabled === true || (request.body.role ?? 'admin') !== 'admin'))
          return page(deps, reply, session, {
            status: 400,
            error: 'You cannot lower your own role or disable yourself.',
          });
        const changed = await withTransaction(deps.pool, async (client) => {
          const result = await updateConsoleUser(client, id, {
            ...(request.body.role === undefined ? {} : { role: request.body.role }),
            ...(disabled === undefined ? {} : { disabled }),
          });
          if (result === undefined) return undefined;
          await deleteSessionsOf(client, id);
          await appendAudit(client, {
            ...actorOf(request),
            action: 'console_user.update',
            target: `console_user:${String(id)}`,
            before: auditedAccount(result.before),
            after: auditedAccount(result.after),
          });
          return result;
        });
        if (changed === undefined) throw new ProblemError('not_found', 'No console account with this id.');
        return reply.redirect('/console-users', 303);
      },
    );
  };
}
