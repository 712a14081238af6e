// Who may read and change an inbox: a user token for that user, or a calling service's API key
// (role sender) acting for any user. User tokens are JWTs: Herald's own (HS256, issued by
// POST /v1/users/:userId/token) or the app's identity provider's, verified against its JWKS.
// A token for another user gets 404, exactly as an id that does not exist (docs/inbox.md).
import { randomUUID } from 'node:crypto';
import type { FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import {
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
  SignJWT,
  type JWTVerifyGetKey,
} from 'jose';
import { ProblemError } from '../domain/problems.js';
import type { Authenticate } from '../http/api-key-auth.js';
import type { Caller } from '../db/stores/api-key-store.js';

const heraldIssuer = 'herald';
const heraldAudience = 'herald-inbox';
const externalAlgorithms = ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA'];

export interface ExternalIdentity {
  jwksUrl: string;
  issuer: string;
  audience: string;
  /** The claim holding Herald's user id. */
  userClaim: string;
}

export interface UserTokenOptions {
  secret: Uint8Array;
  defaultTtlSeconds: number;
  external?: ExternalIdentity;
  /** Replaces fetching the JWKS (tests that build their own key set). */
  jwks?: JWTVerifyGetKey;
  now?: () => Date;
}

export interface IssuedToken {
  token: string;
  expiresAt: Date;
}

export class UserTokens {
  private readonly jwks: JWTVerifyGetKey | undefined;
  private readonly now: () => Date;

  constructor(private readonly options: UserTokenOptions) {
    this.now = options.now ?? (() => new Date());
    this.jwks =
      options.jwks ??
      (options.external === undefined
        ? undefined
        : createRemoteJWKSet(new URL(options.external.jwksUrl), {
            cooldownDuration: 30_000,
            timeoutDuration: 5000,
          }));
  }

  async issue(userId: string, ttlSeconds = this.options.defaultTtlSeconds): Promise<IssuedToken> {
    const issuedAt = Math.floor(this.now().getTime() / 1000);
    const expiresAt = issuedAt + ttlSeconds;
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(heraldIssuer)
      .setAudience(heraldAudience)
      .setSubject(userId)
      .setIssuedAt(issuedAt)
      .setExpirationTime(expiresAt)
      .setJti(randomUUID())
      .sign(this.options.secret);
    return { token, expiresAt: new Date(expiresAt * 1000) };
  }

  /** The user id a token stands for; throws 401 unauthenticated for anything else. */
  async verify(token: string): Promise<string> {
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw new ProblemError('unauthenticated', 'The user token is not a JWT.');
    }
    const currentDate = this.now();
    try {
      if (alg === 'HS256') {
        const { payload } = await jwtVerify(token, this.options.secret, {
          issuer: heraldIssuer,
          audience: heraldAudience,
          algorithms: ['HS256'],
          currentDate,
          requiredClaims: ['sub', 'exp'],
        });
        return userIdFrom(payload.sub);
      }
      const external = this.options.external;
      if (external === undefined || this.jwks === undefined)
        throw new ProblemError('unauthenticated', 'The user token is not one Herald accepts.');
      const { payload } = await jwtVerify(token, this.jwks, {
        issuer: external.issuer,
        audience: external.audience,
        algorithms: externalAlgorithms,
        currentDate,
        requiredClaims: ['exp'],
      });
      return userIdFrom(payload[external.userClaim]);
    } catch (error) {
      if (error instanceof ProblemError) throw error;
      if (error instanceof joseErrors.JWTExpired)
        throw new ProblemError('unauthenticated', 'The user token has expired.');
      const providerFault =
        error instanceof joseErrors.JWKSTimeout || error instanceof joseErrors.JWKSInvalid;
      if (error instanceof joseErrors.JOSEError && !providerFault)
        throw new ProblemError('unauthenticated', 'The user token is not valid.');
      // The identity provider's key set could not be fetched or read: not the caller's fault.
      throw new ProblemError(
        'identity_provider_unavailable',
        'The identity provider could not be reached to check the token.',
      );
    }
  }
}

function userIdFrom(claim: unknown): string {
  if (typeof claim !== 'string' || claim.length < 1 || claim.length > 128)
    throw new ProblemError('unauthenticated', 'The user token names no user.');
  return claim;
}

/** Who is calling an inbox route: one user, or a service acting for users. */
export type InboxCaller = { kind: 'user'; userId: string } | { kind: 'service'; caller: Caller };

declare module 'fastify' {
  interface FastifyRequest {
    inboxCaller?: InboxCaller;
  }
}

/** JWTs have three base64url parts; API keys have none of those dots. */
const jwtShape = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** The bearer credential: the Authorization header, or `access_token` in the query (EventSource). */
function bearerOf(request: FastifyRequest, allowQueryToken: boolean): string | undefined {
  const header = request.headers.authorization;
  const match = header === undefined ? null : /^Bearer +(\S+)$/i.exec(header);
  if (match?.[1] !== undefined) return match[1];
  if (!allowQueryToken) return undefined;
  const query = request.query as Record<string, unknown> | undefined;
  const token = query?.access_token;
  return typeof token === 'string' ? token : undefined;
}

/**
 * An onRequest hook for routes under /v1/users/:userId: a user token must be that user's (else
 * 404 not_found, as for an unknown item); an API key must have the sender role.
 */
export function requireInboxAccess(
  tokens: UserTokens,
  authenticate: Authenticate,
  options: { allowQueryToken?: boolean } = {},
): onRequestAsyncHookHandler {
  return async (request) => {
    const bearer = bearerOf(request, options.allowQueryToken === true);
    if (bearer !== undefined && jwtShape.test(bearer)) {
      const userId = await tokens.verify(bearer);
      const params = request.params as { userId?: string };
      if (params.userId !== userId) throw new ProblemError('not_found', 'No such inbox.');
      request.inboxCaller = { kind: 'user', userId };
      return;
    }
    const caller = await authenticate(request);
    if (!caller.roles.includes('sender'))
      throw new ProblemError('forbidden', 'This API key needs one of the roles: sender.');
    request.inboxCaller = { kind: 'service', caller };
  };
}

export function inboxCallerOf(request: FastifyRequest): InboxCaller {
  if (request.inboxCaller === undefined) throw new Error('route is not guarded by requireInboxAccess');
  return request.inboxCaller;
}
