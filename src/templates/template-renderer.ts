// Renders template variants with liquidjs: strict variables and filters, no file access
// (include/render/layout find nothing), no JavaScript from template text, and limits on parse
// and render work (`engineLimits`, and renderVariant's `limitMs`). Email `html` is rendered by
// an engine that HTML-escapes every output (`{{ … }}`), so no parameter becomes markup; `raw`
// is replaced by a filter that does not bypass escaping. Every other part is plain text. The
// `icu` filter formats an ICU MessageFormat message (plurals, select, numbers) in the locale
// being rendered.
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
} from '../domain/template.js';

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
  /** A saved version's number; `draftVersion` for unsaved text (a preview), which is never cached. */
  version: number;
}

/** The version number of unsaved text: its parts are parsed on every render, never cached. */
export const draftVersion = 0;

/** Why a render failed: it ran out of time (`limit`), or the template cannot render (`error`). */
export type RenderFailureReason = 'limit' | 'error';

export class TemplateRenderError extends Error {
  readonly reason: RenderFailureReason;
  constructor(message: string, options?: { cause?: unknown; reason?: RenderFailureReason }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TemplateRenderError';
    this.reason = options?.reason ?? 'error';
  }
}

/**
 * What liquidjs (10.x) limits, per engine call:
 * - `parseLimit`: characters of template text one parse() may take (a length, not a time;
 *   parsing cannot be interrupted, so its cost is bounded by this and by the parts' maxLength,
 *   and paid once per version and part per process, see `parsedCache`).
 * - `memoryLimit`: units one render may allocate through ranges (`(1..n)` costs n), array
 *   filters (their length) and string filters (their length), summed over the render. The
 *   output buffer is not counted. A single filter call is never interrupted by the time limit,
 *   so this is what bounds one call's work: 100,000 units keep the costliest one (`map` or
 *   `sort` over a 50,000-element range) at a few tens of ms, while a notification's text
 *   stays far below it.
 * - `renderLimit` (passed per render, see renderParsed): a wall-clock deadline fixed when the
 *   render starts, checked before every node at every level, so also on each iteration of a
 *   loop in renderSync; it fails the render at the first node started after the deadline.
 */
const engineLimits = { parseLimit: 100_000, memoryLimit: 100_000 };

function createEngine(escapeHtml: boolean): Liquid {
  const engine = new Liquid({
    strictVariables: true,
    strictFilters: true,
    ownPropertyOnly: true,
    // An in-memory, empty set of partials: include/render/layout cannot read files.
    templates: {},
    ...(escapeHtml ? { outputEscape: 'escape' as const } : {}),
    ...engineLimits,
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
  if (version.version === draftVersion) return parse(part, text);
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

/** When a variant's render must be done by (performance.now() time), and the limit it was given. */
interface Deadline {
  at: number;
  limitMs: number;
}

function renderParsed(
  part: Part,
  templates: Template[],
  locale: string,
  params: Record<string, unknown>,
  deadline: Deadline,
): string {
  const renderLimit = deadline.at - performance.now();
  if (renderLimit <= 0) throw limitError(deadline);
  try {
    return engineFor(part).renderSync(
      templates,
      { ...params },
      // items and item_count: a digest's summary passes its collected items (docs/workflows.md).
      { globals: { locale, items: [], item_count: 0 }, renderLimit },
    ) as string;
  } catch (error) {
    // liquidjs fails a render only after its deadline, which is at or after ours: past it, the
    // failure is the time limit (whatever else happened to go wrong at the same moment).
    if (performance.now() > deadline.at) throw limitError(deadline, error);
    if (error instanceof TemplateRenderError) throw error;
    const cause = (error as { originalError?: unknown }).originalError;
    if (cause instanceof TemplateRenderError) throw cause;
    throw new TemplateRenderError(errorText(error), { cause: error });
  }
}

function limitError(deadline: Deadline, cause?: unknown): TemplateRenderError {
  return new TemplateRenderError(`rendering takes longer than ${String(deadline.limitMs)} ms`, {
    reason: 'limit',
    cause,
  });
}

/**
 * Renders one channel's variant for a user's locale (exact, then language, then the version's
 * fallback locale), all its parts within `limitMs` of wall-clock time (parsing, cached per
 * version, is not counted). Throws TemplateRenderError if the template has no variant for the
 * channel, its text fails to render with these params (reason `error`), or it takes longer
 * (reason `limit`).
 */
export function renderVariant(
  version: RenderableVersion,
  channel: Channel,
  userLocale: string | null | undefined,
  params: Record<string, unknown>,
  limitMs: number,
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
  const parts: [Part, Template[]][] = [];
  for (const part of channelParts[channel] as readonly Part[]) {
    const text = variant[part];
    if (text === undefined || text === '') continue;
    parts.push([part, parsed(version, channel, locale, part, text)]);
  }
  const deadline = { at: performance.now() + limitMs, limitMs };
  const out: Partial<Record<Part, string>> = {};
  for (const [part, templates] of parts) out[part] = renderParsed(part, templates, locale, params, deadline);
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

/** Resolves on a later turn of the event loop, after the I/O that is waiting has run. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Renders a variant as ingest checks do: a render that ran out of time gets one more try on a
 * later turn of the event loop, so a cold process (code not yet compiled, ICU data not yet
 * loaded) or a garbage-collection pause does not refuse a template that renders in time when
 * warm. Yields after each attempt, so a request that renders many variants never holds the
 * event loop longer than one render.
 */
export async function renderVariantChecked(
  version: RenderableVersion,
  channel: Channel,
  userLocale: string | null | undefined,
  params: Record<string, unknown>,
  limitMs: number,
): Promise<RenderedVariant> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      const rendered = renderVariant(version, channel, userLocale, params, limitMs);
      await nextTurn();
      return rendered;
    } catch (error) {
      await nextTurn();
      if (attempt > 1 || !(error instanceof TemplateRenderError) || error.reason !== 'limit') throw error;
    }
  }
}

/** A value of each type, for trial renders of a definition (and the console's preview to start from). */
export const sampleValues: Record<ParamType, unknown> = {
  string: 'text',
  number: 1.5,
  integer: 2,
  boolean: true,
  date: '2025-01-31T09:30:00Z',
};

/**
 * Problems in the Liquid text of a definition: parse errors, and what a trial render with a
 * sample value of every declared parameter shows (an undeclared variable, an unknown filter,
 * a bad ICU message, a variant that does not render within `limitMs`). Variants are rendered
 * one at a time, yielding between them, with up to two more tries for a variant that ran out of time
 * (see renderVariantChecked).
 */
export async function textProblems(
  definition: TemplateVersionBody,
  limitMs: number,
): Promise<DefinitionProblem[]> {
  const problems: DefinitionProblem[] = [];
  const sample = Object.fromEntries(
    Object.entries(definition.params).map(([name, type]) => [name, sampleValues[type]]),
  );
  for (const [channel, byLocale] of Object.entries(definition.variants)) {
    for (const [locale, variant] of Object.entries(byLocale)) {
      // Over the limit is tried up to three times: a preempted process (a busy machine) can miss
      // a few-millisecond deadline once or twice; a template too costly misses it every time.
      let found = variantProblems(channel, locale, variant, sample, limitMs);
      await nextTurn();
      for (let tries = 1; tries < 3 && found.some((p) => p.reason === 'limit'); tries += 1) {
        found = variantProblems(channel, locale, variant, sample, limitMs);
        await nextTurn();
      }
      problems.push(...found.map(({ place, message }) => ({ place, message })));
    }
  }
  return problems;
}

/** One trial render of a variant's parts, sharing one deadline as a delivery's render does. */
function variantProblems(
  channel: string,
  locale: string,
  variant: Partial<Record<Part, string>>,
  sample: Record<string, unknown>,
  limitMs: number,
): (DefinitionProblem & { reason: RenderFailureReason })[] {
  const problems: (DefinitionProblem & { reason: RenderFailureReason })[] = [];
  const parts: [Part, Template[]][] = [];
  for (const [part, text] of Object.entries(variant) as [Part, string][]) {
    try {
      parts.push([part, parse(part, text)]);
    } catch (error) {
      problems.push({
        place: { field: 'variants', channel, locale, part },
        message: errorText(error),
        reason: 'error',
      });
    }
  }
  const deadline = { at: performance.now() + limitMs, limitMs };
  for (const [part, templates] of parts) {
    try {
      renderParsed(part, templates, locale, sample, deadline);
    } catch (error) {
      const reason = error instanceof TemplateRenderError ? error.reason : 'error';
      problems.push({
        place: { field: 'variants', channel, locale, part },
        message: errorText(error),
        reason,
      });
      if (reason === 'limit') break;
    }
  }
  return problems;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
