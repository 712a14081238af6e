// Renders template variants with liquidjs: strict variables and filters, no file access
// (include/render/layout find nothing), no JavaScript from template text, and limits on parse
// and render work. Email `html` is rendered by an engine that HTML-escapes every output
// (`{{ … }}`), so no parameter becomes markup; `raw` is replaced by a filter that does not
// bypass escaping. Every other part is plain text. The `icu` filter formats an ICU
// MessageFormat message (plurals, select, numbers) in the locale being rendered.
// Parsed templates are cached per (service, key, version, channel, locale, part): versions are
// immutable, so the cache never needs invalidating.
import { Liquid, type Template } from 'liquidjs';
import { IntlMessageFormat } from 'intl-messageformat';
import type { Channel, ChannelContent } from '../domain/notification.js';
import {
  channelParts,
  chooseLocale,
  isIsoDate,
  type DefinitionProblem,
  type ParamType,
  type Part,
  type TemplateVersionBody,
} from './template.js';

/** What a delivery shows: the channel's content, and for email the HTML part when the template has one. */
export interface RenderedVariant {
  locale: string;
  content: ChannelContent;
  html?: string;
}

/** A version to render: immutable, so (serviceId, key, version) names its text for good. */
export interface RenderableVersion extends Omit<TemplateVersionBody, 'params'> {
  serviceId: number;
  key: string;
  version: number;
}

export class TemplateRenderError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TemplateRenderError';
  }
}

const limits = { parseLimit: 100_000, renderLimit: 500, memoryLimit: 10_000_000 };

function createEngine(escapeHtml: boolean): Liquid {
  const engine = new Liquid({
    strictVariables: true,
    strictFilters: true,
    ownPropertyOnly: true,
    // An in-memory, empty set of partials: include/render/layout cannot read files.
    templates: {},
    ...(escapeHtml ? { outputEscape: 'escape' as const } : {}),
    ...limits,
  });
  engine.registerFilter(
    'icu',
    function (this: { context: FilterContext }, message: unknown, ...args: unknown[]) {
      const locale = String(this.context.getSync(['locale']));
      const values: Record<string, unknown> = { ...this.context.getAll() };
      for (const arg of args) {
        if (Array.isArray(arg) && arg.length === 2 && typeof arg[0] === 'string') values[arg[0]] = arg[1];
      }
      return formatIcu(String(message), locale, values);
    },
  );
  // In the HTML engine, `raw` would let a parameter through unescaped: make it a no-op.
  if (escapeHtml) engine.registerFilter('raw', (value: unknown) => value);
  return engine;
}

interface FilterContext {
  getSync(path: string[]): unknown;
  getAll(): Record<string, unknown>;
}

const plainEngine = createEngine(false);
const htmlEngine = createEngine(true);

function engineFor(part: Part): Liquid {
  return part === 'html' ? htmlEngine : plainEngine;
}

const icuCache = new Map<string, IntlMessageFormat>();

function formatIcu(message: string, locale: string, values: Record<string, unknown>): string {
  const cacheKey = `${locale}\u0000${message}`;
  let format = icuCache.get(cacheKey);
  if (format === undefined) {
    try {
      format = new IntlMessageFormat(message, locale);
    } catch (error) {
      throw new TemplateRenderError(`ICU message ${JSON.stringify(message)}: ${errorText(error)}`, {
        cause: error,
      });
    }
    if (icuCache.size >= 5000) icuCache.clear();
    icuCache.set(cacheKey, format);
  }
  // ISO dates become Dates for {x, date} / {x, time} arguments.
  const input: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(values)) {
    input[name] =
      typeof value === 'string' &&
      isIsoDate(value) &&
      new RegExp(`\\{\\s*${name}\\s*,\\s*(date|time)`).test(message)
        ? new Date(value)
        : value;
  }
  try {
    const result = format.format(input as Record<string, string | number | boolean | Date>);
    return Array.isArray(result) ? result.join('') : String(result);
  } catch (error) {
    throw new TemplateRenderError(`ICU message ${JSON.stringify(message)}: ${errorText(error)}`, {
      cause: error,
    });
  }
}

const parsedCache = new Map<string, Template[]>();
const maxCachedParts = 20_000;

function parsed(
  version: RenderableVersion,
  channel: Channel,
  locale: string,
  part: Part,
  text: string,
): Template[] {
  const cacheKey = [version.serviceId, version.key, version.version, channel, locale, part].join('\u0000');
  let templates = parsedCache.get(cacheKey);
  if (templates === undefined) {
    templates = parse(part, text);
    if (parsedCache.size >= maxCachedParts) parsedCache.clear();
    parsedCache.set(cacheKey, templates);
  }
  return templates;
}

function parse(part: Part, text: string): Template[] {
  try {
    return engineFor(part).parse(text);
  } catch (error) {
    throw new TemplateRenderError(errorText(error), { cause: error });
  }
}

function renderParsed(
  part: Part,
  templates: Template[],
  locale: string,
  params: Record<string, unknown>,
): string {
  try {
    return engineFor(part).renderSync(templates, { ...params }, { globals: { locale } }) as string;
  } catch (error) {
    if (error instanceof TemplateRenderError) throw error;
    const cause = (error as { originalError?: unknown }).originalError;
    if (cause instanceof TemplateRenderError) throw cause;
    throw new TemplateRenderError(errorText(error), { cause: error });
  }
}

/**
 * Renders one channel's variant for a user's locale (exact, then language, then the version's
 * fallback locale). Throws TemplateRenderError if the template has no variant for the channel
 * or its text fails to render with these params.
 */
export function renderVariant(
  version: RenderableVersion,
  channel: Channel,
  userLocale: string | null | undefined,
  params: Record<string, unknown>,
): RenderedVariant {
  const byLocale = version.variants[channel];
  const locale =
    byLocale === undefined
      ? undefined
      : chooseLocale(Object.keys(byLocale), userLocale, version.fallbackLocale);
  const variant = locale === undefined ? undefined : byLocale?.[locale];
  if (locale === undefined || variant === undefined) {
    throw new TemplateRenderError(`template ${version.key} has no ${channel} variant`);
  }
  const out: Partial<Record<Part, string>> = {};
  for (const part of channelParts[channel] as readonly Part[]) {
    const text = variant[part];
    if (text === undefined || text === '') continue;
    out[part] = renderParsed(part, parsed(version, channel, locale, part, text), locale, params);
  }
  return toContent(channel, locale, out);
}

function toContent(channel: Channel, locale: string, parts: Partial<Record<Part, string>>): RenderedVariant {
  const content: ChannelContent = {};
  const set = (field: keyof ChannelContent, value: string | undefined) => {
    if (value !== undefined) content[field] = value;
  };
  switch (channel) {
    case 'sms':
    case 'chat':
      set('body', parts.text);
      break;
    case 'email':
      set('title', parts.subject);
      set('body', parts.text);
      break;
    case 'push':
    case 'webhook':
    case 'in_app':
      set('title', parts.title);
      set('body', parts.body);
      set('url', parts.url);
      break;
  }
  return parts.html === undefined ? { locale, content } : { locale, content, html: parts.html };
}

/** A value of each type, for trial renders of a definition. */
const sampleValues: Record<ParamType, unknown> = {
  string: 'text',
  number: 1.5,
  integer: 2,
  boolean: true,
  date: '2025-01-31T09:30:00Z',
};

/**
 * Problems in the Liquid text of a definition: parse errors, and what a trial render with a
 * sample value of every declared parameter shows (an undeclared variable, an unknown filter,
 * a bad ICU message).
 */
export function textProblems(definition: TemplateVersionBody): DefinitionProblem[] {
  const problems: DefinitionProblem[] = [];
  const sample = Object.fromEntries(
    Object.entries(definition.params).map(([name, type]) => [name, sampleValues[type]]),
  );
  for (const [channel, byLocale] of Object.entries(definition.variants)) {
    for (const [locale, variant] of Object.entries(byLocale)) {
      for (const [part, text] of Object.entries(variant) as [Part, string][]) {
        try {
          renderParsed(part, parse(part, text), locale, sample);
        } catch (error) {
          problems.push({ place: { field: 'variants', channel, locale, part }, message: errorText(error) });
        }
      }
    }
  }
  return problems;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
