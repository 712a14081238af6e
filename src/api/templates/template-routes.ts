// /v1/templates: write (admin) and read, preview (sender) a service's templates. The sheet
// export and import: template-sheet-routes.ts. See docs/templates.md.
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { withTransaction, type Pool } from '../../db/pools.js';
import {
  findTemplateVersion,
  listTemplates,
  listTemplateVersions,
  saveTemplate,
} from '../../db/stores/template-store.js';
import type { Channel } from '../../domain/notification.js';
import { ProblemError } from '../../domain/problems.js';
import { callerOf, requirePermission, type Authenticate } from '../../http/api-key-auth.js';
import { checkParams, structuralProblems, type StoredTemplateVersion } from '../../domain/template.js';
import {
  renderVariantChecked,
  textProblems,
  TemplateRenderError,
  type RenderedVariant,
} from '../../templates/template-renderer.js';
import {
  bodyField,
  definitionOf,
  KeyParam,
  presentVersion,
  PreviewBody,
  reservedKeys,
  TemplateBody,
} from './template-input.js';

export interface TemplateRouteDeps {
  pool: Pool;
  authenticate: Authenticate;
  /**
   * Called after templates were saved, with their keys: this process's cache of current
   * versions drops them at once (other processes hear the NOTIFY sent at commit).
   */
  onSaved?: (serviceId: number, keys: string[]) => void;
  /** Wall-clock time one variant may take in a trial render or preview (see AcceptDeps). */
  templateRenderMs: number;
}

export function templateRoutes(deps: TemplateRouteDeps): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const reader = requirePermission(deps.authenticate, ['send', 'templates']);
    const writer = requirePermission(deps.authenticate, ['templates']);
    const tags = ['templates'];
    app.get(
      '/v1/templates',
      { onRequest: reader, schema: { summary: "Your service's templates", tags } },
      async (request) => ({
        items: (await listTemplates(deps.pool, callerOf(request).serviceId)).map((t) => ({
          key: t.key,
          category: t.category,
          lane: t.lane,
          current_version: t.currentVersion,
          created_at: t.createdAt.toISOString(),
          updated_at: t.updatedAt.toISOString(),
        })),
      }),
    );

    app.put(
      '/v1/templates/:key',
      {
        onRequest: writer,
        schema: {
          summary: 'Create or edit a template; a change makes a new version',
          tags,
          params: KeyParam,
          body: TemplateBody,
        },
      },
      async (request) => {
        const { key } = request.params;
        if (reservedKeys.has(key)) {
          throw new ProblemError('template_invalid', `"${key}" is reserved.`, [
            { field: 'params/key', message: 'reserved' },
          ]);
        }
        const definition = definitionOf(request.body);
        const problems = [
          ...structuralProblems(definition),
          ...(await textProblems(definition, deps.templateRenderMs)),
        ];
        if (problems.length > 0) {
          throw new ProblemError(
            'template_invalid',
            problems.map((p) => `${bodyField(p.place)}: ${p.message}`).join('; '),
            problems.map((p) => ({ field: bodyField(p.place), message: p.message })),
          );
        }
        const serviceId = callerOf(request).serviceId;
        const result = await withTransaction(deps.pool, (client) =>
          saveTemplate(client, serviceId, key, definition),
        );
        if (result.changed) deps.onSaved?.(serviceId, [key]);
        return {
          key,
          version: result.version,
          version_created: result.versionCreated,
          changed: result.changed,
        };
      },
    );

    app.get(
      '/v1/templates/:key',
      {
        onRequest: reader,
        schema: {
          summary: 'A template: its current version (or ?version=n) and the list of versions',
          tags,
          params: KeyParam,
          querystring: Type.Object(
            { version: Type.Optional(Type.Integer({ minimum: 1 })) },
            { additionalProperties: false },
          ),
        },
      },
      async (request) => {
        const serviceId = callerOf(request).serviceId;
        const { key } = request.params;
        const version = await findTemplateVersion(deps.pool, serviceId, key, request.query.version);
        if (version === undefined)
          throw new ProblemError('not_found', 'No template (or version) with this key.');
        const versions = await listTemplateVersions(deps.pool, serviceId, key);
        return {
          ...presentVersion(version),
          versions: versions.map((v) => ({ version: v.version, created_at: v.createdAt.toISOString() })),
        };
      },
    );

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
