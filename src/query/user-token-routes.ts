// User tokens on the query role: issued to a key with user_tokens (limited per key), and revoked
// by the user or such a key (docs/inbox.md, docs/security.md).
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { Answer, answers, Timestamp } from '../http/openapi-contract.js';
import { callerOf, requirePermission } from '../http/api-key-auth.js';
import { ProblemError } from '../domain/problems.js';
import { KeyedQuota } from '../domain/token-bucket.js';
import { revokeUserTokens } from '../db/stores/user-token-store.js';
import { requireInboxAccess } from './user-auth.js';
import { emptyBodyAllowed, UserParams, type InboxRouteDeps } from './inbox-request.js';

export function userTokenRoutes(deps: InboxRouteDeps): FastifyPluginAsync {
  const access = { tokens: deps.tokens, authenticate: deps.authenticate, revocations: deps.revocations };
  const issuesPerKey = new KeyedQuota<number>(deps.tokenIssuesPerMinute);
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

    app.post(
      '/v1/users/:userId/token',
      {
        onRequest: requirePermission(deps.authenticate, ['user_tokens']),
        preValidation: emptyBodyAllowed,
        schema: {
          summary: 'Issue a short-lived user token: apps use it to read and change this user’s inbox',
          operationId: 'issueUserToken',
          tags: ['inbox'],
          response: answers({
            201: Answer({
              token: Type.String({ description: 'A bearer token for this user (a JWT).' }),
              token_type: Type.Literal('Bearer'),
              expires_at: Timestamp(),
              user_id: Type.String(),
            }),
          }),
          params: UserParams,
          body: Type.Object(
            {
              ttl_seconds: Type.Optional(
                Type.Integer({ minimum: 60, maximum: deps.maxTokenTtlSeconds ?? 86_400 }),
              ),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (request, reply) => {
        const caller = callerOf(request);
        const taken = issuesPerKey.take(caller.keyId, deps.now().getTime());
        if (!taken.ok)
          throw new ProblemError(
            'rate_limited',
            `This key may issue ${String(deps.tokenIssuesPerMinute)} user tokens a minute; retry in ${String(taken.retryAfterSeconds)} s.`,
            undefined,
            { headers: { 'retry-after': String(taken.retryAfterSeconds) } },
          );
        const issued = await deps.tokens.issue(
          request.params.userId,
          caller.keyId,
          (request.body as { ttl_seconds?: number } | undefined)?.ttl_seconds,
        );
        reply.header('cache-control', 'no-store');
        return reply.code(201).send({
          token: issued.token,
          token_type: 'Bearer',
          expires_at: issued.expiresAt.toISOString(),
          user_id: request.params.userId,
        });
      },
    );

    app.post(
      '/v1/users/:userId/tokens/revoke',
      {
        // The user (signing out everywhere) or a key that may issue tokens.
        onRequest: requireInboxAccess(access, ['user_tokens']),
        preValidation: emptyBodyAllowed,
        schema: {
          summary: 'Revoke the user’s tokens issued before a time (default: now), on every query process',
          operationId: 'revokeUserTokens',
          tags: ['inbox'],
          response: answers({
            200: Answer({
              user_id: Type.String(),
              revoked_before: Timestamp('Tokens issued before this are refused from now on.'),
            }),
          }),
          params: UserParams,
          body: Type.Object(
            { before: Type.Optional(Type.String({ format: 'date-time' })) },
            { additionalProperties: false },
          ),
        },
      },
      async (request) => {
        const { before } = request.body;
        const now = deps.now();
        const at = before === undefined ? now : new Date(before);
        // A revocation reaches back, never forward: tokens issued later are the user's new sign-ins.
        const revokedBefore = await revokeUserTokens(deps.pool, request.params.userId, at > now ? now : at);
        // This process refuses the tokens from the answer on; the others when the NOTIFY arrives.
        deps.revocations.forget(`user:${request.params.userId}`);
        return { user_id: request.params.userId, revoked_before: revokedBefore.toISOString() };
      },
    );
  };
}
