// /v1/users/:userId/devices: a user's devices (push targets). Written only by keys with
// users:write, like contact targets; tokens shown in full only to keys with users:read.
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { withTransaction, type Pool } from '../../db/pools.js';
import { deleteDevice, listDevices, replaceDevices, upsertDevice } from '../../db/stores/user-store.js';
import { ProblemError } from '../../domain/problems.js';
import { callerOf, requirePermission, type Authenticate } from '../../http/api-key-auth.js';
import { DeviceBody, DeviceParams, requireUser, UserParams } from './user-input.js';
import { actorOf, DeviceSchema, presentDevice, seesInFull } from './user-presenter.js';
import { Answer, answers } from '../../http/openapi-contract.js';

const DeviceList = Answer({ devices: Type.Array(DeviceSchema) });

export function deviceRoutes(deps: { pool: Pool; authenticate: Authenticate }): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const guard = requirePermission(deps.authenticate, ['users:write']);
    const reader = requirePermission(deps.authenticate, ['users:read', 'users:write']);
    const tags = ['users'];

    app.get(
      '/v1/users/:userId/devices',
      {
        onRequest: reader,
        schema: {
          summary: "A user's devices",
          operationId: 'listDevices',
          tags,
          params: UserParams,
          response: answers({ 200: DeviceList }),
        },
      },
      async (request) => {
        await requireUser(deps.pool, request.params.userId);
        const inFull = seesInFull(callerOf(request));
        return {
          devices: (await listDevices(deps.pool, request.params.userId)).map((d) => presentDevice(d, inFull)),
        };
      },
    );

    app.post(
      '/v1/users/:userId/devices',
      {
        onRequest: guard,
        schema: {
          summary: 'Register a device (a known token moves to this user)',
          tags,
          operationId: 'registerDevice',
          params: UserParams,
          body: DeviceBody,
          response: answers({ 201: DeviceSchema }),
        },
      },
      async (request, reply) => {
        await requireUser(deps.pool, request.params.userId);
        const { platform, app_id: appId, token } = request.body;
        const caller = callerOf(request);
        const device = await withTransaction(deps.pool, (client) =>
          upsertDevice(client, request.params.userId, { platform, appId, token }, actorOf(caller)),
        );
        return reply.code(201).send(presentDevice(device, seesInFull(caller)));
      },
    );

    app.put(
      '/v1/users/:userId/devices',
      {
        onRequest: guard,
        schema: {
          summary: "Replace all of a user's devices",
          tags,
          params: UserParams,
          body: Type.Object(
            { devices: Type.Array(DeviceBody, { maxItems: 100 }) },
            { additionalProperties: false },
          ),
          operationId: 'replaceDevices',
          response: answers({ 200: DeviceList }),
        },
      },
      async (request) => {
        await requireUser(deps.pool, request.params.userId);
        const caller = callerOf(request);
        const devices = await withTransaction(deps.pool, (client) =>
          replaceDevices(
            client,
            request.params.userId,
            request.body.devices.map((d) => ({ platform: d.platform, appId: d.app_id, token: d.token })),
            actorOf(caller),
          ),
        );
        const inFull = seesInFull(caller);
        return { devices: devices.map((d) => presentDevice(d, inFull)) };
      },
    );

    app.delete(
      '/v1/users/:userId/devices/:deviceId',
      {
        onRequest: guard,
        schema: {
          summary: 'Remove a device',
          operationId: 'deleteDevice',
          tags,
          params: DeviceParams,
          response: answers({ 204: null }),
        },
      },
      async (request, reply) => {
        const actor = actorOf(callerOf(request));
        const { userId, deviceId } = request.params;
        if (!(await withTransaction(deps.pool, (client) => deleteDevice(client, userId, deviceId, actor))))
          throw new ProblemError('not_found', 'No such device for this user.');
        return reply.code(204).send();
      },
    );
  };
}
