// Services and their API keys in the console (admins): create a key (and its service when the
// name is new), revoke one, rotate a service's webhook signing secret. A key or secret is shown
// once, on the page that made it, and is never written to the audit log; every action is.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Pool } from '../db/pools.js';
import {
  createApiKey,
  ensureService,
  listApiKeys,
  listServices,
  revokeApiKeyById,
  rotateWebhookSecret,
} from '../db/stores/api-key-store.js';
import { appendAudit } from '../db/stores/audit-store.js';
import { maskTarget } from '../domain/contact.js';
import { serviceNamePattern } from '../domain/ids.js';
import { permissions, type Permission } from '../domain/permissions.js';
import { ProblemError } from '../domain/problems.js';
import { actorOf, requireConsole, sessionOf, type SessionGuardDeps } from './console-session.js';
import { layoutData, type RenderView } from './console-views.js';

export interface ServicePageDeps extends SessionGuardDeps {
  pool: Pool;
  render: RenderView;
}

const Id = Type.Object({ id: Type.Integer({ minimum: 1, maximum: 2 ** 53 - 1 }) });
const CsrfOnly = Type.Object(
  { _csrf: Type.Optional(Type.String({ maxLength: 100 })) },
  { additionalProperties: false },
);
const PermissionName = Type.Unsafe<Permission>(Type.Union(permissions.map((p) => Type.Literal(p))));
const time = (d: Date) => d.toISOString().replace('T', ' ').slice(0, 16);

async function page(
  deps: ServicePageDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  extra: { status?: number; secret?: { what: string; value: string }; error?: string },
) {
  const services = (await listServices(deps.pool)).map((s) => ({
    id: s.id,
    name: s.name,
    webhook: s.webhookUrl === null ? '' : maskTarget('webhook', s.webhookUrl),
  }));
  const keys = (await listApiKeys(deps.pool)).map((k) => ({
    id: k.id,
    service: k.serviceName,
    prefix: k.prefix,
    label: k.label ?? '',
    permissions: k.permissions.join(', '),
    created: time(k.createdAt),
    state: k.revokedAt === null ? 'active' : `revoked ${time(k.revokedAt)}`,
  }));
  const html = await deps.render('services', {
    ...layoutData(sessionOf(request), 'Services and keys'),
    services,
    keys,
    permissions,
    secret: extra.secret ?? '',
    error: extra.error ?? '',
  });
  return reply
    .code(extra.status ?? 200)
    .type('text/html; charset=utf-8')
    .send(html);
}

function audit(
  deps: ServicePageDeps,
  request: FastifyRequest,
  action: string,
  target: string,
  after?: unknown,
) {
  return appendAudit(deps.pool, { ...actorOf(request), action, target, after });
}

export function servicePages(deps: ServicePageDeps): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const guard = requireConsole(deps, 'services:manage');

    app.get('/services', { schema: { hide: true }, preHandler: guard }, async (request, reply) =>
      page(deps, request, reply, {}),
    );

    app.post(
      '/keys',
      {
        schema: {
          hide: true,
          body: Type.Object(
            {
              _csrf: Type.Optional(Type.String({ maxLength: 100 })),
              service: Type.String({ maxLength: 63 }),
              label: Type.Optional(Type.String({ maxLength: 200 })),
              permissions: Type.Optional(
                Type.Union([PermissionName, Type.Array(PermissionName, { maxItems: 20 })]),
              ),
            },
            { additionalProperties: false },
          ),
        },
        preHandler: guard,
      },
      async (request, reply) => {
        const { service, label } = request.body;
        const granted = [...new Set([request.body.permissions ?? []].flat())].sort();
        if (!serviceNamePattern.test(service))
          return page(deps, request, reply, {
            status: 400,
            error: `"${service}" is not a service name (a-z, 0-9, _ and -, starting with a letter).`,
          });
        if (granted.length === 0)
          return page(deps, request, reply, { status: 400, error: 'Grant the key at least one permission.' });
        const serviceId = await ensureService(deps.pool, service);
        const key = await createApiKey(deps.pool, serviceId, granted, label === '' ? undefined : label);
        await audit(deps, request, 'api_key.create', `service:${service}`, {
          prefix: key.slice(0, 10),
          permissions: granted,
          label: label ?? '',
        });
        return page(deps, request, reply, {
          status: 201,
          secret: { what: `The new key of ${service}`, value: key },
        });
      },
    );

    app.post(
      '/keys/:id/revoke',
      { schema: { hide: true, params: Id, body: CsrfOnly }, preHandler: guard },
      async (request, reply) => {
        if (!(await revokeApiKeyById(deps.pool, request.params.id)))
          throw new ProblemError('not_found', 'No active API key with this id.');
        await audit(deps, request, 'api_key.revoke', `api_key:${String(request.params.id)}`);
        return reply.redirect('/services', 303);
      },
    );

    app.post(
      '/services/:id/webhook-secret',
      { schema: { hide: true, params: Id, body: CsrfOnly }, preHandler: guard },
      async (request, reply) => {
        const known = (await listServices(deps.pool)).find((s) => s.id === request.params.id);
        if (known === undefined) throw new ProblemError('not_found', 'No service with this id.');
        const settings = await rotateWebhookSecret(deps.pool, known.id);
        await audit(deps, request, 'service.rotate_webhook_secret', `service:${known.name}`);
        return page(deps, request, reply, {
          secret: { what: `The new webhook secret of ${known.name}`, value: settings.webhookSecret },
        });
      },
    );
  };
}
