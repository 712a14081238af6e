// Who may read and change an inbox: a user token for that user (it sees every service's items:
// that is the inbox), or a calling service's API key with the inbox permission acting for any
// user (it sees only its own service's items). User tokens are JWTs: Herald's own (HS256, issued
// by POST /v1/users/:userId/token, naming the key that asked) or the app's identity provider's,
// verified against its JWKS. A token for another user gets 404, exactly as an id that does not
// exist (docs/inbox.md); a revoked one gets 401 (docs/security.md).
import { createHash, randomUUID } from 'node:crypto';
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
import type { Permission } from '../domain/permissions.js';
import { checkPermission, type Authenticate } from '../http/api-key-auth.js';
import type { Caller } from '../domain/caller.js';
import type { Credential, CredentialRevocations } from './credential-revocations.js';

const heraldIssuer = 'herald';
/** Private claims of Herald's tokens: the id of the key that asked for it, and when (ms). */
const keyClaim = 'herald_key';
const issuedMsClaim = 'herald_iat_ms';
const heraldAudience = 'herald-inbox';
const externalAlgorithms = ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA'];
/**
 * How long a verified token is taken on trust again (never past its expiry): checking a
 * signature costs more than the rest of an inbox read (bench:inbox), and an app sends the
 * same token with every request. Revocations are checked on every request all the same.
 */
const verifiedTokenMs = 60_000;
const maxVerifiedTokens = 10_000;

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
  /** Tokens verified lately, by digest (not kept as themselves), with when to check them anew. */
  private readonly verified = new Map<string, { credential: Credential; untilMs: number }>();

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

  /** A token for `userId`, naming the key that asked for it (its revocation ends the token). */
  async issue(
    userId: string,
    keyId: number,
    ttlSeconds = this.options.defaultTtlSeconds,
  ): Promise<IssuedToken> {
    const nowMs = this.now().getTime();
    const issuedAt = Math.floor(nowMs / 1000);
    const expiresAt = issuedAt + ttlSeconds;
    const token = await new SignJWT({ [keyClaim]: keyId, [issuedMsClaim]: nowMs })
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

  /** What a token stands for; throws 401 unauthenticated for anything else. */
  async verify(token: string): Promise<Credential> {
    const digest = createHash('sha256').update(token).digest('base64');
    const nowMs = this.now().getTime();
    const hit = this.verified.get(digest);
    if (hit !== undefined && nowMs < hit.untilMs) return hit.credential;
    const { credential, expiresAtMs } = await this.verifySignature(token);
    if (this.verified.size >= maxVerifiedTokens) this.verified.clear();
    this.verified.set(digest, { credential, untilMs: Math.min(expiresAtMs, nowMs + verifiedTokenMs) });
    return credential;
  }

  /** verify() without the cache: the token's signature and claims, and when it expires. */
  private async verifySignature(token: string): Promise<{ credential: Credential; expiresAtMs: number }> {
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
        const keyId = payload[keyClaim];
        const issuedMs = payload[issuedMsClaim];
        // Every token Herald issues names its key; one that does not cannot be revoked with it.
        if (typeof keyId !== 'number' || typeof issuedMs !== 'number')
          throw new ProblemError('unauthenticated', 'The user token is not one Herald accepts.');
        return {
          credential: { kind: 'token', userId: userIdFrom(payload.sub), keyId, issuedAtMs: issuedMs },
          expiresAtMs: expiryOf(payload.exp),
        };
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
      return {
        credential: {
          kind: 'token',
          userId: userIdFrom(payload[external.userClaim]),
          keyId: undefined,
          issuedAtMs: payload.iat === undefined ? undefined : payload.iat * 1000,
        },
        expiresAtMs: expiryOf(payload.exp),
      };
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

/** A verified token's `exp` (required, so present) in ms: it is refused from that instant on. */
function expiryOf(exp: number | undefined): number {
  return (exp ?? 0) * 1000;
}

function userIdFrom(claim: unknown): string {
  if (typeof claim !== 'string' || claim.length < 1 || claim.length > 128)
    throw new ProblemError('unauthenticated', 'The user token names no user.');
  return claim;
}

/** Who is calling an inbox route: one user, or a service acting for users (its items only). */
export type InboxCaller =
  | { kind: 'user'; userId: string; credential: Credential }
  | { kind: 'service'; caller: Caller; credential: Credential };

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

export interface InboxAccess {
  tokens: UserTokens;
  authenticate: Authenticate;
  revocations: CredentialRevocations;
}

/** Verifies a user token and that neither it nor the key that issued it was revoked. */
export async function verifyUserToken(access: InboxAccess, token: string): Promise<Credential> {
  const credential = await access.tokens.verify(token);
  const revoked = await access.revocations.check(credential);
  if (revoked !== undefined)
    throw new ProblemError('unauthenticated', `The user token is revoked: ${revoked}.`);
  return credential;
}

/**
 * An onRequest hook for routes under /v1/users/:userId: a user token must be that user's (else
 * 404 not_found, as for an unknown item) and not revoked; an API key must hold one of
 * `keyPermissions`.
 */
export function requireInboxAccess(
  access: InboxAccess,
  keyPermissions: readonly Permission[],
  options: { allowQueryToken?: boolean } = {},
): onRequestAsyncHookHandler {
  return async (request) => {
    const bearer = bearerOf(request, options.allowQueryToken === true);
    if (bearer !== undefined && jwtShape.test(bearer)) {
      const credential = await verifyUserToken(access, bearer);
      const params = request.params as { userId?: string };
      if (params.userId !== credential.userId) throw new ProblemError('not_found', 'No such inbox.');
      request.inboxCaller = { kind: 'user', userId: credential.userId, credential };
      return;
    }
    const caller = await access.authenticate(request);
    checkPermission(caller, keyPermissions);
    const params = request.params as { userId?: string };
    request.inboxCaller = {
      kind: 'service',
      caller,
      credential: {
        kind: 'key',
        userId: params.userId ?? '',
        keyId: caller.keyId,
        issuedAtMs: undefined,
      },
    };
  };
}

export function inboxCallerOf(request: FastifyRequest): InboxCaller {
  if (request.inboxCaller === undefined) throw new Error('route is not guarded by requireInboxAccess');
  return request.inboxCaller;
}
