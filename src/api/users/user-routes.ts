// /v1/users: create, update (one or in bulk), read and delete users, and read who changed their
// contact targets. Users are the organisation's: only keys with users:write change them (the user
// directory), every change of a contact target is recorded with its key, and targets are shown in
// full only to keys with users:read (docs/security.md). Devices: device-routes.ts.
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { withTransaction, type Pool } from '../../db/pools.js';
import { deleteUser, listContactChanges, listDevices, upsertUsers } from '../../db/stores/user-store.js';
import { ProblemError } from '../../domain/problems.js';
import type { OutboundPolicy } from '../../domain/outbound-policy.js';
import { callerOf, requirePermission, type Authenticate } from '../../http/api-key-auth.js';
import {
  requireUser,
  throwFieldErrors,
  UserBody,
  userFields,
  UserId,
  UserParams,
  type FieldError,
} from './user-input.js';
import {
  actorOf,
  ContactChangeSchema,
  presentChange,
  presentUser,
  seesInFull,
  UserSchema,
  UserWithDevicesSchema,
} from './user-presenter.js';
import { Answer, answers } from '../../http/openapi-contract.js';

export interface UserRouteDeps {
  pool: Pool;
  authenticate: Authenticate;
  /** Users one bulk request may write (all or nothing, in one transaction). */
  maxBulkUsers?: number;
  /** Refuses webhook URLs whose host is an address Herald does not call. */
  outbound: OutboundPolicy;
}

/** One user at a time: PUT, GET, DELETE and the contact history. */
export function userRoutes(deps: UserRouteDeps): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const guard = requirePermission(deps.authenticate, ['users:write']);
    const reader = requirePermission(deps.authenticate, ['users:read', 'users:write']);
    const tags = ['users'];

    app.put(
      '/v1/users/:userId',
      {
        onRequest: guard,
        schema: {
          summary: 'Create or update a user',
          operationId: 'upsertUser',
          tags,
          params: UserParams,
          body: UserBody,
          response: answers({ 200: UserSchema }),
        },
      },
      async (request) => {
        const { fields, errors } = userFields(request.body, 'body', deps.outbound);
        throwFieldErrors(errors);
        const caller = callerOf(request);
        const [user] = await withTransaction(deps.pool, (client) =>
          upsertUsers(client, [{ id: request.params.userId, ...fields }], actorOf(caller)),
        );
        if (user === undefined) throw new Error('upsert returned no user');
        return presentUser(user, seesInFull(caller));
      },
    );

    app.get(
      '/v1/users/:userId',
      {
        onRequest: reader,
        schema: {
          summary: 'A user with their devices',
          operationId: 'getUser',
          tags,
          params: UserParams,
          response: answers({ 200: UserWithDevicesSchema }),
        },
      },
      async (request) => {
        const user = await requireUser(deps.pool, request.params.userId);
        return presentUser(user, seesInFull(callerOf(request)), await listDevices(deps.pool, user.id));
      },
    );

    app.get(
      '/v1/users/:userId/contact-history',
      {
        onRequest: reader,
        schema: {
          summary:
            "Who changed the user's contact targets and devices, and when (newest first, values masked)",
          tags,
          params: UserParams,
          querystring: Type.Object(
            { limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })) },
            { additionalProperties: false },
          ),
          operationId: 'listContactChanges',
          response: answers({ 200: Answer({ changes: Type.Array(ContactChangeSchema) }) }),
        },
      },
      async (request) => {
        const changes = await listContactChanges(
          deps.pool,
          request.params.userId,
          request.query.limit ?? 100,
        );
        if (changes.length === 0) await requireUser(deps.pool, request.params.userId);
        return { changes: changes.map(presentChange) };
      },
    );

    app.delete(
      '/v1/users/:userId',
      {
        onRequest: guard,
        schema: {
          summary: 'Delete a user and their devices',
          operationId: 'deleteUser',
          tags,
          params: UserParams,
          response: answers({ 204: null }),
        },
      },
      async (request, reply) => {
        const actor = actorOf(callerOf(request));
        if (!(await withTransaction(deps.pool, (client) => deleteUser(client, request.params.userId, actor))))
          throw new ProblemError('not_found', 'No user with this id.');
        return reply.code(204).send();
      },
    );
  };
}

/** POST /v1/users/bulk: many users in one transaction, all or nothing. */
export function bulkUserRoutes(deps: UserRouteDeps): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const guard = requirePermission(deps.authenticate, ['users:write']);
    const tags = ['users'];

    app.post(
      '/v1/users/bulk',
      {
        onRequest: guard,
        schema: {
          summary: 'Create or update many users at once (all or nothing)',
          tags,
          body: Type.Object(
            {
              users: Type.Array(
                Type.Object({ id: UserId, ...UserBody.properties }, { additionalProperties: false }),
                {
                  minItems: 1,
                  maxItems: deps.maxBulkUsers ?? 1000,
                },
              ),
            },
            { additionalProperties: false },
          ),
          operationId: 'upsertUsers',
          response: answers({
            200: Answer({ upserted: Type.Integer({ description: 'Users created or updated.' }) }),
          }),
        },
      },
      async (request) => {
        const errors: FieldError[] = [];
        const seen = new Set<string>();
        const users = request.body.users.map((u, i) => {
          if (seen.has(u.id))
            errors.push({
              code: 'validation_failed',
              field: `body/users/${String(i)}/id`,
              message: 'appears twice',
            });
          seen.add(u.id);
          const { id, ...rest } = u;
          const checked = userFields(rest, `body/users/${String(i)}`, deps.outbound);
          errors.push(...checked.errors);
          return { id, ...checked.fields };
        });
        throwFieldErrors(errors);
        const actor = actorOf(callerOf(request));
        const upserted = await withTransaction(deps.pool, (client) => upsertUsers(client, users, actor));
        return { upserted: upserted.length };
      },
    );
  };
}
