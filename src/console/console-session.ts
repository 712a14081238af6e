// Console sessions in the browser: the cookie, the session behind it, and the checks every
// request passes. A page asks for a capability; without a session a page redirects to /login
// and an action answers 401; without the capability, 403. Every request that changes something
// must come from the console's own origin and carry the session's CSRF token (a form field
// `_csrf` or the `x-csrf-token` header): another site can make a browser send the cookie, but
// it cannot read the token.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import type { Pool } from '../db/pools.js';
import {
  createConsoleSession,
  deleteConsoleSession,
  touchConsoleSession,
  type ActiveSession,
} from '../db/stores/console-session-store.js';
import { roleAllows, type ConsoleCapability } from '../domain/console-roles.js';
import { ProblemError } from '../domain/problems.js';

export const sessionCookie = 'herald_console';

export interface SessionSettings {
  idleMs: number;
  maxAgeMs: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    consoleSession?: ActiveSession;
  }
}

function hashId(id: string): Buffer {
  return createHash('sha256').update(id).digest();
}

/** Cookies are Secure except when the console is reached on loopback over plain HTTP (development). */
export function cookieOptions(request: FastifyRequest) {
  const host = request.hostname.replace(/:\d+$/, '');
  const loopback = host === 'localhost' || host === '127.0.0.1' || host === '[::1]';
  return {
    path: '/',
    httpOnly: true,
    sameSite: 'strict' as const,
    secure: request.protocol === 'https' || !loopback,
  };
}

export async function startSession(
  pool: Pool,
  request: FastifyRequest,
  reply: FastifyReply,
  userId: number,
  now: Date,
  settings: SessionSettings,
): Promise<void> {
  const id = randomBytes(32).toString('base64url');
  await createConsoleSession(pool, {
    idHash: hashId(id),
    userId,
    csrfToken: randomBytes(32).toString('base64url'),
    now,
    expiresAt: new Date(now.getTime() + settings.maxAgeMs),
    clientAddress: request.ip,
    userAgent: request.headers['user-agent'] ?? '',
  });
  void reply.setCookie(sessionCookie, id, cookieOptions(request));
}

export async function endSession(pool: Pool, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const id = request.cookies[sessionCookie];
  if (id !== undefined) await deleteConsoleSession(pool, hashId(id));
  void reply.clearCookie(sessionCookie, cookieOptions(request));
}

/** The live session of this request, if any (and marks it seen). */
export async function findSession(
  pool: Pool,
  request: FastifyRequest,
  now: Date,
  settings: SessionSettings,
): Promise<ActiveSession | undefined> {
  const id = request.cookies[sessionCookie];
  if (id === undefined || id.length > 100) return undefined;
  return touchConsoleSession(pool, hashId(id), now, settings.idleMs);
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

const safeMethods = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Whether the request says it comes from this console's origin (or from no other site). */
export function fromOwnOrigin(request: FastifyRequest): boolean {
  const fetchSite = request.headers['sec-fetch-site'];
  if (fetchSite !== undefined && fetchSite !== 'same-origin' && fetchSite !== 'none') return false;
  const origin = request.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === request.host;
  } catch {
    return false;
  }
}

function csrfTokenOf(request: FastifyRequest): string | undefined {
  const header = request.headers['x-csrf-token'];
  if (typeof header === 'string') return header;
  const body = request.body;
  if (typeof body === 'object' && body !== null && '_csrf' in body) {
    const field = body._csrf;
    if (typeof field === 'string') return field;
  }
  return undefined;
}

export interface SessionGuardDeps {
  pool: Pool;
  now: () => Date;
  settings: SessionSettings;
}

/**
 * A preHandler that requires a live session holding `capability`, and for a state-changing
 * request the console's origin and the session's CSRF token.
 */
export function requireConsole(
  deps: SessionGuardDeps,
  capability: ConsoleCapability,
): preHandlerAsyncHookHandler {
  return async (request, reply) => {
    const session = await findSession(deps.pool, request, deps.now(), deps.settings);
    const changes = !safeMethods.has(request.method);
    if (session === undefined) {
      if (!changes) {
        const next = encodeURIComponent(request.url);
        return reply.redirect(`/login?next=${next}`, 303);
      }
      throw new ProblemError('unauthenticated', 'Sign in to the console first.');
    }
    if (changes) {
      const token = csrfTokenOf(request);
      if (!fromOwnOrigin(request) || token === undefined || !sameText(token, session.csrfToken))
        throw new ProblemError('csrf_failed', 'Reload the page and try again.');
    }
    if (!roleAllows(session.role, capability))
      throw new ProblemError('forbidden', `Your console role (${session.role}) does not allow this.`);
    request.consoleSession = session;
  };
}

/**
 * An onRequest hook for a route whose body is large (an upload): before a byte of the body is
 * read, the request must come from the console's origin with a live session that holds
 * `capability`. (The CSRF token travels in the body; requireConsole checks it afterwards.)
 */
export function requireConsoleBeforeBody(
  deps: SessionGuardDeps,
  capability: ConsoleCapability,
): preHandlerAsyncHookHandler {
  return async (request) => {
    const session = await findSession(deps.pool, request, deps.now(), deps.settings);
    if (session === undefined) throw new ProblemError('unauthenticated', 'Sign in to the console first.');
    if (!fromOwnOrigin(request)) throw new ProblemError('csrf_failed', 'Reload the page and try again.');
    if (!roleAllows(session.role, capability))
      throw new ProblemError('forbidden', `Your console role (${session.role}) does not allow this.`);
  };
}

/** The session a guarded handler runs under. */
export function sessionOf(request: FastifyRequest): ActiveSession {
  const session = request.consoleSession;
  if (session === undefined) throw new Error('console route without requireConsole');
  return session;
}

/** The person behind a guarded request, as the audit log names them. */
export function actorOf(request: FastifyRequest) {
  const session = sessionOf(request);
  return {
    actorKind: 'console_user' as const,
    actorId: String(session.userId),
    actorName: session.email,
    clientAddress: request.ip,
  };
}
