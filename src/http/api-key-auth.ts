// API-key authentication for service callers: `Authorization: Bearer <key>`. Keys are looked up
// by hash; a successful lookup is cached for a few seconds so ingest does not pay a query per
// request. A revoked key is forgotten at once when its revocation's NOTIFY arrives (`forget`),
// and within the cache time should that hint be lost.
import { createHash } from 'node:crypto';
import type { FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { ProblemError } from '../domain/problems.js';
import { holdsAny, type Permission } from '../domain/permissions.js';
import type { Caller } from '../domain/caller.js';

declare module 'fastify' {
  interface FastifyRequest {
    caller?: Caller;
  }
}

export interface ApiKeyAuthOptions {
  /** The caller an active key stands for (the key store's lookup); undefined when unknown or revoked. */
  lookup: (key: string) => Promise<Caller | undefined>;
  cacheMs?: number;
  now?: () => number;
}

export interface Authenticate {
  (request: FastifyRequest): Promise<Caller>;
  /** Drops every cached lookup (a key was revoked somewhere). */
  forget(): void;
}

const maxCacheEntries = 10_000;

export function createApiKeyAuth(options: ApiKeyAuthOptions): Authenticate {
  const cacheMs = options.cacheMs ?? 4000;
  const now = options.now ?? Date.now;
  const cache = new Map<string, { caller: Caller; until: number }>();
  const authenticate = async (request: FastifyRequest): Promise<Caller> => {
    const header = request.headers.authorization;
    // The scheme is case-insensitive (RFC 9110 §11.1).
    const match = header === undefined ? null : /^Bearer +([A-Za-z0-9_-]{8,200})$/i.exec(header);
    const key = match?.[1];
    if (key === undefined)
      throw new ProblemError('unauthenticated', 'Send the API key as "Authorization: Bearer <key>".');
    // Keys are kept in the cache by digest, not as themselves.
    const cacheKey = createHash('sha256').update(key).digest('base64');
    const hit = cache.get(cacheKey);
    if (hit !== undefined && hit.until > now()) return hit.caller;
    const caller = await options.lookup(key);
    if (caller === undefined) {
      cache.delete(cacheKey);
      throw new ProblemError('unauthenticated', 'The API key is unknown or revoked.');
    }
    if (cache.size >= maxCacheEntries) cache.clear();
    cache.set(cacheKey, { caller, until: now() + cacheMs });
    return caller;
  };
  return Object.assign(authenticate, { forget: () => cache.clear() });
}

/** 403 unless the caller holds one of `anyOf`. */
export function checkPermission(caller: Caller, anyOf: readonly Permission[]): void {
  if (!holdsAny(caller.permissions, anyOf))
    throw new ProblemError(
      'forbidden',
      `This API key needs ${anyOf.length === 1 ? 'the permission' : 'one of the permissions'}: ${anyOf.join(', ')}.`,
    );
}

/**
 * An onRequest hook that authenticates and requires one of the permissions `anyOf`: it runs
 * before the body is read, so anonymous callers cannot make Herald parse and validate bodies.
 */
export function requirePermission(
  authenticate: Authenticate,
  anyOf: readonly Permission[],
): onRequestAsyncHookHandler {
  return async (request: FastifyRequest) => {
    const caller = await authenticate(request);
    checkPermission(caller, anyOf);
    request.caller = caller;
  };
}

/** The authenticated caller of a route guarded by requirePermission. */
export function callerOf(request: FastifyRequest): Caller {
  if (request.caller === undefined) throw new Error('route is not guarded by requirePermission');
  return request.caller;
}
