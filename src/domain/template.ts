// Templates: what a version declares (parameters, fallback locale, a variant per channel and
// locale), parameter checks, and the locale a user gets. No I/O here; rendering is in
// template-renderer.ts, storage in db/stores/template-store.ts.
import type { Step } from './workflow.js';
import type { Channel, Lane } from './notification.js';
import { ProblemError } from './problems.js';

export const paramTypes = ['string', 'number', 'integer', 'boolean', 'date'] as const;
export type ParamType = (typeof paramTypes)[number];

/** The parts each channel's variant may have, in export column order. */
export const channelParts = {
  push: ['title', 'body'],
  sms: ['text'],
  email: ['subject', 'html', 'text'],
  in_app: ['title', 'body', 'url'],
  chat: ['text'],
  webhook: ['title', 'body'],
} as const satisfies Record<Channel, readonly string[]>;

export type Part = (typeof channelParts)[Channel][number];
export const allParts: readonly Part[] = ['title', 'body', 'url', 'subject', 'text', 'html'];

/** Liquid text per part, per locale, per channel. */
export type Variants = Partial<Record<Channel, Record<string, Partial<Record<Part, string>>>>>;

/** What a version holds (versions are immutable). */
export interface TemplateVersionBody {
  params: Record<string, ParamType>;
  fallbackLocale: string;
  variants: Variants;
  /**
   * Workflow steps for requests that give none (docs/workflows.md); null: none. Left out of
   * a definition being saved (a sheet import, the console's form): the current version's.
   */
  steps?: Step[] | null;
}

/** A template as written by PUT or an import row set: the version body plus category and lane. */
export interface TemplateDefinition extends TemplateVersionBody {
  category: string;
  lane: Lane;
}

export interface StoredTemplateVersion extends TemplateDefinition {
  serviceId: number;
  key: string;
  version: number;
}

/** Parameters as one line of text, `name:type, name:type` in name order; '' when there are none. */
export function formatParams(params: Record<string, ParamType>): string {
  return Object.keys(params)
    .sort()
    .map((name) => `${name}:${params[name] ?? ''}`)
    .join(', ');
}

export const templateKeyPattern = '^[a-z0-9][a-z0-9_.-]{0,127}$';
/** Words that are routes under /v1/templates, not keys. */
export const reservedTemplateKeys: ReadonlySet<string> = new Set(['export', 'import', 'imports']);
/** A category name, as templates and notifications name it. */
export const categoryPattern = '^[a-z0-9][a-z0-9_.-]{0,63}$';
export const paramNamePattern = '^[A-Za-z_][A-Za-z0-9_]{0,63}$';
/** Names the renderer provides itself: `locale` is the locale being rendered. */
export const reservedParamNames: ReadonlySet<string> = new Set(['locale']);

/** Where a problem in a definition is: a top-level field, or a part of a variant. */
export type DefinitionPlace =
  | { field: 'params' | 'fallback_locale' | 'category' | 'lane'; param?: string }
  | { field: 'variants'; channel: string; locale?: string; part?: string };

export interface DefinitionProblem {
  place: DefinitionPlace;
  message: string;
}

/** One problem per declared parameter that is missing or of the wrong type, or undeclared. */
export function paramProblems(
  declared: Record<string, ParamType>,
  params: Record<string, unknown>,
): { name: string; message: string }[] {
  const problems: { name: string; message: string }[] = [];
  for (const [name, type] of Object.entries(declared)) {
    const value = Object.hasOwn(params, name) ? params[name] : undefined;
    if (value === undefined || value === null) {
      problems.push({ name, message: `missing: the template declares ${name} as ${type}` });
    } else if (!hasType(value, type)) {
      problems.push({ name, message: `must be ${article(type)} ${type}, got ${describe(value)}` });
    }
  }
  for (const name of Object.keys(params)) {
    if (!Object.hasOwn(declared, name)) {
      problems.push({ name, message: 'not a parameter of this template' });
    }
  }
  return problems;
}

function hasType(value: unknown, type: ParamType): boolean {
  switch (type) {
    case 'string':
      return typeof value === 'string';
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'integer':
      return typeof value === 'number' && Number.isSafeInteger(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'date':
      return typeof value === 'string' && isIsoDate(value);
  }
}

/** 400 template_params_invalid naming every missing, ill-typed or undeclared parameter. */
export function checkParams(
  version: Pick<TemplateVersionBody, 'params'>,
  params: Record<string, unknown>,
): void {
  const problems = paramProblems(version.params, params);
  if (problems.length > 0) {
    throw new ProblemError(
      'template_params_invalid',
      problems.map((p) => `params.${p.name}: ${p.message}`).join('; '),
      problems.map((p) => ({ field: `body/params/${p.name}`, message: p.message })),
    );
  }
}

/** RFC 3339 date (2025-03-01) or date-time with an offset (2025-03-01T09:30:00Z). */
export function isIsoDate(text: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/.test(text)) return false;
  return !Number.isNaN(new Date(text).getTime());
}

function article(type: ParamType): string {
  return type === 'integer' ? 'an' : 'a';
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number' && !Number.isSafeInteger(value)) return `the number ${String(value)}`;
  return typeof value === 'object' ? 'an object' : `${typeof value} ${JSON.stringify(value)}`;
}

/** A BCP 47 tag in canonical case (ko-kr → ko-KR), or undefined if it is not one. */
export function canonicalLocale(tag: string): string | undefined {
  try {
    return Intl.getCanonicalLocales(tag)[0];
  } catch {
    return undefined;
  }
}

/**
 * The variant locale a user with `userLocale` gets: the exact locale, then its language
 * (ko-KR → ko), then the fallback locale. Undefined only if the channel has no variant at all.
 */
export function chooseLocale(
  available: readonly string[],
  userLocale: string | null | undefined,
  fallbackLocale: string,
): string | undefined {
  const wanted = canonicalLocale(userLocale ?? '');
  if (wanted !== undefined) {
    const lower = wanted.toLowerCase();
    const exact = available.find((l) => l.toLowerCase() === lower);
    if (exact !== undefined) return exact;
    const language = lower.split('-')[0];
    const byLanguage = available.find((l) => l.toLowerCase() === language);
    if (byLanguage !== undefined) return byLanguage;
  }
  return available.includes(fallbackLocale) ? fallbackLocale : available[0];
}

/**
 * Structural problems of a definition (not the Liquid text, which the renderer checks):
 * parameter names and types, locales, a fallback-locale variant for every channel, parts the
 * channel has, and the parts each channel needs.
 */
export function structuralProblems(definition: TemplateDefinition): DefinitionProblem[] {
  const problems: DefinitionProblem[] = [];
  for (const [name, type] of Object.entries(definition.params)) {
    if (!new RegExp(paramNamePattern).test(name) || reservedParamNames.has(name)) {
      problems.push({
        place: { field: 'params', param: name },
        message: reservedParamNames.has(name)
          ? `"${name}" is reserved (the renderer provides it)`
          : `"${name}" is not a parameter name (letters, digits, _; not starting with a digit)`,
      });
    }
    if (!(paramTypes as readonly string[]).includes(type)) {
      problems.push({
        place: { field: 'params', param: name },
        message: `type must be one of ${paramTypes.join(', ')}`,
      });
    }
  }
  if (canonicalLocale(definition.fallbackLocale) !== definition.fallbackLocale) {
    problems.push({
      place: { field: 'fallback_locale' },
      message: 'not a canonical BCP 47 locale, e.g. en or ko-KR',
    });
  }
  const channelsUsed = Object.keys(definition.variants);
  if (channelsUsed.length === 0) {
    problems.push({
      place: { field: 'variants', channel: '' },
      message: 'a template needs at least one variant',
    });
  }
  for (const [channel, byLocale] of Object.entries(definition.variants)) {
    if (!Object.hasOwn(channelParts, channel)) {
      problems.push({ place: { field: 'variants', channel }, message: `unknown channel "${channel}"` });
      continue;
    }
    const parts: readonly string[] = channelParts[channel as Channel];
    if (!Object.hasOwn(byLocale, definition.fallbackLocale)) {
      problems.push({
        place: { field: 'variants', channel },
        message: `no variant in the fallback locale ${definition.fallbackLocale}`,
      });
    }
    for (const [locale, variant] of Object.entries(byLocale)) {
      if (canonicalLocale(locale) !== locale) {
        problems.push({
          place: { field: 'variants', channel, locale },
          message: `"${locale}" is not a canonical BCP 47 locale, e.g. en or ko-KR`,
        });
      }
      for (const part of Object.keys(variant)) {
        if (!parts.includes(part)) {
          problems.push({
            place: { field: 'variants', channel, locale, part },
            message: `${channel} has no part "${part}" (it has ${parts.join(', ')})`,
          });
        }
      }
      const missing = requiredParts(channel as Channel).filter((group) =>
        group.every((p) => !has(variant, p)),
      );
      for (const group of missing) {
        problems.push({
          place: { field: 'variants', channel, locale, part: group[0] },
          message: `${channel} needs ${group.join(' or ')}`,
        });
      }
    }
  }
  return problems;
}

function has(variant: Partial<Record<Part, string>>, part: string): boolean {
  const value = (variant as Record<string, string | undefined>)[part];
  return value !== undefined && value !== '';
}

/** Each inner list: at least one of these parts must be present. */
export function requiredParts(channel: Channel): Part[][] {
  switch (channel) {
    case 'email':
      return [['subject'], ['text', 'html']];
    case 'sms':
    case 'chat':
      return [['text']];
    case 'push':
    case 'in_app':
    case 'webhook':
      return [['title', 'body']];
  }
}

/** The definition with empty parts removed, so equal content compares equal. */
export function normalizeDefinition(definition: TemplateDefinition): TemplateDefinition {
  const variants: Variants = {};
  for (const [channel, byLocale] of Object.entries(definition.variants)) {
    const locales: Record<string, Partial<Record<Part, string>>> = {};
    for (const [locale, variant] of Object.entries(byLocale)) {
      locales[locale] = Object.fromEntries(Object.entries(variant).filter(([, text]) => text !== ''));
    }
    variants[channel as Channel] = locales;
  }
  return { ...definition, variants };
}

/**
 * Whether two version bodies are the same (key order does not matter). Steps left out of either
 * (a definition that does not say, as a sheet import's) are not compared: they are kept.
 */
export function sameVersionBody(a: TemplateVersionBody, b: TemplateVersionBody): boolean {
  const steps = (x: TemplateVersionBody) =>
    a.steps === undefined || b.steps === undefined ? null : (x.steps ?? null);
  return (
    sortedJson({ p: a.params, f: a.fallbackLocale, v: a.variants, s: steps(a) }) ===
    sortedJson({ p: b.params, f: b.fallbackLocale, v: b.variants, s: steps(b) })
  );
}

function sortedJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(sortedJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${sortedJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
