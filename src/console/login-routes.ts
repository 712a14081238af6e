// Sign-in with a password, and sign-out. Sign-in is limited per client address (sign-in-page.ts)
// and locks an account after CONSOLE_LOCKOUT_FAILURES failures in a row; every answer
// to a failed sign-in is the same, so the form tells nobody which emails have accounts or
// which are locked. The form carries a token that must match a cookie set with it (another site
// cannot read either), so no other site can sign a browser in to an account of its choosing.
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { withTransaction, type Pool } from '../db/pools.js';
import { findForLogin, recordFailedLogin, recordLogin } from '../db/stores/console-user-store.js';
import { appendAudit } from '../db/stores/audit-store.js';
import { maxPasswordLength, verifyDecoy, verifyPassword } from './passwords.js';
import {
  cookieOptions,
  endSession,
  findSession,
  fromOwnOrigin,
  requireConsole,
  startSession,
  type SessionSettings,
} from './console-session.js';
import { loginCookie, NextQuery, safeNext, type SignInPage } from './sign-in-page.js';

const failedMessage = 'The email or password is wrong, or the account is locked or disabled.';

export interface LoginDeps {
  pool: Pool;
  now: () => Date;
  signIn: SignInPage;
  settings: SessionSettings;
  lockAfterFailures: number;
  lockoutMs: number;
}

const LoginBody = Type.Object(
  {
    email: Type.String({ maxLength: 254 }),
    password: Type.String({ maxLength: maxPasswordLength }),
    _csrf: Type.Optional(Type.String({ maxLength: 100 })),
    next: Type.Optional(Type.String({ maxLength: 2048 })),
  },
  { additionalProperties: false },
);

export function loginRoutes(deps: LoginDeps): FastifyPluginAsync {
  const showForm = deps.signIn.show;

  /** The account's id when email and password match an enabled, unlocked account. */
  const checkCredentials = (email: string, password: string, address: string) =>
    withTransaction(deps.pool, async (client) => {
      const now = deps.now();
      const found = await findForLogin(client, email);
      const usable =
        found !== undefined &&
        !found.user.disabled &&
        !(found.user.lockedUntil !== null && found.user.lockedUntil > now);
      const matches = usable
        ? await verifyPassword(password, found.passwordHash)
        : (await verifyDecoy(password), false);
      const audit = {
        actorKind: 'console_user' as const,
        actorName: email.toLowerCase(),
        target: '',
        clientAddress: address,
      };
      if (found !== undefined && usable && matches) {
        await recordLogin(client, found.user.id, now);
        await appendAudit(client, { ...audit, actorId: String(found.user.id), action: 'console.sign_in' });
        return found.user.id;
      }
      if (found !== undefined && usable)
        await recordFailedLogin(
          client,
          found.user.id,
          deps.lockAfterFailures,
          new Date(now.getTime() + deps.lockoutMs),
        );
      await appendAudit(client, {
        ...audit,
        actorId: found === undefined ? '' : String(found.user.id),
        action: 'console.sign_in_failed',
      });
      return undefined;
    });

  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    app.get(
      '/login',
      {
        schema: { hide: true, querystring: NextQuery },
      },
      async (request, reply) => {
        const next = safeNext(request.query.next);
        if ((await findSession(deps.pool, request, deps.now(), deps.settings)) !== undefined)
          return reply.redirect(next, 303);
        return showForm(reply, { status: 200, error: '', email: '', next });
      },
    );

    app.post('/login', { schema: { hide: true, body: LoginBody } }, async (request, reply) => {
      const { email, password, _csrf: token, next } = request.body;
      const form = { email, next: safeNext(next) };
      if (await deps.signIn.isOverLimit(request, reply, form)) return reply;
      if (
        !fromOwnOrigin(request) ||
        token === undefined ||
        token === '' ||
        request.cookies[loginCookie] !== token
      )
        return showForm(reply, { ...form, status: 403, error: 'The sign-in form expired; try again.' });
      const userId = await checkCredentials(email, password, request.ip);
      if (userId === undefined) return showForm(reply, { ...form, status: 401, error: failedMessage });
      void reply.clearCookie(loginCookie, cookieOptions(request));
      await startSession(deps.pool, request, reply, userId, deps.now(), deps.settings);
      return reply.redirect(form.next, 303);
    });

    app.post(
      '/logout',
      { schema: { hide: true }, preHandler: requireConsole(deps, 'read') },
      async (request, reply) => {
        await endSession(deps.pool, request, reply);
        return reply.redirect('/login', 303);
      },
    );
  };
}
