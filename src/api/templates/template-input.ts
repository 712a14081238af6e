// What a request may say about a template: the body schemas, and how a body becomes a
// definition and a stored version is shown.
import { Type, type Static } from 'typebox';
import { channels, lanes, type Channel } from '../../domain/notification.js';
import {
  categoryPattern,
  channelParts,
  normalizeDefinition,
  paramNamePattern,
  paramTypes,
  templateKeyPattern,
  type DefinitionPlace,
  type StoredTemplateVersion,
  type TemplateDefinition,
} from '../../domain/template.js';
import { checkSteps, StepsSchema } from '../../domain/workflow.js';

/** A union of string literals, typed as their union (TypeBox types a mapped array as never). */
export function oneOf<T extends string>(values: readonly T[], options: { default?: T } = {}) {
  return Type.Unsafe<T>(
    Type.Union(
      values.map((v) => Type.Literal(v)),
      options,
    ),
  );
}

const partText = (part: string) => Type.String({ maxLength: part === 'html' ? 100_000 : 10_000 });
const Variant = (channel: Channel) =>
  Type.Object(
    Object.fromEntries(channelParts[channel].map((part) => [part, Type.Optional(partText(part))])),
    { additionalProperties: false },
  );
const LocaleTag = Type.String({
  minLength: 2,
  maxLength: 35,
  pattern: '^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$',
});
const VariantsSchema = Type.Object(
  Object.fromEntries(
    channels.map((c) => [
      c,
      Type.Optional(Type.Record(LocaleTag, Variant(c), { maxProperties: 100, additionalProperties: false })),
    ]),
  ),
  { additionalProperties: false, description: 'Per channel, per locale: the Liquid text of each part.' },
);
const ParamsSchema = Type.Record(Type.String({ pattern: paramNamePattern }), oneOf(paramTypes), {
  maxProperties: 100,
  additionalProperties: false,
  description: 'Declared parameters and their types.',
});

export const TemplateBody = Type.Object(
  {
    category: Type.Optional(Type.String({ pattern: categoryPattern, default: 'general' })),
    lane: Type.Optional(oneOf(lanes)),
    params: Type.Optional(ParamsSchema),
    fallback_locale: LocaleTag,
    variants: VariantsSchema,
    steps: Type.Optional(StepsSchema),
  },
  { additionalProperties: false },
);

export const KeyParam = Type.Object({ key: Type.String({ pattern: templateKeyPattern }) });

export const PreviewBody = Type.Object(
  {
    params: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    locale: Type.Optional(Type.String({ minLength: 1, maxLength: 35 })),
    channels: Type.Optional(Type.Array(oneOf(channels), { uniqueItems: true })),
    version: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);

export function definitionOf(body: Static<typeof TemplateBody>): TemplateDefinition {
  // Bounds and order now; the channels are checked against each request that uses them.
  if (body.steps !== undefined) checkSteps(body.steps, channels, true);
  return normalizeDefinition({
    category: body.category ?? 'general',
    lane: body.lane ?? 'transactional',
    params: body.params ?? {},
    fallbackLocale: body.fallback_locale,
    variants: body.variants,
    // A PUT says it all: no steps given is none.
    steps: body.steps ?? null,
  });
}

export function bodyField(place: DefinitionPlace): string {
  if (place.field !== 'variants') {
    return place.field === 'params' && place.param !== undefined
      ? `body/params/${place.param}`
      : `body/${place.field}`;
  }
  return ['body/variants', place.channel, place.locale, place.part]
    .filter((s) => s !== undefined && s !== '')
    .join('/');
}

export function presentVersion(v: StoredTemplateVersion) {
  return {
    key: v.key,
    category: v.category,
    lane: v.lane,
    version: v.version,
    params: v.params,
    fallback_locale: v.fallbackLocale,
    variants: v.variants,
    steps: v.steps ?? null,
  };
}
