// POST /v1/templates/:key/preview: render a template for params and a locale, as a delivery
// would be, within the same render budget (templates/template-preview.ts).
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { answers } from '../../http/openapi-contract.js';
import { PreviewSchema } from './template-answers.js';
import { findTemplateVersion } from '../../db/stores/template-store.js';
import type { Channel } from '../../domain/notification.js';
import { ProblemError } from '../../domain/problems.js';
import { callerOf, requirePermission } from '../../http/api-key-auth.js';
import { renderForChannels } from '../../templates/template-preview.js';
import { KeyParam, PreviewBody } from './template-input.js';
import type { TemplateRouteDeps } from './template-routes.js';

export function templatePreviewRoutes(deps: TemplateRouteDeps): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const reader = requirePermission(deps.authenticate, ['send', 'templates']);
    const tags = ['templates'];

    app.post(
      '/v1/templates/:key/preview',
      {
        onRequest: reader,
        schema: {
          summary: 'Render a template for params and a locale, as a delivery would be',
          operationId: 'previewTemplate',
          tags,
          response: answers({ 200: PreviewSchema }),
          params: KeyParam,
          body: PreviewBody,
        },
      },
      async (request) => {
        const serviceId = callerOf(request).serviceId;
        const { params = {}, locale, version: wanted } = request.body;
        const version = await findTemplateVersion(deps.pool, serviceId, request.params.key, wanted);
        if (version === undefined)
          throw new ProblemError('not_found', 'No template (or version) with this key.');
        const shown = request.body.channels ?? (Object.keys(version.variants) as Channel[]);
        const rendered = await renderForChannels(
          version,
          shown,
          locale ?? version.fallbackLocale,
          params,
          deps.templateRenderMs,
        );
        return {
          key: version.key,
          version: version.version,
          channels: Object.fromEntries(
            [...rendered].map(([channel, r]) => [
              channel,
              { locale: r.locale, ...r.content, ...(r.html === undefined ? {} : { html: r.html }) },
            ]),
          ),
        };
      },
    );
  };
}
