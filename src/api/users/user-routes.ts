// /v1/users: create/update users (one or in bulk), and manage each user's devices. Users are the
// organisation's: only keys with users:write change them (the user directory), every change of
// a contact target is recorded with its key, and targets are shown in full only to keys with
// users:read — URLs never beyond their origin (docs/security.md).
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import { withTransaction, type Pool } from '../../db/pools.js';
import {
  deleteDevice,
  deleteUser,
  getUser,
  listContactChanges,
  listDevices,
  replaceDevices,
  upsertDevice,
  upsertUsers,
  type ContactActor,
  type Device,
  type RecordedContactChange,
  type User,
  type UserFields,
} from '../../db/stores/user-store.js';
import type { Caller } from '../../domain/caller.js';
import {
  isEmailAddress,
  maskTarget,
  normalizePhone,
  presentDeviceToken,
  presentTarget,
} from '../../domain/contact.js';
import { uuidPatternText } from '../../domain/ids.js';
import { ProblemError, type ProblemCode, type ProblemDetail } from '../../domain/problems.js';
import type { OutboundPolicy } from '../../domain/outbound-policy.js';
import { callerOf, requirePermission, type Authenticate } from '../../http/api-key-auth.js';
import { checkTargetUrl } from '../check-target-url.js';

const UserId = Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\s]+$' });
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

const UserBody = Type.Object(
  {
    email: Type.Optional(Nullable(Type.String({ maxLength: 254 }))),
    phone: Type.Optional(Nullable(Type.String({ maxLength: 16, description: 'E.164, e.g. +821012345678' }))),
    locale: Type.Optional(Type.String({ minLength: 2, maxLength: 35 })),
    time_zone: Type.Optional(
      Type.String({ minLength: 1, maxLength: 64, description: 'IANA zone, e.g. Asia/Seoul' }),
    ),
    webhook_url: Type.Optional(Nullable(Type.String({ maxLength: 2048 }))),
    chat_webhook_url: Type.Optional(
      Nullable(Type.String({ maxLength: 2048, description: 'Slack incoming webhook URL for this user.' })),
    ),
  },
  { additionalProperties: false },
);
type UserBodyT = Static<typeof UserBody>;

const DeviceBody = Type.Object(
  {
    platform: Type.Union([Type.Literal('ios'), Type.Literal('android'), Type.Literal('web')]),
    app_id: Type.String({
      minLength: 1,
      maxLength: 255,
      description: 'Bundle id, FCM project/app, or web origin.',
    }),
    token: Type.String({
      minLength: 1,
      maxLength: 4096,
      description: 'Device token or Web Push subscription JSON.',
    }),
  },
  { additionalProperties: false },
);

const UserParams = Type.Object({ userId: UserId });
const DeviceParams = Type.Object({ userId: UserId, deviceId: Type.String({ pattern: uuidPatternText }) });

/** A bad field and the problem code it calls for. */
interface FieldError extends ProblemDetail {
  code: ProblemCode;
}

/** Validates contact fields and turns the body into store fields; errors name each bad field. */
export function userFields(
  body: UserBodyT,
  prefix: string,
  outbound: OutboundPolicy,
): { fields: UserFields; errors: FieldError[] } {
  const errors: FieldError[] = [];
  const fields: UserFields = {};
  if (body.email !== undefined) {
    if (body.email !== null && !isEmailAddress(body.email))
      errors.push({
        code: 'invalid_email',
        field: `${prefix}/email`,
        message: 'is not a valid email address',
      });
    fields.email = body.email?.toLowerCase() ?? null;
  }
  if (body.phone !== undefined) {
    const phone = body.phone === null ? null : normalizePhone(body.phone);
    if (phone === undefined)
      errors.push({
        code: 'invalid_phone',
        field: `${prefix}/phone`,
        message: 'is not a valid E.164 phone number',
      });
    else fields.phone = phone;
  }
  if (body.locale !== undefined) {
    try {
      fields.locale = Intl.getCanonicalLocales(body.locale)[0] ?? body.locale;
    } catch {
      errors.push({
        code: 'validation_failed',
        field: `${prefix}/locale`,
        message: 'is not a BCP 47 language tag',
      });
    }
  }
  if (body.time_zone !== undefined) {
    try {
      fields.timeZone = new Intl.DateTimeFormat('en', {
        timeZone: body.time_zone,
      }).resolvedOptions().timeZone;
    } catch {
      errors.push({
        code: 'validation_failed',
        field: `${prefix}/time_zone`,
        message: 'is not an IANA time zone',
      });
    }
  }
  if (body.webhook_url !== undefined) {
    const problem = body.webhook_url === null ? undefined : checkTargetUrl(body.webhook_url, outbound);
    if (problem !== undefined) errors.push({ ...problem, field: `${prefix}/webhook_url` });
    fields.webhookUrl = body.webhook_url;
  }
  if (body.chat_webhook_url !== undefined) {
    const problem =
      body.chat_webhook_url === null ? undefined : checkTargetUrl(body.chat_webhook_url, outbound);
    if (problem !== undefined) errors.push({ ...problem, field: `${prefix}/chat_webhook_url` });
    fields.chatWebhookUrl = body.chat_webhook_url;
  }
  return { fields, errors };
}

/** The first error's code answers; `errors` lists every bad field. */
function throwFieldErrors(errors: FieldError[]): void {
  const first = errors[0];
  if (first === undefined) return;
  throw new ProblemError(
    first.code,
    `${first.field ?? 'input'} ${first.message}.`,
    errors.map(({ field, message }) => ({ ...(field === undefined ? {} : { field }), message })),
  );
}

/** Whether this caller sees contact targets in full (email, phone, device tokens; never URLs). */
function seesInFull(caller: Caller): boolean {
  return caller.permissions.includes('users:read');
}

function presentUser(user: User, inFull: boolean, devices?: Device[]) {
  const shown = (channel: 'email' | 'sms', value: string | null) =>
    value === null ? null : presentTarget(channel, value, inFull);
  const url = (value: string | null) => (value === null ? null : maskTarget('webhook', value));
  return {
    id: user.id,
    email: shown('email', user.email),
    phone: shown('sms', user.phone),
    locale: user.locale,
    time_zone: user.timeZone,
    webhook_url: url(user.webhookUrl),
    chat_webhook_url: url(user.chatWebhookUrl),
    created_at: user.createdAt.toISOString(),
    updated_at: user.updatedAt.toISOString(),
    ...(devices === undefined ? {} : { devices: devices.map((d) => presentDevice(d, inFull)) }),
  };
}

function presentDevice(d: Device, inFull: boolean) {
  return {
    id: d.id,
    platform: d.platform,
    app_id: d.appId,
    token: presentDeviceToken(d.platform, d.token, inFull),
    enabled: d.enabled,
    disabled_reason: d.disabledReason,
    created_at: d.createdAt.toISOString(),
    updated_at: d.updatedAt.toISOString(),
  };
}

function presentChange(c: RecordedContactChange) {
  return {
    target: c.target,
    action: c.action,
    value: c.value,
    key_id: c.keyId,
    service: c.serviceName,
    changed_at: c.changedAt.toISOString(),
  };
}

function actorOf(caller: Caller): ContactActor {
  return { keyId: caller.keyId, serviceId: caller.serviceId };
}

export function userRoutes(deps: {
  pool: Pool;
  authenticate: Authenticate;
  /** Users one bulk request may write (all or nothing, in one transaction). */
  maxBulkUsers?: number;
  /** Refuses webhook URLs whose host is an address Herald does not call. */
  outbound: OutboundPolicy;
}): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const guard = requirePermission(deps.authenticate, ['users:write']);
    const reader = requirePermission(deps.authenticate, ['users:read', 'users:write']);
    const tags = ['users'];
    const requireUser = async (id: string) => {
      const user = await getUser(deps.pool, id);
      if (user === undefined) throw new ProblemError('not_found', 'No user with this id.');
      return user;
    };

    app.put(
      '/v1/users/:userId',
      {
        onRequest: guard,
        schema: { summary: 'Create or update a user', tags, params: UserParams, body: UserBody },
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

    app.get(
      '/v1/users/:userId',
      { onRequest: reader, schema: { summary: 'A user with their devices', tags, params: UserParams } },
      async (request) => {
        const user = await requireUser(request.params.userId);
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
        },
      },
      async (request) => {
        const changes = await listContactChanges(
          deps.pool,
          request.params.userId,
          request.query.limit ?? 100,
        );
        if (changes.length === 0) await requireUser(request.params.userId);
        return { changes: changes.map(presentChange) };
      },
    );

    app.delete(
      '/v1/users/:userId',
      { onRequest: guard, schema: { summary: 'Delete a user and their devices', tags, params: UserParams } },
      async (request, reply) => {
        const actor = actorOf(callerOf(request));
        if (!(await withTransaction(deps.pool, (client) => deleteUser(client, request.params.userId, actor))))
          throw new ProblemError('not_found', 'No user with this id.');
        return reply.code(204).send();
      },
    );

    app.get(
      '/v1/users/:userId/devices',
      { onRequest: reader, schema: { summary: "A user's devices", tags, params: UserParams } },
      async (request) => {
        await requireUser(request.params.userId);
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
          params: UserParams,
          body: DeviceBody,
        },
      },
      async (request, reply) => {
        await requireUser(request.params.userId);
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
        },
      },
      async (request) => {
        await requireUser(request.params.userId);
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
      { onRequest: guard, schema: { summary: 'Remove a device', tags, params: DeviceParams } },
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
