// /v1/service: the calling service's own settings (its webhook URL and signing secret).
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Pool } from '../../db/pools.js';
import {
  getServiceSettings,
  rotateWebhookSecret,
  setServiceTarget,
  type ServiceSettings,
  type ServiceTarget,
} from '../../db/stores/api-key-store.js';
import { ProblemError } from '../../domain/problems.js';
import { permissions } from '../../domain/permissions.js';
import type { OutboundPolicy } from '../../domain/outbound-policy.js';
import { callerOf, requirePermission, type Authenticate } from '../../http/api-key-auth.js';
import { checkTargetUrl } from '../check-target-url.js';

function present(s: ServiceSettings, withSecret: boolean) {
  return {
    name: s.name,
    webhook_url: s.webhookUrl,
    chat_webhook_url: s.chatWebhookUrl,
    ...(withSecret ? { webhook_secret: s.webhookSecret } : {}),
  };
}

export function serviceRoutes(deps: {
  pool: Pool;
  authenticate: Authenticate;
  /** Refuses URLs whose host is an address Herald does not call. */
  outbound: OutboundPolicy;
}): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const tags = ['service'];
    app.get(
      '/v1/service',
      {
        onRequest: requirePermission(deps.authenticate, permissions),
        schema: { summary: 'Your service', tags },
      },
      async (request) => present(await getServiceSettings(deps.pool, callerOf(request).serviceId), false),
    );
    const UrlBody = Type.Object(
      { url: Type.Union([Type.String({ maxLength: 2048 }), Type.Null()]) },
      { additionalProperties: false },
    );
    const setTarget = (path: string, target: ServiceTarget, summary: string, withSecret: boolean) => {
      app.put(
        path,
        {
          onRequest: requirePermission(deps.authenticate, ['admin']),
          schema: { summary, tags, body: UrlBody },
        },
        async (request) => {
          const { url } = request.body;
          const problem = url === null ? undefined : checkTargetUrl(url, deps.outbound);
          if (problem !== undefined) {
            throw new ProblemError(problem.code, `body/url ${problem.message}.`, [
              { field: 'body/url', message: problem.message },
            ]);
          }
          return present(
            await setServiceTarget(deps.pool, callerOf(request).serviceId, target, url),
            withSecret,
          );
        },
      );
    };
    setTarget(
      '/v1/service/webhook',
      'webhook_url',
      'Set the default webhook URL; answers with the signing secret',
      true,
    );
    setTarget(
      '/v1/service/chat',
      'chat_webhook_url',
      "Set the service's Slack incoming webhook, used for users without their own",
      false,
    );
    app.post(
      '/v1/service/webhook/rotate-secret',
      {
        onRequest: requirePermission(deps.authenticate, ['admin']),
        schema: { summary: 'Replace the webhook signing secret', tags },
      },
      async (request) => present(await rotateWebhookSecret(deps.pool, callerOf(request).serviceId), true),
    );
  };
}
