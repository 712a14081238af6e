// POST /v1/templates/:key/preview: render a template for params and a locale, as a delivery
// would be, within the same render budget.
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { findTemplateVersion } from '../../db/stores/template-store.js';
import type { Channel } from '../../domain/notification.js';
import { ProblemError } from '../../domain/problems.js';
import { checkParams, type StoredTemplateVersion } from '../../domain/template.js';
import { callerOf, requirePermission } from '../../http/api-key-auth.js';
import {
  renderVariantChecked,
  TemplateRenderError,
  type RenderedVariant,
} from '../../templates/template-renderer.js';
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
          tags,
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

/**
 * Checks params against the version's declarations, then renders every channel asked for in
 * `locale`, each within `limitMs`. Problems are 400 template_params_invalid naming
 * body/params/<name>; a channel the template has no variant for is 400 content_missing.
 */
export async function renderForChannels(
  version: StoredTemplateVersion,
  shown: readonly Channel[],
  locale: string | null,
  params: Record<string, unknown>,
  limitMs: number,
): Promise<Map<Channel, RenderedVariant>> {
  checkParams(version, params);
  const missing = shown.filter((c) => version.variants[c] === undefined);
  if (missing.length > 0) {
    throw new ProblemError(
      'content_missing',
      `Template ${version.key} has no variant for ${missing.join(', ')}.`,
      missing.map((c) => ({
        field: 'body/channels',
        message: `template ${version.key} has no ${c} variant`,
      })),
    );
  }
  const out = new Map<Channel, RenderedVariant>();
  for (const channel of shown) {
    try {
      out.set(channel, await renderVariantChecked(version, channel, locale, params, limitMs));
    } catch (error) {
      if (!(error instanceof TemplateRenderError)) throw error;
      throw new ProblemError('template_params_invalid', `${channel}: ${error.message}`, [
        { field: 'body/params', message: `${channel}: ${error.message}` },
      ]);
    }
  }
  return out;
}
