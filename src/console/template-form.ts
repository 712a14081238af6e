// The console's template edit form: a definition as form fields (a text area per part of each
// channel × locale variant) and the posted fields back as a definition. Only the fields the
// form has are accepted; the service and key come from the page's URL, never from a field.
import { channels, lanes, type Channel, type Lane } from '../domain/notification.js';
import {
  allParts,
  categoryPattern,
  channelParts,
  formatParams,
  normalizeDefinition,
  type DefinitionPlace,
  type Part,
  type TemplateDefinition,
  type Variants,
} from '../domain/template.js';
import { parseParams } from '../templates/template-sheet.js';

/** The limits the API's PUT schema puts on a part's text. */
const maxPartLength = (part: Part) => (part === 'html' ? 100_000 : 10_000);
const categoryRegExp = new RegExp(categoryPattern);
const sharedFields = new Set(['_csrf', 'base_version', 'category', 'lane', 'params', 'fallback_locale']);

export interface FormProblem {
  field: string;
  message: string;
}

export interface VariantFields {
  channel: string;
  locale: string;
  parts: { name: string; field: string; text: string }[];
  remove_field: string;
}

/** What the edit form shows: the shared fields, each variant's parts, and an empty new variant. */
export function formOf(definition: TemplateDefinition) {
  const variants: VariantFields[] = [];
  for (const channel of channels) {
    const byLocale = definition.variants[channel] ?? {};
    for (const locale of Object.keys(byLocale).sort()) {
      const variant = byLocale[locale] ?? {};
      variants.push({
        channel,
        locale,
        parts: (channelParts[channel] as readonly Part[]).map((part) => ({
          name: part,
          field: `v|${channel}|${locale}|${part}`,
          text: variant[part] ?? '',
        })),
        remove_field: `remove|${channel}|${locale}`,
      });
    }
  }
  return {
    category: definition.category,
    lane: definition.lane,
    params: formatParams(definition.params),
    fallback_locale: definition.fallbackLocale,
    variants,
    new_parts: allParts.map((part) => ({ name: part, field: `new|${part}` })),
  };
}

/** Where a problem of a definition is, as the form's reader names it. */
export function placeText(place: DefinitionPlace): string {
  if (place.field !== 'variants') return place.param === undefined ? place.field : `params ${place.param}`;
  return [place.channel, place.locale, place.part].filter((s) => s !== undefined && s !== '').join(' / ');
}

const isChannel = (c: string): c is Channel => (channels as readonly string[]).includes(c);
const isLane = (l: string): l is Lane => (lanes as readonly string[]).includes(l);
const isPart = (p: string): p is Part => (allParts as readonly string[]).includes(p);

function setPart(variants: Variants, channel: Channel, locale: string, part: Part, text: string): void {
  const byLocale = (variants[channel] ??= {});
  const variant = (byLocale[locale] ??= {});
  variant[part] = text;
}

/** The posted fields as a definition, with the problems only the form can have. */
export function definitionFromForm(fields: Record<string, string>): {
  definition: TemplateDefinition;
  problems: FormProblem[];
} {
  const problems: FormProblem[] = [];
  const variants: Variants = {};
  const removed = new Set<string>();
  const added: Partial<Record<Part, string>> = {};
  for (const [name, value] of Object.entries(fields)) {
    const [kind = '', ...rest] = name.split('|');
    if (sharedFields.has(name) || name === 'new_channel' || name === 'new_locale') continue;
    if (kind === 'v' && rest.length === 3) {
      const [channel = '', locale = '', part = ''] = rest;
      if (isChannel(channel) && isPart(part)) {
        if (value.length > maxPartLength(part))
          problems.push({ field: `${channel} / ${locale} / ${part}`, message: 'is too long' });
        setPart(variants, channel, locale, part, value);
        continue;
      }
    } else if (kind === 'remove' && rest.length === 2) {
      removed.add(rest.join('|'));
      continue;
    } else if (kind === 'new' && rest.length === 1 && isPart(rest[0] ?? '')) {
      added[rest[0] as Part] = value;
      continue;
    }
    problems.push({ field: name, message: 'is not a field of this form' });
  }
  const kept: Variants = {};
  for (const [channel, byLocale] of Object.entries(variants) as [Channel, Variants[Channel]][]) {
    const locales = Object.entries(byLocale ?? {}).filter(([locale]) => !removed.has(`${channel}|${locale}`));
    if (locales.length > 0) kept[channel] = Object.fromEntries(locales);
  }
  addVariant(fields, added, kept, problems);
  const category = fields['category'] ?? '';
  if (!categoryRegExp.test(category))
    problems.push({ field: 'category', message: 'a-z, 0-9, _, . and -, starting with a letter or digit' });
  const lane = fields['lane'] ?? '';
  if (!isLane(lane)) problems.push({ field: 'lane', message: `one of ${lanes.join(', ')}` });
  const params = parseParams(fields['params'] ?? '');
  if (typeof params === 'string') problems.push({ field: 'params', message: params });
  const definition = normalizeDefinition({
    category,
    lane: isLane(lane) ? lane : 'transactional',
    params: typeof params === 'string' ? {} : params,
    fallbackLocale: fields['fallback_locale'] ?? '',
    variants: kept,
  });
  return { definition, problems };
}

/** The new variant's fields, when a channel and locale are chosen (its parts must be the channel's). */
function addVariant(
  fields: Record<string, string>,
  added: Partial<Record<Part, string>>,
  variants: Variants,
  problems: FormProblem[],
): void {
  const channel = fields['new_channel'] ?? '';
  const locale = (fields['new_locale'] ?? '').trim();
  const texts = Object.entries(added).filter(([, text]) => text !== '');
  if (channel === '' && locale === '' && texts.length === 0) return;
  if (!isChannel(channel) || locale === '') {
    problems.push({ field: 'new variant', message: 'choose its channel and write its locale' });
    return;
  }
  if (variants[channel]?.[locale] !== undefined) {
    problems.push({ field: 'new variant', message: `${channel} / ${locale} exists already: edit it above` });
    return;
  }
  for (const [part, text] of texts) setPart(variants, channel, locale, part as Part, text);
  if (texts.length === 0) variants[channel] = { ...variants[channel], [locale]: {} };
}
