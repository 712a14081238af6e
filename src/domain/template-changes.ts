// What saving a definition over the current one changes, cell by cell: each shared field and
// each part of each channel × locale variant, old text → new text. An import's report shows
// these so a reviewer sees what a new version would say before it is written.
import type { Channel } from './notification.js';
import { channelParts, formatParams, type Part, type TemplateDefinition } from './template.js';

export const sharedFields = ['category', 'lane', 'params', 'fallback_locale'] as const;
export type SharedField = (typeof sharedFields)[number];

export type TemplateChange =
  | { field: SharedField; old: string | null; new: string | null }
  | {
      field: 'variants';
      channel: Channel;
      locale: string;
      part: Part;
      old: string | null;
      new: string | null;
    };

/** A shared field as one cell of text; params as `name:type, …`. */
function sharedText(definition: TemplateDefinition, field: SharedField): string {
  switch (field) {
    case 'category':
      return definition.category;
    case 'lane':
      return definition.lane;
    case 'params':
      return formatParams(definition.params);
    case 'fallback_locale':
      return definition.fallbackLocale;
  }
}

/** Blank and absent are the same cell: neither is listed as a change. */
const cell = (text: string | undefined): string | null => (text === undefined || text === '' ? null : text);

function localesOf(before: TemplateDefinition | undefined, after: TemplateDefinition, channel: Channel) {
  const locales = new Set([
    ...Object.keys(before?.variants[channel] ?? {}),
    ...Object.keys(after.variants[channel] ?? {}),
  ]);
  return [...locales].sort();
}

/**
 * Every cell that differs between `before` (undefined: the template is new, so every cell
 * of `after` is listed) and `after`: shared fields first, then variants in channel (as the export orders them), locale
 * and part order. A variant `after` no longer has lists its parts with `new: null`.
 */
export function definitionChanges(
  before: TemplateDefinition | undefined,
  after: TemplateDefinition,
): TemplateChange[] {
  const changes: TemplateChange[] = [];
  for (const field of sharedFields) {
    const old = before === undefined ? null : cell(sharedText(before, field));
    const now = cell(sharedText(after, field));
    if (old !== now) changes.push({ field, old, new: now });
  }
  for (const channel of Object.keys(channelParts) as Channel[]) {
    for (const locale of localesOf(before, after, channel)) {
      for (const part of channelParts[channel] as readonly Part[]) {
        const old = cell(before?.variants[channel]?.[locale]?.[part]);
        const now = cell(after.variants[channel]?.[locale]?.[part]);
        if (old !== now) changes.push({ field: 'variants', channel, locale, part, old, new: now });
      }
    }
  }
  return changes;
}
