// Category settings per calling service: critical, marketing, per-channel defaults and frequency
// caps. Read in bulk by the fan-out stage (through its cache) and listed for the settings
// screens of apps acting for users; a change NOTIFYs herald_settings in its transaction.
import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';
import type { Pool, PoolClient } from '../pools.js';
import { notifySettingsChanged, settingsChange } from '../settings-change.js';
import { channels, lanes } from '../../domain/notification.js';
import { capOverflows, capPeriods, categoryKey, type CategorySettings } from '../../domain/preferences.js';

type Queryable = Pool | PoolClient;

export const FrequencyCapSchema = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    per: Type.Union(capPeriods.map((p) => Type.Literal(p))),
    over: Type.Union(capOverflows.map((o) => Type.Literal(o))),
  },
  { additionalProperties: false },
);

/** {"<channel>": true|false}; in JSON columns and the API. */
export const CategoryDefaultsSchema = Type.Object(
  Object.fromEntries(channels.map((c) => [c, Type.Optional(Type.Boolean())])),
  { additionalProperties: false },
);

/** {"<channel>": {"<lane>": cap}}; in_app has no caps (the inbox is written at fan-out). */
export const CategoryCapsSchema = Type.Object(
  Object.fromEntries(
    channels
      .filter((c) => c !== 'in_app')
      .map((c) => [
        c,
        Type.Optional(
          Type.Object(Object.fromEntries(lanes.map((l) => [l, Type.Optional(FrequencyCapSchema)])), {
            additionalProperties: false,
          }),
        ),
      ]),
  ),
  { additionalProperties: false },
);

export type CategoryDefaults = Static<typeof CategoryDefaultsSchema>;
export type CategoryCaps = Static<typeof CategoryCapsSchema>;

/** A category's name, as the API and the console accept it. */
export const CategoryNameSchema = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.:-]+$' });

/** A category's settings as the API's PUT and the console's form set them (absent: false or empty). */
export const CategoryInputSchema = Type.Object(
  {
    critical: Type.Optional(
      Type.Boolean({ description: 'Always delivered: preferences, quiet hours and caps do not apply.' }),
    ),
    marketing: Type.Optional(Type.Boolean({ description: 'Suppressed for users whose no_marketing is on.' })),
    defaults: Type.Optional(CategoryDefaultsSchema),
    caps: Type.Optional(CategoryCapsSchema),
  },
  { additionalProperties: false },
);
export type CategoryInput = Static<typeof CategoryInputSchema>;

function categorySettingsFrom(row: {
  critical: boolean;
  marketing: boolean;
  defaults: unknown;
  caps: unknown;
}): CategorySettings {
  // Written through the API's schema; checked again because a JSON column is outside input.
  const defaults = Value.Check(CategoryDefaultsSchema, row.defaults) ? row.defaults : {};
  const caps = Value.Check(CategoryCapsSchema, row.caps) ? row.caps : {};
  return {
    critical: row.critical,
    marketing: row.marketing,
    defaults: defaults,
    caps: caps,
  };
}

export async function loadCategorySettings(
  db: Queryable,
  keys: readonly { serviceId: number; category: string }[],
): Promise<Map<string, CategorySettings>> {
  const result = await db.query<{
    service_id: string;
    category: string;
    critical: boolean;
    marketing: boolean;
    defaults: unknown;
    caps: unknown;
  }>(
    `SELECT c.service_id, c.category, c.critical, c.marketing, c.defaults, c.caps
       FROM unnest($1::bigint[], $2::text[]) AS k(service_id, category)
       JOIN categories c ON c.service_id = k.service_id AND c.category = k.category`,
    [keys.map((k) => k.serviceId), keys.map((k) => k.category)],
  );
  return new Map(
    result.rows.map((r) => [categoryKey(Number(r.service_id), r.category), categorySettingsFrom(r)]),
  );
}

export async function getCategory(
  db: Queryable,
  serviceId: number,
  category: string,
): Promise<(CategorySettings & { updatedAt: Date }) | undefined> {
  const result = await db.query<{
    critical: boolean;
    marketing: boolean;
    defaults: unknown;
    caps: unknown;
    updated_at: Date;
  }>(
    'SELECT critical, marketing, defaults, caps, updated_at FROM categories WHERE service_id = $1 AND category = $2',
    [serviceId, category],
  );
  const row = result.rows[0];
  return row === undefined ? undefined : { ...categorySettingsFrom(row), updatedAt: row.updated_at };
}

export async function putCategory(
  client: PoolClient,
  serviceId: number,
  category: string,
  settings: { critical: boolean; marketing: boolean; defaults: CategoryDefaults; caps: CategoryCaps },
): Promise<Date> {
  const result = await client.query<{ updated_at: Date }>(
    `INSERT INTO categories (service_id, category, critical, marketing, defaults, caps)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (service_id, category) DO UPDATE
       SET critical = excluded.critical, marketing = excluded.marketing, defaults = excluded.defaults,
           caps = excluded.caps, updated_at = now()
     RETURNING updated_at`,
    [
      serviceId,
      category,
      settings.critical,
      settings.marketing,
      JSON.stringify(settings.defaults),
      JSON.stringify(settings.caps),
    ],
  );
  await notifySettingsChanged(client, [settingsChange.category(serviceId, category)]);
  const row = result.rows[0];
  if (row === undefined) throw new Error('category upsert returned no row');
  return row.updated_at;
}

/**
 * Sets a category (replacing its settings) and returns what it was before, undefined when it was
 * new; the row is locked first, so the state returned is the one this change replaced.
 */
export async function replaceCategory(
  client: PoolClient,
  serviceId: number,
  category: string,
  settings: { critical: boolean; marketing: boolean; defaults: CategoryDefaults; caps: CategoryCaps },
): Promise<{ before: CategorySettings | undefined; updatedAt: Date }> {
  const locked = await client.query<{
    critical: boolean;
    marketing: boolean;
    defaults: unknown;
    caps: unknown;
  }>(
    'SELECT critical, marketing, defaults, caps FROM categories WHERE service_id = $1 AND category = $2 FOR UPDATE',
    [serviceId, category],
  );
  const row = locked.rows[0];
  const updatedAt = await putCategory(client, serviceId, category, settings);
  return { before: row === undefined ? undefined : categorySettingsFrom(row), updatedAt };
}

/** One service's categories with every setting, by name. */
export async function listServiceCategories(
  db: Queryable,
  serviceId: number,
): Promise<(CategorySettings & { category: string; updatedAt: Date })[]> {
  const result = await db.query<{
    category: string;
    critical: boolean;
    marketing: boolean;
    defaults: unknown;
    caps: unknown;
    updated_at: Date;
  }>(
    `SELECT category, critical, marketing, defaults, caps, updated_at
       FROM categories WHERE service_id = $1 ORDER BY category`,
    [serviceId],
  );
  return result.rows.map((r) => ({
    ...categorySettingsFrom(r),
    category: r.category,
    updatedAt: r.updated_at,
  }));
}

export interface ListedCategory {
  category: string;
  /** The calling service whose category it is (categories belong to services). */
  service: string;
  critical: boolean;
  marketing: boolean;
  defaults: CategoryDefaults;
}

/**
 * Every calling service's categories, for the settings screens of apps acting for users: which
 * exist, which are critical (preferences do not apply) or marketing, and their per-channel
 * defaults. Ordered by category, then service.
 */
export async function listCategories(db: Queryable): Promise<ListedCategory[]> {
  const result = await db.query<{
    category: string;
    service: string;
    critical: boolean;
    marketing: boolean;
    defaults: unknown;
  }>(
    `SELECT c.category, s.name AS service, c.critical, c.marketing, c.defaults
       FROM categories c JOIN services s ON s.id = c.service_id
      ORDER BY c.category, s.name`,
  );
  return result.rows.map((r) => ({
    category: r.category,
    service: r.service,
    critical: r.critical,
    marketing: r.marketing,
    // Written through the API's schema; checked again because a JSON column is outside input.
    defaults: Value.Check(CategoryDefaultsSchema, r.defaults) ? r.defaults : {},
  }));
}
