// Who may read the operations endpoints. /metrics (load, error rates, queue depths) and the
// OpenAPI documents (/docs, /openapi.json: every route and schema) help an attacker more than
// a user; with OPS_TOKEN they need it as a bearer token, wherever they are served. /healthz
// and /readyz stay open: load balancers probe them without credentials. docs/security.md.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { ProblemError } from '../domain/problems.js';

/**
 * Whether a route (by its registered pattern, not the raw URL, so no spelling of the path gets
 * around it) is an operations endpoint: /metrics, and the documents at /docs… and
 * /openapi.json, also under a role prefix (/api/docs, /query/openapi.json on the ops port).
 */
export function isOpsEndpoint(routeUrl: string | undefined): boolean {
  if (routeUrl === undefined) return false;
  return routeUrl === '/metrics' || /^(?:\/(?:api|query))?\/(?:openapi\.json|docs(?:\/.*)?)$/.test(routeUrl);
}

/** An onRequest hook: operations endpoints need `Authorization: Bearer <token>`, other routes pass. */
export function requireOpsToken(token: string): (request: FastifyRequest) => Promise<void> {
  // Digests of equal length, so the comparison takes the same time whatever was sent.
  const expected = createHash('sha256').update(token, 'utf8').digest();
  return async (request) => {
    if (!isOpsEndpoint(request.routeOptions.url)) return;
    const header = request.headers.authorization;
    const match = header === undefined ? null : /^Bearer +(\S+)$/i.exec(header);
    const given = createHash('sha256')
      .update(match?.[1] ?? '', 'utf8')
      .digest();
    if (match === null || !timingSafeEqual(expected, given)) {
      throw new ProblemError('unauthenticated', 'This operations endpoint needs the operations token.');
    }
  };
}
