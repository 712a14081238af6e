// What every way of signing in to the console shares: the sign-in page with its message and its
// form token, the limit of sign-in attempts per client address (a token bucket per console
// process, for password and single sign-on together), and where to go once signed in.
import { randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { KeyedQuota } from '../domain/token-bucket.js';
import { cookieOptions } from './console-session.js';
import type { RenderView } from './console-views.js';

/** The cookie that carries the sign-in form's token (login-routes.ts checks it). */
export const loginCookie = 'herald_console_login';

/**
 * Where to go after signing in: a path of this console, never another site. Printable ASCII
 * only, without backslashes: URL parsers drop tabs and newlines and read `\` as `/`, so
 * `/<tab>/evil.example` or `/\evil.example` would leave for another host.
 */
/** The query of a sign-in page: where to go once signed in (checked by safeNext). */
export const NextQuery = Type.Object({ next: Type.Optional(Type.String({ maxLength: 2048 })) });

export function safeNext(next: string | undefined): string {
  return next !== undefined && /^\/(?!\/)[\x21-\x5b\x5d-\x7e]*$/.test(next) ? next : '/';
}

export interface SignInForm {
  email: string;
  next: string;
}

export interface SignInPage {
  /** The sign-in page with a message (a fresh form token in its cookie). */
  show: (reply: FastifyReply, form: SignInForm & { status: number; error: string }) => Promise<FastifyReply>;
  /**
   * Takes one attempt from the request's address. Over the limit it sends the 429 page and
   * answers true; the handler then returns the reply. (Not the reply itself: a FastifyReply is
   * thenable, so awaiting it would not give it back.)
   */
  isOverLimit: (request: FastifyRequest, reply: FastifyReply, form: SignInForm) => Promise<boolean>;
}

export function signInPage(deps: {
  render: RenderView;
  now: () => Date;
  attemptsPerMinute: number;
  /** The identity provider's name on the single sign-on button; '' for none. */
  singleSignOn: string;
}): SignInPage {
  const attempts = new KeyedQuota<string>(deps.attemptsPerMinute);
  const show: SignInPage['show'] = async (reply, form) => {
    const token = randomBytes(24).toString('base64url');
    void reply.setCookie(loginCookie, token, cookieOptions(reply.request));
    const html = await deps.render('login', { csrf: token, ...form, singleSignOn: deps.singleSignOn });
    return reply.code(form.status).type('text/html; charset=utf-8').send(html);
  };
  return {
    show,
    isOverLimit: async (request, reply, form) => {
      const allowed = attempts.take(request.ip, deps.now().getTime());
      if (allowed.ok) return false;
      void reply.header('retry-after', String(allowed.retryAfterSeconds));
      await show(reply, {
        ...form,
        status: 429,
        error: `Too many sign-in attempts from your address; wait ${String(allowed.retryAfterSeconds)} s.`,
      });
      return true;
    },
  };
}
