// Single sign-on routes (docs/console.md): `GET /login/oidc` sends the browser to the identity
// provider with a fresh state, nonce and PKCE verifier, kept in a short-lived cookie; the
// provider sends it back to `GET /login/oidc/callback`, which signs in the existing, enabled
// console account whose email the provider verified. No account is created and the account's
// role is kept. Each outcome is in the audit log as a password sign-in's is (`after.method` is
// `oidc`), and every refusal shows the sign-in page with one message that names no token,
// secret or text of the provider.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { Value } from 'typebox/value';
import { withTransaction, type Pool } from '../db/pools.js';
import { appendAudit } from '../db/stores/audit-store.js';
import { findConsoleUserByEmail, recordSingleSignOn } from '../db/stores/console-user-store.js';
import { cookieOptions, findSession, startSession, type SessionSettings } from './console-session.js';
import type { RenderView } from './console-views.js';
import { NextQuery, safeNext, type SignInPage } from './sign-in-page.js';
import type { SignInFlow, SingleSignOn, SingleSignOnRefusal } from './single-sign-on.js';

export interface SingleSignOnDeps {
  pool: Pool;
  now: () => Date;
  render: RenderView;
  settings: SessionSettings;
  singleSignOn: SingleSignOn;
  signIn: SignInPage;
}

const flowCookie = 'herald_console_oidc';
/** The flow cookie goes only to /login/oidc and its callback. */
const flowPath = '/login/oidc';
/** Time to sign in at the provider; after it the callback finds no flow and says to start again. */
const flowMaxAgeSeconds = 600;

const SignInFlowSchema = Type.Object(
  {
    state: Type.String({ minLength: 1, maxLength: 200 }),
    nonce: Type.String({ minLength: 1, maxLength: 200 }),
    verifier: Type.String({ minLength: 43, maxLength: 128 }),
    next: Type.String({ maxLength: 2048 }),
  },
  { additionalProperties: false },
);

/**
 * SameSite=Lax, not Strict like the session cookie: the provider sends the browser back with a
 * top-level navigation from its own site, on which a Strict cookie would not be sent.
 */
function flowCookieOptions(request: FastifyRequest) {
  return { ...cookieOptions(request), sameSite: 'lax' as const, path: flowPath };
}

function readFlow(request: FastifyRequest): SignInFlow | undefined {
  const raw = request.cookies[flowCookie];
  if (raw === undefined || raw.length > 4096) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  return Value.Check(SignInFlowSchema, parsed) ? parsed : undefined;
}

type Refusal = SingleSignOnRefusal | 'flow_missing' | 'account_unknown' | 'account_disabled';

/** What the sign-in page says for each refusal: enough to act on, nothing from the provider. */
function refusalPage(reason: Refusal, provider: string): { status: number; error: string } {
  switch (reason) {
    case 'provider_unreachable':
      return {
        status: 503,
        error: `Sign-in with ${provider} is not available right now; try again later or sign in with your password.`,
      };
    case 'provider_refused':
    case 'answer_invalid':
      return { status: 401, error: `Sign-in with ${provider} did not succeed; try again.` };
    case 'flow_missing':
      return {
        status: 400,
        error: `The sign-in with ${provider} expired or was started in another window; try again.`,
      };
    case 'email_missing':
    case 'email_unverified':
      return {
        status: 403,
        error: `${provider} did not confirm a verified email address for you, so the console cannot tell which account is yours.`,
      };
    case 'account_unknown':
    case 'account_disabled':
      return {
        status: 403,
        error: 'No enabled console account has your email address; an admin can create or enable one.',
      };
  }
}

export function singleSignOnRoutes(deps: SingleSignOnDeps): FastifyPluginAsync {
  const { singleSignOn } = deps;

  const refuse = async (
    request: FastifyRequest,
    reply: FastifyReply,
    refusal: { reason: Refusal; code?: string; email?: string; userId?: number },
    next: string,
  ) => {
    await appendAudit(deps.pool, {
      actorKind: 'console_user',
      actorId: refusal.userId === undefined ? '' : String(refusal.userId),
      actorName: refusal.email ?? '',
      action: 'console.sign_in_failed',
      target: '',
      after: { method: 'oidc', reason: refusal.reason },
      clientAddress: request.ip,
    });
    request.log.warn(
      { reason: refusal.reason, ...(refusal.code === undefined ? {} : { code: refusal.code }) },
      'console single sign-on refused',
    );
    return deps.signIn.show(reply, { ...refusalPage(refusal.reason, singleSignOn.name), email: '', next });
  };

  /** The enabled account with this email, signed in (its time recorded and audited); else why not. */
  const signInAccount = (email: string, address: string) =>
    withTransaction(deps.pool, async (client) => {
      const user = await findConsoleUserByEmail(client, email);
      if (user === undefined) return { kind: 'refused' as const, reason: 'account_unknown' as const };
      if (user.disabled)
        return { kind: 'refused' as const, reason: 'account_disabled' as const, userId: user.id };
      await recordSingleSignOn(client, user.id, deps.now());
      await appendAudit(client, {
        actorKind: 'console_user',
        actorId: String(user.id),
        actorName: user.email,
        action: 'console.sign_in',
        target: '',
        after: { method: 'oidc' },
        clientAddress: address,
      });
      return { kind: 'signed_in' as const, userId: user.id };
    });

  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    app.get(
      '/login/oidc',
      {
        schema: { hide: true, querystring: NextQuery },
      },
      async (request, reply) => {
        const next = safeNext(request.query.next);
        if ((await findSession(deps.pool, request, deps.now(), deps.settings)) !== undefined)
          return reply.redirect(next, 303);
        const started = await singleSignOn.startSignIn(next);
        if (started === undefined)
          return deps.signIn.show(reply, {
            ...refusalPage('provider_unreachable', singleSignOn.name),
            email: '',
            next,
          });
        const value = Buffer.from(JSON.stringify(started.flow)).toString('base64url');
        void reply.setCookie(flowCookie, value, {
          ...flowCookieOptions(request),
          maxAge: flowMaxAgeSeconds,
        });
        return reply.redirect(started.url.href, 303);
      },
    );

    app.get('/login/oidc/callback', { schema: { hide: true } }, async (request, reply) => {
      const flow = readFlow(request);
      // One use: whatever happens next, this state, nonce and verifier are spent.
      void reply.clearCookie(flowCookie, flowCookieOptions(request));
      const next = safeNext(flow?.next);
      if (await deps.signIn.isOverLimit(request, reply, { email: '', next })) return reply;
      if (flow === undefined) return refuse(request, reply, { reason: 'flow_missing' }, next);
      const at = request.url.indexOf('?');
      const outcome = await singleSignOn.finishSignIn(at === -1 ? '' : request.url.slice(at), flow);
      if (outcome.kind === 'refused') return refuse(request, reply, outcome, next);
      const email = outcome.email.toLowerCase();
      const signedIn = await signInAccount(email, request.ip);
      if (signedIn.kind === 'refused') return refuse(request, reply, { ...signedIn, email }, next);
      await startSession(deps.pool, request, reply, signedIn.userId, deps.now(), deps.settings);
      // A page, not a redirect: the browser arrived from the provider's site, and on a redirect
      // in that same navigation it would not yet send the SameSite=Strict session cookie. The
      // page's own navigation is same-site.
      const html = await deps.render('sign-in-continue', { next });
      return reply.type('text/html; charset=utf-8').send(html);
    });
  };
}
