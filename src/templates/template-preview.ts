// A template's preview: params checked against its declarations, then each channel rendered in
// a locale as a delivery would be. The api role's preview route and the console's template
// page both preview through here.
import type { Channel } from '../domain/notification.js';
import { ProblemError } from '../domain/problems.js';
import { checkParams, type StoredTemplateVersion } from '../domain/template.js';
import { renderVariantChecked, TemplateRenderError, type RenderedVariant } from './template-renderer.js';

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
