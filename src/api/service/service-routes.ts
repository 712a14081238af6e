// /v1/service: the calling service's own settings (its webhook URL and signing secret).
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Pool } from '../../db/pools.js';
import { maskTarget } from '../../domain/contact.js';
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
import { auditedChange } from '../audited-change.js';
import { Answer, answers, Nullable } from '../../http/openapi-contract.js';

const serviceProperties = {
  name: Type.String(),
  webhook_url: Nullable(Type.String()),
  chat_webhook_url: Nullable(Type.String()),
};
const ServiceSchema = Answer(serviceProperties);
const serviceAnswers = answers({ 200: ServiceSchema });
const ServiceWithSecretSchema = Answer({
  ...serviceProperties,
  webhook_secret: Type.String({
    description:
      'Webhook signing secret (whsec_…): receivers verify the Standard Webhooks signature with it.',
  }),
});

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
        schema: { summary: 'Your service', operationId: 'getService', tags, response: serviceAnswers },
      },
      async (request) => present(await getServiceSettings(deps.pool, callerOf(request).serviceId), false),
    );
    const UrlBody = Type.Object(
      { url: Type.Union([Type.String({ maxLength: 2048 }), Type.Null()]) },
      { additionalProperties: false },
    );
    // The audit log keeps a URL's origin only: a Slack webhook's path, a token in a query string
    // or userinfo is a credential.
    const shown = (channel: 'webhook' | 'chat', url: string | null) =>
      url === null ? null : maskTarget(channel, url);
    const setTarget = (
      path: string,
      target: ServiceTarget,
      summary: string,
      operationId: string,
      withSecret: boolean,
      action: string,
    ) => {
      const channel = target === 'webhook_url' ? 'webhook' : 'chat';
      app.put(
        path,
        {
          onRequest: requirePermission(deps.authenticate, ['admin']),
          schema: {
            summary,
            operationId,
            tags,
            body: UrlBody,
            response: answers({ 200: withSecret ? ServiceWithSecretSchema : ServiceSchema }),
          },
        },
        async (request) => {
          const { url } = request.body;
          const problem = url === null ? undefined : checkTargetUrl(url, deps.outbound);
          if (problem !== undefined) {
            throw new ProblemError(problem.code, `body/url ${problem.message}.`, [
              { field: 'body/url', message: problem.message },
            ]);
          }
          const caller = callerOf(request);
          return auditedChange(
            deps.pool,
            request,
            { action, target: `service:${caller.serviceName}` },
            async (client) => {
              const before = await getServiceSettings(client, caller.serviceId, { forUpdate: true });
              const after = await setServiceTarget(client, caller.serviceId, target, url);
              const was = target === 'webhook_url' ? before.webhookUrl : before.chatWebhookUrl;
              return {
                result: present(after, withSecret),
                before: { [target]: shown(channel, was) },
                after: { [target]: shown(channel, url) },
                changed: was !== url,
              };
            },
          );
        },
      );
    };
    setTarget(
      '/v1/service/webhook',
      'webhook_url',
      'Set the default webhook URL; answers with the signing secret',
      'setServiceWebhook',
      true,
      'service.set_webhook',
    );
    setTarget(
      '/v1/service/chat',
      'chat_webhook_url',
      "Set the service's Slack incoming webhook, used for users without their own",
      'setServiceChatWebhook',
      false,
      'service.set_chat_webhook',
    );
    app.post(
      '/v1/service/webhook/rotate-secret',
      {
        onRequest: requirePermission(deps.authenticate, ['admin']),
        schema: {
          summary: 'Replace the webhook signing secret',
          operationId: 'rotateWebhookSecret',
          tags,
          response: answers({ 200: ServiceWithSecretSchema }),
        },
      },
      async (request) => {
        const caller = callerOf(request);
        // Never the secret itself, before or after.
        return auditedChange(
          deps.pool,
          request,
          { action: 'service.rotate_webhook_secret', target: `service:${caller.serviceName}` },
          async (client) => ({
            result: present(await rotateWebhookSecret(client, caller.serviceId), true),
          }),
        );
      },
    );
  };
}
